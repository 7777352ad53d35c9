//! The Feedback decoder's manual backward with dropout (encoder, embeddings, the decoder core's
//! attention and feed-forward, the cross-attention outputs) against burn's autodiff with the
//! same masks.
//!
//! The only test of its binary: the backend RNG that draws dropout masks is process-wide, and
//! the tests of one binary run on parallel threads, so another test's draws would interleave
//! with the masks both paths must draw alike.
mod common;

use burn::optim::GradientsParams;
use common::seq2seq_grads::{compare_every_parameter, padded_ids, with_mixed_memory};
use common::{assert_close, assert_differs};
use mnemo_core::seeded;
use mnemo_models::{DecoderConfig, DecoderKind, Seq2SeqConfig};

const VOCAB: usize = 19;

/// From one seed both paths draw the same masks (the autodiff part the encoder's and the
/// embeddings', the manual part the core's and the cross-attention's, in the autodiff step's
/// order), so logits and every gradient agree; from another seed the logits differ (the masks
/// act).
#[test]
fn decoder_manual_backward_with_dropout_equals_autodiff_with_the_same_masks() {
    let device = mnemo_backend::test_device();
    let base = Seq2SeqConfig {
        span: 4,
        dropout: 0.3,
        ..Seq2SeqConfig::tiny(VOCAB, DecoderKind::Feedback)
    };
    let cases = [
        ("shared kv, T > S", base.clone(), 7),
        (
            "per-layer kv, 3 layers",
            Seq2SeqConfig {
                decoder: DecoderConfig::Feedback { share_kv: false },
                decoder_layers: 3,
                ..base
            },
            5,
        ),
    ];
    for (i, (name, config, t_len)) in cases.into_iter().enumerate() {
        let seed = 10 * i as u64;
        let model = with_mixed_memory(seeded::reinit(config.init(&device), 30 + seed), 50 + seed);
        assert!(model.supports_manual_backward(), "{name}");
        let src = padded_ids(&[5, 2, 4], 5, VOCAB, 60 + seed, &device);
        let tgt_in = padded_ids(&[t_len, t_len - 1, 2], t_len, VOCAB, 70 + seed, &device);
        let probe = seeded::normal([3, t_len, VOCAB], 80 + seed, &device);
        let forward = |masks_seed| {
            device.seed(masks_seed);
            model.forward(src.clone(), tgt_in.clone())
        };
        let logits = forward(1000 + seed);
        let other = forward(1500 + seed);
        let what = format!("{name}: logits with other masks");
        assert_differs(&what, other.inner(), logits.clone().inner(), 1e-2);
        let auto =
            GradientsParams::from_grads((logits.clone() * probe.clone()).sum().backward(), &model);
        device.seed(1000 + seed);
        let manual = model.forward_backward(src.clone(), tgt_in.clone(), |_| probe.clone().inner());
        let what = format!("{name}: manual vs autodiff logits");
        assert_close(&what, manual.logits.clone(), logits.inner(), 1e-5);
        let checked = compare_every_parameter(name, &model, &auto, &manual.grads);
        assert!(checked > 30, "{name}: only {checked} parameters compared");
    }
}
