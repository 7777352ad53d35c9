//! The manual backward of the Transformer language model: the forward over a segment on the
//! plain (non-autodiff) device, keeping what the backward needs, then the gradient of every
//! parameter layer by layer from the top, with the building blocks of the Feedback model's
//! manual backward (norms, linear maps, dropout masks, output layers:
//! [`crate::feedback::backward`]) and its attention on host memory as tiled `mnemo_kernels`
//! products ([`span_attention`]).
//!
//! It computes what burn's autodiff of [`TransformerLm::forward`] computes, up to float
//! rounding (tests/transformer_backward.rs checks logits and every parameter's gradient),
//! without the graph: one product per weight over all `N = B·T` rows in both directions, the
//! attention without `[B, H, T, T]` scores, norm and activation derivatives in one pass.
//! Dropout draws burn's masks in the autodiff forward's order (embedding, then per layer the
//! attention output and the feed-forward hidden units).
//!
//! The two halves of the batch run through the layers and the output layers on two threads,
//! forward and backward (every layer treats sequences independently; burn's element-wise ops
//! run on one core, so this is how they use both), each inside a one-thread rayon pool so that
//! its GEMMs stay on its core instead of splitting over the global pool the other half is
//! using, with `mnemo_kernels`' helper off; the loss and the embedding gradient see the whole
//! batch, and the halves' parameter gradients are added. The layers' dropout masks are
//! drawn for the whole batch before the layers run, in the autodiff forward's order, and each
//! half takes its rows.
//!
//! The attention reads its inputs back to host memory, so the trainer uses this backward on CPU
//! backends only (`mnemo_train::LmStep`). Supported ([`TransformerLm::supports_manual_backward`]): pre-norm (LayerNorm or RMSNorm),
//! softmax attention with each layer's own position table from distance 0, GELU or ReLU, with
//! or without biases, any head size, dropout. Not: post-norm, ResiDual, Admin, other attention
//! mechanisms, persistent memory, adaptive spans, tied position tables, layers without a
//! feed-forward sublayer (those train with autodiff).
//!
//! Size legend: B batch, T segment length, S span, H heads, Dh head size, W = H·Dh, D d_model,
//! F FFN width, V vocabulary, N = B·T rows (row `b·T + t`).
use std::ops::Range;

use burn::module::Param;
use burn::nn::{Dropout, Linear};
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, TensorData};
use mnemo_core::host::to_vec as host;
use mnemo_core::{Activation, FeedForward, Norm};

use crate::feedback::backward::activate_on_host;
use crate::feedback::backward::add_grads;
use crate::feedback::backward::dropout::{dropped, keep_prob, mask, masked};
use crate::feedback::backward::output::{
    OutputForward, OutputLayers, embedding_grad, output_backward,
};
use crate::feedback::backward::params::{LinearParams, NormParams};
use crate::transformer::{TransformerLayer, TransformerLm};
use crate::two_cores::on_two_cores;

mod cross;
mod decoder;
mod encoder;
mod qkv;
mod span_attention;

use cross::{CrossParams, CrossTape, Source, SourceGrads};
pub(crate) use encoder::Encoding;
use qkv::Qkv;
use span_attention::{Keys, SpanAttention, SpanShape};

/// Logits and the gradient of every parameter of one segment.
#[derive(Debug)]
pub struct TransformerGradients {
    /// Logits on the plain device. Shape `[B, T, V]`.
    pub logits: Tensor<3>,
    /// Gradient of the loss for every parameter, keyed by parameter id (plain device).
    pub grads: GradientsParams,
}

impl TransformerLayer {
    /// Whether this layer is one the manual backward covers (see the [module docs](self)).
    fn supports_manual_backward(&self) -> bool {
        let attention = self.attn.as_ref().is_some_and(|a| {
            a.positions.as_ref().is_some_and(|p| p.min_distance == 0)
                && a.persistent.is_none()
                && a.adaptive_span.is_none()
        });
        let pre = |r: &mnemo_core::Residual| r.placement == mnemo_core::NormPlacement::Pre;
        attention
            && self.attn_variant.is_none()
            && pre(&self.attn_residual)
            && self.ff_residual.as_ref().is_some_and(pre)
            && self.ff.is_some()
            && self.attn_admin.is_none()
            && self.ff_admin.is_none()
    }
}

impl TransformerLm {
    /// Whether [`forward_backward`](Self::forward_backward) computes what autodiff of
    /// [`forward`](Self::forward) would (see the [module docs](self)).
    pub fn supports_manual_backward(&self) -> bool {
        self.final_norm.is_some()
            && self
                .layers
                .iter()
                .all(TransformerLayer::supports_manual_backward)
    }

