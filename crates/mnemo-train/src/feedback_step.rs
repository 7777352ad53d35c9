//! One Feedback Transformer training step with the hand-written backward
//! ([`FeedbackLm::forward_backward_segment`]): loss, gradients of every parameter, next state.
//!
//! Every call into the Feedback model's training API goes through this file (and inference
//! through [`crate::evaluate::forward_segment`]).
use burn::optim::GradientsParams;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use mnemo_kernels::cross_entropy_rows;
use mnemo_models::{FeedbackLm, Model, ModelState, Seq2Seq, StepProducts, TransformerLm};
use serde::{Deserialize, Serialize};

use crate::loss::{LossStats, scored_targets};

/// How the trainer computes a Feedback model's gradients (`train.feedback_backward`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackBackward {
    /// Hand-written backward through time with weight gradients from large matmuls (exact,
    /// dropout included; used when the model is pre-norm, otherwise the trainer falls back to
    /// autodiff).
    #[default]
    Manual,
    /// burn's autodiff over the per-step graph.
    Autodiff,
}

/// The per-step multiply for `device`: host kernels where its tensors live in host memory
/// (`flex`, `ndarray`, libtorch on the CPU), the backend's own matmul elsewhere.
pub fn step_products(device: &Device) -> StepProducts {
    match mnemo_backend::runs_on_host(device) {
        true => StepProducts::Host,
        false => StepProducts::Backend,
    }
}

/// A model whose gradients come from its hand-written backward.
#[derive(Debug, Clone, Copy)]
pub enum ManualBackward<'a> {
    /// The Feedback language model ([`FeedbackLm::forward_backward_segment`]).
    Feedback(&'a FeedbackLm),
    /// The Transformer ([`TransformerLm::forward_backward`]).
    Transformer(&'a TransformerLm),
}

/// The model of `model` if its gradients come from a hand-written backward: with `backward` =
/// [`FeedbackBackward::Manual`], when the model supports it (Feedback: pre-norm; Transformer:
/// pre-norm softmax layers, and `device` keeps tensors in host memory, where its attention
/// runs).
pub fn manual_backward<'a>(
    model: &'a Model,
    backward: FeedbackBackward,
    device: &Device,
) -> Option<ManualBackward<'a>> {
    if backward != FeedbackBackward::Manual {
        return None;
    }
    match model {
        Model::Feedback(fb) if fb.supports_manual_backward() => Some(ManualBackward::Feedback(fb)),
        Model::Transformer(tf)
            if tf.supports_manual_backward() && mnemo_backend::runs_on_host(device) =>
        {
            Some(ManualBackward::Transformer(tf))
        }
        _ => None,
    }
}

/// What [`train_feedback_segment`] returns.
#[derive(Debug)]
pub struct FeedbackStep {
    /// Loss and accuracy of the segment.
    pub stats: LossStats,
    /// Gradients of every parameter (on the inner device), ready for the optimizer.
    pub grads: GradientsParams,
    /// The state to carry into the next segment (detached).
    pub state: ModelState,
    /// The logits of the segment, `[B, T, V]`.
    pub logits: Tensor<3>,
}

/// One training segment of a Feedback model with the hand-written backward: masked
/// cross-entropy over `targets` (row-major `[B, T]`, `no_label` positions unscored), the
/// gradient of every parameter and the next state.
///
/// # Panics
/// If the model does not [support](FeedbackLm::supports_manual_backward) the manual backward,
/// or `state` is not a Feedback state.
///
/// # Shapes
/// - tokens: `[B, T]`
/// - targets: `B * T` ids
/// - output logits: `[B, T, V]`
///
/// The per-step multiply is the model's, fixed when it was built ([`step_products`]).
pub fn train_feedback_segment(
    model: &FeedbackLm,
    tokens: Tensor<2, Int>,
    targets: &[u32],
    no_label: u32,
    state: ModelState,
) -> FeedbackStep {
    let ModelState::Feedback(state) = state else {
        panic!("{} state passed to a feedback model", state.kind());
    };
    let mut seen = None;
    let out = model.forward_backward_segment(tokens, state, |logits| {
        let (s, grad) = masked_cross_entropy_grad(logits.clone(), targets, no_label);
        seen = Some((s, logits));
        grad
    });
    let (stats, logits) = seen.expect("the loss gradient was asked for");
    FeedbackStep {
        stats,
        grads: out.grads,
        state: ModelState::Feedback(out.state),
        logits,
    }
}

/// One translation batch of a Feedback- or Transformer-decoder model with the hand-written
/// backward ([`Seq2Seq::forward_backward`]): masked cross-entropy over `targets` (row-major `[B, T]`,
/// `no_label` positions unscored), logits and the gradient of every parameter.
///
/// # Panics
/// If the model does not [support](Seq2Seq::supports_manual_backward) the manual backward.
///
/// # Shapes
/// - src: `[B, S_src]`, tgt_in: `[B, T]`
/// - targets: `B * T` ids
/// - output logits: `[B, T, V]`
pub fn train_decoder_batch(
    model: &Seq2Seq,
    src: Tensor<2, Int>,
    tgt_in: Tensor<2, Int>,
    targets: &[u32],
    no_label: u32,
) -> (LossStats, GradientsParams, Tensor<3>) {
    let mut stats = None;
    let out = model.forward_backward(src, tgt_in, |logits| {
        let (s, grad) = masked_cross_entropy_grad(logits, targets, no_label);
        stats = Some(s);
        grad
    });
    (
        stats.expect("the loss gradient was asked for"),
        out.grads,
        out.logits,
    )
}

