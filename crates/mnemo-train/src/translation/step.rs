//! One translation training step: teacher-forced forward of a batch of sentence pairs,
//! masked cross-entropy over the target tokens, the gradient of every parameter.
use burn::tensor::Device;
use mnemo_data::translation::{PairBatch, SubwordTokenizer};
use mnemo_models::{DecoderKind, Seq2Seq};

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
        DecoderKind::Transformer => autodiff(model.forward(src, tgt_in)),
        // The seam for a hand-written backward of the Feedback decoder (as
        // `train_feedback_segment` is for the language model): until there is one, autodiff.
        DecoderKind::Feedback => autodiff(model.forward(src, tgt_in)),
    }
}
