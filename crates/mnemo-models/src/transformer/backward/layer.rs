//! One pre-norm layer of the manual Transformer backward: attention over its span (causal or
//! bidirectional, [`super::span_attention`]), a decoder layer's cross-attention
//! ([`super::cross`]), feed-forward; its parameters on the plain device, its dropout masks,
//! forward and backward.
//!
//! Size legend as in [`super`].
use burn::module::Param;
use burn::nn::{Dropout, Linear};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};
use mnemo_core::host::to_vec as host;
use mnemo_core::{Activation, CausalSelfAttention, FeedForward, Norm};

use super::cross::{CrossParams, CrossTape, Source, SourceGrads};
use super::qkv::Qkv;
use super::span_attention::{Keys, SpanAttention, SpanShape};
use crate::feedback::backward::activate_on_host;
use crate::feedback::backward::dropout::{keep_prob, mask, masked};
use crate::feedback::backward::params::{LinearParams, NormParams};
use crate::transformer::TransformerLayer;

/// One layer's parameters on the plain device.
pub(super) struct LayerParams {
    norm1: NormParams,
    qkv: Qkv,
    output: LinearParams,
    /// The position table `[S, Dh]` on the host, its shape and its parameter id.
    table: Vec<f32>,
    table_shape: [usize; 2],
    table_id: burn::module::ParamId,
    heads: usize,
    norm2: NormParams,
    up: LinearParams,
    down: LinearParams,
    activation: Activation,
    attn_keep: Option<f64>,
    /// A decoder layer's cross-attention, between the attention and the feed-forward.
    cross: Option<CrossParams>,
    ff_keep: Option<f64>,
}

/// A layer's scaled dropout masks (None: no dropout there), drawn before the layers run.
pub(super) struct LayerMasks {
    /// Of the attention output, `[N, D]`.
    attn: Option<Tensor<2>>,
    /// Of a decoder layer's cross-attention output, `[N, D]`.
    cross: Option<Tensor<2>>,
    /// Of the feed-forward hidden units, `[N, F]`.
    ff: Option<Tensor<2>>,
}

impl LayerMasks {
    /// The masks of `params`' layer over `n` rows, drawn in the autodiff forward's order:
    /// the attention output's, a decoder layer's cross-attention output's, then the
    /// feed-forward hidden units'.
    pub(super) fn draw(params: &LayerParams, n: usize, device: &burn::tensor::Device) -> Self {
        let (d, f) = (params.output.w.dims()[1], params.up.w.dims()[1]);
        let attn = params.attn_keep.map(|keep| mask([n, d], keep, device));
        let cross = params.cross.as_ref().and_then(|c| c.keep);
        Self {
            attn,
            cross: cross.map(|keep| mask([n, d], keep, device)),
            ff: params.ff_keep.map(|keep| mask([n, f], keep, device)),
        }
    }

    /// Rows `start .. start + len` of every mask.
    pub(super) fn rows(&self, start: usize, len: usize) -> Self {
        let rows = |m: &Option<Tensor<2>>| m.clone().map(|m| m.narrow(0, start, len));
        Self {
            attn: rows(&self.attn),
            cross: rows(&self.cross),
            ff: rows(&self.ff),
        }
    }
}

/// `x · mask` (no mask: `x`).
pub(super) fn apply_mask(x: Tensor<2>, mask: &Option<Tensor<2>>) -> Tensor<2> {
    match mask {
        Some(m) => x * m.clone(),
        None => x,
    }
}

/// What a layer's forward keeps for its backward.
pub(super) struct LayerTape {
    /// `x̂` and `1/σ` of the attention norm, `[N, D]` and `[N, 1]`.
    xhat1: Tensor<2>,
    rstd1: Tensor<2>,
    attention: SpanAttention,
    /// The attention output before the output projection, `[N, W]`.
    merged: Tensor<2>,
    attn_mask: Vec<Tensor<2>>,
    /// A decoder layer's cross-attention.
    cross: Option<CrossTape>,
    /// `x̂` and `1/σ` of the feed-forward norm.
    xhat2: Tensor<2>,
    rstd2: Tensor<2>,
    /// The activation's derivative at the feed-forward pre-activations `[N, F]`, and the
    /// hidden units after dropout.
    act_grad: Tensor<2>,
    hidden: Tensor<2>,
    ff_mask: Vec<Tensor<2>>,
}

