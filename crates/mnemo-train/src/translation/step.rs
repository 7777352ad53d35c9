//! One translation training step: teacher-forced forward of a batch of sentence pairs,
//! masked cross-entropy over the target tokens, the gradient of every parameter (a Feedback
//! decoder's by its hand-written backward, [`train_decoder_batch`], when it supports it).
use burn::optim::GradientsParams;
use burn::tensor::Device;
use mnemo_data::translation::{PairBatch, SubwordTokenizer};
use mnemo_models::{DecoderKind, Seq2Seq};

use crate::feedback_step::train_decoder_batch;
use crate::task::StepOutput;
use crate::translation::evaluate::batch_tensors;

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
    match model.decoder_kind() {
        // The Feedback decoder's hand-written backward (exact; pre-norm, dropout included).
        DecoderKind::Feedback if model.supports_manual_backward() => {
            let (stats, grads, logits) =
                train_decoder_batch(model, src, tgt_in, &batch.tgt_out, SubwordTokenizer::PAD);
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
        }
        // Transformer and CAN decoders (and a Feedback decoder outside the manual backward's
        // reach): autodiff through the teacher-forced forward.
        DecoderKind::Transformer | DecoderKind::Feedback | DecoderKind::Can => {
            autodiff(model.forward(src, tgt_in))
        }
    }
}
