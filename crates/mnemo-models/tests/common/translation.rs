//! Helpers of the translation model's tests: padded batches of ids, and a Feedback decoder with
//! non-uniform mixing weights.
use burn::tensor::{Device, Int, Tensor, TensorData};
use mnemo_core::seeded;
use mnemo_models::feedback::{FeedbackCore, FeedbackDecoder};
use mnemo_models::seq2seq_decoder::Decoder;
use mnemo_models::{BOS, PAD, Seq2Seq};

/// Padded rows of ids: row i has `lens[i]` pseudo-random ids in `4..vocab` (ids below 4 are
/// the specials) then PAD up to `width`; with `bos`, each row starts with BOS (counted in its
/// length).
///
/// # Shapes
/// - output: `[lens.len(), width]`
pub fn padded_ids(
    lens: &[usize],
    width: usize,
    vocab: usize,
    seed: u64,
    bos: bool,
    device: &Device,
) -> Tensor<2, Int> {
    let mut x = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut data = Vec::with_capacity(lens.len() * width);
    for &len in lens {
        for j in 0..width {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let token = 4 + ((x >> 33) % (vocab as u64 - 4)) as i64;
            data.push(if j >= len {
                PAD as i64
            } else if bos && j == 0 {
                BOS as i64
            } else {
                token
            });
        }
    }
    Tensor::from_data(TensorData::new(data, [lens.len(), width]), device)
}

/// `model` with seeded normal noise added to its Feedback decoder's mixing logits, so that the
/// mix is not uniform.
///
/// # Panics
/// If the decoder is not a Feedback decoder.
pub fn with_mixed_memory(model: Seq2Seq, seed: u64) -> Seq2Seq {
    let Decoder::Feedback(dec) = model.decoder else {
        panic!("a Feedback decoder was asked for")
    };
    let n = dec.core.layers.len() + 1;
    let mix = dec.core.mix.clone().map(|w| {
        let device = w.device();
        (w + seeded::normal([n], seed, &device))
            .detach()
            .require_grad()
    });
    Seq2Seq {
        decoder: Decoder::Feedback(FeedbackDecoder {
            core: FeedbackCore { mix, ..dec.core },
            ..dec
        }),
        ..model
    }
}