/// The parts of a pre-norm layer with softmax attention over relative positions and a
/// feed-forward sublayer, whatever keys the attention reads.
pub(super) struct LayerParts<'a> {
    pub(super) attn_norm: &'a Norm,
    /// Query, key, value and output maps.
    pub(super) maps: [&'a Linear; 4],
    pub(super) table: &'a Param<Tensor<2>>,
    pub(super) heads: usize,
    pub(super) attn_dropout: &'a Dropout,
    pub(super) ff_norm: &'a Norm,
    pub(super) ff: &'a FeedForward,
}

impl<'a> LayerParts<'a> {
    /// The parts of a layer with causal softmax attention `attn` (which
    /// [`covers`] must accept) behind the norm `attn_norm`, and the feed-forward `ff` behind
    /// `ff_norm`.
    pub(super) fn causal(
        attn_norm: &'a Norm,
        attn: &'a CausalSelfAttention,
        ff_norm: &'a Norm,
        ff: &'a FeedForward,
    ) -> Self {
        LayerParts {
            attn_norm,
            maps: [&attn.query, &attn.key, &attn.value, &attn.output],
            table: &attn.positions().table,
            heads: attn.n_heads,
            attn_dropout: &attn.dropout,
            ff_norm,
            ff,
        }
    }
}

/// Whether the host window kernels cover the causal attention `attn` (the manual layers here,
/// and a Transformer decoder's decoding cache, `crate::host_self_attention`): softmax with its
/// own position table from distance 0, no persistent memory, no adaptive span.
pub(crate) fn covers(attn: &CausalSelfAttention) -> bool {
    attn.positions.as_ref().is_some_and(|p| p.min_distance == 0)
        && attn.persistent.is_none()
        && attn.adaptive_span.is_none()
}

impl LayerParams {
    pub(super) fn of(layer: &TransformerLayer, autodiff: bool) -> Self {
        let attn = layer.attn.as_ref().expect("a softmax layer");
        let ff_residual = layer.ff_residual.as_ref().expect("a feed-forward sublayer");
        let ff = layer.ff.as_ref().expect("a feed-forward sublayer");
        let parts = LayerParts::causal(&layer.attn_residual.norm, attn, &ff_residual.norm, ff);
        Self::of_parts(parts, autodiff)
    }

    pub(super) fn of_parts(parts: LayerParts, autodiff: bool) -> Self {
        let LayerParts {
            attn_norm,
            maps: [query, key, value, output],
            table,
            heads,
            attn_dropout,
            ff_norm,
            ff,
        } = parts;
        Self {
            norm1: NormParams::of(attn_norm),
            qkv: Qkv::of([query, key, value]),
            output: LinearParams::of(output, None),
            table: host(table.val().inner()),
            table_shape: table.val().dims(),
            table_id: table.id,
            heads,
            norm2: NormParams::of(ff_norm),
            up: LinearParams::of(&ff.up, None),
            down: LinearParams::of(&ff.down, None),
            activation: ff.activation,
            attn_keep: keep_prob(attn_dropout, autodiff),
            cross: None,
            ff_keep: keep_prob(&ff.dropout, autodiff),
        }
    }

    /// The same layer with a decoder's cross-attention between its attention and its
    /// feed-forward.
    pub(super) fn with_cross(self, cross: CrossParams) -> Self {
        Self {
            cross: Some(cross),
            ..self
        }
    }

    /// The attention's sizes for a segment of `[B, T]` whose queries read `keys` (the span
    /// from the table's rows: S causal, 2S − 1 bidirectional).
    pub(super) fn span_shape(&self, [batch, len]: [usize; 2], keys: Keys) -> SpanShape {
        let [rows, dh] = self.table_shape;
        let span = match keys {
            Keys::Causal => rows,
            Keys::Bidirectional(_) => rows.div_ceil(2),
            Keys::Cross { .. } => 0, // no table
        };
        SpanShape {
            batch,
            len,
            heads: self.heads,
            dh,
            span,
            keys,
        }
    }

