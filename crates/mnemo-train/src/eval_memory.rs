//! Evaluating with a memory length other than the one a model was trained with (`--mem-len`).
//!
//! Transformer-XL style models can attend to a longer cache of past segments at evaluation
//! time than during training (the Transformer-XL paper evaluates with a longer memory than it
//! trains with). The Feedback Transformer (Fan et al., 2020) can attend to a shorter span N ≤ S
//! than trained (the paper's memory-size reduction at evaluation): every layer attends to the
//! last N memories with the learned vectors of distances 1..N. The model side is
//! [`Model::with_eval_memory`]; this forwards to it and names the flag in the error.
use mnemo_models::Model;

use crate::error::TrainError;

/// Sets the memory length `model` evaluates with to `len` tokens.
///
/// Fails, naming `--mem-len`, when the model cannot take it: the Transformer carries no memory;
/// a Feedback Transformer takes 1 ≤ `len` ≤ its trained span (it has no position vectors
/// past it); Transformer-XL any `len` ≥ 1.
pub fn apply_eval_memory(model: &mut Model, len: usize) -> Result<(), TrainError> {
    model
        .with_eval_memory(len)
        .map_err(|reason| TrainError::Flag {
            flag: format!("--mem-len {len}"),
            reason: format!("{reason} ({} model)", model.kind()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mnemo_models::{FeedbackConfig, ModelConfig};

    /// A Feedback model takes 1..=S; 0 and S + 1 are refused naming the flag and the reason.
    #[test]
    fn feedback_spans_outside_the_trained_one_name_the_flag() {
        let device = mnemo_backend::test_device().inner();
        let config = FeedbackConfig::tiny(5); // span 8
        let mut model = ModelConfig::Feedback(config.clone()).init(&device);
        let err = apply_eval_memory(&mut model, 0).unwrap_err().to_string();
        assert!(
            err.starts_with("--mem-len 0: ") && err.contains("at least 1"),
            "{err}"
        );
        let err = apply_eval_memory(&mut model, 9).unwrap_err().to_string();
        assert!(
            err.starts_with("--mem-len 9: ")
                && err.contains("1..=8")
                && err.ends_with("(feedback model)"),
            "{err}"
        );
        apply_eval_memory(&mut model, 3).unwrap();
        let state = model.init_state(2, &device);
        let mnemo_models::ModelState::Feedback(state) = state else {
            unreachable!()
        };
        assert_eq!(state.memories.dims(), [2, 3, config.d_model]);
    }
}
