//! The translation encoder's manual forward and backward. Its pre-norm layers are the
//! Transformer's layers ([`LayerParams`]) with bidirectional attention over each sentence's
//! tokens ([`Keys::Bidirectional`]); the source embedding (scaled by √D, dropout) and the
//! final norm are done by hand around them.
//!
//! Both training paths of the translation model run it ([`Encoding`]): under the Feedback
//! decoder's manual backward ([`Seq2Seq::forward_backward`](crate::Seq2Seq::forward_backward))
//! and under any decoder trained by autodiff ([`Seq2Seq::forward_backward_decoder_autodiff`]).
//! The encoder's output enters the autodiff part (the cross-attention keys and values) as a
//! leaf, whose gradient comes back to [`EncoderTape::backward`]. Dropout draws burn's masks in
//! [`Seq2Seq::encode`]'s order: the embedding's, then per layer the attention output's and the
//! feed-forward hidden units'.
//!
//! Size legend: B sentences, S source length (padded), D d_model, V vocabulary, N = B·S rows
//! (row `b·S + s`).
use burn::module::ParamId;
use burn::optim::GradientsParams;
use burn::tensor::{Gradients, Int, Tensor};
use mnemo_core::{CrossMemory, NormPlacement, Residual, key_padding_mask};

use super::span_attention::Keys;
use super::{LayerParams, LayerParts, Stack, StackTape};
use crate::feedback::backward::add_grads;
use crate::feedback::backward::dropout::{dropped, keep_prob, masked};
use crate::feedback::backward::output::embedding_grad;
use crate::feedback::backward::params::NormParams;
use crate::seq2seq::{Encoded, EncoderLayer, PAD, Seq2Seq, int_vec};

/// What the encoder's manual forward keeps for its backward.
pub(crate) struct EncoderTape {
    /// Source ids `[N]`.
    ids: Tensor<1, Int>,
    /// The embedding's parameter id and its rows V.
    embedding: (ParamId, usize),
    /// The embedding's scale √D.
    scale: f64,
    /// The embedding's dropout mask (empty without dropout).
    emb_mask: Vec<Tensor<2>>,
    layers: Vec<LayerParams>,
    /// Source length S, and the keys its queries read.
    len: usize,
    keys: Keys,
    /// The final norm.
    norm: NormParams,
    /// The layers' and the final norm's tapes (the norm's `x̂` `[N, D]` and `1/σ` `[N, 1]`).
    tapes: StackTape<(Tensor<2>, Tensor<2>)>,
}

impl EncoderLayer {
    /// The layer as the manual backward's layer parts: with attention, pre-norm.
    fn parts(&self) -> Option<LayerParts<'_>> {
        let pre = |r: &Residual| r.placement == NormPlacement::Pre;
        let attn = self.attn.as_ref()?;
        (pre(&self.attn_residual) && pre(&self.ff_residual)).then_some(LayerParts {
            attn_norm: &self.attn_residual.norm,
            maps: [&attn.query, &attn.key, &attn.value, &attn.output],
            table: &attn.positions,
            heads: attn.n_heads,
            attn_dropout: &attn.dropout,
            ff_norm: &self.ff_residual.norm,
            ff: &self.ff,
        })
    }
}

impl Seq2Seq {
    /// Whether [`EncoderTape::encode`] covers this model's encoder: attention layers (not
    /// Fourier mixing), pre-norm, with the final norm.
    pub fn supports_manual_encoder(&self) -> bool {
        self.encoder_norm.is_some() && self.encoder.iter().all(|l| l.parts().is_some())
    }
}

/// Each sentence's length when every row of `ids` (`[B, S]` row-major) is its tokens then
/// padding only, at least one token; None otherwise.
pub(super) fn trailing_lens(ids: &[i64], s: usize) -> Option<Vec<usize>> {
    ids.chunks(s)
        .map(|row| {
            let len = row.iter().take_while(|&&t| t != PAD as i64).count();
            let padded = row[len..].iter().all(|&t| t == PAD as i64);
            (len >= 1 && padded).then_some(len)
        })
        .collect()
}

