//! Evaluating with a memory length other than the one a model was trained with (`--mem-len`).
//!
//! Transformer-XL style models can attend to a longer cache of past segments at evaluation
//! time than during training (the Transformer-XL paper evaluates with a longer memory than it
//! trains with). The model side is [`Model::with_eval_memory`]; this forwards to it and names
//! the flag in the error.
use mnemo_models::Model;

use crate::error::TrainError;

/// Sets the memory length `model` evaluates with to `len` tokens.
///
/// Fails, naming `--mem-len`, when the model has no adjustable memory (the Transformer carries
/// none; the Feedback Transformer's window is fixed by its learned positions).
pub fn apply_eval_memory(model: &mut Model, len: usize) -> Result<(), TrainError> {
    model
        .with_eval_memory(len)
        .map_err(|reason| TrainError::Flag {
            flag: format!("--mem-len {len}"),
            reason: format!("{reason} ({} model)", model.kind()),
        })
}
