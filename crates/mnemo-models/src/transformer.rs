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
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor};
use mnemo_core::{
    CausalSelfAttention, CausalSelfAttentionConfig, FeedForward, FeedForwardConfig, KvCache, Norm,
    NormConfig, NormKind, NormPlacement, Residual, ResidualConfig,
};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, check_common};

/// Configuration of a [`TransformerLm`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformerConfig {
    /// Vocabulary size V (0 = filled in from the data by the trainer).
    #[serde(default)]
    pub vocab_size: usize,
    /// Model width D.
    pub d_model: usize,
    /// Number of layers L.
    pub n_layers: usize,
    /// Number of heads H.
    pub n_heads: usize,
    /// Feed-forward hidden width.
    pub d_ff: usize,
    /// Attention span S: each position sees itself and S-1 positions before it.
    pub span: usize,
    /// Dropout on embeddings, attention and feed-forward outputs.
    #[serde(default)]
    pub dropout: f64,
    /// LayerNorm or RMSNorm.
    #[serde(default)]
    pub norm: NormKind,
    /// Pre-norm or post-norm.
    #[serde(default)]
    pub placement: NormPlacement,
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
        check_common(
            self.vocab_size,
            self.d_model,
            self.n_heads,
            self.n_layers,
            self.d_ff,
            self.span,
            self.dropout,
        )
    }

    /// Build the model.
    pub fn init(&self, device: &Device) -> TransformerLm {
        let pre = self.placement == NormPlacement::Pre;
        let out_init_scale = self.placement.out_init_scale(self.n_layers);
        let residual = ResidualConfig {
            d_model: self.d_model,
            norm: self.norm,
            placement: self.placement,
        };
        let layers = (0..self.n_layers)
            .map(|_| TransformerLayer {
                attn_residual: residual.init(device),
                attn: CausalSelfAttentionConfig {
                    d_model: self.d_model,
                    n_heads: self.n_heads,
                    span: self.span,
                    dropout: self.dropout,
                    out_init_scale,
                }
                .init(device),
                ff_residual: residual.init(device),
                ff: FeedForwardConfig {
                    d_model: self.d_model,
                    d_ff: self.d_ff,
                    dropout: self.dropout,
                }
                .init(device),
            })
            .collect();
        TransformerLm {
            embedding: EmbeddingConfig::new(self.vocab_size, self.d_model).init(device),
            layers,
            final_norm: pre.then(|| NormConfig::new(self.d_model, self.norm).init(device)),
            head: LinearConfig::new(self.d_model, self.vocab_size).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
        }
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

/// The causal Transformer language model.
#[derive(Module, Debug)]
pub struct TransformerLm {
    /// Token embedding `V -> D`.
    pub embedding: Embedding,
    /// The L layers.
    pub layers: Vec<TransformerLayer>,
    /// Final norm (pre-norm only).
    pub final_norm: Option<Norm>,
    /// Output layer `D -> V`.
    pub head: Linear,
    /// Dropout on the embeddings.
    pub dropout: Dropout,
}

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
            caches: self
                .layers
                .iter()
                .map(|l| KvCache::new(l.attn.span()))
                .collect(),
        }
    }

    fn output(&self, h: Tensor<3>) -> Tensor<3> {
        crate::output_head::logits(&self.final_norm, &self.head, h)
    }

    /// Logits for every position of a segment, in parallel.
    ///
    /// # Shapes
    /// - tokens: `[B, T]`
    /// - output: `[B, T, V]`
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let mut h = self.dropout.forward(self.embedding.forward(tokens)); // [B,T,D]
        for layer in &self.layers {
            h = layer.forward(h);
        }
        self.output(h)
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
        let mut h = self
            .dropout
            .forward(self.embedding.forward(token.unsqueeze_dim(1))); // [B,1,D]
        let mut state = state;
        for (layer, cache) in self.layers.iter().zip(state.caches.iter_mut()) {
            h = layer.forward_step(h, cache);
        }
        let logits = self.output(h).squeeze_dim(1); // [B,V]
        (logits, state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData};

    fn tokens(b: usize, t: usize, vocab: usize, seed: u64, device: &Device) -> Tensor<2, Int> {
        let mut x = seed;
        let data: Vec<i64> = (0..b * t)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 33) % vocab as u64) as i64
            })
            .collect();
        Tensor::from_data(TensorData::new(data, [b, t]), device)
    }

    fn max_abs_diff(a: Tensor<3>, b: Tensor<3>) -> f32 {
        (a - b).abs().max().into_scalar::<f32>()
    }

    fn configs() -> Vec<TransformerConfig> {
        let base = TransformerConfig::tiny(11);
        let mut post = base.clone();
        post.placement = NormPlacement::Post;
        post.norm = NormKind::Rms;
        let mut short = base.clone();
        short.span = 3;
        vec![base, post, short]
    }

    /// Cached step-by-step decoding equals the parallel pass (pre/post norm, short span).
    #[test]
    fn cached_steps_equal_parallel_pass() {
        let device = mnemo_backend::test_device().inner();
        for config in configs() {
            let model = config.init(&device);
            let x = tokens(2, 9, 11, 3, &device);
            let parallel = model.forward(x.clone());
            let mut state = model.init_state();
            let mut steps = Vec::new();
            for t in 0..9 {
                let (logits, s) =
                    model.forward_step(x.clone().slice([0..2, t..t + 1]).squeeze_dim(1), state);
                state = s;
                steps.push(logits.unsqueeze_dim(1));
            }
            let diff = max_abs_diff(parallel, Tensor::cat(steps, 1));
            assert!(diff < 1e-4, "{config:?}: max |Δ| = {diff}");
        }
    }

    /// Changing future tokens never changes past outputs.
    #[test]
    fn causal() {
        let device = mnemo_backend::test_device().inner();
        for config in configs() {
            let model = config.init(&device);
            let x = tokens(2, 8, 11, 5, &device);
            let y = x
                .clone()
                .slice_assign([0..2, 5..8], tokens(2, 3, 11, 9, &device));
            let (a, b) = (model.forward(x), model.forward(y));
            let past = max_abs_diff(a.clone().slice([0..2, 0..5]), b.clone().slice([0..2, 0..5]));
            assert!(past < 1e-6, "past changed by {past}");
            assert!(
                max_abs_diff(a, b) > 1e-4,
                "future change had no effect at all"
            );
        }
    }

    /// The span limit is real: outputs depend on a token S positions back only if S allows it.
    #[test]
    fn span_limits_the_context() {
        let device = mnemo_backend::test_device().inner();
        let mut config = TransformerConfig::tiny(11);
        config.span = 3;
        config.n_layers = 1;
        let model = config.init(&device);
        let x = tokens(1, 8, 11, 1, &device);
        let y = x.clone().slice_assign(
            [0..1, 0..1],
            Tensor::from_data(
                TensorData::new(
                    vec![(x.clone().slice([0..1, 0..1]).into_scalar::<i64>() + 1) % 11],
                    [1, 1],
                ),
                &device,
            ),
        );
        let (a, b) = (model.forward(x), model.forward(y));
        // One layer with span 3: position 3 and later cannot see position 0.
        let far = max_abs_diff(a.clone().slice([0..1, 3..8]), b.clone().slice([0..1, 3..8]));
        let near = max_abs_diff(a.slice([0..1, 2..3]), b.slice([0..1, 2..3]));
        assert!(far < 1e-6, "position beyond the span leaked: {far}");
        assert!(near > 1e-5, "position within the span had no effect");
        let _ = Distribution::Default;
    }
}
