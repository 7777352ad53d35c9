//! Evaluation over a whole split with carried state, and reloading a trained run from disk.
use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use mnemo_data::{LabelledStream, Scoring, Segment, Split, StreamBatcher, TaskData, Vocab};
use mnemo_models::{Model, ModelConfig, ModelState, SegmentOutput};

use crate::error::TrainError;
use crate::eval_memory::apply_eval_memory;
use crate::experiment::ExperimentConfig;
use crate::lm::TrainerState;
use crate::loss::masked_loss_stats;
use crate::metrics::{Metrics, MetricsAccumulator};
use crate::run_dir::RunDir;
use crate::trainer::load_run_weights;

/// The input ids of a segment as a tensor.
///
/// # Shapes
/// - output: `[segment.batch, segment.len]`
pub fn segment_tokens(segment: &Segment, device: &Device) -> Tensor<2, Int> {
    let ids: Vec<i64> = segment.inputs.iter().map(|&id| i64::from(id)).collect();
    Tensor::from_data(TensorData::new(ids, [segment.batch, segment.len]), device)
}

/// Loss and accuracy of `model` over every segment of `batcher`, starting from a fresh state
/// and carrying it from segment to segment (as training does); for language modelling
/// (`scoring.lm`), also bits per character or perplexity of the mean loss.
///
/// Pass an inference copy (`model.valid()`) on a plain device: no graph is recorded.
pub fn evaluate(
    model: &Model,
    batcher: &StreamBatcher,
    scoring: Scoring,
    device: &Device,
) -> Metrics {
    let mut state = model.init_state(batcher.batch(), device);
    let mut total = MetricsAccumulator::default();
    for segment in batcher.segments() {
        let out = forward_segment(model, segment_tokens(&segment, device), state);
        total.add(&masked_loss_stats(
            out.logits,
            &segment.targets,
            scoring.no_label,
        ));
        state = out.state;
    }
    total.metrics().with_lm_unit(scoring.lm)
}

/// The inference forward of one segment ([`Model::infer_segment`]: a Feedback model built for a
/// CPU device runs its steps on the host kernels): what [`evaluate`] and `mnemo bench` run.
///
/// Pass an inference copy (`model.valid()`) on a plain device.
///
/// # Shapes
/// - tokens: `[B, T]`
/// - output logits: `[B, T, V]`
pub fn forward_segment(model: &Model, tokens: Tensor<2, Int>, state: ModelState) -> SegmentOutput {
    model.infer_segment(tokens, state)
}

/// Overrides of `mnemo eval` (all `None`: evaluate exactly as the trainer does).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EvalOptions {
    /// Evaluation span: tokens per segment instead of `train.segment_len` (`--eval-span`).
    pub span: Option<usize>,
    /// Memory length to evaluate with (`--mem-len`); see [`apply_eval_memory`].
    pub mem_len: Option<usize>,
}

/// A trained run reloaded from its directory, ready for evaluation or generation.
#[derive(Debug)]
pub struct LoadedRun {
    /// The run directory.
    pub dir: RunDir,
    /// The resolved single-model config (`config.toml`).
    pub config: ExperimentConfig,
    /// Name of the model.
    pub model_name: String,
    /// Its config (vocabulary size filled in).
    pub model_config: ModelConfig,
    /// The vocabulary (`vocab.json`).
    pub vocab: Vocab,
    /// The data, regenerated from the config's seed (checked against `vocab.json`).
    pub data: TaskData,
    /// The trained model, in inference mode on `device`.
    pub model: Model,
    /// The (plain, inference) device the model lives on.
    pub device: Device,
    /// The trainer state stored in the checkpoint (step, metrics, ...).
    pub trainer: TrainerState,
}

impl LoadedRun {
    /// Evaluate on `split` exactly as the trainer does (same batch and segment sizes).
    pub fn evaluate(&self, split: Split) -> Result<Metrics, TrainError> {
        let batcher = split_batcher(&self.config, &self.data, split)?;
        Ok(evaluate(
            &self.model,
            &batcher,
            self.data.scoring(),
            &self.device,
        ))
    }

    /// Evaluate on `split` with the overrides of `options`: another segment length
    /// (`--eval-span`) and/or memory length (`--mem-len`, which changes the loaded model).
    pub fn evaluate_with(
        &mut self,
        split: Split,
        options: &EvalOptions,
    ) -> Result<Metrics, TrainError> {
        if let Some(len) = options.mem_len {
            apply_eval_memory(&mut self.model, len)?;
        }
        let mut config = self.config.clone();
        if let Some(span) = options.span {
            if span == 0 {
                return Err(TrainError::Flag {
                    flag: "--eval-span".into(),
                    reason: "must be at least 1, got 0".into(),
                });
            }
            config.train.segment_len = span;
        }
        let batcher = split_batcher(&config, &self.data, split)?;
        Ok(evaluate(
            &self.model,
            &batcher,
            self.data.scoring(),
            &self.device,
        ))
    }
}

