//! The exact manual backward of the [`FeedbackCore`], written once for every user of the core
//! (the language model, [`lm`]; the translation decoder; any caller that feeds vectors).
//!
//! The forward runs step by step on the plain (non-autodiff) device ([`forward`]), storing per
//! step only what the backward needs (layer inputs, queries, attention probabilities, attention
//! outputs, feed-forward inputs and pre-activations, memories). The backward then runs through
//! time in reverse for the *activation* gradients only ([`bptt`]); every weight gradient is
//! formed afterwards with one large matmul over all `N = T·B` rows ([`weights`]; a norm's γ and
//! β come out of the same product, and the upper half of the layers runs on the second core
//! beside the lower half, `crate::two_cores`). Norm statistics
//! and GELU derivatives are computed in one batched pass after the forward, not per step. The
//! parameters are read once per segment ([`params`]); with [`StepProducts::Host`] the per-step
//! products and window attention run on `mnemo_kernels` over host windows ([`host_window`]).
//!
//! Equal to burn's autodiff of [`FeedbackCore::forward`] up to float rounding
//! (tests/feedback_backward.rs checks every parameter, shared and per-layer K/V, over several
//! carried segments, and the decoder with its cross-attention hook). Supported: pre-norm
//! (LayerNorm or RMSNorm), dropout (burn's masks, drawn in the autodiff step's order:
//! [`dropout`]), GELU or ReLU, with or without attention biases, any head
//! size, one position table or one per layer (its gradient summed over the layers), memory
//! norms of their own or tied to the attention norms (gradients summed), adaptive spans (the
//! mask's gradient reaches the ratios; trimmed windows read only their newest slots; these
//! layers attend over backend windows even with host products)
//! ([`FeedbackCore::supports_manual_backward`]).
//!
//! Size legend: B rows, T segment length, S span, L layers, H heads, D d_model, Dh head size,
//! F FFN width, N = T·B rows.
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use super::core::FeedbackCore;

pub(crate) mod activation;
mod bptt;
mod carried;
mod cross;
pub(crate) mod dropout;
mod forward;
pub(crate) mod host_window;
pub mod lm;
pub(crate) mod output;
pub(crate) mod params;
pub use params::StepMatrix;
pub mod seq2seq;
mod weights;

pub(crate) use activation::activate_on_host;

/// Which code computes the per-step products (one step's `B` rows times a weight matrix) of
/// the manual forward and backward. Both compute the same sums; they differ only in float
/// rounding order. Fixed when the model is built ([`FeedbackCore::with_step_products`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StepProducts {
    /// burn's `matmul` on the model's device: works on every backend.
    #[default]
    Backend,
    /// `mnemo_kernels::PackedMatrix` products on host memory: 3–5× faster than the CPU backend's
    /// GEMM for `B = 8` rows (docs/performance.md). Each product reads the rows back from the
    /// device and writes the result to it, so use it only with a CPU backend.
    Host,
}

impl StepProducts {
    /// The instruction set the host products use on this machine (e.g. `avx512`, `avx2`,
    /// `neon`, `scalar`).
    pub fn host_isa() -> String {
        format!("{:?}", mnemo_kernels::Isa::detect()).to_lowercase()
    }
}

/// A sublayer between a layer's memory attention and its feed-forward, in the manual forward
/// and backward (the autodiff path's counterpart is [`LayerHook`](super::LayerHook)). It keeps
/// what its backward needs and its own parameters' gradients.
pub trait ManualHook {
    /// Forward of layer `layer`'s sublayer at step `t`.
    ///
    /// # Shapes
    /// - h: `[B, D]`; output `[B, D]`
    fn forward(&mut self, layer: usize, t: usize, h: Tensor<2>) -> Tensor<2>;

    /// Backward of [`forward`](Self::forward) at `(layer, t)`, called in reverse step order:
    /// the gradient of its input from the gradient of its output.
    ///
    /// # Shapes
    /// - dy: `[B, D]`; output `[B, D]`
    fn backward(&mut self, layer: usize, t: usize, dy: Tensor<2>) -> Tensor<2>;
}

/// The hook that adds nothing.
pub struct NoManualHook;

impl ManualHook for NoManualHook {
    fn forward(&mut self, _layer: usize, _t: usize, h: Tensor<2>) -> Tensor<2> {
        h
    }

    fn backward(&mut self, _layer: usize, _t: usize, dy: Tensor<2>) -> Tensor<2> {
        dy
    }
}

/// Move every gradient that `module`'s parameters have in `from` into `to` (how a manual
/// backward's gradients join those of the autodiff pass around it).
pub fn move_grads<M: Module>(module: &M, from: &mut GradientsParams, to: &mut GradientsParams) {
    transfer_grads(module, from, to, false);
}

/// Add every gradient that `module`'s parameters have in `from` to theirs in `to` (registered
/// there if absent): how the gradients of two halves of a batch join.
pub(crate) fn add_grads<M: Module>(
    module: &M,
    from: &mut GradientsParams,
    to: &mut GradientsParams,
) {
    transfer_grads(module, from, to, true);
}

