//! The causal self-attention of a Transformer layer, as one of several mechanisms, and the
//! per-layer state each carries from one generated token to the next.
//!
//! Every mechanism maps a segment `[B, T, D]` to `[B, T, D]` causally (position t reads
//! positions ≤ t only), and its step form equals the parallel pass position by position:
//!
//! | variant | what position t reads | step state |
//! |---|---|---|
//! | softmax ([`CausalSelfAttention`](crate::CausalSelfAttention)) | the last S positions, softmax with relative positions ([`crate::attention`]), optionally persistent slots ([`crate::persistent_memory`]) | [`KvCache`] |
//! | [`Linear`](AttentionVariant::Linear) | every earlier position, through a fast-weight matrix (`elu + 1` features; sum or delta-rule writes; [`crate::linear_attention`]) | [`LinearState`] |
//! | [`Performer`](AttentionVariant::Performer) | every earlier position, through FAVOR+ random features approximating softmax ([`crate::performer`]) | [`FastWeightState`] |
//! | [`Sparse`](AttentionVariant::Sparse) | its own block, `window` blocks before it, `global` first blocks and `random` earlier blocks ([`crate::sparse_attention`]) | [`SparseCache`] |
//!
//! A layer holds its softmax attention as before (so checkpoints of softmax models keep their
//! parameter names) or one [`AttentionVariant`], so two configs that differ in the mechanism only
//! build models that differ in that sublayer only.
use burn::module::Module;
use burn::tensor::Tensor;

use crate::carried_state::CarriedState;
use crate::fast_weights::FastWeightState;
use crate::kv_cache::KvCache;
use crate::linear_attention::{LinearAttention, LinearState};
use crate::performer::PerformerAttention;
use crate::sparse_attention::{SparseAttention, SparseCache};

/// A causal self-attention other than softmax over a span; see the [module docs](self).
#[derive(Module, Debug)]
pub enum AttentionVariant {
    /// Linear attention as a fast-weight memory.
    Linear(LinearAttention),
    /// Performer (FAVOR+).
    Performer(PerformerAttention),
    /// Block-sparse attention.
    Sparse(SparseAttention),
}

impl AttentionVariant {
    /// The parallel pass over a segment (from an empty state).
    ///
    /// # Shapes
    /// - x: `[B, T, D]`
    /// - output: `[B, T, D]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        match self {
            AttentionVariant::Linear(a) => a.forward(x),
            AttentionVariant::Performer(a) => a.forward(x),
            AttentionVariant::Sparse(a) => a.forward(x),
        }
    }

    /// An empty step state (no positions seen yet).
    pub fn new_cache(&self) -> SelfAttentionCache {
        match self {
            AttentionVariant::Linear(_) => SelfAttentionCache::Linear(None),
            AttentionVariant::Performer(_) => SelfAttentionCache::Performer(None),
            AttentionVariant::Sparse(_) => SelfAttentionCache::Sparse(SparseCache::new()),
        }
    }

    /// One new position given the state of the positions before it (updated in place); equals
    /// the matching row of [`forward`](Self::forward).
    ///
    /// # Shapes
    /// - x: `[B, 1, D]`
    /// - output: `[B, 1, D]`
    ///
    /// # Panics
    /// If `cache` was made by another mechanism.
    pub fn forward_step(&self, x: Tensor<3>, cache: &mut SelfAttentionCache) -> Tensor<3> {
        match (self, cache) {
            (AttentionVariant::Linear(a), SelfAttentionCache::Linear(s)) => a.forward_step(x, s),
            (AttentionVariant::Performer(a), SelfAttentionCache::Performer(s)) => {
                a.forward_step(x, s)
            }
            (AttentionVariant::Sparse(a), SelfAttentionCache::Sparse(c)) => a.forward_step(x, c),
            _ => panic!("the step state belongs to another attention mechanism"),
        }
    }

    /// A segment continuing from the fast-weight state in `cache` (what the positions before
    /// the segment left; fresh if none), which becomes the state after the segment, cut from
    /// the autodiff graph: truncated backpropagation, as Transformer-XL's memory. Equals
    /// [`forward`](Self::forward) over the earlier positions and this segment together, at
    /// this segment's rows. Linear attention and Performer only.
    ///
    /// # Shapes
    /// - x: `[B, T, D]`
    /// - output: `[B, T, D]`
    ///
    /// # Panics
    /// For sparse attention (it has no fixed-size state), or if `cache` was made by another
    /// mechanism.
    pub fn forward_carried(&self, x: Tensor<3>, cache: &mut SelfAttentionCache) -> Tensor<3> {
        match (self, cache) {
            (AttentionVariant::Linear(a), SelfAttentionCache::Linear(s)) => a.forward_carried(x, s),
            (AttentionVariant::Performer(a), SelfAttentionCache::Performer(s)) => {
                a.forward_carried(x, s)
            }
            (AttentionVariant::Sparse(_), _) => {
                panic!("sparse attention carries no state across segments")
            }
            _ => panic!("the carried state belongs to another attention mechanism"),
        }
    }
}

/// What a Transformer layer's self-attention keeps between generated tokens.
#[derive(Debug, Clone)]
pub enum SelfAttentionCache {
    /// Keys and values of the last S positions (softmax attention).
    Kv(KvCache),
    /// Linear attention's fast weights (None before the first position).
    Linear(Option<LinearState>),
    /// Performer's prefix sums (None before the first position).
    Performer(Option<FastWeightState>),
    /// Sparse attention's keys and values since the first position.
    Sparse(SparseCache),
}
