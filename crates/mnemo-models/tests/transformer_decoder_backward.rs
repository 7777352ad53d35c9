//! The translation model's manual backward with a Transformer decoder (`Seq2Seq::forward_backward`:
//! the encoder and the decoder's layers by hand, the cross-attention over the source on the
//! span attention's tiles) against burn's autodiff of `Seq2Seq::forward`: logits and the
//! gradient of every parameter; targets longer and shorter than the span, three decoder layers,
//! dropout (the same masks from one seed), one sentence (no batch halves), a source padded
//! before a token (the autodiff path then).
//!
//! The only test of its binary: the backend RNG that draws dropout masks is process-wide, and
//! the tests of one binary run on parallel threads, so another test's draws would interleave
//! with the masks both paths must draw alike.
mod common;

use burn::tensor::{Int, Tensor, TensorData};
use common::seq2seq_grads::DecoderBatch;
use common::translation::padded_ids;
use mnemo_core::seeded;
use mnemo_models::{DecoderKind, PAD, Seq2SeqConfig};

const VOCAB: usize = 19;

#[test]
fn transformer_decoder_manual_backward_equals_autodiff() {
    let device = mnemo_backend::test_device();
    let base = Seq2SeqConfig {
        span: 4,
        ..Seq2SeqConfig::tiny(VOCAB, DecoderKind::Transformer)
    };
    let three = Seq2SeqConfig {
        decoder_layers: 3,
        ..base.clone()
    };
    let dropout = Seq2SeqConfig {
        dropout: 0.3,
        ..base.clone()
    };
    // (name, config, target length, sentences, padding inside the first source)
    let cases = [
        ("T > S", &base, 7, 3, false),
        ("T < S", &base, 3, 3, false),
        ("3 layers", &three, 6, 3, false),
        ("dropout", &dropout, 6, 3, false),
        ("one sentence", &base, 6, 1, false),
        ("inner padding", &base, 6, 3, true),
    ];
    for (i, (name, config, t_len, rows, inner)) in cases.into_iter().enumerate() {
        let i = i as u64;
        let model = seeded::reinit(config.init(&device), 30 + i);
        assert!(model.supports_manual_backward(), "{name}");
        let src_lens = [5, 2, 4];
        let tgt_lens = [t_len, t_len - 1, 2];
        let src = padded_ids(&src_lens[..rows], 5, VOCAB, 60 + i, false, &device);
        let src = if inner {
            let mut ids: Vec<i64> = src
                .into_data()
                .convert::<i64>()
                .try_to_vec::<i64>()
                .unwrap();
            ids[1] = PAD as i64;
            Tensor::<2, Int>::from_data(TensorData::new(ids, [rows, 5]), &device)
        } else {
            src
        };
        let case = DecoderBatch {
            model,
            src,
            tgt_in: padded_ids(&tgt_lens[..rows], t_len, VOCAB, 70 + i, true, &device),
            probe: seeded::normal([rows, t_len, VOCAB], 80 + i, &device),
        };
        let dropout = config.dropout > 0.0;
        let (logits, auto) = case.autodiff_with_masks(name, 1000 + i, dropout, &device);
        case.assert_manual_matches(name, logits, &auto);
    }
}
