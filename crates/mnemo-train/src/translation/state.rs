//! What a translation checkpoint holds besides the weights and the optimizer moments.
use mnemo_data::translation::ParallelConfig;
use mnemo_models::Seq2SeqConfig;
use serde::{Deserialize, Serialize};

use crate::metrics::{Metrics, MetricsAccumulator};
use crate::translation::config::MtTrainConfig;

/// Where a translation run stands; a resumed run continues exactly from here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtTrainerState {
    /// Name of the model in the experiment config.
    pub model_name: String,
    /// The resolved model config (vocabulary size filled in; checked on resume).
    pub model_config: Seq2SeqConfig,
    /// The corpus settings (checked on resume).
    pub data: ParallelConfig,
    /// Batch sizes (checked on resume: they define the data position).
    pub train: MtTrainConfig,
    /// The run seed.
    pub seed: u64,
    /// Optimizer steps taken.
    pub step: u64,
    /// Data position: (epoch, batch index within the epoch) of the next training batch.
    pub position: (u64, usize),
    /// Training batches per epoch (checked on resume: the data must be the same).
    pub batches_per_epoch: usize,
    /// Seconds spent training so far (all sessions).
    pub train_time_s: f64,
    /// Target tokens (without padding) trained on so far.
    pub tokens_seen: u64,
    /// The open log window.
    pub window: MetricsAccumulator,
    /// The last validation result and its step, if any.
    pub last_valid: Option<(u64, Metrics)>,
    /// The best (lowest loss) validation result and its step, if any.
    pub best_valid: Option<(u64, Metrics)>,
}
