//! Multi-head attention over an explicit key/value window, and causal self-attention with
//! relative positions and a span limit.
use burn::module::Module;
use burn::nn::{Dropout, Initializer, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Device, Tensor};

use crate::adaptive_span::{AdaptiveSpan, AdaptiveSpanConfig};
use crate::heads::{head_size, merge_heads, split_heads};
use crate::kv_cache::KvCache;
use crate::persistent_memory::{PersistentMemory, PersistentMemoryConfig};
use crate::projections::projections_with;
use crate::relative_position::{RelativePositions, RelativePositionsConfig};

/// Value used for masked scores (finite, so a fully masked row cannot produce NaN).
pub const MASKED: f32 = -1.0e9;

/// Scaled dot-product attention with an optional additive score term and mask.
///
/// `scores = (q · kᵀ) / sqrt(Dh) + extra`, masked entries removed, softmax over keys.
///
/// # Shapes
/// - q: `[B, H, Tq, Dh]`
/// - k, v: `[B, H, Tk, Dh]`
/// - extra: `[B, H, Tq, Tk]` (already scaled as the caller wants)
/// - mask: `[1, 1, Tq, Tk]` or `[B, 1, 1, Tk]` (key padding), or any shape that broadcasts to
///   `[B, H, Tq, Tk]`; true where a key must not be attended
/// - output: `[B, H, Tq, Dh]`
pub fn attend(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    extra: Option<Tensor<4>>,
    mask: Option<Tensor<4, Bool>>,
) -> Tensor<4> {
    attention_weights(q, k, extra, mask).matmul(v)
}

/// The attention probabilities of [`attend`] (before they weight the values).
///
/// # Shapes
/// - q: `[B, H, Tq, Dh]`; k: `[B, H, Tk, Dh]`; extra, mask: as in [`attend`]
/// - output: `[B, H, Tq, Tk]`, each row summing to 1
pub fn attention_weights(
    q: Tensor<4>,
    k: Tensor<4>,
    extra: Option<Tensor<4>>,
    mask: Option<Tensor<4, Bool>>,
) -> Tensor<4> {
    let [b, h, tq, dh] = q.dims();
    let tk = k.dims()[2];
    let mut scores = q
        .matmul(k.swap_dims(2, 3))
        .mul_scalar(1.0 / (dh as f64).sqrt());
    if let Some(extra) = extra {
        scores = scores + extra;
    }
    if let Some(mask) = mask {
        scores = scores.mask_fill(mask.expand([b, h, tq, tk]), MASKED);
    }
    softmax(scores, 3)
}

/// The score scale `1/sqrt(Dh)` of queries `q`.
///
/// # Shapes
/// - q: `[B, H, T, Dh]`
pub(crate) fn score_scale(q: &Tensor<4>) -> f64 {
    1.0 / (q.dims()[3] as f64).sqrt()
}

/// Configuration of [`CausalSelfAttention`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CausalSelfAttentionConfig {
    /// Model width D.
    pub d_model: usize,
    /// Number of heads H (D must be divisible by H unless `d_head` is set).
    pub n_heads: usize,
    /// Attention span S: the number of relative distances in the position table (a position
    /// attends to itself and the S-1 positions before it when `min_distance` is 0).
    pub span: usize,
    /// Dropout on the attention output.
    pub dropout: f64,
    /// Multiplier on the output projection's initial weights (1/sqrt(2L) for pre-norm stacks).
    pub out_init_scale: f64,
    /// Persistent key/value slots per head attended by every query (0 = none; see
    /// [`crate::persistent_memory`]).
    pub persistent_memory: usize,
    /// Head size Dh (0: D/H); queries, keys and values are `H·Dh` wide.
    pub d_head: usize,
    /// Biases on the query, key, value and output projections.
    pub bias: bool,
    /// Smallest distance attended: 0 (a position sees itself) or 1 (only earlier positions,
    /// the official `TransformerSeq`); the position table covers `min_distance ..
    /// min_distance + span`.
    pub min_distance: usize,
    /// Whether the block has no position table of its own: the caller passes one that several
    /// blocks share ([`CausalSelfAttention::forward_with_memory`]).
    pub tied_positions: bool,
    /// A learnt soft span per head over the position table's rows (None: the fixed span S);
    /// its `max_span` is S. Not with persistent slots.
    pub adaptive_span: Option<AdaptiveSpanConfig>,
}

