//! The manual layers over a batch, run whole or as two halves on two threads, and what runs on
//! their top states ([`Top`]): shared by the Transformer language model, the translation
//! encoder and the Transformer decoder.
//!
//! Size legend as in [`super`].
use std::ops::Range;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};

use super::cross::{Source, SourceGrads};
use super::layer::{LayerMasks, LayerParams, LayerTape};
use super::span_attention::Keys;
use crate::feedback::backward::add_grads;
use crate::feedback::backward::output::{OutputForward, OutputLayers, TiedHead, TiedTape};
use crate::feedback::backward::params::NormParams;
use crate::two_cores::on_two_cores;

/// The layers' parameters, run over rows of `t_len` positions each, their attention reading
/// `keys`; a decoder's layers attend over `sources` too (one per layer; empty otherwise).
pub(super) struct Stack<'a> {
    pub(super) layers: &'a [LayerParams],
    pub(super) t_len: usize,
    pub(super) keys: Keys,
    pub(super) sources: Vec<Source>,
}

/// What runs on the layers' top states of each half of the batch, forward and backward: the
/// language model's output layers (final norm and head, to logits), the encoder's final norm.
pub(super) trait Top: Sync {
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

impl Top for TiedHead<'_> {
    type Tape = TiedTape;

    fn forward(&self, top: Tensor<2>) -> (Tensor<2>, TiedTape) {
        TiedHead::forward(self, top)
    }

    fn backward(&self, grads: &mut GradientsParams, tape: TiedTape, dy: Tensor<2>) -> Tensor<2> {
        TiedHead::backward(self, grads, tape, dy)
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
pub(super) struct HalfTape<T> {
    layers: Vec<LayerTape>,
    top: T,
}

/// The tapes of the batch's two halves, rows `0..N₀` and `N₀..N` (`N₀ = B₀·T`).
pub(super) struct HalvesTape<T> {
    /// `N₀`, the rows of the first half.
    rows: usize,
    halves: [HalfTape<T>; 2],
}

/// What the layers and their top keep over a batch: of the whole batch (one sequence, on this
/// thread) or of its two halves (two threads).
pub(super) enum StackTape<T> {
    Whole(Box<HalfTape<T>>),
    Halves(Box<HalvesTape<T>>),
}

impl Stack<'_> {
    /// The layers and then `top` over `b` sequences: the two halves of the batch on two threads
    /// when there are two or more ([`forward_halves`](Self::forward_halves)), on this thread
    /// otherwise.
    ///
    /// # Shapes
    /// - x: `[b·T, D]`; output: the top's `[b·T, Y]`
    pub(super) fn forward_top<T: Top>(
        &self,
        x: Tensor<2>,
        b: usize,
        masks: Vec<LayerMasks>,
        top: &T,
    ) -> (Tensor<2>, StackTape<T::Tape>) {
        if b >= 2 {
            let (y, tapes) = self.forward_halves(x, [b / 2, b - b / 2], masks, top);
            return (y, StackTape::Halves(Box::new(tapes)));
        }
        let (y, layers) = self.forward(x, b, masks);
        let (y, top) = top.forward(y);
        (y, StackTape::Whole(Box::new(HalfTape { layers, top })))
    }

    /// The backward of [`forward_top`](Self::forward_top) from the gradient of the top's
    /// output: every parameter gradient in `grads` (the second half's added there, over
    /// `module`'s parameters); the input gradient and the source gradients of
    /// [`backward`](Self::backward).
    ///
    /// # Shapes
    /// - dy: `[b·T, Y]`; output `[b·T, D]`
    pub(super) fn backward_top<T: Top, M: Module>(
        &self,
        module: &M,
        grads: &mut GradientsParams,
        tape: StackTape<T::Tape>,
        dy: Tensor<2>,
        top: &T,
    ) -> (Tensor<2>, Vec<SourceGrads>) {
        match tape {
            StackTape::Halves(tapes) => {
                let (dx, mut other, sources) = self.backward_halves(grads, *tapes, dy, top);
                add_grads(module, &mut other, grads);
                (dx, sources)
            }
            StackTape::Whole(tape) => {
                let dtop = top.backward(grads, tape.top, dy);
                self.backward(grads, tape.layers, dtop)
            }
        }
    }

    /// Every layer's dropout masks over `n` rows, in the autodiff forward's order (drawn
    /// before the layers run, so that the halves of the batch can take their rows).
    pub(super) fn draw_masks(&self, n: usize, device: &Device) -> Vec<LayerMasks> {
        self.layers
            .iter()
            .map(|p| LayerMasks::draw(p, n, device))
            .collect()
    }

    /// Every layer's forward over `b` sequences.
    ///
    /// # Shapes
    /// - x: `[b·T, D]`; output `[b·T, D]`
    pub(super) fn forward(
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
    pub(super) fn sequences(&self, range: Range<usize>) -> Self {
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
    pub(super) fn backward(
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
