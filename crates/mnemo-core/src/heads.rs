//! Splitting a model-width tensor into attention heads and merging it back.
use burn::tensor::Tensor;

/// Split the last dimension into heads.
///
/// # Shapes
/// - x: `[B, T, H * Dh]`
/// - output: `[B, H, T, Dh]`
pub fn split_heads(x: Tensor<3>, n_heads: usize) -> Tensor<4> {
    let [b, t, d] = x.dims();
    x.reshape([b, t, n_heads, d / n_heads]).swap_dims(1, 2)
}

/// Merge heads back into the model width (inverse of [`split_heads`]).
///
/// # Shapes
/// - x: `[B, H, T, Dh]`
/// - output: `[B, T, H * Dh]`
pub fn merge_heads(x: Tensor<4>) -> Tensor<3> {
    let [b, h, t, dh] = x.dims();
    x.swap_dims(1, 2).reshape([b, t, h * dh])
}
