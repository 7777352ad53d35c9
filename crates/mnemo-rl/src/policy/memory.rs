//! What a policy remembers of each environment row: on the device while acting
//! ([`PolicyMemory`]), and on the host between rollouts and in checkpoints ([`Carried`]).
use burn::tensor::{Device, Tensor, TensorData};
use mnemo_models::feedback::FeedbackMemory;
use serde::{Deserialize, Serialize};

use super::Policy;

/// The memory of B rows while acting.
#[derive(Debug, Clone)]
// One value per agent, moved rarely: boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum PolicyMemory {
    /// The Feedback core's memory window (keys, values and memory vectors).
    Feedback(FeedbackMemory),
    /// The Transformer's last W − 1 observations, oldest first (zeros before an episode's
    /// start). Shape `[B, W-1, O]`.
    Window(Tensor<3>),
    /// Transformer-XL's per-layer memories of M layer inputs, layer-major (zeros before an
    /// episode's start). Shape `[B, L·M, D]`.
    Xl(Tensor<3>),
}

impl PolicyMemory {
    /// What the rows carry into the next segment, on the host.
    pub fn carried(&self) -> Carried {
        let state = match self {
            PolicyMemory::Feedback(m) => m.memories(),
            PolicyMemory::Window(history) | PolicyMemory::Xl(history) => history.clone(),
        };
        Carried::from_tensor(state)
    }
}

/// A detached per-row memory on the host: the Feedback core's last S memory vectors, the
/// Transformer's last W − 1 observations, or XL's L·M layer inputs. Serialisable, so that a checkpoint holds it.
///
/// # Shapes
/// - values: `[B, steps, width]`, row-major
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Carried {
    /// Rows B.
    pub rows: usize,
    /// Remembered steps per row.
    pub steps: usize,
    /// Floats per remembered step.
    pub width: usize,
    /// The values.
    pub values: Vec<f32>,
}

impl Carried {
    /// The memory of `rows` rows at the start of an episode: all zeros (S zero memories,
    /// W − 1 empty observations, or L·M zero layer inputs).
    pub fn fresh(policy: &Policy, rows: usize) -> Self {
        let (steps, width) = policy.carried_shape();
        Self {
            rows,
            steps,
            width,
            values: vec![0.0; rows * steps * width],
        }
    }

    /// The rows `rows`, in that order.
    pub fn select(&self, rows: &[usize]) -> Self {
        let per_row = self.steps * self.width;
        Self {
            rows: rows.len(),
            steps: self.steps,
            width: self.width,
            values: rows
                .iter()
                .flat_map(|&r| self.values[r * per_row..(r + 1) * per_row].iter().copied())
                .collect(),
        }
    }

    /// Whether `policy` can continue from this memory (its core remembers as many steps of
    /// this width).
    pub fn fits(&self, policy: &Policy) -> bool {
        (self.steps, self.width) == policy.carried_shape()
            && self.values.len() == self.rows * self.steps * self.width
    }

    /// The values on `device`.
    ///
    /// # Shapes
    /// - output: `[B, steps, width]`
    pub fn tensor(&self, device: &Device) -> Tensor<3> {
        Tensor::from_data(
            TensorData::new(self.values.clone(), [self.rows, self.steps, self.width]),
            device,
        )
    }

    fn from_tensor(state: Tensor<3>) -> Self {
        let [rows, steps, width] = state.dims();
        let values = mnemo_core::host::to_vec(state.detach());
        Self {
            rows,
            steps,
            width,
            values,
        }
    }
}
