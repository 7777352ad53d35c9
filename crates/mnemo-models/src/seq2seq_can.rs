//! The Compressed Attention Network (CAN) decoder of [`Seq2Seq`](crate::Seq2Seq)
//! (`decoder = "can"`).
//!
//! Li, Lin, Xiao & Zhu, "An Efficient Transformer Decoder with Compressed Sub-layers" (AAAI
//! 2021, arXiv:2101.00542): a decoder layer of only one sub-layer instead of three. Assuming
//! the inputs of a layer's sub-layers are close to each other, the self-attention, the
//! cross-attention and the feed-forward network all read the layer's one normalized input; the
//! two attentions then become one attention whose keys/values are the target prefix's and the
//! source's, under one softmax; and since the FFN's first linear map distributes over the
//! attention's output, the attention's output projection is folded into the value projections,
//! whose values live in the FFN's hidden width F. The exact form below follows the authors'
//! code (`CompressedSublayer` in github.com/Lollipop321/compressed-attention), pre-norm:
//!
//! ```text
//! x̂ = norm(x)
//! q_t = W_q x̂_t                                   (D; Dh = D/H per head)
//! k_i = W_k x̂_i,    v_i = W_v x̂_i                 target prefix, t−S < i ≤ t   (v: F wide)
//! k'_j = W_k' e_j,  v'_j = W_v' e_j                source (encoder output), j not PAD
//! per head:  s_ti  = (q_t·k_i + q_t·p_{t−i}) / √Dh     relative positions on the target only
//!            s'_tj = q_t·k'_j / √Dh                    no positions
//!            [α_t ; α'_t] = softmax([s_t ; s'_t])      ONE softmax over both key sets
//!            a_t = Σ_i α_ti v_i + Σ_j α'_tj v'_j       (F/H per head, heads concatenated: F)
//! y_t = x_t + W_2 φ(a_t + W_1 x̂_t + b_1)           the whole layer: one residual sub-layer
//! ```
//!
//! With `placement = "post"` the residual is `y = norm(x + W_2 φ(a + W_1 x + b_1))`, as in the
//! authors' post-norm option; the other two sub-layers of the Transformer decoder are gone, so
//! a layer has one norm. Differences from the authors' code: φ is GELU (the activation of every
//! mnemo feed-forward sublayer, so CAN differs from the Transformer decoder in its structure
//! only; their fairseq FFN uses ReLU), target positions are mnemo's learned relative terms
//! with span S (theirs are sinusoidal absolute embeddings), and dropout sits on the hidden
//! activations and the output (no attention-weight dropout, as everywhere in mnemo).
//!
//! Parameters per layer: `W_q, W_k, W_k'` (3·(D² + D)), `W_v, W_v', W_1` (3·(D·F + F)), `W_2`
//! (F·D + D), S·Dh position terms and one norm, i.e. `3D² + 4DF + 4D + 3F + S·Dh + norm`,
//! against the Transformer decoder layer's `8D² + 2DF + 9D + F + S·Dh + 3 norms` (two
//! attentions and an FFN). CAN has one attention per layer instead of two, but its values are F
//! wide: at F = 4D a CAN layer holds about 19D² weights against 16D². What it saves is depth:
//! one sub-layer, one softmax and one residual step per layer instead of three.
//!
//! Decoding reuses the Transformer decoder's state: a [`KvCache`] per layer for the target
//! keys/values (values F/H wide per head) and the per-layer source keys/values computed once
//! per sentence ([`CrossMemory`], here `W_k' e, W_v' e`).
//!
//! Size legend: B rows, T target length, S span, S_src source length, H heads, D d_model,
//! Dh = D/H, F = d_ff.
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Bool, Device, Tensor};
use mnemo_core::attention::MASKED;
use mnemo_core::heads::{merge_heads, split_heads};
use mnemo_core::{CrossMemory, KvCache, RelativePositions, RelativePositionsConfig, Residual};

use crate::seq2seq_decoder::{CachedLayer, LayerDecoder, SourceStep};

/// Configuration of a [`CompressedAttention`] sub-layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompressedAttentionConfig {
    /// Model width D.
    pub d_model: usize,
    /// Number of heads H (divides D and F).
    pub n_heads: usize,
    /// Feed-forward hidden width F: the width of the values and of the hidden activations.
    pub d_ff: usize,
    /// Span S: a target position attends to itself and the S−1 positions before it.
    pub span: usize,
    /// Dropout on the hidden activations and on the output.
    pub dropout: f64,
}

