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
use mnemo_core::{
    AttentionVariant, CausalSelfAttention, FeedForward, KvCache, NormKind, NormPlacement, Residual,
    SelfAttentionCache,
};
use serde::{Deserialize, Serialize};

use crate::attention_config::{AttentionConfig, LayerAttention};
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
        /// Attention span S: each position sees itself and S-1 positions before it (softmax
        /// attention; see [`AttentionConfig`] for what the other mechanisms read).
        pub span: usize,
        @dropout
        @norm
        /// The self-attention mechanism (default `{ kind = "softmax" }`).
        #[serde(default)]
        pub attention: AttentionConfig,
        /// Persistent key/value slots per head and layer, attended by every query (Sukhbaatar
        /// et al. 2019; softmax attention only; default 0 = none).
        #[serde(default)]
        pub persistent_memory: usize,
        /// Whether each layer has its feed-forward sublayer (default true); false with
        /// `persistent_memory > 0` is the paper's all-attention layer.
        #[serde(default = "default_feed_forward")]
        pub feed_forward: bool,
    }
}

fn default_feed_forward() -> bool {
    true
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
            attention: AttentionConfig::Softmax,
            persistent_memory: 0,
            feed_forward: true,
        }
    }

    /// Check every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.stack_of(self.n_layers)
            .validate(self.vocab_size, self.span)?;
        self.attention.validate(
            &self.stack_of(self.n_layers),
            self.span,
            self.persistent_memory,
        )?;
        if !self.feed_forward && self.persistent_memory == 0 {
            return Err(ConfigError::new(
                "feed_forward",
                "false (the all-attention layer) needs persistent_memory > 0: the persistent \
                 slots take the feed-forward sublayer's place",
            ));
        }
        Ok(())
    }

    /// Build the model.
    pub fn init(&self, device: &Device) -> TransformerLm {
        let stack = self.stack_of(self.n_layers);
        let layers = (0..self.n_layers)
            .map(|l| {
                let (attn, attn_variant) =
                    match self
                        .attention
                        .init(&stack, self.span, self.persistent_memory, l, device)
                    {
                        LayerAttention::Softmax(a) => (Some(a), None),
                        LayerAttention::Variant(v) => (None, Some(v)),
                    };
                TransformerLayer {
                    attn_residual: stack.residual().init(device),
                    attn,
                    attn_variant,
                    ff_residual: self.feed_forward.then(|| stack.residual().init(device)),
                    ff: self.feed_forward.then(|| stack.feed_forward().init(device)),
                }
            })
            .collect();
        TransformerLm::new(stack.token_io(self.vocab_size, device), layers)
    }
}

/// One Transformer layer: self-attention and (unless it is an all-attention layer)
/// feed-forward, each in a [`Residual`] block.
#[derive(Module, Debug)]
pub struct TransformerLayer {
    /// Norm and residual around the attention.
    pub attn_residual: Residual,
    /// Softmax causal self-attention (None when another mechanism is configured; kept as its
    /// own field so softmax checkpoints keep their parameter names).
    pub attn: Option<CausalSelfAttention>,
    /// Another mechanism's causal self-attention (None with softmax attention).
    pub attn_variant: Option<AttentionVariant>,
    /// Norm and residual around the feed-forward sublayer (None in an all-attention layer).
    pub ff_residual: Option<Residual>,
    /// Feed-forward sublayer (None in an all-attention layer).
    pub ff: Option<FeedForward>,
}

impl TransformerLayer {
    /// # Shapes
    /// - x: `[B, T, D]`
    /// - output: `[B, T, D]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = self.attn_residual.forward(x, |h| self.attend(h));
        self.feed_forward(x)
    }

    /// # Shapes
    /// - x: `[B, 1, D]`
    /// - output: `[B, 1, D]`
    pub fn forward_step(&self, x: Tensor<3>, cache: &mut SelfAttentionCache) -> Tensor<3> {
        let x = self
            .attn_residual
            .forward(x, |h| self.attend_step(h, cache));
        self.feed_forward(x)
    }

    /// The configured self-attention over a segment.
    ///
    /// # Shapes
    /// - h: `[B, T, D]`
    /// - output: `[B, T, D]`
    fn attend(&self, h: Tensor<3>) -> Tensor<3> {
        match (&self.attn, &self.attn_variant) {
            (Some(a), _) => a.forward(h),
            (None, Some(v)) => v.forward(h),
            (None, None) => unreachable!("a Transformer layer has one attention"),
        }
    }

    /// The configured self-attention for one new position (state updated in place).
    ///
    /// # Shapes
    /// - h: `[B, 1, D]`
    /// - output: `[B, 1, D]`
    fn attend_step(&self, h: Tensor<3>, cache: &mut SelfAttentionCache) -> Tensor<3> {
        match (&self.attn, &self.attn_variant, cache) {
            (Some(a), _, SelfAttentionCache::Kv(c)) => a.forward_step(h, c),
            (None, Some(v), cache) => v.forward_step(h, cache),
            _ => panic!("the step state belongs to another attention mechanism"),
        }
    }

    /// An empty step state for this layer's attention.
    pub fn new_cache(&self) -> SelfAttentionCache {
        match (&self.attn, &self.attn_variant) {
            (Some(a), _) => SelfAttentionCache::Kv(KvCache::new(a.span())),
            (None, Some(v)) => v.new_cache(),
            (None, None) => unreachable!("a Transformer layer has one attention"),
        }
    }

    /// The feed-forward sublayer with its residual, or `x` unchanged in an all-attention layer.
    fn feed_forward(&self, x: Tensor<3>) -> Tensor<3> {
        match (&self.ff_residual, &self.ff) {
            (Some(residual), Some(ff)) => residual.forward(x, |h| ff.forward(h)),
            _ => x,
        }
    }

    /// The layer's softmax attention and feed-forward blocks, for the models that build on a
    /// softmax Transformer layer (Transformer-XL, the Transformer decoder).
    ///
    /// # Panics
    /// If the layer was built with another mechanism or without feed-forward (only
    /// [`StackConfig::transformer_layer`](crate::stack::StackConfig::transformer_layer)'s
    /// layers are taken apart).
    pub fn into_softmax_blocks(self) -> (Residual, CausalSelfAttention, Residual, FeedForward) {
        match (self.attn, self.ff_residual, self.ff) {
            (Some(attn), Some(ff_residual), Some(ff)) => {
                (self.attn_residual, attn, ff_residual, ff)
            }
            _ => panic!("only a softmax Transformer layer with feed-forward is taken apart"),
        }
    }
}

/// The causal Transformer language model: [`TransformerLayer`]s in a [`StackLm`].
pub type TransformerLm = StackLm<TransformerLayer>;

/// Per-layer attention states for step-by-step decoding.
#[derive(Debug, Clone)]
pub struct TransformerState {
    /// One state per layer (key/value caches for softmax attention).
    pub caches: Vec<SelfAttentionCache>,
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
            caches: self.per_layer(|l| l.new_cache()),
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
