//! Transformer-XL with a per-layer memory schedule.
//!
//! Dai et al., "Transformer-XL: Attentive Language Models Beyond a Fixed-Length Context" (2019),
//! with the per-layer memory lengths of Rae & Razavi, "Do Transformers Need Deep Long-Range
//! Memory?" (2020). Per layer l with memory length Mₗ (see [`MemorySchedule`]):
//!
//! ```text
//! h⁰ = Emb(x)                                            (the segment, T positions)
//! c  = SG(memˡ) ++ hˡ⁻¹                                  memˡ: last Mₗ layer-l inputs, detached
//! a_t = Σ_{i ∈ c, 0 ≤ t-i ≤ Mₗ} softmax_i(q_t·k_i + q_t·p_{min(t-i, P-1)}) / sqrt(Dh) · v_i
//! hˡ  = FF(hˡ⁻¹ + W_o a)                                 (pre- or post-norm residuals)
//! memˡ ← last Mₗ positions of SG(memˡ ++ hˡ⁻¹)
//! ```
//!
//! Each position sees itself and exactly the Mₗ positions before it (fewer at the stream start),
//! whether they lie in the memory or the segment: a band. So a run over segments with carried
//! memory equals one long run with the banded mask, and one-step decoding (memory as cache)
//! equals the segment pass. The original Transformer-XL lets later queries of a segment see
//! more (memory plus the whole segment prefix); the band makes Mₗ the layer's exact reach.
//! Relative positions are learned vectors per distance (`q · p_d`, as in the baseline), with
//! `P = relative_span` distances (default max Mₗ + 1); distances ≥ P, which only occur when
//! evaluation lengthens the memory ([`TransformerXlLm::set_eval_memory`]), reuse `p_{P-1}`.
//!
//! The official baseline of the Feedback Transformer's code (`TransformerSeq` in
//! facebookresearch/transformer-sequential) is this model with `attend_self = false` (each
//! position sees exactly the Mₗ positions before it, not itself; distances 1..=Mₗ),
//! `zero_memory = true` (a stream starts with Mₗ zero layer inputs in each memory), and the
//! `@official` choices (ReLU, no attention biases, one position table, free head size); see
//! docs/official.md.
//!
//! Size legend: B batch, T segment length, Mₗ memory of layer l, L layers, H heads, D d_model,
//! V vocabulary.
use crate::feed_forward::feed_forward;
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use mnemo_core::{
    CausalSelfAttention, CausalSelfAttentionConfig, FeedForward, FeedForwardConfig,
    RelativePositions, Residual, SegmentMemory,
};
use serde::{Deserialize, Serialize};

use crate::model_config;
use crate::stack::{StackConfig, with_stack};

use crate::config::ConfigError;
use crate::memory_schedule::MemorySchedule;
use crate::stack_lm::StackLm;
use crate::transformer::TransformerLayer;

model_config! {
    /// Configuration of a [`TransformerXlLm`]. The memory schedule takes exactly one of three forms:
    /// `memory_len`, `memory_schedule`, or `long_range_layers` + `long_memory_len` +
    /// `short_memory_len` (see [`MemorySchedule`]).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct TransformerXlConfig {
        @lm_sizes
        /// One memory length for every layer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub memory_len: Option<usize>,
        /// One memory length per layer, bottom layer first.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub memory_schedule: Option<Vec<usize>>,
        /// 0-based indices of the layers with the long memory.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub long_range_layers: Option<Vec<usize>>,
        /// Memory length of the long-range layers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub long_memory_len: Option<usize>,
        /// Memory length of the other layers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub short_memory_len: Option<usize>,
        /// Number of learned relative distances P (default: the longest memory + 1, i.e. every
        /// distance a layer can see; larger values are allowed, smaller ones rejected).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub relative_span: Option<usize>,
        @adaptive_span
        @dropout
        @norm
        @official
        /// Whether a position attends to itself (default true). `false` is the official
        /// `TransformerSeq`: each position sees exactly the Mₗ positions before it, and the
        /// position table covers distances 1..=Mₗ; needs `zero_memory = true`.
        #[serde(default = "crate::stack::default_true")]
        pub attend_self: bool,
        /// Whether a stream starts with Mₗ zero states in each layer's memory (the official
        /// `TransformerSeq`'s initial cache), so that every position sees Mₗ earlier ones, instead
        /// of an empty memory (default false).
        #[serde(default)]
        pub zero_memory: bool,
    }
}

impl TransformerXlConfig {
    /// A tiny preset for tests and the quickstart, with `memory_len` on every layer.
    pub fn tiny(vocab_size: usize, memory_len: usize) -> Self {
        with_stack!(
            StackConfig::TINY,
            Self {
                vocab_size,
                memory_len: Some(memory_len),
                memory_schedule: None,
                long_range_layers: None,
                long_memory_len: None,
                short_memory_len: None,
                relative_span: None,
                adaptive_span: None,
                activation: Default::default(),
                bias: true,
                tie_positions: false,
                d_head: 0,
                attend_self: true,
                zero_memory: false,
            }
        )
    }