/// Take the gradients of `module`'s parameters out of `from` into `to`, replacing or (`add`)
/// added to what `to` holds.
fn transfer_grads<M: Module>(
    module: &M,
    from: &mut GradientsParams,
    to: &mut GradientsParams,
    add: bool,
) {
    struct Transfer<'a> {
        from: &'a mut GradientsParams,
        to: &'a mut GradientsParams,
        add: bool,
    }
    impl ModuleVisitor for Transfer<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.from.remove::<D>(param.id) {
                match self.add {
                    true => params::register_sum(self.to, param.id, g),
                    false => self.to.register(param.id, g),
                }
            }
        }
    }
    module.visit(&mut Transfer { from, to, add });
}

/// What [`FeedbackCore::forward_backward`] returns (plain device).
#[derive(Debug)]
pub struct CoreOutput {
    /// The top states. Shape `[B, T, D]`.
    pub top: Tensor<3>,
    /// Gradient of the loss for the inputs (None without a backward). Shape `[B, T, D]`.
    pub dx: Option<Tensor<3>>,
    /// The last S memories, detached: the next segment's carried memories. Shape `[B, S, D]`.
    pub memories: Tensor<3>,
}

impl FeedbackCore {
    /// Whether [`forward_backward`](Self::forward_backward) computes exactly what autodiff of
    /// [`forward`](Self::forward) would: pre-norm (dropout is supported: the manual forward
    /// draws burn's masks in the same order, see [`dropout`]).
    pub fn supports_manual_backward(&self) -> bool {
        self.layers
            .iter()
            .all(|l| l.attn_residual.is_pre() && l.ff_residual.is_pre())
    }

    /// Whether any layer drops units (attention output or feed-forward hidden activations).
    /// The language model's and the translation decoder's manual backwards are checked with
    /// dropout against autodiff (tests/feedback_backward_dropout.rs,
    /// tests/feedback_decoder_backward_dropout.rs); the RL policy, whose autodiff passes around
    /// the core draw masks of their own, claims the manual backward only without.
    pub fn has_dropout(&self) -> bool {
        self.layers
            .iter()
            .any(|l| l.dropout.prob > 0.0 || l.ff.dropout.prob > 0.0)
    }

    /// Forward a segment from `x` and `memories` (the carried S memory vectors) by hand and,
    /// given `top_grad`, back-propagate the gradient it returns for the top states (see the
    /// [module docs](self)). The core's parameter gradients are registered in `grads` under
    /// their ids (plain device).
    ///
    /// # Panics
    /// If [`supports_manual_backward`](Self::supports_manual_backward) is false, or `memories`
    /// does not hold S memories.
    ///
    /// # Shapes
    /// - x: `[B, T, D]`
    /// - memories: `[B, S, D]`
    /// - top_grad: `[B, T, D] -> [B, T, D]`
    pub fn forward_backward(
        &self,
        x: Tensor<3>,
        memories: Tensor<3>,
        hook: &mut dyn ManualHook,
        grads: &mut GradientsParams,
        top_grad: Option<impl FnOnce(Tensor<3>) -> Tensor<3>>,
    ) -> CoreOutput {
        assert!(
            self.supports_manual_backward(),
            "the manual Feedback backward needs pre-norm"
        );
        let [b, t_len, d] = x.dims();
        let s = self.span;
        super::core::check_carried(&memories, s); // the host windows' span is the tables'
        let heads = self.layers[0].n_heads;
        // Dropout acts while the model trains on an autodiff device, as burn's `Dropout`.
        let params = params::CoreParams::of(self, self.mix.val().is_autodiff());
        let x0 = x.inner().swap_dims(0, 1); // [T,B,D]
        let carried = carried::Carried::new(memories.inner());
        let keep = top_grad.is_some();
        let mut rec = forward::record(&params, self.products, heads, &x0, &carried, hook, keep);
        let m_bt = weights::rows(rec.memories.clone())
            .reshape([t_len, b, d])
            .swap_dims(0, 1); // [B,T,D]
        let next = Tensor::cat(vec![carried.memories.clone(), m_bt], 1).narrow(1, t_len, s); // [B,S,D]
        let top = weights::rows(rec.tops.clone())
            .reshape([t_len, b, d])
            .swap_dims(0, 1); // [B,T,D]
        let Some(top_grad) = top_grad else {
            return CoreOutput {
                top,
                dx: None,
                memories: next,
            };
        };
        let dtop = top_grad(top.clone()).inner().swap_dims(0, 1); // [T,B,D]
        let time = bptt::backward_through_time(&params, self.products, heads, &mut rec, dtop, hook);
        let dx = Tensor::stack::<3>(time.dx.clone(), 1); // [B,T,D]
        let forward::Recorded {
            tapes,
            tops,
            memories,
            ..
        } = rec;
        let mut upper = weights::register_weight_grads(
            grads,
            &params,
            (self.memory == super::MemorySource::Mix).then_some(self.mix.id),
            heads,
            x0,
            carried,
            tapes,
            tops,
            memories,
            time,
        );
        add_grads(self, &mut upper, grads);
        CoreOutput {
            top,
            dx: Some(dx),
            memories: next,
        }
    }
}
