//! The Feedback Transformer language model: token embedding, the [`FeedbackCore`], output head.
//!
//! Fan, Lavril, Grave, Joulin, Sukhbaatar, "Addressing Some Limitations of Transformers with
//! Feedback Memory" (2020); official code: facebookresearch/transformer-sequential
//! (`models/feedback.py`). `y_t = W_out finalnorm(hᴸ_t)` over the core's top states, with
//! `h⁰_t = Emb(x_t)`.
//!
//! Differences from the official code: memories carried across segments are stored as memory
//! vectors `m` (detached) and re-projected with the current weights at each segment start, so
//! keys never come from stale weights. `adaptive_span` adds the official adaptive attention span
//! (a learnt soft span per layer and head; [`crate::span_config`]).
//! With `share_kv = false` each layer has its own projection and window (the official default).
//!
//! Size legend: B batch, T segment length, S span, D d_model, V vocabulary.
use burn::module::Module;
use burn::nn::{Dropout, Embedding, Linear};
use burn::tensor::{Device, Int, Tensor};
use mnemo_core::{Activation, Norm};
use serde::{Deserialize, Serialize};

use crate::model_config;
use crate::stack::{StackConfig, with_stack};

use super::backward::StepProducts;
use super::core::{FeedbackCore, FeedbackCoreConfig, FeedbackOptions, MemorySource};
use super::memory::FeedbackMemory;
use crate::config::ConfigError;
use crate::output_head;

model_config! {
    /// Configuration of a [`FeedbackLm`].
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct FeedbackConfig {
        @lm_sizes
        /// Memory span S: each step attends to the S previous memories.
        pub span: usize,
        @adaptive_span
        @dropout
        @norm
        /// One key/value projection (and window) shared by all layers (true, default), or one per
        /// layer (false, the official code's default).
        #[serde(default = "crate::stack::default_true")]
        pub share_kv: bool,
        /// What a memory is made of: `"mix"` (default: the softmax mix of every layer) or
        /// `"top"` (the top layer only; the paper's ablation).
        #[serde(default)]
        pub memory: MemorySource,
        /// How the memories written in a segment are carried into the next one: `"raw"`
        /// (default: as they were mixed) or `"official"` (pre-norm only: as the official code
        /// stores them, normalised by layer 0's attention norm, so that they pass a norm twice
        /// in later segments; memories carried from earlier segments and the initial zeros are
        /// left as they are). A transformation of the detached state between segments.
        #[serde(default)]
        pub carry: Carry,
        @official
        /// The memory a layer reads is normalised by that layer's own attention norm, as its
        /// query is (default false: the K/V projection has a norm of its own). With
        /// `share_kv = false` layer l's K/V reads `norm1_l(m)` (the official pre-norm code).
        /// Under post-norm a layer's attention input is not normalised, so tied memories are
        /// read unnormalised (the official post-norm keys: `W_k m`). Pre-norm with
        /// `share_kv = true` makes one norm of every layer's attention norm and the shared K/V's
        /// (the official `--share-proj-kv`; see [`tied_norms`](super::tied_norms)).
        #[serde(default)]
        pub tie_norms: bool,
    }
}

/// How a [`FeedbackLm`] carries the memories written in a segment into the next
/// (`carry = "raw" | "official"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Carry {
    /// As they were mixed.
    #[default]
    Raw,
    /// As the official code stores them: normalised by layer 0's attention norm (pre-norm).
    Official,
}

impl FeedbackConfig {
    /// A tiny preset for tests and the quickstart.
    pub fn tiny(vocab_size: usize) -> Self {
        with_stack!(
            StackConfig::TINY,
            Self {
                vocab_size,
                span: 8,
                adaptive_span: None,
                share_kv: true,
                memory: MemorySource::Mix,
                carry: Carry::Raw,
                activation: Activation::Gelu,
                bias: true,
                tie_positions: false,
                tie_norms: false,
                d_head: 0,
            }
        )
    }

    /// Check every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.stack_of(self.n_layers)
            .validate(self.vocab_size, self.span)?;
        if self.carry == Carry::Official && !self.stack_of(self.n_layers).is_pre_norm() {
            return Err(ConfigError::new(
                "carry",
                "\"official\" (memories carried normalised by layer 0's attention norm) needs \
                 placement = \"pre\"; the official post-norm code carries them raw: use \"raw\"",
            ));
        }
        if let Some(adaptive) = &self.adaptive_span {
            adaptive.validate()?;
        }
        Ok(())
    }

    /// The core's sizes.
    pub fn core(&self) -> FeedbackCoreConfig {
        FeedbackCoreConfig {
            memory: self.memory,
            options: FeedbackOptions {
                activation: self.activation,
                bias: self.bias,
                tie_positions: self.tie_positions,
                tie_norms: self.tie_norms,
                d_head: self.d_head,
            },
            adaptive_span: self.adaptive_span.map(|a| a.core(self.n_heads, self.span)),
            ..self
                .stack_of(self.n_layers)
                .feedback_core(self.span, self.share_kv)
        }
    }

    /// Build the model.
    pub fn init(&self, device: &Device) -> FeedbackLm {
        let io = self
            .stack_of(self.n_layers)
            .token_io(self.vocab_size, device);
        FeedbackLm {
            embedding: io.embedding,
            core: self.core().init(device),
            final_norm: io.final_norm,
            head: io.head,
            dropout: io.dropout,
            carry: self.carry,
        }
    }
}

