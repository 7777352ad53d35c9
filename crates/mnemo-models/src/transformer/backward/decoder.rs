//! The translation model's training step with the Transformer decoder by hand: the decoder's
//! layers are the Transformer language model's manual layers ([`LayerParams`], causal span
//! attention) with the cross-attention sublayer between attention and feed-forward
//! ([`super::cross`]), the two halves of the batch on two threads, then the final norm and the
//! head tied to the embedding ([`TiedHead`]); the encoder by hand ([`Encoding`]); what joins
//! them (the target embedding, the source keys and values from the encoder's output) by one
//! autodiff pass from the input gradients the manual part returns, whose gradient of the
//! encoder's output runs the encoder's backward.
//!
//! The attention reads its inputs back to host memory: for CPU backends (mnemo-train's step
//! uses it there only). Dropout draws burn's masks in [`Seq2Seq::forward`]'s order: the
//! encoder's, the target embedding's, then per layer the self-attention output's, the
//! cross-attention output's and the feed-forward hidden units'.
//!
//! Size legend: B sentences, T target length, S_src source length, D d_model, V vocabulary,
//! N = B·T rows (row `b·T + t`).
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor};
use mnemo_core::{CrossMemory, NormPlacement, Residual};

use super::cross::{CrossParams, Source};
use super::encoder::{Encoding, decoder_inputs_surrogate, trailing_lens};
use super::layer::covers;
use super::span_attention::Keys;
use super::{LayerParams, LayerParts, Stack};
use crate::feedback::backward::output::TiedHead;
use crate::feedback::backward::params::NormParams;
use crate::feedback::backward::seq2seq::Seq2SeqGradients;
use crate::seq2seq::{Seq2Seq, int_vec};
use crate::seq2seq_decoder::{TransformerDecoder, TransformerDecoderLayer};

impl TransformerDecoderLayer {
    /// Whether the manual layers cover this layer: pre-norm blocks, softmax self-attention
    /// with its own position table from distance 0, no persistent memory or adaptive span.
    fn supports_manual_backward(&self) -> bool {
        let pre = |r: &Residual| r.placement == NormPlacement::Pre;
        covers(&self.self_attn)
            && pre(&self.self_residual)
            && pre(&self.cross.residual)
            && pre(&self.ff_residual)
    }

    /// The layer's parameters for the manual layers, its cross-attention included.
    fn params(&self, autodiff: bool) -> LayerParams {
        let (attn_norm, ff_norm) = (&self.self_residual.norm, &self.ff_residual.norm);
        let parts = LayerParts::causal(attn_norm, &self.self_attn, ff_norm, &self.ff);
        LayerParams::of_parts(parts, autodiff).with_cross(CrossParams::of(&self.cross, autodiff))
    }
}

impl TransformerDecoder {
    /// Whether [`Seq2Seq::forward_backward`] covers this decoder by hand.
    pub(crate) fn supports_manual_backward(&self) -> bool {
        self.final_norm.is_some()
            && self
                .layers
                .iter()
                .all(TransformerDecoderLayer::supports_manual_backward)
    }
}

impl Seq2Seq {
    /// [`Seq2Seq::forward_backward`] with the Transformer decoder (see the [module docs](self)).
    /// A batch with a source padded before a token, or empty, runs through
    /// [`forward_backward_decoder_autodiff`](Self::forward_backward_decoder_autodiff)
    /// instead.
    pub(crate) fn forward_backward_transformer(
        &self,
        dec: &TransformerDecoder,
        src: Tensor<2, Int>,
        tgt_in: Tensor<2, Int>,
        loss_grad: impl FnOnce(Tensor<3>) -> Tensor<3>,
    ) -> Seq2SeqGradients {
        let [b, s] = src.dims();
        let Some(lens) = trailing_lens(&int_vec(src.clone().reshape([b * s])), s) else {
            let (logits, grads) = self.forward_backward_decoder_autodiff(src, tgt_in, |logits| {
                let dlogits = loss_grad(logits.clone().inner()).autodiff();
                Some((logits * dlogits).sum())
            });
            let logits = logits.inner();
            return Seq2SeqGradients { logits, grads };
        };
        let encoding = Encoding::of(self, src, true);
        let enc = &encoding.encoded;
        let cross: Vec<CrossMemory> = dec.cross_memory(&enc.states, &enc.key_mask); // autodiff
        let x = self.embed(tgt_in); // [B,T,D], autodiff
        let [b, t_len, d] = x.dims();
        let autodiff = self.embedding.weight.val().is_autodiff();
        let layers: Vec<LayerParams> = dec.layers.iter().map(|l| l.params(autodiff)).collect();
        let plain = x.clone().inner();
        let device = plain.device();
        let n = b * t_len;
        let stack = Stack {
            layers: &layers,
            t_len,
            keys: Keys::Causal,
            sources: cross.iter().map(|c| Source::of(c, &lens)).collect(),
        };
        let masks = stack.draw_masks(n, &device);
        let final_norm = NormParams::of(dec.final_norm.as_ref().expect("pre-norm"));
        let head = TiedHead::of(&final_norm, &self.embedding);
        let (logits, tape) = stack.forward_top(plain.reshape([n, d]), b, masks, &head);
        let v = logits.dims()[1];
        let logits = logits.reshape([b, t_len, v]);
        let dlogits = loss_grad(logits.clone()).inner().reshape([n, v]);
        let mut manual = GradientsParams::new();
        let (dx, dsources) = stack.backward_top(self, &mut manual, tape, dlogits, &head);
        // The autodiff part: the target embedding and the source keys and values.
        let dcross = (cross.iter().zip(dsources))
            .map(|(c, ds)| ds.tensors(c.keys.dims(), &device))
            .collect();
        let surrogate = decoder_inputs_surrogate(x, dx.reshape([b, t_len, d]), cross, dcross);
        let grads = encoding.gradients(self, surrogate.backward(), manual);
        Seq2SeqGradients { logits, grads }
    }
}
