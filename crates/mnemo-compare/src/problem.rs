//! The one training step every backend runs: a model config, its initial weights and a batch.
use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device, Int, Tensor, TensorData};
use mnemo_data::{Segment, Split, StreamBatcher};
use mnemo_models::{Model, ModelConfig};
use mnemo_train::{ExperimentConfig, FeedbackBackward, OptimConfig};

use crate::error::CompareError;

/// How many training segments are searched for the one with the most scored positions.
const SEGMENTS_SEARCHED: usize = 16;

/// Everything a backend needs to run the compared step, in host memory: the resolved model
/// config, the weights as bytes (a burn record, as checkpoints store them) and one batch.
///
/// The weights are initialised once, on the reference backend, so every backend starts from
/// bit-identical parameters; dropout is set to 0 so that no random draw enters the step.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Name of the model in the experiment config.
    pub model_name: String,
    /// The model config (vocabulary size filled in, dropout 0).
    pub model: ModelConfig,
    /// Optimizer settings of the experiment.
    pub optim: OptimConfig,
    /// Learning rate of the compared step (the schedule's value at step 1).
    pub lr: f64,
    /// How the trainer computes a Feedback model's gradients (`train.feedback_backward`).
    pub backward: FeedbackBackward,
    /// The batch: the training segment searched out by [`Problem::from_experiment`].
    pub segment: Segment,
    /// The target id that is not scored.
    pub no_label: u32,
    /// A prompt for the generation benchmark (the first row of the batch).
    pub prompt: Vec<u32>,
    /// The initial weights (`Module::into_record().into_bytes()`).
    pub weights: Vec<u8>,
}

impl Problem {
    /// The step of model `model_name` of `config`: of the first 16 training segments of its
    /// data, the one that scores the most positions (so that the loss is not trivially 0);
    /// the weights initialised with `run.seed` on the backend `reference`.
    pub fn from_experiment(
        config: &ExperimentConfig,
        model_name: &str,
        reference: &str,
    ) -> Result<Self, CompareError> {
        if !config.models.contains_key(model_name) {
            return Err(CompareError::Config(format!(
                "--model {model_name}: the config has no model named `{model_name}`; it has: {}",
                config.model_names().join(", ")
            )));
        }
        let data = config
            .data
            .build()
            .map_err(|e| CompareError::Config(format!("[data]: {e}")))?;
        let config = config
            .for_model(model_name, data.vocab.len())
            .map_err(|e| CompareError::Config(e.to_string()))?;
        let model = without_dropout(&config.models[model_name])?;
        let train = &config.train;
        let batcher = StreamBatcher::new(
            data.split(Split::Train),
            train.batch_size,
            train.segment_len,
        )
        .map_err(|e| {
            CompareError::Config(format!(
                "train split (train.batch_size = {}, train.segment_len = {}): {e}",
                train.batch_size, train.segment_len
            ))
        })?;
        // The first segments of a labelled stream may score nothing (no `print` yet): take
        // the one with the most scored positions among the first few.
        let segment = (0..batcher.num_segments().min(SEGMENTS_SEARCHED))
            .map(|i| (i, batcher.segment(i)))
            .max_by_key(|(i, s)| (s.scored_positions(), std::cmp::Reverse(*i)))
            .map(|(_, s)| s)
            .filter(|s| s.scored_positions() > 0)
            .ok_or_else(|| {
                CompareError::Config(format!(
                    "[data]: none of the first {SEGMENTS_SEARCHED} training segments has a \
                     scored position"
                ))
            })?;
        let device = mnemo_backend::device(reference).map_err(|source| CompareError::Backend {
            flag: "--reference".into(),
            source,
        })?;
        // Drawn (lazily, at `into_record`) inside the seeded section.
        let weights = mnemo_train::seeded(&device, config.run.seed, || {
            model.init(&device).into_record()
        })
        .into_bytes()
        .map_err(|e| CompareError::Weights {
            backend: reference.to_string(),
            message: e.to_string(),
        })?
        .to_vec();
        Ok(Self {
            model_name: model_name.to_string(),
            lr: config.optim.lr_at(1, config.run.steps),
            optim: config.optim.clone(),
            backward: config.train.feedback_backward,
            prompt: segment.inputs[..segment.len].to_vec(),
            segment,
            no_label: data.vocab.no_label_id(),
            model,
            weights,
        })
    }

    /// The model with the shared weights, on `device`.
    pub fn load_model(&self, backend: &str, device: &Device) -> Result<Model, CompareError> {
        let failed = |e: &dyn std::fmt::Display| CompareError::Weights {
            backend: backend.to_string(),
            message: e.to_string(),
        };
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(self.weights.clone()))
            .map_err(|e| failed(&e))?;
        self.model
            .init(device)
            .try_load_record(record)
            .map_err(|e| failed(&e))
    }

    /// The batch's inputs on `device`.
    ///
    /// # Shapes
    /// - output: `[batch, len]`
    pub fn inputs_on(&self, device: &Device) -> Tensor<2, Int> {
        let Segment {
            inputs, batch, len, ..
        } = &self.segment;
        let ids: Vec<i64> = inputs.iter().map(|&id| i64::from(id)).collect();
        Tensor::from_data(TensorData::new(ids, [*batch, *len]), device)
    }
}

/// `config` with every `dropout` field set to 0, whatever the architecture (through its serde
/// form, so that architectures added later are covered too).
fn without_dropout(config: &ModelConfig) -> Result<ModelConfig, CompareError> {
    let mut value =
        serde_json::to_value(config).map_err(|e| CompareError::Config(e.to_string()))?;
    if let Some(dropout) = value.get_mut("dropout") {
        *dropout = serde_json::json!(0.0);
    }
    serde_json::from_value(value).map_err(|e| CompareError::Config(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `experiments/smoke/tiny.toml`, the seconds-long config CI runs.
    const SMOKE: &str = include_str!("../../../experiments/smoke/tiny.toml");

    fn smoke_config() -> ExperimentConfig {
        ExperimentConfig::from_toml_str(SMOKE).unwrap()
    }

    #[test]
    fn dropout_is_switched_off() {
        let text = SMOKE.replace("span = 16", "span = 16\ndropout = 0.3");
        let config = ExperimentConfig::from_toml_str(&text).unwrap();
        let original = serde_json::to_value(&config.models["transformer"]).unwrap();
        assert_eq!(original["dropout"], 0.3);
        let problem = Problem::from_experiment(&config, "transformer", "cpu").unwrap();
        let value = serde_json::to_value(&problem.model).unwrap();
        assert_eq!(value["dropout"], 0.0);
        assert_eq!(value["d_model"], original["d_model"]);
    }

    #[test]
    fn unknown_model_is_named() {
        let config = smoke_config();
        let err = Problem::from_experiment(&config, "xl", "cpu").unwrap_err();
        assert!(err.to_string().contains("--model xl"), "{err}");
        assert!(err.to_string().contains("feedback, transformer"), "{err}");
    }

    #[test]
    fn batch_is_a_scored_training_segment() {
        let config = smoke_config();
        let p = Problem::from_experiment(&config, "feedback", "cpu").unwrap();
        let segment = &p.segment;
        assert_eq!((segment.batch, segment.len), (4, 16));
        assert_eq!(segment.inputs.len(), 64);
        assert_eq!(segment.targets.len(), 64);
        assert_eq!(p.prompt, segment.inputs[..16]);
        assert!(
            segment.targets.iter().any(|&t| t != p.no_label),
            "the batch scores something"
        );
    }
}
