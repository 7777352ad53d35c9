//! One language-model training step: forward over a segment, masked cross-entropy, the
//! gradient of every parameter, and the state to carry into the next segment.
//!
//! This is what the trainer ([`LmTask`](crate::lm::LmTask)), `mnemo compare-backends` and
//! `mnemo bench` run. Feedback models and Transformers get their gradients from their
//! hand-written exact backward ([`train_feedback_segment`], [`TransformerLm::forward_backward`])
//! unless `train.feedback_backward = "autodiff"` or the model cannot take it (post-norm; for the
//! Transformer also another attention mechanism, persistent memory, adaptive spans, or a
//! backend whose tensors are not in host memory); every other model from burn's autodiff. Models
//! with adaptive spans add the span loss's gradient ([`Model::add_span_loss_gradients`]).
use burn::tensor::{Int, Tensor};
use mnemo_models::{Model, ModelState, TransformerLm};

use crate::feedback_step::{
    FeedbackBackward, ManualBackward, manual_backward, masked_cross_entropy_grad,
    train_feedback_segment,
};
use crate::task::StepOutput;

/// One training segment: input ids and the targets scored against the logits.
#[derive(Debug, Clone)]
pub struct LmBatch<'a> {
    /// Input ids.
    ///
    /// # Shapes
    /// `[B, T]`
    pub tokens: Tensor<2, Int>,
    /// Target ids, row-major `B * T`.
    pub targets: &'a [u32],
    /// The target id that is not scored.
    pub no_label: u32,
}

/// How a language-model step computes its gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LmStep {
    /// Hand-written or autodiff backward for Feedback models and Transformers.
    pub backward: FeedbackBackward,
}

impl LmStep {
    /// The step with `backward` (the manual backward multiplies one step's rows as the model
    /// was built to: [`step_products`](crate::feedback_step::step_products)).
    pub fn new(backward: FeedbackBackward) -> Self {
        Self { backward }
    }

    /// Loss, gradients (empty when the loss is not finite) and next state of `model` on
    /// `batch`, starting from `state`.
    ///
    /// # Shapes
    /// - batch.tokens: `[B, T]`
    /// - batch.targets: `B * T` ids
    /// - output logits: `[B, T, V]`
    pub fn run(
        &self,
        model: &Model,
        batch: LmBatch<'_>,
        state: ModelState,
    ) -> StepOutput<ModelState> {
        let LmBatch {
            tokens,
            targets,
            no_label,
        } = batch;
        let mut step = match manual_backward(model, self.backward, &tokens.device()) {
            Some(ManualBackward::Transformer(tf)) => {
                train_transformer_segment(tf, tokens, targets, no_label)
            }
            Some(ManualBackward::Feedback(fb)) => {
                let out = train_feedback_segment(fb, tokens, targets, no_label, state);
                StepOutput {
                    stats: out.stats,
                    grads: out.grads,
                    next: out.state,
                    logits: out.logits,
                }
            }
            None => {
                let out = model.forward_segment(tokens, state);
                StepOutput::autodiff(model, out.logits, targets, no_label, out.state)
            }
        };
        if step.stats.loss.is_finite() {
            model.add_span_loss_gradients(&mut step.grads);
        }
        model.tie_gradients(&mut step.grads);
        step
    }
}

/// One training segment of a Transformer with its hand-written backward
/// ([`TransformerLm::forward_backward`]): masked cross-entropy over `targets`, the gradient of
/// every parameter, and the (empty) state of a vanilla Transformer.
///
/// # Shapes
/// - tokens: `[B, T]`
/// - targets: `B * T` ids
/// - output logits: `[B, T, V]`
fn train_transformer_segment(
    model: &TransformerLm,
    tokens: Tensor<2, Int>,
    targets: &[u32],
    no_label: u32,
) -> StepOutput<ModelState> {
    let mut stats = None;
    let out = model.forward_backward(tokens, |logits| {
        let (s, grad) = masked_cross_entropy_grad(logits, targets, no_label);
        stats = Some(s);
        grad
    });
    StepOutput {
        stats: stats.expect("the loss gradient was asked for"),
        grads: out.grads,
        next: ModelState::Transformer(model.init_state()),
        logits: out.logits,
    }
}