impl EncoderTape {
    /// [`Seq2Seq::encode`] by hand on the plain device, keeping what the backward needs; None
    /// where it does not apply (see [`Seq2Seq::supports_manual_encoder`]; sources with padding
    /// before a token, or none, keep the autodiff encoder). The states are a leaf that tracks
    /// its gradient on `model`'s device when that is an autodiff one.
    ///
    /// # Shapes
    /// - src: `[B, S]`, PAD-padded at the end
    pub(crate) fn encode(model: &Seq2Seq, src: Tensor<2, Int>) -> Option<(Encoded, Self)> {
        if !model.supports_manual_encoder() {
            return None;
        }
        let [b, s] = src.dims();
        let ids = src.clone().inner().reshape([b * s]);
        let lens = trailing_lens(&int_vec(ids.clone()), s)?;
        let emb = model.embedding.weight.val();
        let autodiff = emb.is_autodiff();
        let emb = emb.inner();
        let [vocab, d] = emb.dims();
        let scale = (d as f64).sqrt();
        // The masks in `encode`'s order: the embedding's, then each layer's.
        let mut emb_mask = Vec::new();
        let x = emb.select(0, ids.clone()).mul_scalar(scale);
        let x = dropped(x, keep_prob(&model.dropout, autodiff), &mut emb_mask);
        let layers: Vec<LayerParams> = model
            .encoder
            .iter()
            .map(|l| LayerParams::of_parts(l.parts().expect("checked above"), autodiff))
            .collect();
        let keys = Keys::Bidirectional(lens.clone());
        let stack = Stack {
            layers: &layers,
            t_len: s,
            keys: keys.clone(),
            sources: Vec::new(),
        };
        let masks = stack.draw_masks(b * s, &x.device());
        let norm = NormParams::of(model.encoder_norm.as_ref().expect("checked above"));
        let (states, tapes) = stack.forward_top(x, b, masks, &norm);
        let states = states.reshape([b, s, d]);
        let states = match autodiff {
            true => states.autodiff().require_grad(),
            false => states,
        };
        let encoded = Encoded {
            states,
            key_mask: key_padding_mask(src, PAD as i64),
            src_lens: lens,
        };
        let tape = Self {
            ids,
            embedding: (model.embedding.weight.id, vocab),
            scale,
            emb_mask,
            layers,
            len: s,
            keys,
            norm,
            tapes,
        };
        Some((encoded, tape))
    }

    /// The backward from the gradient of the encoder's output: registers the gradient of every
    /// encoder parameter of `model` (the model [`encode`](Self::encode) read), and the source
    /// rows' share of the embedding's, in `grads`.
    ///
    /// # Shapes
    /// - dstates: `[B, S, D]` (plain device)
    pub(crate) fn backward(self, model: &Seq2Seq, grads: &mut GradientsParams, dstates: Tensor<3>) {
        let [b, s, d] = dstates.dims();
        let dstates = dstates.reshape([b * s, d]);
        let stack = Stack {
            layers: &self.layers,
            t_len: self.len,
            keys: self.keys,
            sources: Vec::new(),
        };
        let (dx, _) = stack.backward_top(model, grads, self.tapes, dstates, &self.norm);
        let dx = masked(dx, &self.emb_mask, 0).mul_scalar(self.scale);
        // Added to the embedding's other gradients (a tied head's, by hand) where `grads` has one.
        let (id, vocab) = self.embedding;
        let mut source_rows = GradientsParams::new();
        source_rows.register(id, embedding_grad(self.ids, dx, vocab));
        add_grads(model, &mut source_rows, grads);
    }
}

/// A batch's encoder output: by hand with its tape where asked for and [`EncoderTape::encode`]
/// applies, else by autodiff ([`Seq2Seq::encode`]).
pub(crate) struct Encoding {
    pub(crate) encoded: Encoded,
    tape: Option<EncoderTape>,
}

