//! Splitting a model-width tensor into attention heads and merging it back.
use burn::tensor::Tensor;

/// Head size Dh of a configured `d_head`: itself, or `d_model / n_heads` when it is 0 (the
/// default of every model config's `d_head`).
pub fn head_size(d_model: usize, n_heads: usize, d_head: usize) -> usize {
    match d_head {
        0 => d_model / n_heads,
        d => d,
    }
}

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
