//! The manual backward of the Transformer language model: the forward over a segment on the
//! plain (non-autodiff) device, keeping what the backward needs, then the gradient of every
//! parameter layer by layer from the top, with the building blocks of the Feedback model's
//! manual backward (norms, linear maps, dropout masks, output layers:
//! [`crate::feedback::backward`]) and its attention on host memory as tiled `mnemo_kernels`
//! products ([`span_attention`]).
//!
//! It computes what burn's autodiff of [`TransformerLm::forward`] computes, up to float
//! rounding (tests/transformer_backward.rs checks logits and every parameter's gradient),
//! without the graph: one product per weight over all `N = B·T` rows in both directions, the
//! attention without `[B, H, T, T]` scores, norm and activation derivatives in one pass.
//! Dropout draws burn's masks in the autodiff forward's order (embedding, then per layer the
//! attention output and the feed-forward hidden units).
//!
//! The two halves of the batch run through the layers and the output layers on two threads,
//! forward and backward (every layer treats sequences independently; burn's element-wise ops
//! run on one core, so this is how they use both), each inside a one-thread rayon pool so that
//! its GEMMs stay on its core instead of splitting over the global pool the other half is
//! using, with `mnemo_kernels`' helper off; the loss and the embedding gradient see the whole
//! batch, and the halves' parameter gradients are added. The layers' dropout masks are
//! drawn for the whole batch before the layers run, in the autodiff forward's order, and each
//! half takes its rows.
//!
//! The attention reads its inputs back to host memory, so the trainer uses this backward on CPU
//! backends only (`mnemo_train::LmStep`). Supported ([`TransformerLm::supports_manual_backward`]): pre-norm (LayerNorm or RMSNorm),
//! softmax attention with each layer's own position table from distance 0, GELU or ReLU, with
//! or without biases, any head size, dropout. Not: post-norm, ResiDual, Admin, other attention
//! mechanisms, persistent memory, adaptive spans, tied position tables, layers without a
//! feed-forward sublayer (those train with autodiff).
//!
//! The same layers serve the translation model on CPU backends: its encoder, with the attention
//! bidirectional over each sentence (`encoder.rs`), and its Transformer decoder, with a
//! cross-attention sublayer over the source between attention and feed-forward (`cross.rs`,
//! `decoder.rs`). Files: `layer.rs` one layer (parameters, masks, forward, backward),
//! `stack.rs` the layers over a batch or its halves and what runs on their top (`Top`: the
//! output layers, the encoder's final norm, the tied head), `span_attention.rs` the attention
//! kernel (causal, bidirectional, cross), `qkv.rs` the three input maps as one product.
//!
//! Size legend: B batch, T segment length, S span, H heads, Dh head size, W = H·Dh, D d_model,
//! F FFN width, V vocabulary, N = B·T rows (row `b·T + t`).
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor};

use crate::feedback::backward::dropout::{dropped, keep_prob, masked};
use crate::feedback::backward::output::{OutputLayers, embedding_grad};
use crate::feedback::backward::params::{LinearParams, NormParams};
use crate::transformer::{TransformerLayer, TransformerLm};

mod cross;
mod decoder;
mod encoder;
mod layer;
mod qkv;
mod span_attention;
mod stack;

pub(crate) use encoder::{Encoding, decoder_inputs_surrogate};
pub(crate) use layer::covers;
use layer::{LayerParams, LayerParts};
use span_attention::Keys;
use stack::{Stack, StackTape};

/// Logits and the gradient of every parameter of one segment.
#[derive(Debug)]
pub struct TransformerGradients {
    /// Logits on the plain device. Shape `[B, T, V]`.
    pub logits: Tensor<3>,
    /// Gradient of the loss for every parameter, keyed by parameter id (plain device).
    pub grads: GradientsParams,
}

impl TransformerLayer {
    /// Whether this layer is one the manual backward covers (see the [module docs](self)).
    fn supports_manual_backward(&self) -> bool {
        let attention = self.attn.as_ref().is_some_and(layer::covers);
        let pre = |r: &mnemo_core::Residual| r.placement == mnemo_core::NormPlacement::Pre;
        attention
            && self.attn_variant.is_none()
            && pre(&self.attn_residual)
            && self.ff_residual.as_ref().is_some_and(pre)
            && self.ff.is_some()
            && self.attn_admin.is_none()
            && self.ff_admin.is_none()
    }
}

impl TransformerLm {
    /// Whether [`forward_backward`](Self::forward_backward) computes what autodiff of
    /// [`forward`](Self::forward) would (see the [module docs](self)).
    pub fn supports_manual_backward(&self) -> bool {
        self.final_norm.is_some()
            && self
                .layers
                .iter()
                .all(TransformerLayer::supports_manual_backward)
    }

    /// Forward a segment and back-propagate `dL/dlogits` by hand (see the [module docs](self)).
    ///
    /// `loss_grad` receives the logits and returns the gradient of the loss for them. Returns
    /// the logits and the gradient of every parameter, registered under the ids of `self`'s
    /// parameters on the plain device.
    ///
    /// # Panics
    /// If [`supports_manual_backward`](Self::supports_manual_backward) is false.
    ///
    /// # Shapes
    /// - tokens: `[B, T]`
    /// - loss_grad: `[B, T, V] -> [B, T, V]`
    pub fn forward_backward(
        &self,
        tokens: Tensor<2, Int>,
        loss_grad: impl FnOnce(Tensor<3>) -> Tensor<3>,
    ) -> TransformerGradients {
        assert!(
            self.supports_manual_backward(),
            "the manual Transformer backward needs pre-norm softmax layers"
        );
        let autodiff = self.head.weight.val().is_autodiff();
        let [b, t_len] = tokens.dims();
        let ids = tokens.inner().reshape([b * t_len]); // row b·T + t
        let emb = self.embedding.weight.val().inner();
        let vocab = emb.dims()[0];
        let x = emb.select(0, ids.clone()); // [N,D]
        // The masks in the autodiff forward's order: the embedding's first.
        let mut emb_mask = Vec::new();
        let x = dropped(x, keep_prob(&self.dropout, autodiff), &mut emb_mask);
        let layers: Vec<_> = self
            .layers
            .iter()
            .map(|layer| LayerParams::of(layer, autodiff))
            .collect();
        let stack = Stack {
            layers: &layers,
            t_len,
            keys: Keys::Causal,
            sources: Vec::new(),
        };
        // Every layer's masks now (nothing else draws from the RNG in between).
        let masks = stack.draw_masks(b * t_len, &x.device());
        let final_norm = NormParams::of(self.final_norm.as_ref().expect("pre-norm"));
        let head = LinearParams::of(&self.head, None);
        let output = OutputLayers {
            final_norm: &final_norm,
            head: &head,
        };
        let (logits, tape) = stack.forward_top(x, b, masks, &output);
        let v = logits.dims()[1];
        let logits = logits.reshape([b, t_len, v]);
        let dlogits = loss_grad(logits.clone()).inner().reshape([b * t_len, v]);
        let mut grads = GradientsParams::new();
        let (dx, _) = stack.backward_top(self, &mut grads, tape, dlogits, &output);
        let dx = masked(dx, &emb_mask, 0);
        grads.register(self.embedding.weight.id, embedding_grad(ids, dx, vocab));
        TransformerGradients { logits, grads }
    }
}