impl CompressedAttentionConfig {
    /// Check the sizes; the message starts with the offending field's name.
    pub fn validate(&self) -> Result<(), String> {
        if self.n_heads == 0 || !self.d_model.is_multiple_of(self.n_heads) {
            return Err(format!(
                "n_heads: {} does not divide d_model {}",
                self.n_heads, self.d_model
            ));
        }
        if self.d_ff == 0 || !self.d_ff.is_multiple_of(self.n_heads) {
            return Err(format!(
                "d_ff: the CAN decoder's values are d_ff wide and split into the {} heads; {} is \
                 not a positive multiple of n_heads",
                self.n_heads, self.d_ff
            ));
        }
        if self.span == 0 {
            return Err("span: must be at least 1".into());
        }
        Ok(())
    }

    /// Build the sub-layer (burn's default initialisation for every projection).
    ///
    /// # Panics
    /// With [`validate`](Self::validate)'s message when a size is invalid.
    pub fn init(&self, device: &Device) -> CompressedAttention {
        if let Err(e) = self.validate() {
            panic!("{e}");
        }
        let (d, f) = (self.d_model, self.d_ff);
        let linear = |i, o| LinearConfig::new(i, o).init(device);
        CompressedAttention {
            query: linear(d, d),
            key: linear(d, d),
            value: linear(d, f),
            source_key: linear(d, d),
            source_value: linear(d, f),
            positions: RelativePositionsConfig {
                span: self.span,
                d_head: d / self.n_heads,
                min_distance: 0,
            }
            .init(device),
            up: linear(d, f),
            down: linear(f, d),
            dropout: DropoutConfig::new(self.dropout).init(),
            n_heads: self.n_heads,
        }
    }
}

/// The one sub-layer of a CAN decoder layer (see the [module docs](self)): attention over the
/// target prefix and the source under one softmax, folded into the feed-forward network.
#[derive(Module, Debug)]
pub struct CompressedAttention {
    /// `W_q`, `D -> D`.
    pub query: Linear,
    /// `W_k`, target keys, `D -> D`.
    pub key: Linear,
    /// `W_v`, target values, `D -> F`.
    pub value: Linear,
    /// `W_k'`, source keys, `D -> D`.
    pub source_key: Linear,
    /// `W_v'`, source values, `D -> F`.
    pub source_value: Linear,
    /// Learned vector per target distance 0..S.
    pub positions: RelativePositions,
    /// `W_1, b_1`: the FFN's first layer on the normalized input, `D -> F`.
    pub up: Linear,
    /// `W_2`: the FFN's second layer, `F -> D`.
    pub down: Linear,
    /// Dropout on the hidden activations and the output.
    pub dropout: Dropout,
    /// Number of heads H.
    pub n_heads: usize,
}

impl CompressedAttention {
    /// The span S.
    pub fn span(&self) -> usize {
        self.positions.span()
    }

    /// Source keys and values `W_k' e`, `W_v' e`, split into heads, with the source padding.
    ///
    /// # Shapes
    /// - states: `[B, S_src, D]`; key_mask: `[B, 1, 1, S_src]` (true = padding)
    /// - output: keys `[B, H, S_src, Dh]`, values `[B, H, S_src, F/H]`
    pub fn project_source(&self, states: Tensor<3>, key_mask: &Tensor<4, Bool>) -> CrossMemory {
        CrossMemory {
            keys: split_heads(self.source_key.forward(states.clone()), self.n_heads),
            values: split_heads(self.source_value.forward(states), self.n_heads),
            key_mask: key_mask.clone(),
        }
    }

    /// The sub-layer over a whole target in parallel (position t reads target positions
    /// t−S+1..t and every non-PAD source position).
    ///
    /// # Shapes
    /// - h: `[B, T, D]` (normalized input when pre-norm)
    /// - source: from [`project_source`](Self::project_source)
    /// - output: `[B, T, D]`
    pub fn forward(&self, h: Tensor<3>, source: &CrossMemory) -> Tensor<3> {
        let n = self.n_heads;
        let q = split_heads(self.query.forward(h.clone()), n); // [B,H,T,Dh]
        let k = split_heads(self.key.forward(h.clone()), n);
        let v = split_heads(self.value.forward(h.clone()), n); // [B,H,T,F/H]
        let (pos, mask) = self.positions.causal_scores(q.clone());
        let a = attend_target_and_source(q, k, v, pos, Some(mask), source);
        self.feed_forward(h, a)
    }

