//! The manual Feedback backward with dropout against burn's autodiff with the same masks.
//!
//! The only test of its binary: the backend RNG that draws dropout masks is process-wide, and
//! the tests of one binary run on parallel threads, so another test's draws would interleave
//! with the masks both paths must draw alike.
mod common;

use common::feedback_grads::{check_against_autodiff, configs};
use mnemo_models::FeedbackConfig;

/// With dropout the manual forward draws burn's masks in the autodiff step's order: from the
/// same seed both paths drop the same units, so logits and every gradient agree.
#[test]
fn manual_backward_with_dropout_equals_autodiff_with_the_same_masks() {
    let cases: Vec<_> = configs()
        .into_iter()
        .filter(|(name, ..)| {
            [
                "shared kv, T > S",
                "per-layer kv",
                "official options, per-layer kv",
            ]
            .contains(name)
        })
        .map(|(name, config, t_len)| {
            let config = FeedbackConfig {
                dropout: 0.3,
                ..config
            };
            (name, config, t_len)
        })
        .collect();
    assert_eq!(cases.len(), 3);
    check_against_autodiff(cases);
}
