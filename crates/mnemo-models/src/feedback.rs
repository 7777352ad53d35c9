//! The Feedback Transformer language model.
//!
//! Fan, Lavril, Grave, Joulin, Sukhbaatar, "Addressing Some Limitations of Transformers with
//! Feedback Memory" (2020); official code: facebookresearch/transformer-sequential
//! (`models/feedback.py`). What this file computes is DESIGN.md §4, per step t:
//!
//! ```text
//! h⁰_t = Emb(x_t)
//! hˡ_t = Layerₗ(hˡ⁻¹_t, K[t-S..t-1], V[t-S..t-1])          l = 1..L   (attend memories only)
//! m_t  = Σ_{l=0..L} softmax(w)_l · hˡ_t                     w: L+1 logits, zero at init
//! K_t  = W_k norm(m_t),  V_t = W_v norm(m_t)                once per step if share_kv
//! y_t  = W_out finalnorm(hᴸ_t)
//! ```
//!
//! Size legend: B batch, T segment length, S memory span, L layers, H heads, D d_model,
//! Dh = D/H, V vocabulary.
//!
//! Differences from the official code: memories carried across segments are stored as memory
//! vectors `m` (detached) and re-projected with the current weights at each segment start, so
//! keys never come from stale weights; adaptive span is not implemented (a fixed span S).
//! With `share_kv = false` each layer has its own projection and window (the official default).
use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor};
use mnemo_core::{FeedbackWindow, Norm, NormConfig, NormKind, NormPlacement};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, check_common};
use crate::feedback_cache::FeedbackCache;
use crate::feedback_layer::{FeedbackLayer, FeedbackLayerConfig, MemoryProjection};

fn default_true() -> bool {
    true
}

/// Configuration of a [`FeedbackLm`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackConfig {
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
    /// Memory span S: each step attends to the S previous memories.
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
    /// One key/value projection (and window) shared by all layers (true, default), or one per
    /// layer (false, the official code's default).
    #[serde(default = "default_true")]
    pub share_kv: bool,
}