/// `stream` in batches of `split`'s rows (`batch_size` for training, `eval_batch_size`
/// otherwise) and `train.segment_len`; `name` says which stream in the error.
pub(crate) fn stream_batcher(
    config: &ExperimentConfig,
    stream: &LabelledStream,
    split: Split,
    name: &str,
) -> Result<StreamBatcher, TrainError> {
    let train = &config.train;
    let batch = match split {
        Split::Train => train.batch_size,
        Split::Valid | Split::Test => train.eval_batch_size(),
    };
    StreamBatcher::new(stream, batch, train.segment_len).map_err(|e| {
        TrainError::data(
            format!(
                "{name} split (batch {batch}, train.segment_len = {})",
                train.segment_len
            ),
            e,
        )
    })
}

/// The evaluation batcher of `split` (`eval_batch_size` rows; training uses `batch_size`).
pub(crate) fn split_batcher(
    config: &ExperimentConfig,
    data: &TaskData,
    split: Split,
) -> Result<StreamBatcher, TrainError> {
    let batcher = stream_batcher(config, data.split(split), split, split.name())?;
    // Language modelling scores every position of the evaluation splits.
    Ok(match (data.lm, split) {
        (Some(_), Split::Valid | Split::Test) => batcher.with_tail(),
        _ => batcher,
    })
}

/// The resolved config of the run in `dir`, its one model's name and its vocabulary
/// (`config.toml`, `vocab.json`), each error naming the file.
pub(crate) fn read_run_config(
    dir: &RunDir,
) -> Result<(ExperimentConfig, String, Vocab), TrainError> {
    let config = ExperimentConfig::load(dir.config())?;
    let model_name = match config.model_names().as_slice() {
        [name] => name.clone(),
        names => {
            return Err(TrainError::BadFile {
                path: dir.config(),
                message: format!(
                    "a run config holds exactly one model, found {}",
                    names.len()
                ),
            });
        }
    };
    let vocab_text = std::fs::read_to_string(dir.vocab())
        .map_err(|e| TrainError::io(dir.vocab(), "cannot read vocabulary", e))?;
    let vocab: Vocab = serde_json::from_str(&vocab_text).map_err(|e| TrainError::BadFile {
        path: dir.vocab(),
        message: e.to_string(),
    })?;
    Ok((config, model_name, vocab))
}

/// What a trained language-model run directory holds, without its data.
pub(crate) struct TrainedRun {
    pub config: ExperimentConfig,
    pub model_name: String,
    pub model_config: ModelConfig,
    pub vocab: Vocab,
    pub trainer: TrainerState,
    /// The weights, on the device they were read onto (autodiff off).
    pub model: Model,
}

/// Read the config, vocabulary and checkpointed weights of the run in `dir` onto `device`.
pub(crate) fn read_trained(dir: &RunDir, device: &Device) -> Result<TrainedRun, TrainError> {
    let (config, model_name, vocab) = read_run_config(dir)?;
    let model_config = config.models[&model_name].clone();
    let (trainer, model) = load_run_weights(
        dir,
        (&model_name, &model_config),
        ("the vocabulary", vocab.len()),
        device,
    )?;
    Ok(TrainedRun {
        config,
        model_name,
        model_config,
        vocab,
        trainer,
        model,
    })
}

/// Reload the run in `dir` onto `device`: config, vocabulary, data and weights.
pub fn load_run(dir: impl AsRef<Path>, device: &Device) -> Result<LoadedRun, TrainError> {
    let dir = RunDir::at(dir.as_ref());
    if !dir.path().is_dir() {
        return Err(TrainError::NotARun {
            dir: dir.path().into(),
            reason: "no such directory".into(),
        });
    }
    for file in [dir.config(), dir.checkpoint()] {
        if !file.is_file() {
            let name = file
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            return Err(TrainError::NotARun {
                dir: dir.path().into(),
                reason: format!("{name} is missing"),
            });
        }
    }
    let device = device.clone().inner();
    let run = read_trained(&dir, &device)?;
    let (config, vocab) = (run.config, run.vocab);
    let data = config
        .data
        .build()
        .map_err(|e| TrainError::data("preparing the data", e))?;
    if data.vocab != vocab {
        return Err(TrainError::BadFile {
            path: dir.vocab(),
            message: "does not match the vocabulary the data config generates".into(),
        });
    }
    Ok(LoadedRun {
        dir,
        config,
        model_name: run.model_name,
        model_config: run.model_config,
        vocab,
        data,
        model: run.model.valid(),
        device,
        trainer: run.trainer,
    })
}
