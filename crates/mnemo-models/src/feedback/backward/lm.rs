//! The manual backward of the language model: embedding, the core's manual backward, final
//! norm, head. Logits `y = W_out finalnorm(top)` and the gradients of every parameter.
//!
//! Size legend as in [`super`]: B batch, T segment length, S span, D d_model, V vocabulary.
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor};

use super::dropout::{dropped, keep_prob, masked};
use super::output::{embedding_grad, output_backward};
use super::params::{LinearParams, NormParams};
use super::{NoManualHook, StepProducts};
use crate::feedback::{FeedbackLm, FeedbackState};

/// Logits, gradients of every parameter and the next state of one segment.
#[derive(Debug)]
pub struct SegmentGradients {
    /// Logits on the plain device. Shape `[B, T, V]`.
    pub logits: Tensor<3>,
    /// Gradient of the loss for every parameter, keyed by parameter id (plain device).
    pub grads: GradientsParams,
    /// The last S memories, detached, on the model's device.
    pub state: FeedbackState,
}

impl FeedbackLm {
    /// Whether [`forward_backward_segment`](Self::forward_backward_segment) computes exactly what
    /// autodiff of [`forward_segment`](Self::forward_segment) would: pre-norm (with or without
    /// dropout).
    pub fn supports_manual_backward(&self) -> bool {
        self.final_norm.is_some() && self.core.supports_manual_backward()
    }

    /// Forward a segment and back-propagate `dL/dlogits` by hand (see [`super`]).
    ///
    /// `loss_grad` receives the logits and returns the gradient of the loss with respect to
    /// them. Returns the logits, the gradient of every parameter (registered under the ids of
    /// `self`'s parameters, on the plain device) and the next state, as `forward_segment` does.
    /// The per-step products are the core's ([`FeedbackLm::with_step_products`]).
    ///
    /// # Panics
    /// If [`supports_manual_backward`](Self::supports_manual_backward) is false.
    ///
    /// # Shapes
    /// - tokens: `[B, T]`
    /// - state.memories: `[B, S, D]`
    /// - loss_grad: `[B, T, V] -> [B, T, V]`
    pub fn forward_backward_segment(
        &self,
        tokens: Tensor<2, Int>,
        state: FeedbackState,
        loss_grad: impl FnOnce(Tensor<3>) -> Tensor<3>,
    ) -> SegmentGradients {
        self.manual_segment(tokens, state, Some(loss_grad))
    }

    /// [`forward_segment`](Self::forward_segment) for inference, on the host kernels where
    /// they apply: when the core's steps run on host rows
    /// ([`FeedbackCore::steps_on_host_rows`]) `forward_segment` itself takes them, step by step
    /// on both cores; else, when the core's products are [`StepProducts::Host`], the device is
    /// plain (non-autodiff) and the model [supports](Self::supports_manual_backward) it,
    /// through the manual forward (per-step products and window attention on the host
    /// kernels); otherwise this is `forward_segment`. Equal up to float rounding order.
    ///
    /// # Shapes
    /// - tokens: `[B, T]`
    /// - state.memories: `[B, S, D]`
    /// - output: logits `[B, T, V]`
    pub fn infer_segment(
        &self,
        tokens: Tensor<2, Int>,
        state: FeedbackState,
    ) -> (Tensor<3>, FeedbackState) {
        let plain = !self.head.weight.val().is_autodiff();
        if self.core.steps_on_host_rows() {
            return self.forward_segment(tokens, state);
        }
        if self.core.products == StepProducts::Host && plain && self.supports_manual_backward() {
            let out = self.manual_segment(tokens, state, None::<fn(Tensor<3>) -> Tensor<3>>);
            return (out.logits, out.state);
        }
        self.forward_segment(tokens, state)
    }

    /// The manual forward and, given `loss_grad`, the backward (without it, `grads` is empty).
    fn manual_segment(
        &self,
        tokens: Tensor<2, Int>,
        state: FeedbackState,
        loss_grad: Option<impl FnOnce(Tensor<3>) -> Tensor<3>>,
    ) -> SegmentGradients {
        assert!(
            self.supports_manual_backward(),
            "the manual Feedback backward needs pre-norm"
        );
        let autodiff = self.head.weight.val().is_autodiff();
        let [b, t_len] = tokens.dims();
        let tokens = tokens.inner();
        let core = &self.core;
        let final_norm = NormParams::of(self.final_norm.as_ref().expect("pre-norm"));
        let head = LinearParams::of(&self.head, None);
        let emb = self.embedding.weight.val().inner();
        let ids = tokens.reshape([b * t_len]); // [B·T], row b·T+t
        let x = emb
            .clone()
            .select(0, ids.clone())
            .reshape([b, t_len, emb.dims()[1]]); // [B,T,D]
        // Embedding dropout: the first mask the autodiff forward draws, so drawn first here.
        let mut emb_mask = Vec::new(); // one mask (or none) for the whole segment
        let x = dropped(x, keep_prob(&self.dropout, autodiff), &mut emb_mask);
        let mut grads = GradientsParams::new();
        // The output layers' tape, kept by the closure for their gradients.
        let mut saved = None;
        let top_grad = loss_grad.map(|loss_grad| {
            |top: Tensor<3>| {
                let (logits, dtop, tape) = output_backward(&final_norm, &head, top, loss_grad);
                saved = Some((logits, tape));
                dtop
            }
        });
        let has_grad = top_grad.is_some();
        let out = core.forward_backward(x, state.memories, &mut NoManualHook, &mut grads, top_grad);
        let logits = match saved {
            Some((logits, tape)) => {
                tape.register(&mut grads, &final_norm, &head);
                logits
            }
            None => head.forward(final_norm.forward(out.top)),
        };
        if has_grad {
            let dx = masked(out.dx.expect("a backward ran"), &emb_mask, 0);
            let [v_emb, d] = emb.dims();
            let dx = dx.reshape([b * t_len, d]);
            grads.register(self.embedding.weight.id, embedding_grad(ids, dx, v_emb));
        }
        let next = if autodiff {
            out.memories.autodiff()
        } else {
            out.memories
        };
        let next = self.carried(next, t_len); // on the model's device: its norm's
        SegmentGradients {
            logits,
            grads,
            state: FeedbackState {
                memories: next,
                projected: None,
            },
        }
    }
}