/// The last S memories of a stream, carried across segments and steps.
#[derive(Debug, Clone)]
pub struct FeedbackState {
    /// Memory vectors, oldest first. Shape `[B, S, D]`.
    pub memories: Tensor<3>,
    /// The memory with its projected keys/values, kept during step-by-step decoding only; a
    /// segment always re-projects `memories` with the current weights.
    pub projected: Option<FeedbackMemory>,
}

impl FeedbackState {
    /// Move to `device`.
    pub fn to_device(self, device: &Device) -> Self {
        Self {
            memories: self.memories.to_device(device),
            projected: None,
        }
    }
}

/// The Feedback Transformer language model.
#[derive(Module, Debug)]
pub struct FeedbackLm {
    /// Token embedding `V -> D`.
    pub embedding: Embedding,
    /// Layers, memory projections and mixing weights.
    pub core: FeedbackCore,
    /// Final norm (pre-norm only).
    pub final_norm: Option<Norm>,
    /// Output layer `D -> V`.
    pub head: Linear,
    /// Dropout on the embeddings.
    pub dropout: Dropout,
    /// How memories are carried into the next segment; fixed by the config.
    #[module(skip)]
    pub carry: Carry,
}

impl FeedbackLm {
    /// The state a segment of `t_len` steps hands to the next, from the memory window after
    /// its last step: the window itself with [`Carry::Raw`]; with [`Carry::Official`], the
    /// `min(T, S)` memories written in the segment replaced by `norm1_0(m)` (layer 0's attention
    /// norm), detached, as the official code stores them. Older memories and the initial
    /// zeros are kept as they are.
    ///
    /// # Shapes
    /// - memories: `[B, S, D]`
    /// - output: `[B, S, D]`
    pub fn carried(&self, memories: Tensor<3>, t_len: usize) -> Tensor<3> {
        match self.carry {
            Carry::Raw => memories,
            Carry::Official => {
                let s = memories.dims()[1];
                let written = t_len.min(s);
                if written == 0 {
                    return memories;
                }
                let norm = &self.core.layers[0].attn_residual.norm;
                let new = norm.forward(memories.clone().narrow(1, s - written, written));
                match s - written {
                    0 => new.detach(),
                    kept => Tensor::cat(vec![memories.narrow(1, 0, kept), new], 1).detach(),
                }
            }
        }
    }

    /// The same model with its per-step products computed by `products`; see
    /// [`FeedbackCore::with_step_products`].
    pub fn with_step_products(mut self, products: StepProducts) -> Self {
        self.core = self.core.with_step_products(products);
        self
    }

    /// Memory span S.
    pub fn span(&self) -> usize {
        self.core.span
    }

    /// Zero memories: the state of a fresh stream.
    pub fn init_state(&self, batch: usize, device: &Device) -> FeedbackState {
        let d = self.core.d_model();
        FeedbackState {
            memories: Tensor::zeros([batch, self.span(), d], device),
            projected: None,
        }
    }

    fn embed(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        self.dropout.forward(self.embedding.forward(tokens))
    }

    /// Run a segment step by step, carrying the memory window in place.
    ///
    /// Returns the logits and the state for the next segment: the last S memories, detached.
    ///
    /// # Shapes
    /// - tokens: `[B, T]`
    /// - state.memories: `[B, S, D]`
    /// - output: logits `[B, T, V]`
    pub fn forward_segment(
        &self,
        tokens: Tensor<2, Int>,
        state: FeedbackState,
    ) -> (Tensor<3>, FeedbackState) {
        let [_b, t_len] = tokens.dims();
        let memory = self.core.memory(state.memories, t_len);
        let (top, memory) = self.core.forward_unhooked(self.embed(tokens), memory);
        (
            output_head::logits(&self.final_norm, &self.head, top),
            FeedbackState {
                memories: self.carried(memory.memories(), t_len),
                projected: None,
            },
        )
    }

    /// One decoding step: logits for `token` and the state with its memory appended.
    ///
    /// # Shapes
    /// - token: `[B]`
    /// - output: `[B, V]`
    pub fn forward_step(
        &self,
        token: Tensor<1, Int>,
        state: FeedbackState,
    ) -> (Tensor<2>, FeedbackState) {
        let FeedbackState {
            memories,
            projected,
        } = state;
        let mut memory =
            projected.unwrap_or_else(|| self.core.memory(memories.clone(), self.span()));
        drop(memories); // may be a view of the memory's buffer: drop it so the write is in place
        // The final norm and head go with the step's host products (computed inside the
        // host-row step when it runs; else here, by burn).
        memory.init_constants(|| {
            self.core
                .constants_with_readout(self.final_norm.as_ref(), &self.head)
        });
        let (top, logits) = self
            .core
            .step_unhooked_read(self.embed(token.unsqueeze_dim(1)), &mut memory);
        let logits = logits
            .unwrap_or_else(|| output_head::logits(&self.final_norm, &self.head, top))
            .squeeze_dim(1);
        (
            logits,
            FeedbackState {
                memories: memory.memories(),
                projected: Some(memory),
            },
        )
    }
}
