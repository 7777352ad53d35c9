//! A Transformer decoder layer's cross-attention sublayer by hand, between its self-attention
//! and its feed-forward: `x + drop(W_o · attn(W_q · norm(x), K, V))`, every target position
//! of a sentence attending the sentence's source tokens ([`Keys::Cross`] on the span
//! attention's tiles). The source's keys and values come from the autodiff part (the encoder's
//! output projected by the layer's `W_k`, `W_v`); the backward returns their gradients to it.
//!
//! Size legend as in [`super`]: N = B·T target rows, S_src the source length, W = H·Dh.
use std::ops::Range;

use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};
use mnemo_core::host::to_vec as host;
use mnemo_core::{CrossMemory, CrossSublayer};

use super::span_attention::{Keys, SpanAttention, SpanShape};
use crate::feedback::backward::dropout::{keep_prob, masked};
use crate::feedback::backward::params::{LinearParams, NormParams};

/// The sublayer's parameters on the plain device.
pub(super) struct CrossParams {
    norm: NormParams,
    query: LinearParams,
    output: LinearParams,
    heads: usize,
    /// Keep probability of the output's dropout (None: no dropout).
    pub(super) keep: Option<f64>,
}

/// One layer's source keys and values on the host as `[B·S_src, W]` rows, and the source
/// lengths (the positions after them are padding).
#[derive(Clone)]
pub(crate) struct Source {
    keys: Vec<f32>,
    values: Vec<f32>,
    lens: Vec<usize>,
    len: usize,
}

impl Source {
    /// The values of `memory`'s keys and values (read from the plain device) for sentences of
    /// `lens` tokens.
    ///
    /// # Shapes
    /// - memory keys, values: `[B, H, S_src, Dh]`
    pub(crate) fn of(memory: &CrossMemory, lens: &[usize]) -> Self {
        let [b, h, s, dh] = memory.keys.dims();
        let rows = |x: &Tensor<4>| {
            let x = x.clone().inner().swap_dims(1, 2);
            host(x.reshape([b * s, h * dh]))
        };
        Self {
            keys: rows(&memory.keys),
            values: rows(&memory.values),
            lens: lens.to_vec(),
            len: s,
        }
    }

    /// Sentences `range` only.
    pub(super) fn sequences(&self, range: Range<usize>) -> Self {
        let width = self.keys.len() / (self.lens.len() * self.len);
        let rows = range.start * self.len * width..range.end * self.len * width;
        Self {
            keys: self.keys[rows.clone()].to_vec(),
            values: self.values[rows].to_vec(),
            lens: self.lens[range].to_vec(),
            len: self.len,
        }
    }
}

/// The gradients of a layer's source keys and values, `[B·S_src, W]` rows each.
pub(crate) struct SourceGrads {
    pub(crate) keys: Vec<f32>,
    pub(crate) values: Vec<f32>,
}

impl SourceGrads {
    /// The first half's rows then the second's.
    pub(super) fn cat(self, other: SourceGrads) -> SourceGrads {
        SourceGrads {
            keys: [self.keys, other.keys].concat(),
            values: [self.values, other.values].concat(),
        }
    }

    /// As tensors laid out like the memory's keys and values.
    ///
    /// # Shapes
    /// - output: `[B, H, S_src, Dh]` each, for `dims` = that shape
    pub(crate) fn tensors(
        self,
        dims: [usize; 4],
        device: &burn::tensor::Device,
    ) -> (Tensor<4>, Tensor<4>) {
        let [b, h, s, dh] = dims;
        let tensor = |x: Vec<f32>| {
            Tensor::<2>::from_data(TensorData::new(x, [b * s, h * dh]), device)
                .reshape([b, s, h, dh])
                .swap_dims(1, 2)
        };
        (tensor(self.keys), tensor(self.values))
    }
}

/// What the sublayer's forward keeps for its backward.
pub(super) struct CrossTape {
    /// `x̂` and `1/σ` of the sublayer's norm, `[N, D]` and `[N, 1]`.
    xhat: Tensor<2>,
    rstd: Tensor<2>,
    attention: SpanAttention,
    /// The attention output before the output projection, `[N, W]`.
    merged: Tensor<2>,
    mask: Vec<Tensor<2>>,
}

impl CrossParams {
    pub(super) fn of(sub: &CrossSublayer, autodiff: bool) -> Self {
        let attn = &sub.attention;
        Self {
            norm: NormParams::of(&sub.residual.norm),
            query: LinearParams::of(&attn.query, None),
            output: LinearParams::of(&attn.output, None),
            heads: attn.n_heads,
            keep: keep_prob(&attn.dropout, autodiff),
        }
    }

    /// `x + drop(W_o · attn(W_q · norm(x), K, V))` over `[batch, t_len]` target rows.
    ///
    /// # Shapes
    /// - x: `[N, D]`; mask `[N, D]`; output `[N, D]`
    pub(super) fn forward(
        &self,
        x: Tensor<2>,
        [batch, t_len]: [usize; 2],
        source: &Source,
        mask: Option<Tensor<2>>,
    ) -> (Tensor<2>, CrossTape) {
        let device = x.device();
        let (xhat, rstd) = self.norm.stats(x.clone());
        let q = host(self.query.forward(self.norm.affine(xhat.clone())));
        let n = x.dims()[0];
        let w = q.len() / n;
        let shape = SpanShape {
            batch,
            len: t_len,
            heads: self.heads,
            dh: w / self.heads,
            span: 0,
            keys: Keys::Cross {
                lens: source.lens.clone(),
                len: source.len,
            },
        };
        let scale = 1.0 / ((w / self.heads) as f32).sqrt();
        let qkv = (&q[..], &source.keys[..], &source.values[..]);
        let (merged, attention) = SpanAttention::forward(shape, scale, qkv, &[]);
        let merged = Tensor::<2>::from_data(TensorData::new(merged, [n, w]), &device);
        let y = self.output.forward(merged.clone());
        let y = match &mask {
            Some(m) => y * m.clone(),
            None => y,
        };
        let tape = CrossTape {
            xhat,
            rstd,
            attention,
            merged,
            mask: mask.into_iter().collect(),
        };
        (x + y, tape)
    }

    /// The gradient of the sublayer's input from that of its output and the gradients of the
    /// source's keys and values, registering the gradients of the sublayer's parameters.
    ///
    /// # Shapes
    /// - dx: `[N, D]`; output `[N, D]`
    pub(super) fn backward(
        &self,
        grads: &mut GradientsParams,
        tape: CrossTape,
        dx: Tensor<2>,
    ) -> (Tensor<2>, SourceGrads) {
        let dy = masked(dx.clone(), &tape.mask, 0);
        self.output.register(grads, tape.merged, dy.clone());
        let dmerged = host(self.output.input_grad(dy));
        let g = tape.attention.backward(&dmerged);
        let (n, device) = (dx.dims()[0], dx.device());
        let w = dmerged.len() / n;
        let dq = Tensor::<2>::from_data(TensorData::new(g.dq, [n, w]), &device);
        let h = self.norm.affine(tape.xhat.clone());
        self.query.register(grads, h, dq.clone());
        let dh = self.query.input_grad(dq);
        self.norm.register(grads, dh.clone(), tape.xhat.clone());
        let dx = dx + self.norm.backward(self.norm.fold(dh), tape.xhat, tape.rstd);
        let source = SourceGrads {
            keys: g.dk,
            values: g.dv,
        };
        (dx, source)
    }
}
