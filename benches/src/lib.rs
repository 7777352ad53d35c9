//! Shared setup of mnemo's criterion benches (`cargo bench -p mnemo-benches`).
//!
//! The sizes are those of the peer benchmark (`bench/peer_feedback.py`): bytes, D 256, 4 layers,
//! 4 heads, FFN 1024, memory S = 128, batch 8. Every bench is named `<piece>/<backend>/f32/...`
//! and reads its result back to the host before the clock stops (a device sync).
#![warn(missing_docs)]

use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use mnemo_models::{FeedbackConfig, FeedbackLm, Model, ModelConfig};

/// Batch B of the peer config.
pub const BATCH: usize = 8;
/// Model width D.
pub const D_MODEL: usize = 256;
/// Heads H.
pub const HEADS: usize = 4;
/// Memory span S.
pub const SPAN: usize = 128;

/// The peer benchmark's Feedback config (bytes, D 256, 4 layers, 4 heads, FFN 1024, S 128).
pub fn peer_feedback_config() -> FeedbackConfig {
    FeedbackConfig {
        vocab_size: 256,
        d_model: D_MODEL,
        n_layers: 4,
        n_heads: HEADS,
        d_ff: 1024,
        span: SPAN,
        dropout: 0.0,
        norm: Default::default(),
        placement: Default::default(),
        share_kv: true,
        ..FeedbackConfig::tiny(256)
    }
}

/// The peer-config Feedback model on `device`, seeded.
pub fn peer_feedback_model(device: &Device) -> FeedbackLm {
    device.seed(0);
    match ModelConfig::Feedback(peer_feedback_config()).init(device) {
        Model::Feedback(m) => m,
        _ => unreachable!("a feedback config builds a feedback model"),
    }
}

/// Deterministic token ids `[b, t]` below 256.
pub fn tokens(b: usize, t: usize, device: &Device) -> Tensor<2, Int> {
    let ids: Vec<i64> = (0..b * t).map(|i| ((i * 7919 + 13) % 256) as i64).collect();
    Tensor::from_data(TensorData::new(ids, [b, t]), device)
}

/// A standard-normal tensor.
pub fn randn<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

/// Names of the compiled backends to bench, with their plain devices.
pub fn backends() -> Vec<(&'static str, Device)> {
    ["flex", "ndarray"]
        .into_iter()
        .filter_map(|name| mnemo_backend::device(name).ok().map(|d| (name, d)))
        .collect()
}
