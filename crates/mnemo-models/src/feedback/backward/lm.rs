//! The manual backward of the language model: embedding, the core's manual backward, final
//! norm, head. Logits `y = W_out finalnorm(top)` and the gradients of every parameter.
//!
//! Size legend as in [`super`]: B batch, T segment length, S span, D d_model, V vocabulary.
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, TensorData};

use super::dropout::{dropped, keep_prob, masked};
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

    /// [`forward_segment`](Self::forward_segment) for inference, through the manual forward
    /// where it applies: when the core's products are [`StepProducts::Host`], the device is
    /// plain (non-autodiff) and the model [supports](Self::supports_manual_backward) it, the
    /// per-step products and window attention run on the host kernels; otherwise this is
    /// `forward_segment`. Equal up to float rounding order.
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
        let device = tokens.device();
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
        // What the output layers' gradients need, kept by the closure: logits, normed top,
        // dlogits, dL/d(normed top), x̂ of the final norm.
        let mut saved = None;
        let top_grad = loss_grad.map(|loss_grad| {
            |top: Tensor<3>| {
                let [_, _, d] = top.dims();
                let (top_hat, top_rstd) = final_norm.stats(top.reshape([b * t_len, d]));
                let top_normed = final_norm.affine(top_hat.clone());
                let l = head.forward(top_normed.clone()); // [B·T,V]
                let v = l.dims()[1];
                let l = l.reshape([b, t_len, v]);
                let dlogits = loss_grad(l.clone()).inner().reshape([b * t_len, v]);
                let dtop_normed = dlogits.clone().matmul(head.w_t()); // [B·T,D]
                let dtop = final_norm.backward(
                    final_norm.fold(dtop_normed.clone()),
                    top_hat.clone(),
                    top_rstd,
                );
                saved = Some((l, top_normed, dlogits, dtop_normed, top_hat));
                dtop.reshape([b, t_len, d])
            }
        });
        let has_grad = top_grad.is_some();
        let out = core.forward_backward(x, state.memories, &mut NoManualHook, &mut grads, top_grad);
        let logits = match saved {
            Some((logits, top_normed, dlogits, dtop_normed, top_hat)) => {
                head.register(&mut grads, top_normed, dlogits);
                final_norm.register(&mut grads, dtop_normed, top_hat);
                logits
            }
            None => head.forward(final_norm.forward(out.top)),
        };
        if has_grad {
            // Embedding: scatter-add of the step inputs' gradients, as a one-hot matmul.
            let dx = out.dx.expect("a backward ran");
            let dx = masked(dx, &emb_mask, 0);
            let [v_emb, d] = emb.dims();
            let ids: Vec<i64> = ids
                .into_data()
                .convert::<i64>()
                .try_to_vec::<i64>()
                .expect("int ids");
            let mut onehot = vec![0.0f32; b * t_len * v_emb];
            for (r, &id) in ids.iter().enumerate() {
                onehot[r * v_emb + id as usize] = 1.0;
            }
            let onehot =
                Tensor::<2>::from_data(TensorData::new(onehot, [b * t_len, v_emb]), &device);
            grads.register(
                self.embedding.weight.id,
                onehot.transpose().matmul(dx.reshape([b * t_len, d])),
            );
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
