//! The causal Transformer language model: the baseline the Feedback Transformer is compared with.
//!
//! Vaswani et al., "Attention Is All You Need" (2017), decoder-only, with learned relative
//! position terms (`q · p_{t-i}`, as in the Feedback Transformer's official code) and an
//! attention span S. Pre-norm (default, with a final norm and the attention output projection
//! scaled by 1/sqrt(2L) at init) or post-norm; LayerNorm or RMSNorm.
//!
//! A vanilla Transformer carries nothing across segments: each training segment is attended
//! within itself. `forward_step` with a KV cache equals `forward` position by position.
//!
//! Size legend: B batch, T segment length, S span, L layers, H heads, D d_model, V vocabulary.
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use mnemo_core::{CausalSelfAttention, FeedForward, KvCache, NormKind, NormPlacement, Residual};
use serde::{Deserialize, Serialize};

use crate::model_config;

use crate::config::ConfigError;
use crate::stack_lm::StackLm;

model_config! {
    /// Configuration of a [`TransformerLm`].
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct TransformerConfig {
        /// Vocabulary size V (0 = filled in from the data by the trainer).
        #[serde(default)]
        pub vocab_size: usize,
        @sizes
        /// Attention span S: each position sees itself and S-1 positions before it.
        pub span: usize,
        @dropout
        @norm
    }
}

impl TransformerConfig {
    /// A tiny preset for tests and the quickstart (mirrors `experiments/smoke`).
    pub fn tiny(vocab_size: usize) -> Self {
        Self {
            vocab_size,
            d_model: 32,
            n_layers: 2,
            n_heads: 2,
            d_ff: 64,
            span: 16,
            dropout: 0.0,
            norm: NormKind::Layer,
            placement: NormPlacement::Pre,
        }
    }

    /// Check every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.stack_of(self.n_layers)
            .validate(self.vocab_size, self.span)
    }

    /// Build the model.
    pub fn init(&self, device: &Device) -> TransformerLm {
        let stack = self.stack_of(self.n_layers);
        let layers = (0..self.n_layers)
            .map(|_| stack.transformer_layer(self.span, device))
            .collect();
        TransformerLm::new(stack.token_io(self.vocab_size, device), layers)
    }
}

/// One Transformer layer: self-attention and feed-forward, each in a [`Residual`] block.
#[derive(Module, Debug)]
pub struct TransformerLayer {
    /// Norm and residual around the attention.
    pub attn_residual: Residual,
    /// Causal self-attention.
    pub attn: CausalSelfAttention,
    /// Norm and residual around the feed-forward sublayer.
    pub ff_residual: Residual,
    /// Feed-forward sublayer.
    pub ff: FeedForward,
}

impl TransformerLayer {
    /// # Shapes
    /// - x: `[B, T, D]`
    /// - output: `[B, T, D]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = self.attn_residual.forward(x, |h| self.attn.forward(h));
        self.ff_residual.forward(x, |h| self.ff.forward(h))
    }

    /// # Shapes
    /// - x: `[B, 1, D]`
    /// - output: `[B, 1, D]`
    pub fn forward_step(&self, x: Tensor<3>, cache: &mut KvCache) -> Tensor<3> {
        let x = self
            .attn_residual
            .forward(x, |h| self.attn.forward_step(h, cache));
        self.ff_residual.forward(x, |h| self.ff.forward(h))
    }
}

/// The causal Transformer language model: [`TransformerLayer`]s in a [`StackLm`].
pub type TransformerLm = StackLm<TransformerLayer>;

/// Per-layer key/value caches for step-by-step decoding.
#[derive(Debug, Clone)]
pub struct TransformerState {
    /// One cache per layer.
    pub caches: Vec<KvCache>,
}

impl TransformerState {
    /// Caches hold tensors only while decoding; moving them is not needed between devices of
    /// the same backend, so this keeps them as they are unless empty.
    pub fn to_device(self, _device: &Device) -> Self {
        self
    }
}

impl TransformerLm {
    /// Empty caches, one per layer.
    pub fn init_state(&self) -> TransformerState {
        TransformerState {
            caches: self.per_layer(|l| KvCache::new(l.attn.span())),
        }
    }

    /// Logits for every position of a segment, in parallel.
    ///
    /// # Shapes
    /// - tokens: `[B, T]`
    /// - output: `[B, T, V]`
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let mut h = self.embed(tokens); // [B,T,D]
        for layer in &self.layers {
            h = layer.forward(h);
        }
        self.logits(h)
    }

    /// Logits for one new position given the caches of the positions before it.
    ///
    /// # Shapes
    /// - token: `[B]`
    /// - output: `[B, V]`
    pub fn forward_step(
        &self,
        token: Tensor<1, Int>,
        state: TransformerState,
    ) -> (Tensor<2>, TransformerState) {
        let mut h = self.embed(token.unsqueeze_dim(1)); // [B,1,D]
        let mut state = state;
        for (layer, cache) in self.layers.iter().zip(state.caches.iter_mut()) {
            h = layer.forward_step(h, cache);
        }
        let logits = self.logits(h).squeeze_dim(1); // [B,V]
        (logits, state)
    }
}