    /// Forward a segment and back-propagate `dL/dlogits` by hand (see the [module docs](self)).
    ///
    /// `loss_grad` receives the logits and returns the gradient of the loss for them. Returns
    /// the logits and the gradient of every parameter, registered under the ids of `self`'s
    /// parameters on the plain device.
    ///
    /// # Panics
    /// If [`supports_manual_backward`](Self::supports_manual_backward) is false.
    ///
    /// # Shapes
    /// - tokens: `[B, T]`
    /// - loss_grad: `[B, T, V] -> [B, T, V]`
    pub fn forward_backward(
        &self,
        tokens: Tensor<2, Int>,
        loss_grad: impl FnOnce(Tensor<3>) -> Tensor<3>,
    ) -> TransformerGradients {
        assert!(
            self.supports_manual_backward(),
            "the manual Transformer backward needs pre-norm softmax layers"
        );
        let autodiff = self.head.weight.val().is_autodiff();
        let [b, t_len] = tokens.dims();
        let ids = tokens.inner().reshape([b * t_len]); // row b·T + t
        let emb = self.embedding.weight.val().inner();
        let [vocab, d] = emb.dims();
        let x = emb.select(0, ids.clone()); // [N,D]
        // The masks in the autodiff forward's order: the embedding's first.
        let mut emb_mask = Vec::new();
        let x = dropped(x, keep_prob(&self.dropout, autodiff), &mut emb_mask);
        let layers: Vec<_> = self
            .layers
            .iter()
            .map(|layer| LayerParams::of(layer, autodiff))
            .collect();
        // Every layer's masks now, in the autodiff forward's order (nothing else draws from
        // the RNG in between), so that the two halves of the batch can take their rows.
        let device = x.device();
        let masks = layers
            .iter()
            .map(|p| LayerMasks::draw(p, b * t_len, &device))
            .collect();
        let stack = Stack {
            layers: &layers,
            t_len,
            keys: Keys::Causal,
            sources: Vec::new(),
        };
        let final_norm = NormParams::of(self.final_norm.as_ref().expect("pre-norm"));
        let head = LinearParams::of(&self.head, None);
        let mut grads = GradientsParams::new();
        let (logits, dx) = match b >= 2 {
            true => {
                let output = OutputLayers {
                    final_norm: &final_norm,
                    head: &head,
                };
                let (logits, tapes) = stack.forward_halves(x, [b / 2, b - b / 2], masks, &output);
                let v = logits.dims()[1];
                let logits = logits.reshape([b, t_len, v]);
                let dlogits = loss_grad(logits.clone()).inner().reshape([b * t_len, v]);
                let (dx, mut other, _) = stack.backward_halves(&mut grads, tapes, dlogits, &output);
                add_grads(self, &mut other, &mut grads);
                (logits, dx)
            }
            false => {
                let (top, tapes) = stack.forward(x, b, masks);
                let top = top.reshape([b, t_len, d]);
                let (logits, dtop, output) = output_backward(&final_norm, &head, top, loss_grad);
                output.register(&mut grads, &final_norm, &head);
                let dtop = dtop.reshape([b * t_len, d]);
                (logits, stack.backward(&mut grads, tapes, dtop).0)
            }
        };
        let dx = masked(dx, &emb_mask, 0);
        grads.register(self.embedding.weight.id, embedding_grad(ids, dx, vocab));
        TransformerGradients { logits, grads }
    }
}

/// The layers' parameters, run over rows of `t_len` positions each, their attention reading
/// `keys`; a decoder's layers attend over `sources` too (one per layer; empty otherwise).
struct Stack<'a> {
    layers: &'a [LayerParams],
    t_len: usize,
    keys: Keys,
    sources: Vec<Source>,
}

/// What runs on the layers' top states of each half of the batch, forward and backward: the
/// language model's output layers (final norm and head, to logits), the encoder's final norm.
trait Top: Sync {
    /// What its forward keeps for its backward.
    type Tape: Send;

    /// # Shapes
    /// - top: `[n, D]`; output `[n, Y]`
    fn forward(&self, top: Tensor<2>) -> (Tensor<2>, Self::Tape);

    /// The gradient of the top states from that of the output, registering the gradients of
    /// its own parameters.
    ///
    /// # Shapes
    /// - dy: `[n, Y]`; output `[n, D]`
    fn backward(&self, grads: &mut GradientsParams, tape: Self::Tape, dy: Tensor<2>) -> Tensor<2>;
}