impl CausalSelfAttentionConfig {
    /// Width D, H heads and span S, without dropout and with the default output-projection
    /// init.
    pub fn new(d_model: usize, n_heads: usize, span: usize) -> Self {
        Self {
            d_model,
            n_heads,
            span,
            dropout: 0.0,
            out_init_scale: 1.0,
            persistent_memory: 0,
            d_head: 0,
            bias: true,
            min_distance: 0,
            tied_positions: false,
            adaptive_span: None,
        }
    }

    /// Head size Dh: `d_head`, or D/H when it is 0.
    pub fn head_size(&self) -> usize {
        head_size(self.d_model, self.n_heads, self.d_head)
    }

    /// The position table of this block's config (built by [`init`](Self::init) unless
    /// `tied_positions`; a stack with tied positions builds one for all its blocks).
    pub fn positions(&self) -> RelativePositionsConfig {
        RelativePositionsConfig {
            span: self.span,
            d_head: self.head_size(),
            min_distance: self.min_distance,
        }
    }

    /// Build the module.
    ///
    /// # Panics
    /// If `d_model` is not divisible by `n_heads` and `d_head` is 0, or an adaptive span is
    /// asked for with persistent slots or a `max_span` other than `span`.
    pub fn init(&self, device: &Device) -> CausalSelfAttention {
        let (d, h) = (self.d_model, self.n_heads);
        assert!(
            self.d_head > 0 || d.is_multiple_of(h),
            "d_model {d} is not divisible by n_heads {h}"
        );
        if let Some(adaptive) = &self.adaptive_span {
            assert!(
                self.persistent_memory == 0,
                "adaptive_span: not with persistent_memory slots"
            );
            assert_eq!(
                adaptive.max_span, self.span,
                "adaptive_span: max_span is the span"
            );
        }
        let d_head = self.head_size();
        let p = projections_with(self.shared(), d_head, self.bias, device);
        let persistent = (self.persistent_memory > 0).then(|| {
            PersistentMemoryConfig {
                n_heads: p.n_heads,
                d_head,
                slots: self.persistent_memory,
            }
            .init(device)
        });
        CausalSelfAttention {
            query: p.query,
            key: p.key,
            value: p.value,
            output: p.output,
            positions: (!self.tied_positions).then(|| self.positions().init(device)),
            persistent,
            adaptive_span: self.adaptive_span.map(|a| a.init(device)),
            dropout: p.dropout,
            n_heads: p.n_heads,
        }
    }
}

/// A linear layer with burn's default initialisation scaled by `scale`.
pub fn scaled_linear(d_in: usize, d_out: usize, scale: f64, device: &Device) -> Linear {
    // burn's default: KaimingUniform { gain: 1/sqrt(3), fan_out_only: false }.
    let gain = scale / 3.0f64.sqrt();
    LinearConfig::new(d_in, d_out)
        .with_initializer(Initializer::KaimingUniform {
            gain,
            fan_out_only: false,
        })
        .init(device)
}

/// Causal multi-head self-attention with relative positions and a span limit.
#[derive(Module, Debug)]
pub struct CausalSelfAttention {
    /// Query projection.
    pub query: Linear,
    /// Key projection.
    pub key: Linear,
    /// Value projection.
    pub value: Linear,
    /// Output projection.
    pub output: Linear,
    /// Learned vector per distance `min_distance .. min_distance + S` (None: the stack's
    /// tied table is passed in).
    pub positions: Option<RelativePositions>,
    /// Persistent key/value slots in front of every window (None without persistent memory).
    pub persistent: Option<PersistentMemory>,
    /// The learnt soft span (None: the fixed span S).
    pub adaptive_span: Option<AdaptiveSpan>,
    /// Dropout on the output.
    pub dropout: Dropout,
    /// Number of heads H.
    pub n_heads: usize,
}

impl CausalSelfAttention {
    /// The block's own position table.
    ///
    /// # Panics
    /// If the block reads a tied table (`tied_positions`): that table belongs to its stack.
    pub fn positions(&self) -> &RelativePositions {
        self.positions
            .as_ref()
            .expect("a block with tied positions is given its stack's table")
    }

    /// The span S.
    pub fn span(&self) -> usize {
        self.positions().span()
    }

