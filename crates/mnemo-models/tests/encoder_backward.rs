//! The translation encoder by hand under decoders trained by autodiff
//! (`Seq2Seq::forward_backward_decoder_autodiff`, the Transformer and CAN decoders' training
//! step) against burn's autodiff of `Seq2Seq::forward`: logits and the gradient of every
//! parameter, without and with dropout (the same masks from one seed); and with Fourier
//! mixing, which the encoder by hand does not cover (autodiff throughout).
//!
//! The only test of its binary: the backend RNG that draws dropout masks is process-wide, and
//! the tests of one binary run on parallel threads, so another test's draws would interleave
//! with the masks both paths must draw alike.
mod common;

use burn::optim::GradientsParams;
use common::seq2seq_grads::compare_every_parameter;
use common::translation::padded_ids;
use common::{assert_close, assert_differs};
use mnemo_core::{TokenMixing, seeded};
use mnemo_models::{DecoderKind, Seq2SeqConfig};

const VOCAB: usize = 19;

#[test]
fn encoder_by_hand_under_an_autodiff_decoder_equals_autodiff() {
    let device = mnemo_backend::test_device();
    let cases = [
        (DecoderKind::Transformer, TokenMixing::Attention, 0.0),
        (DecoderKind::Can, TokenMixing::Attention, 0.0),
        (DecoderKind::Transformer, TokenMixing::Attention, 0.3),
        (DecoderKind::Transformer, TokenMixing::Fourier, 0.0),
    ];
    for (i, (decoder, mixing, dropout)) in cases.into_iter().enumerate() {
        let name = format!("{decoder:?} decoder, {mixing:?} mixing, dropout {dropout}");
        let config = Seq2SeqConfig {
            span: 4, // sources of 5 tokens clamp distances
            dropout,
            mixing,
            ..Seq2SeqConfig::tiny(VOCAB, decoder)
        };
        let i = i as u64;
        let model = seeded::reinit(config.init(&device), 30 + i);
        assert_eq!(
            model.supports_manual_encoder(),
            mixing == TokenMixing::Attention,
            "{name}"
        );
        let src = padded_ids(&[5, 2, 4], 5, VOCAB, 60 + i, false, &device);
        let tgt_in = padded_ids(&[6, 5, 2], 6, VOCAB, 70 + i, true, &device);
        let probe = seeded::normal([3, 6, VOCAB], 80 + i, &device);
        let masks_seed = 1000 + i;
        device.seed(masks_seed);
        let logits = model.forward(src.clone(), tgt_in.clone());
        if dropout > 0.0 {
            device.seed(masks_seed + 500);
            let other = model.forward(src.clone(), tgt_in.clone());
            let what = format!("{name}: logits with other masks");
            assert_differs(&what, other.inner(), logits.clone().inner(), 1e-2);
        }
        let loss = (logits.clone() * probe.clone()).sum();
        let auto = GradientsParams::from_grads(loss.backward(), &model);
        device.seed(masks_seed);
        let (got, grads) = model.forward_backward_decoder_autodiff(src, tgt_in, |logits| {
            Some((logits * probe.clone()).sum())
        });
        assert_close(
            &format!("{name}: logits"),
            got.inner(),
            logits.inner(),
            1e-5,
        );
        let checked = compare_every_parameter(&name, &model, &auto, &grads);
        assert!(checked > 30, "{name}: only {checked} parameters compared");
    }
}