impl Top for OutputLayers<'_> {
    type Tape = OutputForward;

    fn forward(&self, top: Tensor<2>) -> (Tensor<2>, OutputForward) {
        OutputLayers::forward(self, top)
    }

    fn backward(
        &self,
        grads: &mut GradientsParams,
        tape: OutputForward,
        dy: Tensor<2>,
    ) -> Tensor<2> {
        let (dtop, out) = OutputLayers::backward(self, tape, dy);
        out.register(grads, self.final_norm, self.head);
        dtop
    }
}

impl Top for NormParams {
    /// `x̂` and `1/σ`.
    type Tape = (Tensor<2>, Tensor<2>);

    fn forward(&self, top: Tensor<2>) -> (Tensor<2>, Self::Tape) {
        let (xhat, rstd) = self.stats(top);
        (self.affine(xhat.clone()), (xhat, rstd))
    }

    fn backward(
        &self,
        grads: &mut GradientsParams,
        (xhat, rstd): Self::Tape,
        dy: Tensor<2>,
    ) -> Tensor<2> {
        self.register(grads, dy.clone(), xhat.clone());
        NormParams::backward(self, self.fold(dy), xhat, rstd)
    }
}

/// What one half of the batch keeps for its backward: its layers' tapes and its top's.
struct HalfTape<T> {
    layers: Vec<LayerTape>,
    top: T,
}

/// The tapes of the batch's two halves, rows `0..N₀` and `N₀..N` (`N₀ = B₀·T`).
struct HalvesTape<T> {
    /// `N₀`, the rows of the first half.
    rows: usize,
    halves: [HalfTape<T>; 2],
}

impl Stack<'_> {
    /// Every layer's forward over `b` sequences.
    ///
    /// # Shapes
    /// - x: `[b·T, D]`; output `[b·T, D]`
    fn forward(
        &self,
        mut x: Tensor<2>,
        b: usize,
        masks: Vec<LayerMasks>,
    ) -> (Tensor<2>, Vec<LayerTape>) {
        let mut tapes = Vec::with_capacity(self.layers.len());
        for (l, (params, masks)) in self.layers.iter().zip(masks).enumerate() {
            let shape = params.span_shape([b, self.t_len], self.keys.clone());
            let (y, tape) = params.forward(x, shape, masks, self.sources.get(l));
            x = y;
            tapes.push(tape);
        }
        (x, tapes)
    }

    /// The stack over sequences `range` of the batch (the keys of those sequences).
    fn sequences(&self, range: Range<usize>) -> Self {
        Stack {
            layers: self.layers,
            t_len: self.t_len,
            keys: self.keys.sequences(range.clone()),
            sources: self
                .sources
                .iter()
                .map(|s| s.sequences(range.clone()))
                .collect(),
        }
    }

    /// [`forward`](Self::forward) of the first `bs[0]` sequences and then their `top` on this
    /// thread, and of the other `bs[1]` on a second one (rows are independent through every
    /// layer and the top), each with its rows of the masks.
    ///
    /// # Shapes
    /// - x: `[N, D]`; output: the top's `[N, Y]`
    fn forward_halves<T: Top>(
        &self,
        x: Tensor<2>,
        bs: [usize; 2],
        masks: Vec<LayerMasks>,
        top: &T,
    ) -> (Tensor<2>, HalvesTape<T::Tape>) {
        let n0 = bs[0] * self.t_len;
        let n1 = x.dims()[0] - n0;
        let (x0, x1) = (x.clone().narrow(0, 0, n0), x.narrow(0, n0, n1));
        let (m0, m1) = masks
            .iter()
            .map(|m| (m.rows(0, n0), m.rows(n0, n1)))
            .unzip();
        let (s0, s1) = (
            self.sequences(0..bs[0]),
            self.sequences(bs[0]..bs[0] + bs[1]),
        );
        let half = |stack: &Stack, x: Tensor<2>, b: usize, masks: Vec<LayerMasks>| {
            let (y, layers) = stack.forward(x, b, masks);
            let (y, top) = top.forward(y);
            (y, HalfTape { layers, top })
        };
        let ((y0, t0), (y1, t1)) =
            on_two_cores(|| half(&s0, x0, bs[0], m0), || half(&s1, x1, bs[1], m1));
        let tapes = HalvesTape {
            rows: n0,
            halves: [t0, t1],
        };
        (Tensor::cat(vec![y0, y1], 0), tapes)
    }

    /// Every layer's backward from the top, registering the parameter gradients in `grads`;
    /// the input gradient and, for a decoder's layers, the gradients of each layer's source
    /// keys and values (bottom first; empty otherwise).
    ///
    /// # Shapes
    /// - dx: `[b·T, D]`; output `[b·T, D]`
    fn backward(
        &self,
        grads: &mut GradientsParams,
        tapes: Vec<LayerTape>,
        mut dx: Tensor<2>,
    ) -> (Tensor<2>, Vec<SourceGrads>) {
        let mut sources = Vec::new();
        for (params, tape) in self.layers.iter().zip(tapes).rev() {
            let (d, source) = params.backward(grads, tape, dx);
            dx = d;
            sources.extend(source);
        }
        sources.reverse();
        (dx, sources)
    }

    /// The top's and then every layer's backward of the two halves on two threads, from the
    /// gradient of the top's output: the first half's parameter gradients go to `grads`, the
    /// second's are returned beside the input gradient of the whole batch and the source
    /// gradients of [`backward`](Self::backward) (both halves' rows).
    ///
    /// # Shapes
    /// - dy: `[N, Y]`; output `[N, D]`
    fn backward_halves<T: Top>(
        &self,
        grads: &mut GradientsParams,
        tapes: HalvesTape<T::Tape>,
        dy: Tensor<2>,
        top: &T,
    ) -> (Tensor<2>, GradientsParams, Vec<SourceGrads>) {
        let n0 = tapes.rows;
        let n1 = dy.dims()[0] - n0;
        let (d0, d1) = (dy.clone().narrow(0, 0, n0), dy.narrow(0, n0, n1));
        let [t0, t1] = tapes.halves;
        let half = |grads: &mut GradientsParams, tape: HalfTape<T::Tape>, dy: Tensor<2>| {
            let dtop = top.backward(grads, tape.top, dy);
            self.backward(grads, tape.layers, dtop)
        };
        let ((dx0, s0), ((dx1, s1), other)) = on_two_cores(
            || half(grads, t0, d0),
            || {
                let mut other = GradientsParams::new();
                let dx1 = half(&mut other, t1, d1);
                (dx1, other)
            },
        );
        let sources = s0.into_iter().zip(s1).map(|(a, b)| a.cat(b)).collect();
        (Tensor::cat(vec![dx0, dx1], 0), other, sources)
    }
}