    /// `x + drop(attn(norm1(x)))`, then `+ down(drop(act(up(norm2(·)))))`.
    ///
    /// # Shapes
    /// - x: `[N, D]`; output `[N, D]`
    pub(super) fn forward(
        &self,
        x: Tensor<2>,
        shape: SpanShape,
        masks: LayerMasks,
        source: Option<&Source>,
    ) -> (Tensor<2>, LayerTape) {
        let device = x.device();
        let bt = [shape.batch, shape.len];
        let (xhat1, rstd1) = self.norm1.stats(x.clone());
        let h = self.norm1.affine(xhat1.clone());
        let [q, k, v] = self.qkv.forward(h);
        let scale = 1.0 / (shape.dh as f32).sqrt();
        let (merged, attention) = SpanAttention::forward(shape, scale, (&q, &k, &v), &self.table);
        let n = x.dims()[0];
        let merged = Tensor::<2>::from_data(TensorData::new(merged, [n, q.len() / n]), &device);
        let y = apply_mask(self.output.forward(merged.clone()), &masks.attn);
        let x = x + y;
        let (x, cross) = match (&self.cross, source) {
            (Some(c), Some(source)) => {
                let (x, tape) = c.forward(x, bt, source, masks.cross);
                (x, Some(tape))
            }
            (None, None) => (x, None),
            _ => panic!("a decoder layer needs its source, and only a decoder layer reads one"),
        };
        let (xhat2, rstd2) = self.norm2.stats(x.clone());
        let pre = self.up.forward(self.norm2.affine(xhat2.clone()));
        let (act, act_grad) = activate_on_host(self.activation, pre);
        let hidden = apply_mask(act, &masks.ff);
        let x = x + self.down.forward(hidden.clone());
        let tape = LayerTape {
            xhat1,
            rstd1,
            attention,
            merged,
            attn_mask: masks.attn.into_iter().collect(),
            cross,
            xhat2,
            rstd2,
            act_grad,
            hidden,
            ff_mask: masks.ff.into_iter().collect(),
        };
        (x, tape)
    }

    /// The gradient of the layer's input from that of its output (and, for a decoder layer,
    /// the gradients of its source's keys and values), registering the gradient of every
    /// parameter of the layer.
    ///
    /// # Shapes
    /// - dx: `[N, D]`; output `[N, D]`
    pub(super) fn backward(
        &self,
        grads: &mut GradientsParams,
        tape: LayerTape,
        dx: Tensor<2>,
    ) -> (Tensor<2>, Option<SourceGrads>) {
        // Feed-forward: x_out = x_mid + down(drop(act(up(norm2(x_mid))))).
        self.down.register(grads, tape.hidden, dx.clone());
        let dhidden = masked(self.down.input_grad(dx.clone()), &tape.ff_mask, 0);
        let dpre = dhidden * tape.act_grad;
        let h2 = self.norm2.affine(tape.xhat2.clone());
        self.up.register(grads, h2, dpre.clone());
        let dh2 = self.up.input_grad(dpre);
        self.norm2.register(grads, dh2.clone(), tape.xhat2.clone());
        let dx = dx
            + self
                .norm2
                .backward(self.norm2.fold(dh2), tape.xhat2, tape.rstd2);
        // A decoder layer's cross-attention: x_mid = x_att + drop(W_o attn(W_q norm(x_att))).
        let (dx, source) = match (&self.cross, tape.cross) {
            (Some(c), Some(cross)) => {
                let (dx, source) = c.backward(grads, cross, dx);
                (dx, Some(source))
            }
            _ => (dx, None),
        };
        // Attention: x_att = x + drop(output(attn(norm1(x)))).
        let dy = masked(dx.clone(), &tape.attn_mask, 0);
        self.output.register(grads, tape.merged, dy.clone());
        let dmerged = host(self.output.input_grad(dy));
        let g = tape.attention.backward(&dmerged);
        let device = dx.device();
        grads.register(
            self.table_id,
            Tensor::<2>::from_data(TensorData::new(g.dtable, self.table_shape), &device),
        );
        let h1 = self.norm1.affine(tape.xhat1.clone());
        let dh1 = self.qkv.backward(grads, h1, [g.dq, g.dk, g.dv]);
        self.norm1.register(grads, dh1.clone(), tape.xhat1.clone());
        let dx = dx
            + self
                .norm1
                .backward(self.norm1.fold(dh1), tape.xhat1, tape.rstd1);
        (dx, source)
    }
}
