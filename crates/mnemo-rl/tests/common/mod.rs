//! Helpers shared by the policy tests: a small policy config, the largest difference.
#![allow(dead_code)]

use burn::tensor::Tensor;
use mnemo_core::{NormKind, NormPlacement};
use mnemo_rl::policy::{CoreKind, PolicyConfig};

/// A small pre-norm policy of `kind`: width 16, 2 layers, 2 heads, span 3, observations of 5,
/// 4 actions, shared K/V.
pub fn config(kind: CoreKind) -> PolicyConfig {
    PolicyConfig {
        kind,
        d_model: 16,
        n_layers: 2,
        n_heads: 2,
        d_ff: 32,
        span: 3,
        norm: NormKind::Layer,
        placement: NormPlacement::Pre,
        share_kv: true,
        obs_dim: 5,
        n_actions: 4,
    }
}

/// Largest absolute difference of two tensors.
pub fn max_abs_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}