impl Encoding {
    /// `by_hand`: whether to try the encoder by hand (its attention runs on the host kernels:
    /// for CPU backends).
    ///
    /// # Shapes
    /// - src: `[B, S]`, PAD-padded
    pub(crate) fn of(model: &Seq2Seq, src: Tensor<2, Int>, by_hand: bool) -> Self {
        let tape = by_hand
            .then(|| EncoderTape::encode(model, src.clone()))
            .flatten();
        match tape {
            Some((encoded, tape)) => Self {
                encoded,
                tape: Some(tape),
            },
            None => Self {
                encoded: model.encode(src),
                tape: None,
            },
        }
    }

    /// The gradient of every parameter of `model`: those of the autodiff pass `autodiff`, the
    /// encoder's by hand from the gradient `autodiff` holds for its output, and `manual`'s
    /// (the parts the caller did by hand), added where they share a parameter (the
    /// embedding).
    pub(crate) fn gradients(
        self,
        model: &Seq2Seq,
        autodiff: Gradients,
        mut manual: GradientsParams,
    ) -> GradientsParams {
        if let Some(tape) = self.tape {
            let states = &self.encoded.states;
            let dstates = states.grad(&autodiff).unwrap_or_else(|| {
                // No cross-attention read it.
                Tensor::zeros(states.dims(), &states.clone().inner().device())
            });
            tape.backward(model, &mut manual, dstates);
        }
        let mut grads = GradientsParams::from_grads(autodiff, model);
        add_grads(model, &mut manual, &mut grads);
        grads
    }
}

/// `Σ x ⊙ dx + Σ_l (K_l ⊙ dK_l + V_l ⊙ dV_l)`: the scalar whose autodiff backward gives what
/// feeds a decoder run by hand (the target embedding `x`, each layer's source keys and values)
/// the gradients the manual part returned for it (`dx`, `dcross`: plain tensors).
///
/// # Shapes
/// - x, dx: `[B, T, D]`; cross and dcross: `[B, H, S_src, Dh]` each
pub(crate) fn decoder_inputs_surrogate(
    x: Tensor<3>,
    dx: Tensor<3>,
    cross: Vec<CrossMemory>,
    dcross: Vec<(Tensor<4>, Tensor<4>)>,
) -> Tensor<1> {
    let mut surrogate = (x * dx.autodiff()).sum();
    for (c, (dk, dv)) in cross.into_iter().zip(dcross) {
        surrogate = surrogate + (c.keys * dk.autodiff()).sum() + (c.values * dv.autodiff()).sum();
    }
    surrogate
}

impl Seq2Seq {
    /// Teacher-forced logits and the gradient of every parameter for `loss` of them: the
    /// encoder by hand where it applies ([`supports_manual_encoder`](Self::supports_manual_encoder),
    /// sources padded at the end; its attention on the host kernels, so for CPU backends), the
    /// decoder and the rest by autodiff; the training step of the decoders without a manual
    /// backward (Transformer, CAN) on the CPU. `loss` returns the scalar to differentiate, or
    /// None to skip the backward (no gradients: e.g. a loss that is not finite).
    ///
    /// # Shapes
    /// - src: `[B, S]`, tgt_in: `[B, T]` (PAD-padded); logits `[B, T, V]`
    pub fn forward_backward_decoder_autodiff(
        &self,
        src: Tensor<2, Int>,
        tgt_in: Tensor<2, Int>,
        loss: impl FnOnce(Tensor<3>) -> Option<Tensor<1>>,
    ) -> (Tensor<3>, GradientsParams) {
        let encoding = Encoding::of(self, src, true);
        let logits = self.forward_encoded(&encoding.encoded, tgt_in);
        let grads = match loss(logits.clone()) {
            Some(loss) => encoding.gradients(self, loss.backward(), GradientsParams::new()),
            None => GradientsParams::new(),
        };
        (logits, grads)
    }
}

#[cfg(test)]
mod tests {
    use super::trailing_lens;

    /// Lengths only for rows of tokens then padding, each with a token.
    #[test]
    fn trailing_lens_refuse_inner_padding_and_empty_rows() {
        assert_eq!(trailing_lens(&[5, 6, 0, 7, 0, 0], 3), Some(vec![2, 1]));
        assert_eq!(trailing_lens(&[5, 0, 6], 3), None);
        assert_eq!(trailing_lens(&[0, 0, 0, 4, 4, 4], 3), None);
    }
}
