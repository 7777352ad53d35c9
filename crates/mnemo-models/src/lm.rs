//! The one language-model interface every mnemo architecture exposes.
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::feedback::{FeedbackLm, FeedbackState};
use crate::transformer::{TransformerLm, TransformerState};

/// Any mnemo language model.
#[derive(Module, Debug)]
pub enum Model {
    /// The causal Transformer baseline.
    Transformer(TransformerLm),
    /// The Feedback Transformer.
    Feedback(FeedbackLm),
}

/// What a model carries from one segment or step to the next.
#[derive(Debug, Clone)]
pub enum ModelState {
    /// Key/value caches of a Transformer (used by step-by-step decoding only).
    Transformer(TransformerState),
    /// The Feedback Transformer's last S memories.
    Feedback(FeedbackState),
}

/// Logits for a whole segment, and the state to carry into the next one.
#[derive(Debug, Clone)]
pub struct SegmentOutput {
    /// Next-token (or label) logits. Shape `[B, T, V]`.
    pub logits: Tensor<3>,
    /// State for the next segment (detached: no gradient flows across segments).
    pub state: ModelState,
}

/// Logits for one step, and the state for the next step.
#[derive(Debug, Clone)]
pub struct StepOutput {
    /// Logits. Shape `[B, V]`.
    pub logits: Tensor<2>,
    /// State for the next step.
    pub state: ModelState,
}

impl Model {
    /// The state of a fresh stream (no history) for `batch` rows.
    pub fn init_state(&self, batch: usize, device: &Device) -> ModelState {
        match self {
            Model::Transformer(m) => ModelState::Transformer(m.init_state()),
            Model::Feedback(m) => ModelState::Feedback(m.init_state(batch, device)),
        }
    }

    /// Run a segment (teacher forcing), carrying `state` in.
    ///
    /// # Shapes
    /// - tokens: `[B, T]`
    /// - output logits: `[B, T, V]`
    pub fn forward_segment(&self, tokens: Tensor<2, Int>, state: ModelState) -> SegmentOutput {
        match (self, state) {
            (Model::Transformer(m), ModelState::Transformer(_)) => SegmentOutput {
                logits: m.forward(tokens),
                state: ModelState::Transformer(m.init_state()),
            },
            (Model::Feedback(m), ModelState::Feedback(s)) => {
                let (logits, state) = m.forward_segment(tokens, s);
                SegmentOutput { logits, state: ModelState::Feedback(state) }
            }
            (model, state) => panic!("{} state passed to a {} model", state.kind(), model.kind()),
        }
    }

    /// Run one step (generation), carrying `state` in.
    ///
    /// # Shapes
    /// - token: `[B]`
    /// - output logits: `[B, V]`
    pub fn forward_step(&self, token: Tensor<1, Int>, state: ModelState) -> StepOutput {
        match (self, state) {
            (Model::Transformer(m), ModelState::Transformer(s)) => {
                let (logits, s) = m.forward_step(token, s);
                StepOutput { logits, state: ModelState::Transformer(s) }
            }
            (Model::Feedback(m), ModelState::Feedback(s)) => {
                let (logits, s) = m.forward_step(token, s);
                StepOutput { logits, state: ModelState::Feedback(s) }
            }
            (model, state) => panic!("{} state passed to a {} model", state.kind(), model.kind()),
        }
    }

    /// Short name of the architecture.
    pub fn kind(&self) -> &'static str {
        match self {
            Model::Transformer(_) => "transformer",
            Model::Feedback(_) => "feedback",
        }
    }
}

impl ModelState {
    /// Short name of the architecture this state belongs to.
    pub fn kind(&self) -> &'static str {
        match self {
            ModelState::Transformer(_) => "transformer",
            ModelState::Feedback(_) => "feedback",
        }
    }

    /// Move the state to `device` (e.g. from an autodiff device to its inner device).
    pub fn to_device(self, device: &Device) -> Self {
        match self {
            ModelState::Transformer(s) => ModelState::Transformer(s.to_device(device)),
            ModelState::Feedback(s) => ModelState::Feedback(s.to_device(device)),
        }
    }
}

/// A carried state as plain numbers, for checkpoints (so a resumed run continues the stream
/// with exactly the memory an uninterrupted run would have).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StateSnapshot {
    /// A Transformer carries nothing across segments.
    Transformer,
    /// Feedback memories `[B, S, D]`, row-major.
    Feedback {
        /// Shape `[B, S, D]`.
        shape: [usize; 3],
        /// Values.
        values: Vec<f32>,
    },
}

impl ModelState {
    /// The state between segments as plain numbers (step-by-step caches are not saved).
    pub fn snapshot(&self) -> StateSnapshot {
        match self {
            ModelState::Transformer(_) => StateSnapshot::Transformer,
            ModelState::Feedback(s) => StateSnapshot::Feedback {
                shape: s.memories.dims(),
                values: s.memories.to_data().convert::<f32>().try_to_vec::<f32>().expect("f32 memories"),
            },
        }
    }
}

impl Model {
    /// Rebuild a carried state from a snapshot; errors if it belongs to another architecture
    /// or has the wrong shape for this model and `batch`.
    pub fn restore_state(
        &self,
        snapshot: &StateSnapshot,
        batch: usize,
        device: &Device,
    ) -> Result<ModelState, String> {
        let fresh = self.init_state(batch, device);
        match (&fresh, snapshot) {
            (ModelState::Transformer(_), StateSnapshot::Transformer) => Ok(fresh),
            (ModelState::Feedback(f), StateSnapshot::Feedback { shape, values }) => {
                let want = f.memories.dims();
                if *shape != want || values.len() != shape.iter().product::<usize>() {
                    return Err(format!("memory shape {shape:?} does not match the model's {want:?}"));
                }
                let memories = Tensor::from_data(TensorData::new(values.clone(), *shape), device);
                Ok(ModelState::Feedback(FeedbackState { memories, projected: None }))
            }
            _ => Err(format!("state of another architecture than {}", self.kind())),
        }
    }
}