    /// The same config with `schedule` as its memory schedule.
    pub fn with_schedule(mut self, schedule: MemorySchedule) -> Self {
        self.memory_len = schedule.memory_len;
        self.memory_schedule = schedule.memory_schedule;
        self.long_range_layers = schedule.long_range_layers;
        self.long_memory_len = schedule.long_memory_len;
        self.short_memory_len = schedule.short_memory_len;
        self
    }

    /// The schedule fields.
    pub fn schedule(&self) -> MemorySchedule {
        MemorySchedule {
            memory_len: self.memory_len,
            memory_schedule: self.memory_schedule.clone(),
            long_range_layers: self.long_range_layers.clone(),
            long_memory_len: self.long_memory_len,
            short_memory_len: self.short_memory_len,
        }
    }

    /// The memory length of each layer, bottom first.
    pub fn memory_lens(&self) -> Result<Vec<usize>, ConfigError> {
        self.schedule().lengths(self.n_layers)
    }

    /// Smallest distance a position attends to: 0 (itself) or 1 (`attend_self = false`).
    pub fn min_distance(&self) -> usize {
        usize::from(!self.attend_self)
    }

    /// Number of learned relative distances P (from [`min_distance`](Self::min_distance)).
    pub fn positions(&self) -> Result<usize, ConfigError> {
        let longest = self.memory_lens()?.into_iter().max().unwrap_or(0);
        let needed = longest + 1 - self.min_distance();
        match self.relative_span {
            None => Ok(needed),
            Some(p) if p < needed => Err(ConfigError::new(
                "relative_span",
                format!(
                    "({p}) must cover every distance a layer sees: {needed} (the longest memory, \
                     {longest}, plus the position itself unless attend_self = false)"
                ),
            )),
            Some(p) => Ok(p),
        }
    }

    /// Check every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // The span of the common checks is the schedule here; it is checked below.
        self.stack_of(self.n_layers).validate(self.vocab_size, 1)?;
        if !self.attend_self && !self.zero_memory {
            return Err(ConfigError::new(
                "attend_self",
                "false needs zero_memory = true: the first position of a stream would \
                 otherwise have nothing to attend to",
            ));
        }
        if let Some(adaptive) = &self.adaptive_span {
            adaptive.validate()?;
        }
        self.positions().map(|_| ())
    }

    /// The attention of layer `layer` over P relative distances: the stack's, with this
    /// config's head size, biases and smallest distance; layers above the first read the first
    /// layer's table when `tie_positions`.
    fn attention(&self, positions: usize, layer: usize) -> CausalSelfAttentionConfig {
        CausalSelfAttentionConfig {
            d_head: self.d_head,
            bias: self.bias,
            min_distance: self.min_distance(),
            tied_positions: self.tie_positions && layer > 0,
            adaptive_span: self.adaptive_span.map(|a| a.core(self.n_heads, positions)),
            ..self.stack_of(self.n_layers).self_attention(positions)
        }
    }

    /// Build the model. Panics on an invalid config: call [`validate`](Self::validate) first.
    pub fn init(&self, device: &Device) -> TransformerXlLm {
        let lens = self.memory_lens().expect("validated config");
        let positions = self.positions().expect("validated config");
        let stack = self.stack_of(self.n_layers);
        let ff = FeedForwardConfig {
            activation: self.activation,
            ..stack.feed_forward()
        };
        let layers = lens
            .into_iter()
            .enumerate()
            .map(|(l, memory_len)| {
                let layer = TransformerLayer {
                    attn: Some(self.attention(positions, l).init(device)),
                    ff: Some(ff.init(device)),
                    ..stack.transformer_layer_parts(device)
                };
                let mut layer = XlLayer::new(layer, memory_len);
                layer.zero_memory = self.zero_memory;
                layer
            })
            .collect();
        TransformerXlLm::new(stack.token_io(self.vocab_size, device), layers)
    }
}

/// One Transformer-XL layer: banded attention over `memory ++ segment`, then feed-forward.
#[derive(Module, Debug)]
pub struct XlLayer {
    /// Norm and residual around the attention (the memory is normed as the segment is).
    pub attn_residual: Residual,
    /// Attention with relative positions (its table holds P distances).
    pub attn: CausalSelfAttention,
    /// Norm and residual around the feed-forward sublayer.
    pub ff_residual: Residual,
    /// Feed-forward sublayer.
    pub ff: FeedForward,
    /// Memory length Mₗ in use: earlier positions each query sees.
    pub memory_len: usize,
    /// Memory length Mₗ from the config (what the model was trained with).
    pub trained_memory_len: usize,
    /// Whether a stream starts with Mₗ zero states in the memory (`zero_memory`).
    pub zero_memory: bool,
}

