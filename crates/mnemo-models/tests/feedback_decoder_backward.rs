//! The Feedback decoder's manual backward (`Seq2Seq::forward_backward`: the decoder's core and
//! cross-attention by hand, the rest by autodiff from their input gradients) against burn's
//! autodiff of `Seq2Seq::forward`: logits and the gradient of every parameter of the model,
//! with padded sources and targets, shared and per-layer K/V, targets shorter and longer than
//! the span.
mod common;

use burn::tensor::{Int, Tensor, TensorData};
use common::seq2seq_grads::{DecoderBatch, decoder_batches};
use mnemo_models::{DecoderKind, PAD, Seq2SeqConfig, StepProducts};

const VOCAB: usize = 19;

/// With the per-step products on the backend and on the host kernels (host windows, whose
/// carried zero memories are folded: what translation training on a CPU runs).
#[test]
fn decoder_manual_backward_equals_autodiff_for_every_parameter() {
    let device = mnemo_backend::test_device();
    for products in [StepProducts::Backend, StepProducts::Host] {
        for (name, mut case) in decoder_batches(VOCAB, 0.0, &device) {
            case.model = case.model.with_step_products(products);
            let logits = case.forward();
            let auto = case.autodiff_grads(logits.clone());
            case.assert_manual_matches(&format!("{name}, {products:?}"), logits, &auto);
        }
    }
}

/// With the host products (the encoder by hand), a batch of one sentence (no batch halves),
/// and a batch whose first source has padding before a token (the encoder runs by autodiff
/// then): both equal autodiff.
#[test]
fn one_sentence_and_inner_padding_equal_autodiff() {
    let device = mnemo_backend::test_device();
    let (_, mut case) = decoder_batches(VOCAB, 0.0, &device).remove(0);
    case.model = case.model.with_step_products(StepProducts::Host);
    let one = DecoderBatch {
        model: case.model.clone(),
        src: case.src.clone().narrow(0, 0, 1),
        tgt_in: case.tgt_in.clone().narrow(0, 0, 1),
        probe: case.probe.clone().narrow(0, 0, 1),
    };
    let [b, s] = case.src.dims();
    let mut ids: Vec<i64> = case
        .src
        .clone()
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap();
    assert_ne!(ids[1], PAD as i64, "the first source's second token");
    ids[1] = PAD as i64;
    let inner = DecoderBatch {
        src: Tensor::<2, Int>::from_data(TensorData::new(ids, [b, s]), &device),
        ..case
    };
    for (name, case) in [("one sentence", one), ("inner padding", inner)] {
        let logits = case.forward();
        let auto = case.autodiff_grads(logits.clone());
        case.assert_manual_matches(name, logits, &auto);
    }
}

#[test]
fn can_and_post_norm_decoders_are_not_claimed() {
    let device = mnemo_backend::test_device();
    // The pre-norm Transformer decoder is claimed (tests/transformer_decoder_backward.rs),
    // the CAN decoder is not.
    assert!(
        Seq2SeqConfig::tiny(VOCAB, DecoderKind::Transformer)
            .init(&device)
            .supports_manual_backward()
    );
    assert!(
        !Seq2SeqConfig::tiny(VOCAB, DecoderKind::Can)
            .init(&device)
            .supports_manual_backward()
    );
    let post_transformer = Seq2SeqConfig {
        placement: mnemo_core::NormPlacement::Post,
        ..Seq2SeqConfig::tiny(VOCAB, DecoderKind::Transformer)
    };
    assert!(!post_transformer.init(&device).supports_manual_backward());
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
