//! Evaluating with a memory length other than the one a model was trained with (`--mem-len`).
//!
//! Transformer-XL style models can attend to a longer cache of past segments at evaluation
//! time than during training. The model side of this is `Model::with_eval_memory`, which the
//! Transformer-XL work adds to `mnemo-models`; until it is wired in here, every model
//! reports that the option is not supported.
use mnemo_models::Model;

use crate::error::TrainError;

/// Sets the memory length `model` evaluates with to `len` tokens.
///
/// Fails, naming `--mem-len`, when the model has no adjustable memory (today: every model;
/// to be forwarded to `Model::with_eval_memory` once that exists).
pub fn apply_eval_memory(model: &mut Model, len: usize) -> Result<(), TrainError> {
    Err(TrainError::Flag {
        flag: format!("--mem-len {len}"),
        reason: format!(
            "not supported by this model ({}): only models with a segment memory \
             (Transformer-XL) can change their memory length at evaluation",
            model.kind()
        ),
    })
}
