//! How close a backend must come to the reference to count as agreeing.
use serde::Serialize;

/// Largest accepted relative errors ([`Diff::rel`](crate::Diff)) of one backend against the
/// reference, in f32.
///
/// The models are the same and the weights and batch identical, so every difference is
/// floating-point: the order of summation in matmuls and reductions, fused multiply-adds, and
/// `exp`/`ln` implementations. Over a couple of layers that is ~1e-7..1e-6 of the values'
/// norm; gradients go through twice the operations and the softmax backward, and are summed
/// over the whole batch, so they get ten times more room.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tolerance {
    /// On the logits of the whole segment.
    pub logits: f64,
    /// On the masked cross-entropy.
    pub loss: f64,
    /// On all parameter gradients, concatenated.
    pub grads: f64,
}

impl Tolerance {
    /// The tolerance mnemo states for every backend (see `docs/backends.md`).
    pub const DEFAULT: Tolerance = Tolerance {
        logits: 1e-4,
        loss: 1e-4,
        grads: 1e-3,
    };
}

impl Default for Tolerance {
    fn default() -> Self {
        Self::DEFAULT
    }
}