impl XlLayer {
    /// A Transformer layer's blocks (its attention's table holds P distances) with memory
    /// length Mₗ, in use and as trained.
    pub fn new(layer: TransformerLayer, memory_len: usize) -> Self {
        let (attn_residual, attn, ff_residual, ff) = layer.into_softmax_blocks();
        XlLayer {
            attn_residual,
            attn,
            ff_residual,
            ff,
            memory_len,
            trained_memory_len: memory_len,
            zero_memory: false,
        }
    }

    /// The layer over a segment; `tied` is the first layer's position table, read when the
    /// layer has none of its own (`tie_positions`).
    ///
    /// # Shapes
    /// - x: `[B, T, D]` (the layer's inputs for the segment)
    /// - output: `[B, T, D]`
    pub fn forward(
        &self,
        x: Tensor<3>,
        memory: &SegmentMemory,
        tied: Option<&RelativePositions>,
    ) -> Tensor<3> {
        let x = self.attn_residual.forward(x, |h| {
            // h is the segment as the sublayer sees it; the memory goes through the same map.
            let context = match memory.states() {
                Some(m) => Tensor::cat(
                    vec![self.attn_residual.sublayer_input(m.clone()), h.clone()],
                    1,
                ),
                None => h.clone(),
            }; // [B,M+T,D]
            self.attn
                .forward_with_memory(h, context, self.memory_len, tied)
        });
        self.ff_residual.forward(x, |h| feed_forward(&self.ff, h))
    }
}

/// The Transformer-XL language model: [`XlLayer`]s in a [`StackLm`].
pub type TransformerXlLm = StackLm<XlLayer>;

/// The per-layer memories carried from one segment (or step) to the next.
#[derive(Debug, Clone)]
pub struct TransformerXlState {
    /// One memory per layer, bottom first; each holds `[B, Mₗ', D]` with Mₗ' ≤ Mₗ.
    pub memories: Vec<SegmentMemory>,
}

impl TransformerXlState {
    /// Move the memories to `device`.
    pub fn to_device(self, device: &Device) -> Self {
        Self {
            memories: self
                .memories
                .into_iter()
                .map(|m| m.to_device(device))
                .collect(),
        }
    }
}

impl TransformerXlLm {
    /// Empty memories, one per layer.
    pub fn init_state(&self) -> TransformerXlState {
        TransformerXlState {
            memories: self.per_layer(|l| SegmentMemory::new(l.memory_len)),
        }
    }

    /// Model width D.
    pub fn d_model(&self) -> usize {
        self.embedding.weight.dims()[1]
    }

    /// Memory lengths in use, bottom layer first.
    pub fn memory_lens(&self) -> Vec<usize> {
        self.per_layer(|l| l.memory_len)
    }

    /// Set the memory length used from now on (evaluation): layers trained with the longest
    /// memory (all layers for a uniform schedule) get `len`, the short layers keep theirs.
    /// Distances past the learned table reuse its last vector. Errors if `len` is 0.
    pub fn set_eval_memory(&mut self, len: usize) -> Result<(), String> {
        if len == 0 {
            return Err("the evaluation memory length must be at least 1".into());
        }
        let longest = self
            .layers
            .iter()
            .map(|l| l.trained_memory_len)
            .max()
            .unwrap_or(0);
        for layer in &mut self.layers {
            if layer.trained_memory_len == longest {
                layer.memory_len = len;
            }
        }
        Ok(())
    }

    /// Logits for a segment given the memories of the positions before it; returns the new
    /// (detached) memories.
    ///
    /// # Shapes
    /// - tokens: `[B, T]`
    /// - output: `[B, T, V]`
    pub fn forward_segment(
        &self,
        tokens: Tensor<2, Int>,
        state: TransformerXlState,
    ) -> (Tensor<3>, TransformerXlState) {
        assert_eq!(
            state.memories.len(),
            self.layers.len(),
            "one memory per layer"
        );
        let mut h = self.embed(tokens); // [B,T,D]
        let [b, _, d] = h.dims();
        // The first layer's table, for layers that read it (`tie_positions`).
        let tied = self.layers.first().and_then(|l| l.attn.positions.as_ref());
        let mut memories = Vec::with_capacity(self.layers.len());
        for (layer, memory) in self.layers.iter().zip(state.memories) {
            let mut memory = memory.with_capacity(layer.memory_len);
            if layer.zero_memory && memory.is_empty() {
                let zeros = Tensor::zeros([b, layer.memory_len, d], &h.device());
                memory = SegmentMemory::from_states(zeros, layer.memory_len);
            }
            let next = layer.forward(h.clone(), &memory, tied);
            memories.push(memory.advance(h));
            h = next;
        }
        (self.logits(h), TransformerXlState { memories })
    }

    /// Logits for one new position: a segment of length 1 (the memories are the cache).
    ///
    /// # Shapes
    /// - token: `[B]`
    /// - output: `[B, V]`
    pub fn forward_step(
        &self,
        token: Tensor<1, Int>,
        state: TransformerXlState,
    ) -> (Tensor<2>, TransformerXlState) {
        let (logits, state) = self.forward_segment(token.unsqueeze_dim(1), state);
        (logits.squeeze_dim(1), state)
    }
}
