//! The causal self-attention of a Transformer layer, as one of several mechanisms, and the
//! per-layer state each carries from one generated token to the next.
//!
//! Every mechanism maps a segment `[B, T, D]` to `[B, T, D]` causally (position t reads
//! positions ≤ t only), and its step form equals the parallel pass position by position:
//!
//! | variant | what position t reads | step state |
//! |---|---|---|
//! | softmax ([`CausalSelfAttention`](crate::CausalSelfAttention)) | the last S positions, softmax with relative positions ([`crate::attention`]), optionally persistent slots ([`crate::persistent_memory`]) | [`KvCache`] |
//!
//! A layer holds its softmax attention as before (so checkpoints of softmax models keep their
//! parameter names) or one [`AttentionVariant`], so two configs that differ in the mechanism only
//! build models that differ in that sublayer only.
use crate::kv_cache::KvCache;

/// What a Transformer layer's self-attention keeps between generated tokens.
#[derive(Debug, Clone)]
pub enum SelfAttentionCache {
    /// Keys and values of the last S positions (softmax attention).
    Kv(KvCache),
}