impl FeedbackConfig {
    /// A tiny preset for tests and the quickstart.
    pub fn tiny(vocab_size: usize) -> Self {
        Self {
            vocab_size,
            d_model: 32,
            n_layers: 2,
            n_heads: 2,
            d_ff: 64,
            span: 8,
            dropout: 0.0,
            norm: NormKind::Layer,
            placement: NormPlacement::Pre,
            share_kv: true,
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
    pub fn init(&self, device: &Device) -> FeedbackLm {
        let pre = self.placement == NormPlacement::Pre;
        let layer = FeedbackLayerConfig {
            d_model: self.d_model,
            n_heads: self.n_heads,
            d_ff: self.d_ff,
            span: self.span,
            dropout: self.dropout,
            norm: self.norm,
            pre_norm: pre,
            out_init_scale: if pre { 1.0 / (2.0 * self.n_layers as f64).sqrt() } else { 1.0 },
        };
        let n_proj = if self.share_kv { 1 } else { self.n_layers };
        FeedbackLm {
            embedding: EmbeddingConfig::new(self.vocab_size, self.d_model).init(device),
            layers: (0..self.n_layers).map(|_| layer.init(device)).collect(),
            memory_projections: (0..n_proj)
                .map(|_| MemoryProjection::init(self.d_model, self.n_heads, self.norm, device))
                .collect(),
            mix: Initializer::Zeros.init([self.n_layers + 1], device),
            final_norm: pre.then(|| NormConfig::new(self.d_model, self.norm).init(device)),
            head: LinearConfig::new(self.d_model, self.vocab_size).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            span: self.span,
        }
    }
}

/// The last S memories of a stream, carried across segments and steps.
#[derive(Debug, Clone)]
pub struct FeedbackState {
    /// Memory vectors, oldest first. Shape `[B, S, D]`.
    pub memories: Tensor<3>,
    /// The decoding cache (preallocated buffers of keys/values and memories, written in place),
    /// kept during step-by-step decoding only; a segment always re-projects `memories` with the
    /// current weights. While it is set, `memories` is a view of its buffer.
    pub projected: Option<FeedbackCache>,
}

impl FeedbackState {
    /// Move to `device`.
    pub fn to_device(self, device: &Device) -> Self {
        Self { memories: self.memories.to_device(device), projected: None }
    }
}

/// The Feedback Transformer language model.
#[derive(Module, Debug)]
pub struct FeedbackLm {
    /// Token embedding `V -> D`.
    pub embedding: Embedding,
    /// The L layers.
    pub layers: Vec<FeedbackLayer>,
    /// One shared memory projection, or one per layer.
    pub memory_projections: Vec<MemoryProjection>,
    /// Mixing logits `w` over the embedding and the L layer outputs. Shape `[L+1]`.
    pub mix: Param<Tensor<1>>,
    /// Final norm (pre-norm only).
    pub final_norm: Option<Norm>,
    /// Output layer `D -> V`.
    pub head: Linear,
    /// Dropout on the embeddings.
    pub dropout: Dropout,
    /// Memory span S.
    pub span: usize,
}

impl FeedbackLm {
    /// Zero memories: the state of a fresh stream.
    pub fn init_state(&self, batch: usize, device: &Device) -> FeedbackState {
        let d = self.head.weight.dims()[0];
        FeedbackState { memories: Tensor::zeros([batch, self.span, d], device), projected: None }
    }

    /// Index of the memory projection (and window) layer `l` reads.
    fn projection_of(&self, l: usize) -> usize {
        if self.memory_projections.len() == 1 { 0 } else { l }
    }

    /// Softmax of the mixing logits, shaped to weight a stack of states.
    ///
    /// # Shapes
    /// - output: `[L+1, 1, 1, 1]`
    pub fn mix_weights(&self) -> Tensor<4> {
        softmax(self.mix.val(), 0).reshape([self.layers.len() + 1, 1, 1, 1])
    }

    /// Run the layers for one step against the given windows; return the top state and the
    /// new memory.
    ///
    /// # Shapes
    /// - x: `[B, 1, D]` embedded token
    /// - windows: per projection, keys and values `[B, H, S, Dh]`
    /// - output: top `[B, 1, D]`, memory `[B, 1, D]`
    fn step(
        &self,
        x: Tensor<3>,
        windows: &[(Tensor<4>, Tensor<4>)],
        positions: &[Tensor<4>],
        mix: &Tensor<4>,
    ) -> (Tensor<3>, Tensor<3>) {
        let mut states = Vec::with_capacity(self.layers.len() + 1);
        let mut h = x;
        states.push(h.clone());
        for (l, layer) in self.layers.iter().enumerate() {
            let (k, v) = &windows[self.projection_of(l)];
            h = layer.forward(h, k.clone(), v.clone(), positions[l].clone());
            states.push(h.clone());
        }
        let memory = (Tensor::stack::<4>(states, 0) * mix.clone()).sum_dim(0).squeeze_dim(0);
        (h, memory)
    }

    fn output(&self, h: Tensor<3>) -> Tensor<3> {
        crate::output_head::logits(&self.final_norm, &self.head, h)
    }

    /// Run a segment step by step, carrying the memory window in place.
    ///
    /// Returns the logits and the state for the next segment: the last S memories, detached.
    ///
    /// # Shapes
    /// - tokens: `[B, T]`
    /// - state.memories: `[B, S, D]`
    /// - output: logits `[B, T, V]`
    pub fn forward_segment(&self, tokens: Tensor<2, Int>, state: FeedbackState) -> (Tensor<3>, FeedbackState) {
        let [_b, t_len] = tokens.dims();
        let s = self.span;
        let embedded = self.dropout.forward(self.embedding.forward(tokens)); // [B,T,D]
        let mut windows: Vec<FeedbackWindow> = self
            .memory_projections
            .iter()
            .map(|p| {
                let (k, v) = p.forward(state.memories.clone()); // [B,H,S,Dh]
                FeedbackWindow::new(k, v, t_len)
            })
            .collect();
        let positions: Vec<Tensor<4>> = self.layers.iter().map(|l| l.window_positions()).collect();
        let mix = self.mix_weights();
        let mut tops = Vec::with_capacity(t_len);
        let mut memories = Vec::with_capacity(t_len);
        for t in 0..t_len {
            let x = embedded.clone().narrow(1, t, 1); // [B,1,D]
            let views: Vec<_> = windows.iter().map(|w| w.view(t)).collect();
            let (top, memory) = self.step(x, &views, &positions, &mix);
            for (window, projection) in windows.iter_mut().zip(&self.memory_projections) {
                let (k, v) = projection.forward(memory.clone()); // [B,H,1,Dh]
                window.write(t, k, v);
            }
            tops.push(top);
            memories.push(memory);
        }
        let logits = self.output(Tensor::cat(tops, 1));
        let all = Tensor::cat(vec![state.memories, Tensor::cat(memories, 1)], 1); // [B,S+T,D]
        let next = all.narrow(1, t_len, s).detach(); // the last S memories
        (logits, FeedbackState { memories: next, projected: None })
    }

    /// One decoding step: logits for `token` and the state with its memory appended.
    ///
    /// # Shapes
    /// - token: `[B]`
    /// - output: `[B, V]`
    pub fn forward_step(&self, token: Tensor<1, Int>, state: FeedbackState) -> (Tensor<2>, FeedbackState) {
        let FeedbackState { memories, projected } = state;
        let mut cache = match projected {
            Some(cache) => cache,
            None => {
                let projected = self.memory_projections.iter().map(|p| p.forward(memories.clone())).collect();
                let positions = self.layers.iter().map(|l| l.window_positions()).collect();
                FeedbackCache::new(memories.clone(), projected, positions)
            }
        };
        drop(memories); // a view of the cache's buffer: drop it so the write below is in place
        let x = self.dropout.forward(self.embedding.forward(token.unsqueeze_dim(1))); // [B,1,D]
        let windows = cache.windows(); // views [B,H,S,Dh]
        let (top, memory) = self.step(x, &windows, &cache.positions, &self.mix_weights());
        drop(windows);
        let projected = self.memory_projections.iter().map(|p| p.forward(memory.clone())).collect();
        cache.push(memory, projected);
        let logits = self.output(top).squeeze_dim(1);
        (logits, FeedbackState { memories: cache.live_memories(), projected: Some(cache) })
    }
}
