//! Timing a phase: iteration times, their median, tokens/s, and the matmul FLOPs per token the
//! `approx_gflop_per_s` column counts.
use std::time::Instant;

use mnemo_models::{AttentionConfig, FeedbackConfig, TransformerConfig};
use serde_json::{Value, json};

use super::proc_stats::round;

/// Wall times of `iters` calls of `f` after `warmup` untimed ones, in seconds.
pub(crate) fn timed(warmup: usize, iters: usize, mut f: impl FnMut()) -> Vec<f64> {
    for _ in 0..warmup {
        f();
    }
    (0..iters)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64()
        })
        .collect()
}

/// The median of `times` (the mean of the middle two for an even count).
pub(crate) fn median(times: &[f64]) -> f64 {
    let mut v = times.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Tokens/s of the timed iterations; `flops_per_token` None writes `approx_gflop_per_s: null`.
pub(crate) fn summarize(
    times: &[f64],
    tokens_per_iter: usize,
    flops_per_token: Option<f64>,
) -> Value {
    let med = median(times);
    let best = times.iter().cloned().fold(f64::INFINITY, f64::min);
    json!({
        "tokens_per_iter": tokens_per_iter,
        "iter_s": times.iter().map(|t| round(*t, 4)).collect::<Vec<_>>(),
        "median_iter_s": round(med, 4),
        "tokens_per_s": round(tokens_per_iter as f64 / med, 1),
        "best_tokens_per_s": round(tokens_per_iter as f64 / best, 1),
        "approx_gflop_per_s": flops_per_token
            .map(|f| round(f * tokens_per_iter as f64 / med / 1e9, 3)),
    })
}

/// Matmul FLOPs of one Feedback token (forward): per layer q, q·kᵀ, q·pᵀ, a·v, output, FFN;
/// once per token the shared K/V projection; the output layer.
pub(crate) fn fb_flops_per_token(c: &FeedbackConfig) -> f64 {
    let (d, s, ff) = (c.d_model as f64, c.span as f64, c.d_ff as f64);
    let per_layer = 2.0 * d * d + 2.0 * s * d * 3.0 + 2.0 * d * d + 2.0 * 2.0 * d * ff;
    c.n_layers as f64 * per_layer + 2.0 * d * 2.0 * d + 2.0 * d * c.vocab_size as f64
}

/// Matmul FLOPs of one token of Transformer `c` attending to `ctx` positions (forward): per
/// layer the q/k/v projections, q·kᵀ, q·pᵀ and a·v over `ctx` keys, q·kᵀ and a·v over the
/// persistent slots, the output projection and the feed-forward sublayer (if any); the
/// output layer. None for linear, Performer and sparse attention (not modelled).
pub(crate) fn tf_flops_per_token(c: &TransformerConfig, ctx: f64) -> Option<f64> {
    if c.attention != AttentionConfig::Softmax {
        return None;
    }
    let (d, ff, slots) = (c.d_model as f64, c.d_ff as f64, c.persistent_memory as f64);
    let ffn = if c.feed_forward {
        2.0 * 2.0 * d * ff
    } else {
        0.0
    };
    let per_layer =
        2.0 * d * 3.0 * d + 2.0 * ctx * d * 3.0 + 2.0 * slots * d * 2.0 + 2.0 * d * d + ffn;
    Some(c.n_layers as f64 * per_layer + 2.0 * d * c.vocab_size as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::size::BenchSize;
    use crate::bench::workload::{transformer_config, variant_config};

    const PEER: BenchSize = BenchSize::PEER;

    #[test]
    fn flops_are_modelled_for_softmax_only() {
        let peer = transformer_config(&PEER);
        // The formula tf_train has always used: 4 layers, 64 keys per query on average.
        let (d, ff) = (PEER.d_model as f64, PEER.d_ff as f64);
        let layer = 2.0 * d * 3.0 * d + 2.0 * 64.0 * d * 3.0 + 2.0 * d * d + 4.0 * d * ff;
        let want = 4.0 * layer + 2.0 * d * PEER.vocab as f64;
        assert_eq!(tf_flops_per_token(&peer, 64.0), Some(want));
        let all = variant_config("all_attention", &PEER).unwrap();
        let slots = 4.0 * (2.0 * 64.0 * d * 2.0 - 4.0 * d * ff);
        assert_eq!(tf_flops_per_token(&all, 64.0), Some(want + slots));
        for name in ["linear", "delta", "performer", "sparse"] {
            assert_eq!(
                tf_flops_per_token(&variant_config(name, &PEER).unwrap(), 64.0),
                None
            );
        }
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
