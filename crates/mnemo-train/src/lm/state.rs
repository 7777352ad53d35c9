//! What a language-model checkpoint holds besides the weights and the optimizer moments.
use mnemo_data::TaskConfig;
use mnemo_models::{ModelConfig, StateSnapshot};
use serde::{Deserialize, Serialize};

use crate::experiment::TrainConfig;
use crate::trainer::RunState;

/// The state of a language-model (or algorithmic) run: see [`RunState`].
pub type TrainerState = RunState<ModelConfig, TaskConfig, TrainConfig, LmPosition>;

/// Where a language-model run stands in its training stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmPosition {
    /// Index of the next training segment to read.
    pub next_segment: usize,
    /// Completed passes over the training split.
    pub epoch: u64,
    /// Training segments per epoch (checked on resume: the data must be the same).
    pub segments_per_epoch: usize,
    /// The model state carried into segment `next_segment`.
    pub carried: StateSnapshot,
}
