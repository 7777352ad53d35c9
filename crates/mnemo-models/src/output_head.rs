//! The last step every language model and decoder shares: the optional final norm, then (for a
//! language model) the vocabulary projection.
use burn::nn::Linear;
use burn::tensor::Tensor;
use mnemo_core::Norm;

/// Logits from the last layer's states: `head(final_norm(h))`, or `head(h)` when there is no
/// final norm (post-norm models).
///
/// # Shapes
/// - h: `[B, T, D]`
/// - output: `[B, T, V]`
pub(crate) fn logits(final_norm: &Option<Norm>, head: &Linear, h: Tensor<3>) -> Tensor<3> {
    head.forward(normed(final_norm, h))
}

/// `final_norm(h)`, or `h` when there is no final norm (post-norm stacks).
///
/// # Shapes
/// - h: `[B, T, D]`
/// - output: `[B, T, D]`
pub(crate) fn normed(final_norm: &Option<Norm>, h: Tensor<3>) -> Tensor<3> {
    match final_norm {
        Some(norm) => norm.forward(h),
        None => h,
    }
}
