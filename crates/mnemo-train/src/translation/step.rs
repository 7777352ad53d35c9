//! One translation training step: teacher-forced forward of a batch of sentence pairs,
//! masked cross-entropy over the target tokens, the gradient of every parameter (a Feedback
//! or Transformer decoder's by its hand-written backward, [`train_decoder_batch`], when it
//! supports it (the Transformer's on CPU backends); other decoders' by autodiff, under the
//! encoder by hand on CPU backends, [`Seq2Seq::forward_backward_decoder_autodiff`]).
use burn::optim::GradientsParams;
use burn::tensor::Device;
use mnemo_data::translation::{PairBatch, SubwordTokenizer};
use mnemo_models::{DecoderKind, Seq2Seq};

use crate::feedback_step::{masked_cross_entropy_grad, train_decoder_batch};
use crate::task::StepOutput;
use crate::translation::evaluate::batch_tensors;

/// How a translation step computes its gradients ([`mt_step`] follows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GradientPath {
    /// The decoder's hand-written backward ([`train_decoder_batch`]; the encoder by hand too
    /// where it applies on CPU backends): Feedback decoders, and Transformer decoders on CPU
    /// backends.
    Manual,
    /// The encoder by hand (where it applies), the decoder by autodiff
    /// ([`Seq2Seq::forward_backward_decoder_autodiff`]): other decoders on CPU backends.
    EncoderByHand,
    /// Autodiff through the teacher-forced forward.
    Autodiff,
}

impl GradientPath {
    /// The path of `model` stepping on `device`.
    pub fn of(model: &Seq2Seq, device: &Device) -> Self {
        let host = mnemo_backend::runs_on_host(device);
        match model.decoder_kind() {
            DecoderKind::Feedback if model.supports_manual_backward() => GradientPath::Manual,
            DecoderKind::Transformer if model.supports_manual_backward() && host => {
                GradientPath::Manual
            }
            _ if host => GradientPath::EncoderByHand,
            _ => GradientPath::Autodiff,
        }
    }

    /// In words, for the run's first line (which parts train by hand).
    pub fn describe(self, model: &Seq2Seq, device: &Device) -> &'static str {
        let encoder = mnemo_backend::runs_on_host(device) && model.supports_manual_encoder();
        match (self, encoder) {
            (GradientPath::Manual, true) => "gradients by hand",
            (GradientPath::Manual, false) => "decoder's gradients by hand, encoder's by autodiff",
            (GradientPath::EncoderByHand, true) => {
                "encoder's gradients by hand, decoder's by autodiff"
            }
            _ => "gradients by autodiff",
        }
    }
}

/// Loss and gradients (empty when the loss is not finite) of `model` on `batch`, whose
/// tensors are built on the autodiff `device`.
///
/// # Shapes
/// - batch: `rows` pairs, sources padded to `src_len`, targets to `tgt_len`
/// - output logits: `[rows, tgt_len, V]`
pub fn mt_step(model: &Seq2Seq, batch: &PairBatch, device: &Device) -> StepOutput<()> {
    let (src, tgt_in) = batch_tensors(batch, device);
    let autodiff =
        |logits| StepOutput::autodiff(model, logits, &batch.tgt_out, SubwordTokenizer::PAD, ());
    let manual = || {
        let (stats, grads, logits) = train_decoder_batch(
            model,
            src.clone(),
            tgt_in.clone(),
            &batch.tgt_out,
            SubwordTokenizer::PAD,
        );
        let grads = if stats.loss.is_finite() {
            grads
        } else {
            GradientsParams::new()
        };
        StepOutput {
            stats,
            grads,
            next: (),
            logits,
        }
    };
    match GradientPath::of(model, device) {
        // The Feedback decoder's hand-written backward (exact; pre-norm, dropout included), and
        // the Transformer decoder's on CPU backends (its attention runs on the host).
        GradientPath::Manual => manual(),
        // CAN decoders (and Feedback or Transformer decoders outside the manual backward's
        // reach) on the CPU: the encoder by hand (where it applies), the decoder by autodiff
        // from the loss's gradient computed on the host.
        GradientPath::EncoderByHand => {
            let mut stats = None;
            let (logits, grads) = model.forward_backward_decoder_autodiff(src, tgt_in, |logits| {
                let (s, grad) = masked_cross_entropy_grad(
                    logits.clone().inner(),
                    &batch.tgt_out,
                    SubwordTokenizer::PAD,
                );
                stats = Some(s);
                // Σ logits ⊙ dL/dlogits: its gradient for the logits is dL/dlogits.
                s.loss.is_finite().then(|| (logits * grad.autodiff()).sum())
            });
            StepOutput {
                stats: stats.expect("the loss was asked for"),
                grads,
                next: (),
                logits: logits.detach(),
            }
        }
        // Elsewhere: autodiff through the teacher-forced forward.
        GradientPath::Autodiff => autodiff(model.forward(src, tgt_in)),
    }
}

