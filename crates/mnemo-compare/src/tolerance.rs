//! How close a backend must come to the reference to count as agreeing.
use serde::Serialize;

/// Largest accepted relative errors ([`Diff::rel`](crate::Diff)) of one backend against the
/// reference, in f32.
///
/// The models are the same and the weights and batch identical, so every difference is
/// floating-point: the order of summation in matmuls and reductions, fused multiply-adds, and
/// `exp`/`erf` implementations. On logits and loss that is ~2e-7 of their norm on every
/// backend measured (`docs/backends.md`); 1e-5 leaves a factor 50 for other hardware.
///
/// Gradients get 1e-3 for a reason that is not rounding: burn 0.22's generic
/// `gelu_backward`, which burn-ndarray and the cubecl backends (wgpu, cuda) use, is the
/// derivative of the *tanh approximation* of GELU, while the forward pass (and burn-flex's and
/// LibTorch's backward) use the exact, erf-based GELU. Their gradients differ by ~1e-4 (up to
/// ~3e-4 on the feed-forward biases) from flex's and LibTorch's, which agree to ~2e-7.
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
        logits: 1e-5,
        loss: 1e-5,
        grads: 1e-3,
    };
}

impl Default for Tolerance {
    fn default() -> Self {
        Self::DEFAULT
    }
}