    /// One new target position, given the cache of the earlier ones (its key and value are
    /// written into the cache in place). Equals the matching row of
    /// [`forward`](Self::forward) when the cache holds the positions before it.
    ///
    /// # Shapes
    /// - h: `[B, 1, D]`
    /// - output: `[B, 1, D]`
    pub fn forward_step(
        &self,
        h: Tensor<3>,
        cache: &mut KvCache,
        source: &CrossMemory,
    ) -> Tensor<3> {
        let n = self.n_heads;
        let q = split_heads(self.query.forward(h.clone()), n); // [B,H,1,Dh]
        let k = split_heads(self.key.forward(h.clone()), n);
        let v = split_heads(self.value.forward(h.clone()), n);
        let (keys, values) = cache.push(k, v); // the last min(t+1, S) positions, oldest first
        let window = keys.dims()[2];
        let pos = q
            .clone()
            .matmul(self.positions.window(window).transpose().unsqueeze::<4>());
        let a = attend_target_and_source(q, keys, values, pos, None, source);
        self.feed_forward(h, a)
    }

    /// `W_2 φ(a + W_1 h + b_1)`, dropout on the hidden activations and the output.
    ///
    /// # Shapes
    /// - h: `[B, T, D]`; a: `[B, T, F]`
    /// - output: `[B, T, D]`
    fn feed_forward(&self, h: Tensor<3>, a: Tensor<3>) -> Tensor<3> {
        let hidden = self.dropout.forward(gelu(a + self.up.forward(h)));
        self.dropout.forward(self.down.forward(hidden))
    }
}

/// One softmax over the target keys (with their position scores and mask) and the source keys
/// (PAD masked), values summed under it.
///
/// # Shapes
/// - q: `[B, H, Tq, Dh]`; k: `[B, H, Tk, Dh]`; v: `[B, H, Tk, Dv]`
/// - pos: `[B, H, Tq, Tk]` (unscaled `q·p`); self_mask: `[1, 1, Tq, Tk]` (true = not attended)
/// - source: keys `[B, H, S_src, Dh]`, values `[B, H, S_src, Dv]`, key_mask `[B, 1, 1, S_src]`
/// - output: `[B, Tq, H·Dv]`
fn attend_target_and_source(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    pos: Tensor<4>,
    self_mask: Option<Tensor<4, Bool>>,
    source: &CrossMemory,
) -> Tensor<3> {
    let [b, h, tq, dh] = q.dims();
    let tk = k.dims()[2];
    let s = source.keys.dims()[2];
    let scale = 1.0 / (dh as f64).sqrt();
    let mut own = (q.clone().matmul(k.swap_dims(2, 3)) + pos).mul_scalar(scale);
    if let Some(mask) = self_mask {
        own = own.mask_fill(mask.expand([b, h, tq, tk]), MASKED);
    }
    let src = q
        .matmul(source.keys.clone().swap_dims(2, 3))
        .mul_scalar(scale)
        .mask_fill(source.key_mask.clone().expand([b, h, tq, s]), MASKED);
    let weights = softmax(Tensor::cat(vec![own, src], 3), 3); // [B,H,Tq,Tk+S_src]
    merge_heads(weights.matmul(Tensor::cat(vec![v, source.values.clone()], 2)))
}

/// One CAN decoder layer: the [`CompressedAttention`] sub-layer in its residual block.
#[derive(Module, Debug)]
pub struct CanLayer {
    /// Norm and residual around the sub-layer.
    pub residual: Residual,
    /// The compressed sub-layer.
    pub attention: CompressedAttention,
}

impl CachedLayer for CanLayer {
    type Cache = KvCache;

    /// Source keys `[B, H, S_src, Dh]` and values `[B, H, S_src, F/H]`.
    fn cross_memory(&self, states: Tensor<3>, key_mask: &Tensor<4, Bool>) -> CrossMemory {
        self.attention.project_source(states, key_mask)
    }

    fn new_cache(&self) -> KvCache {
        KvCache::new(self.attention.span())
    }

    fn forward(&self, x: Tensor<3>, source: &CrossMemory) -> Tensor<3> {
        self.residual
            .forward(x, |h| self.attention.forward(h, source))
    }

    fn step(&self, x: Tensor<3>, cache: &mut KvCache, source: SourceStep<'_>) -> Tensor<3> {
        let source = source.cross;
        self.residual
            .forward(x, |h| self.attention.forward_step(h, cache, source))
    }
}

/// The CAN decoder: CAN layers and the final norm.
pub type CanDecoder = LayerDecoder<CanLayer>;
