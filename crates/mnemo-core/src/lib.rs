//! Blocks for memory Transformers, shared by every mnemo model.
//!
//! Each block follows burn's `Config -> init -> Module` pattern and is backend-free: tensors carry
//! their backend in their `Device`, chosen at the binary edge by `mnemo-backend`.
//!
//! - [`attention`]: scaled dot-product attention over an explicit key/value window, with learned
//!   relative position terms ([`relative_position`]) and a span limit; causal self-attention with
//!   a KV cache ([`kv_cache`]).
//! - [`bidirectional_attention`], [`cross_attention`], [`padding_mask`]: the encoder's
//!   bidirectional self-attention, attention to an external memory (an encoder output), and
//!   key padding masks, for encoder-decoder models.
//! - [`adaptive_span`]: a learnt soft span per head that masks distant keys and lets the
//!   oldest ones be trimmed (Sukhbaatar et al. 2019).
//! - [`persistent_memory`]: learned key/value slots every query attends to (Sukhbaatar et al.
//!   2019).
//! - [`fourier_mixing`]: FNet's parameter-free Fourier token mixing (Lee-Thorp et al. 2021), an
//!   encoder's alternative to self-attention.
//! - [`fast_weights`], [`linear_attention`], [`performer`]: kernelized causal attention in linear
//!   time with a fixed-size state: the chunked prefix sums and the delta rule of fast weights;
//!   linear attention (`elu + 1` features, sum or delta update); Performer (FAVOR+ random
//!   features); [`carried_state`]: the segment/step API of attention with such a state;
//!   [`carried_snapshot`]: that state as plain numbers, for checkpoints.
//! - [`feed_forward`]: the position-wise MLP.
//! - [`norm`]: LayerNorm or RMSNorm; [`residual`]: the one residual block, norm placed before
//!   (pre-norm) or after (post-norm) its sublayer, or ResiDual's two streams (Xie et al. 2023);
//!   [`admin`]: Admin's profiled residual scale ω of post-norm blocks (Liu et al. 2020).
//! - [`self_attention`]: a Transformer layer's causal self-attention as one of several
//!   mechanisms, with its step state.
//! - [`segment_memory`]: Transformer-XL's detached per-layer segment memory, and banded
//!   attention over `memory ++ segment`.
//! - [`sparse_attention`]: BigBird-style block-sparse causal self-attention (local, global and
//!   random blocks; O(T) cost), with its step-by-step decoding cache.
//! - [`seeded`]: parameters and tensors drawn from an explicit seed (no process-wide
//!   generator), for reproducible tests.
#![warn(missing_docs)]

pub mod adaptive_span;
pub mod admin;
pub mod attention;
pub mod bidirectional_attention;
pub mod carried_snapshot;
pub mod carried_state;
pub mod cross_attention;
pub mod fast_weights;
pub mod feed_forward;
pub mod fourier_mixing;
pub mod heads;
pub mod host;
pub mod kv_cache;
pub mod linear_attention;
pub mod norm;
pub mod padding_mask;
pub mod performer;
pub mod persistent_memory;
mod projections;
pub mod relative_position;
pub mod residual;
pub mod seeded;
pub mod segment_memory;
pub mod self_attention;
pub mod sparse_attention;

pub use adaptive_span::{AdaptiveSpan, AdaptiveSpanConfig};
pub use admin::{AdminProfile, AdminScale};
pub use attention::{CausalSelfAttention, CausalSelfAttentionConfig, attend};
pub use bidirectional_attention::{BidirectionalSelfAttention, BidirectionalSelfAttentionConfig};
pub use carried_snapshot::HostTensor;
pub use carried_state::CarriedState;
pub use cross_attention::{CrossAttention, CrossAttentionConfig, CrossMemory, CrossSublayer};
pub use fast_weights::FastWeightState;
pub use feed_forward::{Activation, FeedForward, FeedForwardConfig};
pub use fourier_mixing::{FourierMixing, TokenMixing};
pub use kv_cache::KvCache;
pub use linear_attention::{FastWeightUpdate, LinearAttention, LinearAttentionConfig, LinearState};
pub use norm::{Norm, NormConfig, NormKind, NormPlacement};
pub use padding_mask::key_padding_mask;
pub use performer::{PerformerAttention, PerformerAttentionConfig};
pub use persistent_memory::{PersistentMemory, PersistentMemoryConfig};
pub use relative_position::{RelativePositions, RelativePositionsConfig};
pub use residual::{Residual, ResidualConfig};
pub use segment_memory::SegmentMemory;
pub use self_attention::{AttentionVariant, SelfAttentionCache};
pub use sparse_attention::{SparseAttention, SparseAttentionConfig, SparseCache};