    /// Attend over a whole segment in parallel (each position sees itself and S-1 before it).
    ///
    /// # Shapes
    /// - x: `[B, T, D]`
    /// - output: `[B, T, D]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self.n_heads;
        let q = split_heads(self.query.forward(x.clone()), h); // [B,H,T,Dh]
        let k = split_heads(self.key.forward(x.clone()), h);
        let v = split_heads(self.value.forward(x), h);
        let t = q.dims()[2];
        let (pos, mask) = self.positions().causal_scores(q.clone());
        let pos = pos.mul_scalar(score_scale(&q));
        let rows = self.span_rows(t, t, self.positions().min_distance, &q.device());
        let a = merge_heads(self.attend_with_persistent(q, k, v, pos, Some(mask), rows));
        self.dropout.forward(self.output.forward(a))
    }

    /// The position-table row of every (query, key) pair when an adaptive span is on (None
    /// without one): the T queries are the last T of `n` keys, so query `t` and key `i` are
    /// `n − T + t − i` apart, row that minus `min_distance` (pairs the causal mask removes get
    /// row 0).
    ///
    /// # Shapes
    /// - output: `[T, n]`
    pub(crate) fn span_rows(
        &self,
        t: usize,
        n: usize,
        min_distance: usize,
        device: &Device,
    ) -> Option<Tensor<2>> {
        self.adaptive_span.as_ref()?;
        let (min, offset) = (min_distance as i64, (n - t) as i64);
        let rows: Vec<f32> = (0..t as i64)
            .flat_map(|q| (0..n as i64).map(move |k| (offset + q - k - min).max(0) as f32))
            .collect();
        Some(Tensor::from_data(
            burn::tensor::TensorData::new(rows, [t, n]),
            device,
        ))
    }

    /// Attend for one new position, given the cache of earlier keys and values (its key and
    /// value are written into the cache in place).
    ///
    /// Equals the matching row of [`forward`](Self::forward) when the cache holds the keys and
    /// values of the positions before it.
    ///
    /// # Shapes
    /// - x: `[B, 1, D]`
    /// - output: `[B, 1, D]`
    pub fn forward_step(&self, x: Tensor<3>, cache: &mut KvCache) -> Tensor<3> {
        let h = self.n_heads;
        let q = split_heads(self.query.forward(x.clone()), h); // [B,H,1,Dh]
        let k = split_heads(self.key.forward(x.clone()), h);
        let v = split_heads(self.value.forward(x), h);
        let (keys, values) = cache.push(k, v); // views [B,H,n,Dh], dropped before the next push
        // Keys beyond the widest adaptive span plus its ramp have mask 0: not attended.
        let (keys, values) = match self.adaptive_span.as_ref().map(AdaptiveSpan::window_len) {
            Some(w) if w < keys.dims()[2] => {
                let skip = keys.dims()[2] - w;
                (keys.narrow(2, skip, w), values.narrow(2, skip, w))
            }
            _ => (keys, values),
        };
        let n = keys.dims()[2];
        let scale = score_scale(&q);
        let pos = q
            .clone()
            .matmul(self.positions().window(n).transpose().unsqueeze::<4>());
        // A window of n keys, newest last: the rows n − 1 … 0 (AdaptiveSpan::apply).
        let rows = self.adaptive_span.as_ref().map(|span| span.window_rows(n));
        let a = merge_heads(self.attend_with_persistent(
            q,
            keys,
            values,
            pos.mul_scalar(scale),
            None,
            rows,
        ));
        self.dropout.forward(self.output.forward(a))
    }

    /// [`attend`], with the persistent slots (if any) in front of the keys and values, or the
    /// adaptive span's mask (if any) on the probabilities at the table rows `rows`.
    ///
    /// # Shapes
    /// - q: `[B, H, Tq, Dh]`; k, v: `[B, H, Tk, Dh]`; pos: `[B, H, Tq, Tk]`; mask:
    ///   `[1, 1, Tq, Tk]`; rows: `[Tq, Tk]` or `[1, Tk]`
    /// - output: `[B, H, Tq, Dh]`
    pub(crate) fn attend_with_persistent(
        &self,
        q: Tensor<4>,
        k: Tensor<4>,
        v: Tensor<4>,
        pos: Tensor<4>,
        mask: Option<Tensor<4, Bool>>,
        rows: Option<Tensor<2>>,
    ) -> Tensor<4> {
        if let (Some(span), Some(rows)) = (&self.adaptive_span, rows) {
            let a = attention_weights(q, k, Some(pos), mask);
            return span.apply_rows(a, rows).matmul(v);
        }
        match &self.persistent {
            None => attend(q, k, v, Some(pos), mask),
            Some(p) => {
                let all = p.prepend(k, v, pos, mask);
                attend(q, all.keys, all.values, Some(all.extra), all.mask)
            }
        }
    }
}
