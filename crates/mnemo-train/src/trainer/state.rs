//! What a checkpoint records about a run besides the weights and the optimizer moments.
use std::ops::Deref;
use std::path::Path;

use burn::tensor::Device;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::error::TrainError;
use crate::experiment::POLICY_KEYS;
use crate::fingerprint::FileFingerprint;
use crate::metrics::{Metrics, MetricsAccumulator};
use crate::model_table::ModelEntry;
use crate::run_dir::RunDir;

/// Where training stands: everything besides the weights and the optimizer moments that a
/// resumed run needs to continue exactly as an uninterrupted one.
///
/// `M`, `D` and `C` are the task's model, `[data]` and `[train]` configs (checked on resume);
/// `P` is its data position ([`Task::Position`](crate::task::Task::Position)), whose fields
/// also read as fields of the state (`state.next_segment`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunState<M, D, C, P> {
    /// Name of the model in the experiment config.
    pub model_name: String,
    /// The resolved model config the weights belong to (checked on resume).
    pub model_config: M,
    /// The data config (checked on resume: the data must be the same).
    pub data: D,
    /// Batch and segment sizes (checked on resume: they define the data position).
    pub train: C,
    /// The run seed.
    pub seed: u64,
    /// Optimizer steps taken.
    pub step: u64,
    /// Where the training data stands, and what is carried into the next batch.
    pub position: P,
    /// Seconds spent training so far (all sessions).
    #[serde(with = "crate::float_repr::exact")]
    pub train_time_s: f64,
    /// Counted training positions read so far.
    pub tokens_seen: u64,
    /// Train metrics of the last log window, if any.
    pub last_train: Option<Metrics>,
    /// The open log window (steps since the last train log line).
    pub window: MetricsAccumulator,
    /// The last validation result and its step, if any.
    pub last_valid: Option<(u64, Metrics)>,
    /// The best (highest accuracy, then lowest loss) validation result and its step, if any.
    pub best_valid: Option<(u64, Metrics)>,
    /// Size and SHA-256 of every data file read (checked on resume; none for generated data).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_files: Vec<FileFingerprint>,
    /// Batches dropped for a non-finite loss, gradient norm or weights
    /// (`train.on_nonfinite = "skip_batch"`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped_batches: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl<M: PartialEq, D: PartialEq, C: PartialEq + Serialize, P> RunState<M, D, C, P> {
    /// The state of a fresh run at step 0.
    pub fn new(
        model_name: &str,
        model_config: M,
        data: D,
        train: C,
        seed: u64,
        position: P,
    ) -> Self {
        Self {
            model_name: model_name.to_string(),
            model_config,
            data,
            train,
            seed,
            step: 0,
            position,
            train_time_s: 0.0,
            tokens_seen: 0,
            last_train: None,
            window: MetricsAccumulator::default(),
            last_valid: None,
            best_valid: None,
            data_files: Vec::new(),
            skipped_batches: 0,
        }
    }

    /// Refuse `saved` (read from the checkpoint at `path`) unless it was written by this very
    /// run: same model name and config, seed, data and batching (`[train]` but for its
    /// policies, [`POLICY_KEYS`], which may change between sessions).
    pub fn check_resumable(&self, saved: &Self, path: &Path) -> Result<(), CheckpointError> {
        let differs = [
            (
                saved.model_name != self.model_name,
                "the model name".to_string(),
            ),
            (
                saved.model_config != self.model_config,
                format!("models.{}", self.model_name),
            ),
            (saved.seed != self.seed, "run.seed".into()),
            (saved.data != self.data, "[data]".into()),
            (
                saved.train != self.train && identity(&saved.train) != identity(&self.train),
                "[train]".into(),
            ),
        ];
        match differs.into_iter().find(|(differ, _)| *differ) {
            Some((_, what)) => Err(differs_from_config(path, &what)),
            None => Ok(()),
        }
    }
}

/// A saved run's state and its model with the saved weights.
pub type RunWeights<M, D, C, P> = (RunState<M, D, C, P>, <M as ModelEntry>::Module);

/// The saved state of the finished (or stopped) run in `dir` and its weights in a fresh model
/// of `model_config` (entry `model_name` of the run's config) on `device`.
///
/// Refused, naming the file, when the config's vocabulary size is not `vocab.1`, the size of
/// what the run saved as its vocabulary (`vocab.0`, e.g. `the vocabulary`), or when the
/// checkpoint was written for another model config.
pub fn load_run_weights<M, D, C, P>(
    dir: &RunDir,
    (model_name, model_config): (&str, &M),
    vocab: (&str, usize),
    device: &Device,
) -> Result<RunWeights<M, D, C, P>, TrainError>
where
    M: ModelEntry + PartialEq,
    RunState<M, D, C, P>: Serialize + DeserializeOwned,
{
    let (what, tokens) = vocab;
    if model_config.vocab_size() != tokens {
        return Err(TrainError::BadFile {
            path: dir.config(),
            message: format!(
                "models.{model_name}.vocab_size is {}, but {what} has {tokens} tokens",
                model_config.vocab_size()
            ),
        });
    }
    let checkpoint = Checkpoint::<RunState<M, D, C, P>>::read(&dir.checkpoint())?;
    if checkpoint.trainer.model_config != *model_config {
        return Err(CheckpointError::mismatch(
            &dir.checkpoint(),
            "written for another model config",
        )
        .into());
    }
    let model = checkpoint.load_model(model_config.init(device), &dir.checkpoint())?;
    Ok((checkpoint.trainer, model))
}

/// A `[train]` table as JSON without its [`POLICY_KEYS`].
fn identity<C: Serialize>(train: &C) -> Value {
    let mut value = serde_json::to_value(train).expect("train configs serialise");
    if let Value::Object(map) = &mut value {
        for key in POLICY_KEYS {
            map.remove(*key);
        }
    }
    value
}

/// The error for a checkpoint at `path` whose `what` differs from the config.
pub fn differs_from_config(path: &Path, what: &str) -> CheckpointError {
    CheckpointError::mismatch(
        path,
        format!("{what} differs from the config; train into another --out"),
    )
}

impl<M, D, C, P> Deref for RunState<M, D, C, P> {
    type Target = P;

    /// The data position.
    fn deref(&self) -> &P {
        &self.position
    }
}
