//! The Feedback decoder's manual backward (`Seq2Seq::forward_backward`: the decoder's core and
//! cross-attention by hand, the rest by autodiff from their input gradients) against burn's
//! autodiff of `Seq2Seq::forward`: logits and the gradient of every parameter of the model,
//! with padded sources and targets, shared and per-layer K/V, targets shorter and longer than
//! the span.
mod common;

use burn::optim::GradientsParams;
use common::seq2seq_grads::{compare_every_parameter, padded_ids, with_mixed_memory};
use common::{max_abs, max_abs_diff};
use mnemo_core::seeded;
use mnemo_models::{DecoderConfig, DecoderKind, Seq2SeqConfig};

const VOCAB: usize = 19;

#[test]
fn decoder_manual_backward_equals_autodiff_for_every_parameter() {
    let device = mnemo_backend::test_device();
    let base = Seq2SeqConfig {
        span: 4,
        ..Seq2SeqConfig::tiny(VOCAB, DecoderKind::Feedback)
    };
    let cases = [
        ("shared kv, T > S", base.clone(), 7),
        (
            "per-layer kv, 3 layers",
            Seq2SeqConfig {
                decoder: DecoderConfig::Feedback { share_kv: false },
                decoder_layers: 3,
                ..base.clone()
            },
            6,
        ),
        ("shared kv, T < S", base.clone(), 3),
    ];
    for (i, (name, config, t_len)) in cases.into_iter().enumerate() {
        let model = with_mixed_memory(
            seeded::reinit(config.init(&device), 30 + i as u64),
            50 + i as u64,
        );
        assert!(model.supports_manual_backward(), "{name}");
        let src = padded_ids(&[5, 2, 4], 5, VOCAB, 60 + i as u64, &device);
        let tgt_in = padded_ids(&[t_len, t_len - 1, 2], t_len, VOCAB, 70 + i as u64, &device);
        let probe = seeded::normal([3, t_len, VOCAB], 80 + i as u64, &device);
        let logits = model.forward(src.clone(), tgt_in.clone());
        let auto =
            GradientsParams::from_grads((logits.clone() * probe.clone()).sum().backward(), &model);
        let manual = model.forward_backward(src, tgt_in, |l| {
            assert_eq!(l.dims(), [3, t_len, VOCAB]);
            probe.clone().inner()
        });
        let diff = max_abs_diff(manual.logits.clone(), logits.clone().inner());
        assert!(
            diff < 1e-5 * (1.0 + max_abs(logits.inner())),
            "{name}: logits differ by {diff}"
        );
        let checked = compare_every_parameter(name, &model, &auto, &manual.grads);
        assert!(checked > 30, "{name}: only {checked} parameters compared");
    }
}

#[test]
fn transformer_and_post_norm_decoders_are_not_claimed() {
    let device = mnemo_backend::test_device();
    assert!(
        !Seq2SeqConfig::tiny(VOCAB, DecoderKind::Transformer)
            .init(&device)
            .supports_manual_backward()
    );
    // Dropout is claimed (tests/feedback_decoder_backward_dropout.rs checks it).
    let dropout = Seq2SeqConfig {
        dropout: 0.1,
        ..Seq2SeqConfig::tiny(VOCAB, DecoderKind::Feedback)
    };
    assert!(dropout.init(&device).supports_manual_backward());
    let post = Seq2SeqConfig {
        placement: mnemo_core::NormPlacement::Post,
        ..Seq2SeqConfig::tiny(VOCAB, DecoderKind::Feedback)
    };
    assert!(!post.init(&device).supports_manual_backward());
}