/// The masked cross-entropy of [`masked_cross_entropy`](crate::loss::masked_cross_entropy)
/// and its gradient with respect to the logits: `(softmax - onehot) · mask / max(|S|, 1)`.
/// On CPU backends one pass per row on the host (`mnemo_kernels::cross_entropy_rows`), else
/// burn's operations on the device.
///
/// # Shapes
/// - logits: `[B, T, V]`
/// - targets: `B * T` ids
/// - output gradient: `[B, T, V]`
pub fn masked_cross_entropy_grad(
    logits: Tensor<3>,
    targets: &[u32],
    no_label: u32,
) -> (LossStats, Tensor<3>) {
    let [b, t, v] = logits.dims();
    let (n, scored) = scored_targets([b, t], targets, no_label);
    let logits = logits.reshape([n, v]);
    let rows = (targets, no_label, scored);
    let ((loss, correct), grad) = match mnemo_backend::runs_on_host(&logits.device()) {
        true => cross_entropy_grad_on_host(logits, rows),
        false => cross_entropy_grad_on_device(logits, rows),
    };
    let stats = LossStats {
        loss,
        correct,
        scored,
        tokens: n,
    };
    (stats, grad.reshape([b, t, v]))
}

/// The targets of a batch's rows, the id that is not scored and how many rows are scored.
type Rows<'a> = (&'a [u32], u32, usize);

/// [`masked_cross_entropy_grad`]'s mean loss, correct rows and gradient as one pass per row
/// over the logits read in place.
///
/// # Shapes
/// - logits: `[N, V]`; output gradient `[N, V]`
fn cross_entropy_grad_on_host(logits: Tensor<2>, rows: Rows) -> ((f64, usize), Tensor<2>) {
    let [n, v] = logits.dims();
    let device = logits.device();
    let mut grad = vec![0.0f32; n * v];
    let sums = mnemo_backend::with_slice(logits, |x| cross_entropy_rows(x, rows, v, &mut grad));
    let grad = Tensor::<2>::from_data(TensorData::new(grad, [n, v]), &device);
    ((sums.loss / rows.2.max(1) as f64, sums.correct), grad)
}

/// [`cross_entropy_grad_on_host`] in burn's operations on the logits' device.
///
/// # Shapes
/// - logits: `[N, V]`; output gradient `[N, V]`
fn cross_entropy_grad_on_device(
    logits: Tensor<2>,
    (targets, no_label, scored): Rows,
) -> ((f64, usize), Tensor<2>) {
    let [n, v] = logits.dims();
    let device = logits.device();
    let denom = scored.max(1) as f32;
    let mut onehot = vec![0.0f32; n * v];
    let mut mask = vec![0.0f32; n];
    for (i, &id) in targets.iter().enumerate() {
        if id != no_label {
            onehot[i * v + id as usize] = 1.0;
            mask[i] = 1.0 / denom;
        }
    }
    let onehot = Tensor::<2>::from_data(TensorData::new(onehot, [n, v]), &device);
    let mask = Tensor::<2>::from_data(TensorData::new(mask, [n, 1]), &device);
    let log_probs = log_softmax(logits.clone(), 1); // [N,V]
    let loss = -(log_probs.clone() * onehot.clone() * mask.clone())
        .sum()
        .into_scalar::<f64>();
    let ids: Vec<i64> = targets.iter().map(|&id| i64::from(id)).collect();
    let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [n]), &device);
    let hits = logits.argmax(1).reshape([n]).equal(ids).float() * mask.clone().reshape([n]);
    let correct = (hits.sum().into_scalar::<f64>() * denom as f64).round() as usize;
    let grad = (log_probs.exp() - onehot) * mask; // [N,V]
    ((loss, correct), grad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::masked_cross_entropy;
    use burn::tensor::Distribution;

    #[test]
    fn loss_gradient_matches_autodiff() {
        let device = mnemo_backend::test_device();
        let logits =
            Tensor::<3>::random([2, 3, 5], Distribution::Normal(0.0, 2.0), &device).require_grad();
        let targets = [1, 4, 3, 0, 2, 3];
        let auto = masked_cross_entropy(logits.clone(), &targets, 3);
        let mut g = auto.loss.backward();
        let want = logits.grad_remove(&mut g).unwrap();
        let (stats, grad) = masked_cross_entropy_grad(logits.clone().inner(), &targets, 3);
        let auto_stats = auto.stats();
        assert!(
            (stats.loss - auto_stats.loss).abs() < 1e-5,
            "{stats:?} vs {auto_stats:?}"
        );
        assert_eq!(
            (stats.correct, stats.scored, stats.tokens),
            (auto_stats.correct, 4, 6)
        );
        let diff = (grad - want).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-6, "max |grad - autodiff| = {diff}");
    }

    /// The host pass and burn's operations agree on loss, count and gradient (a batch with
    /// unscored rows, large logits, and a vocabulary wider than a SIMD vector).
    #[test]
    fn host_and_device_paths_agree() {
        let device = mnemo_backend::test_device();
        let logits = mnemo_core::seeded::normal([15, 40], 7, &device) * 6.0;
        let targets: Vec<u32> = (0..15u32)
            .map(|i| if i % 4 == 3 { 99 } else { i * 7 % 40 })
            .collect();
        let rows = (&targets[..], 99, 12);
        let ((hl, hc), hg) = cross_entropy_grad_on_host(logits.clone(), rows);
        let ((dl, dc), dg) = cross_entropy_grad_on_device(logits, rows);
        assert!((hl - dl).abs() < 1e-5 && hl > 0.1, "loss {hl} vs {dl}");
        assert_eq!(hc, dc);
        let diff = (hg - dg).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-6, "max |host - device| = {diff}");
    }
}
