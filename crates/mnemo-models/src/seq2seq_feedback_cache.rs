//! Decoding state of the Feedback decoder that keeps only the memories of decoded steps.
//!
//! A sentence starts from S zero memories (as a fresh language-model stream does), and every
//! zero memory has the same key `k₀ = W_k norm(0)` and value `v₀ = W_v norm(0)`; they differ only
//! in their relative positions. So at step t < S the window `[S − t zero memories, t real ones]`
//! is attended exactly without storing the zero slots:
//!
//! ```text
//! score(zero slot at distance d) = (q·k₀ + q·p_d) / √Dh          d = t+1 .. S
//! score(real slot at distance d) = (q·k_{t−d} + q·p_d) / √Dh       d = 1 .. t
//! a = softmax over all S scores
//! out = Σ_real a_d v_{t−d} + (Σ_zero a_d) v₀
//! ```
//!
//! This equals attention over the full zero-padded window (the teacher-forced pass, tested
//! step by step against it) while the cache holds only `min(t, S)` slots: a step reads and a
//! beam reordering copies the decoded positions only, not all S.
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor};
use mnemo_core::heads::{merge_heads, split_heads};

use crate::feedback_layer::{FeedbackLayer, MemoryProjection};
use crate::seq2seq_cache::SelfAttentionCache;

/// The Feedback decoder's decoding state; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct FeedbackDecodeCache {
    /// Per memory projection, the keys/values of the decoded steps' memories (last S).
    pub(crate) real: Vec<SelfAttentionCache>,
    /// Per memory projection, the zero memory's key and value. Shape `[1, H, 1, Dh]` each.
    pub(crate) zero: Vec<(Tensor<4>, Tensor<4>)>,
    /// Per layer, the window's position vectors (slot `j` at distance `S − j`). Shape `[1, 1, Dh, S]`.
    pub(crate) positions: Vec<Tensor<4>>,
}

impl FeedbackDecodeCache {
    /// An empty cache: nothing decoded, every window slot a zero memory.
    pub(crate) fn new(projections: &[MemoryProjection], layers: &[&FeedbackLayer], span: usize, device: &Device) -> Self {
        let d = layers[0].query.weight.dims()[0];
        let zero = projections.iter().map(|p| p.forward(Tensor::<3>::zeros([1, 1, d], device))).collect();
        Self {
            real: projections.iter().map(|_| SelfAttentionCache::new(span)).collect(),
            zero,
            positions: layers.iter().map(|l| l.window_positions()).collect(),
        }
    }

    /// Views of the decoded memories' keys/values of projection `p` (None before the first step).
    ///
    /// # Shapes
    /// - output: `[B, H, n, Dh]` each, n = min(t, S)
    pub(crate) fn real_window(&self, p: usize) -> Option<(Tensor<4>, Tensor<4>)> {
        self.real[p].live()
    }

    /// Append one step's memory keys/values, per projection.
    ///
    /// # Shapes
    /// - projected: per projection `[B, H, 1, Dh]` each
    pub(crate) fn push(&mut self, projected: Vec<(Tensor<4>, Tensor<4>)>) {
        for (cache, (k, v)) in self.real.iter_mut().zip(projected) {
            let _ = cache.push(k, v);
        }
    }

    /// Keep the rows `rows` (beam search); the zero memory is the same for every row.
    pub(crate) fn select(&mut self, rows: &Tensor<1, Int>) {
        self.real.iter_mut().for_each(|c| c.select(rows));
    }
}

/// The memory-attention sublayer of `layer` over `[zero memories, real]` with the zero part
/// folded (see the [module docs](self)), residual and norm included.
///
/// # Shapes
/// - h: `[B, 1, D]`
/// - real: `[B, H, n, Dh]` each (n ≤ S), or None before the first step
/// - zero: `[1, H, 1, Dh]` each
/// - positions: `[1, 1, Dh, S]`
/// - output: `[B, 1, D]`
pub(crate) fn attend_folded(
    layer: &FeedbackLayer,
    h: Tensor<3>,
    real: Option<(Tensor<4>, Tensor<4>)>,
    zero: &(Tensor<4>, Tensor<4>),
    positions: Tensor<4>,
) -> Tensor<3> {
    let [b, _, d] = h.dims();
    let heads = layer.n_heads;
    let dh = d / heads;
    let span = positions.dims()[3];
    let scale = 1.0 / (dh as f64).sqrt();
    let attention = |x: Tensor<3>| {
        let q = split_heads(layer.query.forward(x), heads); // [B,H,1,Dh]
        let pos = q.clone().matmul(positions).mul_scalar(scale); // [B,H,1,S]
        let n_real = real.as_ref().map_or(0, |(k, _)| k.dims()[2]);
        let n_zero = span - n_real;
        let mut scores = Vec::with_capacity(2);
        if n_zero > 0 {
            let k0 = zero.0.clone().expand([b, heads, 1, dh]);
            let s0 = (q.clone() * k0).sum_dim(3).mul_scalar(scale); // [B,H,1,1]
            scores.push(pos.clone().narrow(3, 0, n_zero) + s0);
        }
        if let Some((k, _)) = &real {
            let s = q.matmul(k.clone().swap_dims(2, 3)).mul_scalar(scale); // [B,H,1,n]
            scores.push(s + pos.narrow(3, n_zero, n_real));
        }
        let a = softmax(Tensor::cat(scores, 3), 3); // [B,H,1,S]
        let zero_part = (n_zero > 0).then(|| {
            let weight = a.clone().narrow(3, 0, n_zero).sum_dim(3); // [B,H,1,1]
            weight.expand([b, heads, 1, dh]) * zero.1.clone().expand([b, heads, 1, dh])
        });
        let real_part = real.map(|(_, v)| a.narrow(3, n_zero, n_real).matmul(v)); // [B,H,1,Dh]
        let o = match (zero_part, real_part) {
            (Some(z), Some(r)) => z + r,
            (Some(z), None) => z,
            (None, Some(r)) => r,
            (None, None) => unreachable!("a window has S ≥ 1 slots"),
        };
        layer.dropout.forward(layer.output.forward(merge_heads(o)))
    };
    if layer.pre_norm {
        h.clone() + attention(layer.attn_norm.forward(h))
    } else {
        layer.attn_norm.forward(h.clone() + attention(h))
    }
}