/// One layer's parameters on the plain device.
struct LayerParams {
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
struct LayerMasks {
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
    fn draw(params: &LayerParams, n: usize, device: &burn::tensor::Device) -> Self {
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
    fn rows(&self, start: usize, len: usize) -> Self {
        let rows = |m: &Option<Tensor<2>>| m.clone().map(|m| m.narrow(0, start, len));
        Self {
            attn: rows(&self.attn),
            cross: rows(&self.cross),
            ff: rows(&self.ff),
        }
    }
}

/// `x · mask` (no mask: `x`).
fn apply_mask(x: Tensor<2>, mask: &Option<Tensor<2>>) -> Tensor<2> {
    match mask {
        Some(m) => x * m.clone(),
        None => x,
    }
}

/// What a layer's forward keeps for its backward.
struct LayerTape {
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
struct LayerParts<'a> {
    attn_norm: &'a Norm,
    /// Query, key, value and output maps.
    maps: [&'a Linear; 4],
    table: &'a Param<Tensor<2>>,
    heads: usize,
    attn_dropout: &'a Dropout,
    ff_norm: &'a Norm,
    ff: &'a FeedForward,
}

impl LayerParams {
    fn of(layer: &TransformerLayer, autodiff: bool) -> Self {
        let attn = layer.attn.as_ref().expect("a softmax layer");
        let ff_residual = layer.ff_residual.as_ref().expect("a feed-forward sublayer");
        let parts = LayerParts {
            attn_norm: &layer.attn_residual.norm,
            maps: [&attn.query, &attn.key, &attn.value, &attn.output],
            table: &attn.positions().table,
            heads: attn.n_heads,
            attn_dropout: &attn.dropout,
            ff_norm: &ff_residual.norm,
            ff: layer.ff.as_ref().expect("a feed-forward sublayer"),
        };
        Self::of_parts(parts, autodiff)
    }

    fn of_parts(parts: LayerParts, autodiff: bool) -> Self {
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

    /// The attention's sizes for a segment of `[B, T]` whose queries read `keys` (the span
    /// from the table's rows: S causal, 2S − 1 bidirectional).
    fn span_shape(&self, [batch, len]: [usize; 2], keys: Keys) -> SpanShape {
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
    fn forward(
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
    fn backward(
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
