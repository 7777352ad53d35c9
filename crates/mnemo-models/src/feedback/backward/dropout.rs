//! Dropout in the manual forward and backward: the masks burn's [`Dropout`] would draw, kept for
//! the backward.
//!
//! burn's `Dropout::forward(x)` acts only while training on an autodiff device with `p > 0`; it
//! then draws `m = x.random_like(Bernoulli(1 - p))` and returns `x · m · 1/(1 - p)`. The manual
//! forward draws the same masks in the same order as [`FeedbackCore::forward`] (per step, per
//! layer: the attention output, then a hook's own (the translation decoder's cross-attention
//! output, [`super::cross`]), then the feed-forward hidden activations), on the same backend
//! RNG, so one seed gives both paths the same masks (tests/feedback_backward_dropout.rs and
//! tests/feedback_decoder_backward_dropout.rs check the gradients against autodiff with dropout
//! on). The backward multiplies by the same scaled mask.
//!
//! [`FeedbackCore::forward`]: crate::feedback::FeedbackCore::forward
use burn::nn::Dropout;
use burn::tensor::{Distribution, Tensor};

/// The keep probability `1 - p` of `dropout` if it acts on a model whose parameters are on an
/// autodiff device (`autodiff`), else None: burn's rule (training, autodiff, `p > 0`).
pub(crate) fn keep_prob(dropout: &Dropout, autodiff: bool) -> Option<f64> {
    (autodiff && dropout.training.is_enabled() && dropout.prob > 0.0).then_some(1.0 - dropout.prob)
}

/// A mask shaped like `x`: `1/keep` where an element is kept, 0 where it is dropped (one
/// Bernoulli draw per element, as burn's `Dropout`).
///
/// `x · mask` equals burn's `(x · m) · 1/keep` exactly: `m` is 0 or 1, so both round once.
fn draw_mask<const D: usize>(x: &Tensor<D>, keep: f64) -> Tensor<D> {
    x.random_like(Distribution::Bernoulli(keep))
        .mul_scalar(1.0 / keep)
}

/// A mask of shape `shape` drawn as [`dropped`] draws one for a tensor of that shape (for
/// masks drawn ahead of the values they will multiply).
pub(crate) fn mask<const D: usize>(
    shape: [usize; D],
    keep: f64,
    device: &burn::tensor::Device,
) -> Tensor<D> {
    draw_mask(&Tensor::zeros(shape, device), keep)
}

/// `x` after dropout with keep probability `keep` (None: no dropout), its mask appended to
/// `masks` for the backward.
///
/// # Shapes
/// - x: any shape, e.g. `[B, X]`; output as x
pub(crate) fn dropped<const D: usize>(
    x: Tensor<D>,
    keep: Option<f64>,
    masks: &mut Vec<Tensor<D>>,
) -> Tensor<D> {
    match keep {
        Some(keep) => {
            let mask = draw_mask(&x, keep);
            masks.push(mask.clone());
            x * mask
        }
        None => x,
    }
}

/// The gradient `dy` of a dropout's output carried to its input: `dy · mask` of step `t`
/// (`masks` empty: no dropout).
///
/// # Shapes
/// - dy: e.g. `[B, X]`; masks: per step, shaped as dy; output as dy
pub(crate) fn masked<const D: usize>(dy: Tensor<D>, masks: &[Tensor<D>], t: usize) -> Tensor<D> {
    match masks.is_empty() {
        true => dy,
        false => dy * masks[t].clone(),
    }
}
