//! What a language-model checkpoint holds besides the weights and the optimizer moments.
use mnemo_data::TaskConfig;
use mnemo_models::{ModelConfig, StateSnapshot};
use serde::{Deserialize, Serialize};

use crate::experiment::TrainConfig;
use crate::trainer::RunState;

/// The state of a language-model (or algorithmic) run: see [`RunState`].
pub type TrainerState = RunState<ModelConfig, TaskConfig, TrainConfig, LmPosition>;

/// Where a language-model run stands in its training stream (the current curriculum stage's:
/// `next_segment`, `epoch` and `segments_per_epoch` restart with each stage).
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
    /// The curriculum stage `next_segment` belongs to (0-based; `[data.curriculum]`'s stages,
    /// then the final one). 0 without a curriculum.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stage: usize,
    /// Optimizer steps taken in stage `stage`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stage_steps: u64,
}

fn is_zero<T: Default + PartialEq>(n: &T) -> bool {
    *n == T::default()
}