#[cfg(test)]
mod tests {
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::tensor::Tensor;
    use mnemo_core::seeded;
    use mnemo_models::Seq2SeqConfig;

    use super::*;

    /// Compares two gradients of every float parameter.
    struct Compare<'a>(&'a GradientsParams, &'a GradientsParams, usize);

    impl ModuleVisitor for Compare<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let (a, b): (Option<Tensor<D>>, Option<Tensor<D>>) =
                (self.0.get(param.id), self.1.get(param.id));
            let (a, b) = (a.expect("a gradient"), b.expect("a gradient"));
            let scale: f32 = b.clone().abs().max().into_scalar();
            let diff: f32 = (a - b).abs().max().into_scalar();
            assert!(
                diff <= 1e-4 * scale.max(1.0),
                "{:?}: differs by {diff} (scale {scale})",
                param.dims()
            );
            self.2 += 1;
        }
    }

    /// On the CPU a Transformer decoder's step (all by hand) and a CAN decoder's (the encoder
    /// by hand, the decoder by autodiff from the host loss's gradient) give the loss and every
    /// gradient of autodiff through the forward.
    #[test]
    fn cpu_decoder_steps_equal_autodiff() {
        let device = mnemo_backend::test_device();
        let vocab = 23;
        // Sources of 4, 2 and 3 tokens; targets of 3, 5 and 1 (then EOS); PAD = 0.
        let batch = PairBatch {
            rows: 3,
            src_len: 4,
            tgt_len: 6,
            src: vec![5, 6, 7, 8, 9, 10, 0, 0, 11, 12, 13, 0],
            tgt_in: vec![
                2, 14, 15, 16, 0, 0, 2, 17, 18, 19, 20, 21, 2, 22, 0, 0, 0, 0,
            ],
            tgt_out: vec![
                14, 15, 16, 3, 0, 0, 17, 18, 19, 20, 21, 3, 22, 3, 0, 0, 0, 0,
            ],
            ids: vec![0, 1, 2],
            n_tgt_tokens: 12,
        };
        for (decoder, manual) in [(DecoderKind::Transformer, true), (DecoderKind::Can, false)] {
            let config = Seq2SeqConfig {
                span: 3,
                ..Seq2SeqConfig::tiny(vocab, decoder)
            };
            let model = seeded::reinit(config.init(&device), 7);
            assert!(model.supports_manual_encoder());
            assert_eq!(model.supports_manual_backward(), manual, "{decoder:?}");
            let path = GradientPath::of(&model, &device);
            let (want_path, words) = match manual {
                true => (GradientPath::Manual, "gradients by hand"),
                false => (
                    GradientPath::EncoderByHand,
                    "encoder's gradients by hand, decoder's by autodiff",
                ),
            };
            assert_eq!(path, want_path, "{decoder:?}");
            assert_eq!(path.describe(&model, &device), words);
            let got = mt_step(&model, &batch, &device);
            let (src, tgt_in) = batch_tensors(&batch, &device);
            let logits = model.forward(src, tgt_in);
            let want = StepOutput::autodiff(&model, logits, &batch.tgt_out, 0, ());
            assert_eq!(got.stats.scored, want.stats.scored);
            assert!((got.stats.loss - want.stats.loss).abs() < 1e-5);
            let mut compare = Compare(&got.grads, &want.grads, 0);
            model.visit(&mut compare);
            assert!(compare.2 > 20, "{} parameters compared", compare.2);
            assert_eq!(got.grads.len(), want.grads.len());
        }
    }
}
