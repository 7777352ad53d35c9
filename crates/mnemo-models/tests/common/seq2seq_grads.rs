//! What the translation model's manual backward is checked with (tests/feedback_decoder_backward*.rs):
//! padded batches, a Feedback decoder with non-uniform mixing weights, and the comparison of
//! every parameter's gradient with autodiff's.
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use mnemo_core::seeded;
use mnemo_models::feedback::{FeedbackCore, FeedbackDecoder};
use mnemo_models::seq2seq_decoder::Decoder;
use mnemo_models::{PAD, Seq2Seq};

use super::assert_grad_matches;

/// Padded rows of ids in `4..vocab` (ids below 4 are the specials), row i `lens[i]` long.
///
/// # Shapes
/// - output: `[lens.len(), width]`
pub fn padded_ids(
    lens: &[usize],
    width: usize,
    vocab: usize,
    seed: u64,
    device: &Device,
) -> Tensor<2, Int> {
    let mut x = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut data = Vec::new();
    for &len in lens {
        for j in 0..width {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            data.push(if j < len {
                4 + ((x >> 33) % (vocab as u64 - 4)) as i64
            } else {
                PAD as i64
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

/// Compares the manual and autodiff gradient of every float parameter of a module.
struct Compare<'a> {
    name: &'a str,
    auto: &'a GradientsParams,
    manual: &'a GradientsParams,
    checked: usize,
}

impl ModuleVisitor for Compare<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let name = self.name;
        let want: Option<Tensor<D>> = self.auto.get(param.id);
        let got: Option<Tensor<D>> = self.manual.get(param.id);
        match (want, got) {
            (Some(want), Some(got)) => {
                let what = format!(
                    "{name}: grad of parameter {:?} {:?}",
                    param.id,
                    param.dims()
                );
                assert_grad_matches(&what, got, want);
                self.checked += 1;
            }
            (None, None) => {}
            (want, got) => panic!(
                "{name}: parameter {:?}: autodiff grad {} vs manual grad {}",
                param.id,
                want.is_some(),
                got.is_some()
            ),
        }
    }
}

/// Asserts that `manual` holds, for every float parameter of `module`, the gradient `auto`
/// holds (equal up to [`assert_grad_matches`]), and no other; returns how many were compared.
pub fn compare_every_parameter<M: Module>(
    name: &str,
    module: &M,
    auto: &GradientsParams,
    manual: &GradientsParams,
) -> usize {
    let mut compare = Compare {
        name,
        auto,
        manual,
        checked: 0,
    };
    module.visit(&mut compare);
    assert_eq!(
        compare.checked,
        auto.len(),
        "{name}: every parameter with a gradient compared"
    );
    assert_eq!(
        manual.len(),
        auto.len(),
        "{name}: no extra manual gradients"
    );
    compare.checked
}
