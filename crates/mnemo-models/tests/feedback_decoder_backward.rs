//! The Feedback decoder's manual backward (`Seq2Seq::forward_backward`: the decoder's core and
//! cross-attention by hand, the rest by autodiff from their input gradients) against burn's
//! autodiff of `Seq2Seq::forward`: logits and the gradient of every parameter of the model,
//! with padded sources and targets, shared and per-layer K/V, targets shorter and longer than
//! the span.
mod common;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use common::{assert_grad_matches, max_abs, max_abs_diff};
use mnemo_core::seeded;
use mnemo_models::feedback::{FeedbackCore, FeedbackDecoder};
use mnemo_models::seq2seq_decoder::Decoder;
use mnemo_models::{DecoderConfig, DecoderKind, PAD, Seq2Seq, Seq2SeqConfig};

const VOCAB: usize = 19;

/// Padded rows of ids in `4..VOCAB` (ids below 4 are the specials).
fn batch(lens: &[usize], width: usize, seed: u64, device: &Device) -> Tensor<2, Int> {
    let mut x = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut data = Vec::new();
    for &len in lens {
        for j in 0..width {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            data.push(if j < len {
                4 + ((x >> 33) % (VOCAB as u64 - 4)) as i64
            } else {
                PAD as i64
            });
        }
    }
    Tensor::from_data(TensorData::new(data, [lens.len(), width]), device)
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
        let model: Seq2Seq = seeded::reinit(config.init(&device), 30 + i as u64);
        // Non-uniform mixing weights.
        let model = match model.decoder {
            Decoder::Feedback(dec) => {
                let n = dec.core.layers.len() + 1;
                let mix = dec.core.mix.clone().map(|w| {
                    (w + seeded::normal([n], 50 + i as u64, &device))
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
            _ => unreachable!("a Feedback decoder was asked for"),
        };
        assert!(model.supports_manual_backward(), "{name}");
        let src = batch(&[5, 2, 4], 5, 60 + i as u64, &device);
        let tgt_in = batch(&[t_len, t_len - 1, 2], t_len, 70 + i as u64, &device);
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
        let mut compare = Compare {
            name,
            auto: &auto,
            manual: &manual.grads,
            checked: 0,
        };
        model.visit(&mut compare);
        assert_eq!(
            compare.checked,
            auto.len(),
            "{name}: every parameter with a gradient compared"
        );
        assert_eq!(
            manual.grads.len(),
            auto.len(),
            "{name}: no extra manual gradients"
        );
        assert!(
            compare.checked > 30,
            "{name}: only {} parameters compared",
            compare.checked
        );
    }
}

#[test]
fn transformer_decoder_and_dropout_are_not_claimed() {
    let device = mnemo_backend::test_device();
    assert!(
        !Seq2SeqConfig::tiny(VOCAB, DecoderKind::Transformer)
            .init(&device)
            .supports_manual_backward()
    );
    let dropout = Seq2SeqConfig {
        dropout: 0.1,
        ..Seq2SeqConfig::tiny(VOCAB, DecoderKind::Feedback)
    };
    assert!(!dropout.init(&device).supports_manual_backward());
    let post = Seq2SeqConfig {
        placement: mnemo_core::NormPlacement::Post,
        ..Seq2SeqConfig::tiny(VOCAB, DecoderKind::Feedback)
    };
    assert!(!post.init(&device).supports_manual_backward());
}
