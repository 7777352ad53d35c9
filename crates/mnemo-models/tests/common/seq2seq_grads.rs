//! What the translation model's manual backward is checked with
//! (tests/feedback_decoder_backward*.rs): the decoder configurations it must cover and the
//! comparison of every parameter's gradient with autodiff's.
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor};
use mnemo_core::seeded;
use mnemo_models::{DecoderConfig, DecoderKind, Seq2Seq, Seq2SeqConfig};

use super::translation::{padded_ids, with_mixed_memory};
use super::{assert_close, assert_differs, assert_grad_matches};

/// Feedback-decoder configurations over `vocab` ids (`dropout` everywhere) with their target
/// lengths: shared K/V with targets longer and shorter than the span S = 4, per-layer K/V with
/// three decoder layers.
pub fn decoder_cases(vocab: usize, dropout: f64) -> Vec<(&'static str, Seq2SeqConfig, usize)> {
    let base = Seq2SeqConfig {
        span: 4,
        dropout,
        ..Seq2SeqConfig::tiny(vocab, DecoderKind::Feedback)
    };
    vec![
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
        ("shared kv, T < S", base, 3),
    ]
}

/// One case's model (seeded weights, non-uniform mixing weights), a batch of three padded
/// sentence pairs and the probe the loss `Σ logits · probe` weighs the logits with.
pub struct DecoderBatch {
    pub model: Seq2Seq,
    pub src: Tensor<2, Int>,
    pub tgt_in: Tensor<2, Int>,
    pub probe: Tensor<3>,
}

impl DecoderBatch {
    /// Case `i` of `config` with targets of `t_len` (and shorter) tokens.
    pub fn of(config: &Seq2SeqConfig, t_len: usize, i: u64, device: &Device) -> Self {
        let v = config.vocab_size;
        let model = with_mixed_memory(seeded::reinit(config.init(device), 30 + i), 50 + i);
        let tgt_lens = [t_len, t_len - 1, 2];
        Self {
            model,
            src: padded_ids(&[5, 2, 4], 5, v, 60 + i, false, device),
            tgt_in: padded_ids(&tgt_lens, t_len, v, 70 + i, false, device),
            probe: seeded::normal([3, t_len, v], 80 + i, device),
        }
    }

    /// Teacher-forced logits of the batch by autodiff.
    pub fn forward(&self) -> Tensor<3> {
        self.model.forward(self.src.clone(), self.tgt_in.clone())
    }

    /// Autodiff's gradients of `Σ logits · probe`.
    pub fn autodiff_grads(&self, logits: Tensor<3>) -> GradientsParams {
        let loss = (logits * self.probe.clone()).sum();
        GradientsParams::from_grads(loss.backward(), &self.model)
    }

    /// Asserts that the manual backward of the same loss (run now: with dropout, the device
    /// must be seeded as it was for `logits`) gives autodiff's `logits` and the gradient `auto`
    /// holds for every parameter.
    pub fn assert_manual_matches(&self, name: &str, logits: Tensor<3>, auto: &GradientsParams) {
        let out = self
            .model
            .forward_backward(self.src.clone(), self.tgt_in.clone(), |l| {
                assert_eq!(l.dims(), self.probe.dims(), "{name}: logits' shape");
                self.probe.clone().inner()
            });
        self.assert_matches(name, (out.logits, &out.grads), (logits, auto));
    }

    /// Autodiff's logits and gradients with the masks drawn from `seed`; with `dropout`, first
    /// asserts that another seed's masks change the logits. The device is seeded with `seed`
    /// again at the end, for the path compared with them.
    pub fn autodiff_with_masks(
        &self,
        name: &str,
        seed: u64,
        dropout: bool,
        device: &Device,
    ) -> (Tensor<3>, GradientsParams) {
        device.seed(seed);
        let logits = self.forward();
        if dropout {
            device.seed(seed + 500);
            let other = self.forward();
            let what = format!("{name}: logits with other masks");
            assert_differs(&what, other.inner(), logits.clone().inner(), 1e-2);
        }
        let auto = self.autodiff_grads(logits.clone());
        device.seed(seed);
        (logits, auto)
    }

    /// Asserts that the `got` logits (plain) and gradients equal autodiff's `want`, for every
    /// parameter.
    pub fn assert_matches(
        &self,
        name: &str,
        got: (Tensor<3>, &GradientsParams),
        want: (Tensor<3>, &GradientsParams),
    ) {
        let what = format!("{name}: manual vs autodiff logits");
        assert_close(&what, got.0, want.0.inner(), 1e-5);
        let checked = compare_every_parameter(name, &self.model, want.1, got.1);
        assert!(checked > 30, "{name}: only {checked} parameters compared");
    }
}

/// [`decoder_cases`] as batches ([`DecoderBatch::of`] case i), each checked to claim the
/// manual backward.
pub fn decoder_batches(
    vocab: usize,
    dropout: f64,
    device: &Device,
) -> Vec<(&'static str, DecoderBatch)> {
    let cases = decoder_cases(vocab, dropout).into_iter().enumerate();
    cases
        .map(|(i, (name, config, t_len))| {
            let case = DecoderBatch::of(&config, t_len, i as u64, device);
            assert!(case.model.supports_manual_backward(), "{name}");
            (name, case)
        })
        .collect()
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
