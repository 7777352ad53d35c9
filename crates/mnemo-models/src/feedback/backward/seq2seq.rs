//! The translation model's training step with the Feedback decoder's manual backward: the
//! decoder's core ([`FeedbackCore::forward_backward`](crate::feedback::FeedbackCore)) and its
//! cross-attention ([`super::cross::CrossHook`]) by hand, the final norm and the tied output
//! projection by hand (`output.rs`'s `TiedHead`, shared with the Transformer decoder), the
//! encoder by hand where it has pre-norm attention layers and the products run on the host
//! kernels ([`Encoding`]), and what joins them (the target embedding, the cross-attention
//! keys/values from the encoder's output; the whole encoder with Fourier mixing or a source
//! padded before a token) by one autodiff pass from the input gradients the manual part
//! returns (`Σ x ⊙ dx + Σ K ⊙ dK + Σ V ⊙ dV`), whose gradient of the encoder's output then
//! runs the encoder's backward.
//!
//! Size legend: B sentences, T target length, S span, D d_model, V vocabulary, N = B·T rows.
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor};

use super::add_grads;
use super::cross::CrossHook;
use super::output::TiedHead;
use super::params::NormParams;
use crate::seq2seq::Seq2Seq;
use crate::seq2seq_decoder::Decoder;
use crate::transformer::backward::{Encoding, decoder_inputs_surrogate};
use mnemo_core::CrossMemory;

/// Logits and the gradient of every parameter of one teacher-forced batch.
#[derive(Debug)]
pub struct Seq2SeqGradients {
    /// Logits on the plain device. Shape `[B, T, V]`.
    pub logits: Tensor<3>,
    /// Gradient of the loss for every parameter, keyed by parameter id (plain device).
    pub grads: GradientsParams,
}

impl Seq2Seq {
    /// The same model with the Feedback decoder's per-step products computed by `products`
    /// (fixed when the model is built for a device; a Transformer decoder has none).
    pub fn with_step_products(mut self, products: super::StepProducts) -> Self {
        if let Decoder::Feedback(dec) = self.decoder {
            self.decoder = Decoder::Feedback(crate::feedback::FeedbackDecoder {
                core: dec.core.with_step_products(products),
                ..dec
            });
        }
        self
    }

    /// Whether [`forward_backward`](Self::forward_backward) applies and equals autodiff of
    /// [`forward`](Self::forward): a pre-norm Feedback decoder, or a pre-norm Transformer
    /// decoder of softmax layers with their own position tables
    /// ([`crate::transformer::backward`]'s decoder; its attention runs on the host, so for CPU
    /// backends). Dropout is supported: the masks are drawn in `forward`'s order (the
    /// encoder's and the embedding's, then the decoder's in the autodiff step's order).
    pub fn supports_manual_backward(&self) -> bool {
        match &self.decoder {
            Decoder::Feedback(dec) => {
                dec.final_norm.is_some()
                    && dec.core.supports_manual_backward()
                    && dec.cross.iter().all(|c| c.residual.is_pre())
            }
            Decoder::Transformer(dec) => dec.supports_manual_backward(),
            Decoder::Can(_) => false,
        }
    }

    /// Teacher-forced logits and, from `loss_grad` (logits -> dL/dlogits), the gradient of every
    /// parameter (see the [module docs](self)).
    ///
    /// # Panics
    /// If [`supports_manual_backward`](Self::supports_manual_backward) is false.
    ///
    /// # Shapes
    /// - src: `[B, S_src]`, tgt_in: `[B, T]` (PAD-padded)
    /// - loss_grad: `[B, T, V] -> [B, T, V]`
    pub fn forward_backward(
        &self,
        src: Tensor<2, Int>,
        tgt_in: Tensor<2, Int>,
        loss_grad: impl FnOnce(Tensor<3>) -> Tensor<3>,
    ) -> Seq2SeqGradients {
        assert!(
            self.supports_manual_backward(),
            "the manual decoder backward needs a pre-norm Feedback or Transformer decoder"
        );
        let dec = match &self.decoder {
            Decoder::Feedback(dec) => dec,
            Decoder::Transformer(dec) => {
                return self.forward_backward_transformer(dec, src, tgt_in, loss_grad);
            }
            Decoder::Can(_) => unreachable!("checked above"),
        };
        // The encoder by hand with the host kernels (the CPU backends' products).
        let encoding = Encoding::of(self, src, dec.core.products == super::StepProducts::Host);
        let enc = &encoding.encoded;
        let cross = dec.cross_memory(&enc.states, &enc.key_mask); // per layer [B,H,S_src,Dh], autodiff
        let x = self.embed(tgt_in); // [B,T,D], autodiff
        let [b, t_len, d] = x.dims();
        let plain = x.clone().inner().device();
        let final_norm = NormParams::of(dec.final_norm.as_ref().expect("pre-norm"));
        let head = TiedHead::of(&final_norm, &self.embedding);
        let plain_cross = cross
            .iter()
            .map(|c| CrossMemory {
                keys: c.keys.clone().inner(),
                values: c.values.clone().inner(),
                key_mask: c.key_mask.clone().inner(),
            })
            .collect();
        let autodiff = dec.core.mix.val().is_autodiff();
        let mut hook = CrossHook::new(&dec.cross, plain_cross, dec.core.products, autodiff);
        let mut manual = GradientsParams::new();
        let mut head_grads = GradientsParams::new();
        let mut logits = None;
        let top_grad = |top: Tensor<3>| {
            let (y, tape) = head.forward(top.reshape([b * t_len, d]));
            let v = y.dims()[1];
            let y = y.reshape([b, t_len, v]);
            let dlogits = loss_grad(y.clone()).inner().reshape([b * t_len, v]);
            logits = Some(y);
            head.backward(&mut head_grads, tape, dlogits)
                .reshape([b, t_len, d])
        };
        let zeros = Tensor::zeros([b, dec.core.span, d], &plain);
        let out =
            dec.core
                .forward_backward(x.clone(), zeros, &mut hook, &mut manual, Some(top_grad));
        let logits = logits.expect("the top gradient was asked for");
        add_grads(self, &mut head_grads, &mut manual);
        let dcross = hook.finish(&mut manual);
        // The autodiff part: everything upstream of the decoder's inputs.
        let dx = out.dx.expect("a backward ran");
        let surrogate = decoder_inputs_surrogate(x, dx, cross, dcross);
        let grads = encoding.gradients(self, surrogate.backward(), manual);
        Seq2SeqGradients { logits, grads }
    }
}
