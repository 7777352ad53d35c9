//! What a translation checkpoint holds besides the weights and the optimizer moments.
use mnemo_models::Seq2SeqConfig;
use serde::{Deserialize, Serialize};

use crate::trainer::RunState;
use crate::translation::config::{MtTrainConfig, TranslationData};

/// The state of a translation run: see [`RunState`].
pub type MtTrainerState = RunState<Seq2SeqConfig, TranslationData, MtTrainConfig, MtPosition>;

/// Where a translation run stands in its shuffled batches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtPosition {
    /// (epoch, batch index within the epoch) of the next training batch.
    pub position: (u64, usize),
    /// Training batches per epoch (checked on resume: the data must be the same).
    pub batches_per_epoch: usize,
}
