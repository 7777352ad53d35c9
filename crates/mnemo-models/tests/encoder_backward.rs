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

use common::seq2seq_grads::DecoderBatch;
use common::translation::padded_ids;
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
        let case = DecoderBatch {
            model,
            src: padded_ids(&[5, 2, 4], 5, VOCAB, 60 + i, false, &device),
            tgt_in: padded_ids(&[6, 5, 2], 6, VOCAB, 70 + i, true, &device),
            probe: seeded::normal([3, 6, VOCAB], 80 + i, &device),
        };
        let (logits, auto) = case.autodiff_with_masks(&name, 1000 + i, dropout > 0.0, &device);
        let (got, grads) = case.model.forward_backward_decoder_autodiff(
            case.src.clone(),
            case.tgt_in.clone(),
            |l| Some((l * case.probe.clone()).sum()),
        );
        case.assert_matches(&name, (got.inner(), &grads), (logits, &auto));
    }
}
