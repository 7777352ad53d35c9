//! The hand-written Feedback backward (`forward_backward_segment`, with either `StepProducts`) against burn's autodiff of
//! `forward_segment`: logits, next state and the gradient of every parameter, for shared and
//! per-layer K/V, LayerNorm and RMSNorm, over several segments with carried memory (windows
//! straddle segment boundaries, and segments both shorter and longer than the span), with and
//! without adaptive spans (with dropout: tests/feedback_backward_dropout.rs).
mod common;

use burn::module::Module;
use common::feedback_grads::{VOCAB, check_against_autodiff, configs, with_spans};
use common::{max_abs, max_abs_diff, tokens};
use mnemo_core::NormPlacement;
use mnemo_models::{FeedbackConfig, StepProducts};

#[test]
fn manual_backward_equals_autodiff_for_every_parameter() {
    check_against_autodiff(configs());
}

#[test]
fn post_norm_is_not_claimed_and_dropout_is() {
    let device = mnemo_backend::test_device();
    let post = FeedbackConfig {
        placement: NormPlacement::Post,
        ..FeedbackConfig::tiny(VOCAB)
    };
    assert!(!post.init(&device).supports_manual_backward());
    let dropout = FeedbackConfig {
        dropout: 0.1,
        ..FeedbackConfig::tiny(VOCAB)
    };
    assert!(dropout.init(&device).supports_manual_backward());
    assert!(
        FeedbackConfig::tiny(VOCAB)
            .init(&device)
            .supports_manual_backward()
    );
}

#[test]
fn inference_on_host_kernels_equals_forward_segment() {
    // A plain (inference) device and host products: `infer_segment` takes the manual forward.
    let device = mnemo_backend::test_device().inner();
    for (name, config, t_len) in configs() {
        device.seed(12);
        let model =
            with_spans(config.init(&device).materialize()).with_step_products(StepProducts::Host);
        let b = 3;
        let (mut reference, mut host) =
            (model.init_state(b, &device), model.init_state(b, &device));
        for seg in 0..3 {
            let x = tokens(b, t_len, VOCAB, 200 + seg, &device);
            let (want, next_want) = model.forward_segment(x.clone(), reference);
            let (got, next_got) = model.infer_segment(x.clone(), host);
            let diff = max_abs_diff(got, want.clone());
            assert!(
                diff < 1e-5 * (1.0 + max_abs(want)),
                "{name}, segment {seg}: logits differ by {diff}"
            );
            let diff = max_abs_diff(next_got.memories.clone(), next_want.memories.clone());
            assert!(
                diff < 1e-5,
                "{name}, segment {seg}: next memories differ by {diff}"
            );
            (reference, host) = (next_want, next_got);
        }
    }
    let x = tokens(2, 5, VOCAB, 7, &device);
    // Dropout does not act on a plain device: the manual forward draws no masks either.
    let dropout = FeedbackConfig {
        dropout: 0.3,
        ..FeedbackConfig::tiny(VOCAB)
    }
    .init(&device);
    let (want, _) = dropout.forward_segment(x.clone(), dropout.init_state(2, &device));
    let dropout = dropout.with_step_products(StepProducts::Host);
    let (got, _) = dropout.infer_segment(x.clone(), dropout.init_state(2, &device));
    let diff = max_abs_diff(got, want.clone());
    assert!(
        diff < 1e-5 * (1.0 + max_abs(want)),
        "dropout model: logits differ by {diff}"
    );
    // Without the manual forward's conditions it is exactly `forward_segment` (of the same
    // model: its steps run on the host kernels too).
    let post = FeedbackConfig {
        placement: NormPlacement::Post,
        ..FeedbackConfig::tiny(VOCAB)
    }
    .init(&device)
    .with_step_products(StepProducts::Host);
    let (want, _) = post.forward_segment(x.clone(), post.init_state(2, &device));
    let (got, _) = post.infer_segment(x, post.init_state(2, &device));
    assert_eq!(
        max_abs_diff(got, want),
        0.0,
        "post-norm models fall back to forward_segment"
    );
}
