//! The last step every language model shares: the optional final norm, then the vocabulary
//! projection.
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
    let h = match final_norm {
        Some(norm) => norm.forward(h),
        None => h,
    };
    head.forward(h)
}
