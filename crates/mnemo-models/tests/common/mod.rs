//! Helpers shared by the model integration tests.
#![allow(dead_code)]
use burn::tensor::{Device, Int, Tensor, TensorData};

/// Deterministic pseudo-random token ids `[b, t]` in `0..vocab`.
pub fn tokens(b: usize, t: usize, vocab: usize, seed: u64, device: &Device) -> Tensor<2, Int> {
    let mut x = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let data: Vec<i64> = (0..b * t)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 33) % vocab as u64) as i64
        })
        .collect();
    Tensor::from_data(TensorData::new(data, [b, t]), device)
}

/// Largest absolute difference between two tensors.
pub fn max_abs_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

/// Largest absolute value.
pub fn max_abs<const D: usize>(a: Tensor<D>) -> f32 {
    a.abs().max().into_scalar::<f32>()
}
