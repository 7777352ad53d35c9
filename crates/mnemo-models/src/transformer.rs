//! The causal Transformer language model: the baseline the Feedback Transformer is compared with.
//!
//! Vaswani et al., "Attention Is All You Need" (2017), decoder-only, with learned relative
//! position terms (`q · p_{t-i}`, as in the Feedback Transformer's official code) and an
//! attention span S. Pre-norm (default, with a final norm and the attention output projection
//! scaled by 1/sqrt(2L) at init) or post-norm; LayerNorm or RMSNorm.
//!
//! Two more residual streams (docs/models.md, "Residual streams"):
//! - `placement = "resi_dual"`: ResiDual (Xie et al. 2023, "ResiDual: Transformer with Dual
//!   Residual Connections", the Pre-Post-LN equations of Sec. 3). Over the 2L sublayers f_k
//!   (attention, feed-forward, per layer), from `x_1 = d_1 = dropout(Emb(tokens))`:
//!   `x_{k+1} = LN_k(x_k + f_k(x_k))`, `d_{k+1} = d_k + f_k(x_k)`, and the logits are
//!   `W_out (x_{2L+1} + LN_final(d_{2L+1}))`. The dual stream is a per-position sum, so
//!   `forward_step` carries it exactly ([`Residual::forward_dual`]).
//! - `init = "admin"` (post-norm only): Admin (Liu et al. 2020, "Understanding the Difficulty
//!   of Training Transformers"): each sublayer is `LN(x ⊙ ω + f(x))` with a learned `ω` [D],
//!   1 until [`TransformerLm::admin_profile`] sets it from one batch ([`mnemo_core::admin`]).
//!
//! A vanilla Transformer carries nothing across segments: each training segment is attended
//! within itself. `forward_step` with a KV cache equals `forward` position by position. Linear
//! attention and Performer layers may carry their fast weights from segment to segment
//! (`attention = { ..., carry = true }`, [`TransformerLm::forward_segment`]).
//!
//! Size legend: B batch, T segment length, S span, L layers, H heads, D d_model, V vocabulary.
use crate::feed_forward::feed_forward;
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use mnemo_core::{
    AdminProfile, AdminScale, AttentionVariant, CausalSelfAttention, FeedForward, KvCache,
    NormPlacement, Residual, SelfAttentionCache,
};
use serde::{Deserialize, Serialize};

use crate::attention_config::{AttentionConfig, LayerAttention};
use crate::model_config;
use crate::stack::{StackConfig, with_stack};

use crate::config::ConfigError;
use crate::output_head;
use crate::stack_lm::StackLm;

pub mod backward;
pub mod inspect;

model_config! {
    /// Configuration of a [`TransformerLm`].
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct TransformerConfig {
        @lm_sizes
        /// Attention span S: each position sees itself and S-1 positions before it (softmax
        /// attention; see [`AttentionConfig`] for what the other mechanisms read).
        pub span: usize,
        @adaptive_span
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
        /// How the residual blocks start (`init = "default" | "admin"`; default `"default"`).
        #[serde(default)]
        pub init: ResidualInit,
    }
}

/// The initialisation of a Transformer's residual blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResidualInit {
    /// Plain residual blocks.
    #[default]
    Default,
    /// Admin (Liu et al. 2020; post-norm only): each block `LN(x ⊙ ω + f(x))` with a learned
    /// `ω` [D] per sublayer, set by [`TransformerLm::admin_profile`] before training.
    Admin,
}

fn default_feed_forward() -> bool {
    true
}

impl TransformerConfig {
    /// A tiny preset for tests and the quickstart (mirrors `experiments/smoke`).
    pub fn tiny(vocab_size: usize) -> Self {
        with_stack!(
            StackConfig::TINY,
            Self {
                vocab_size,
                span: 16,
                adaptive_span: None,
                attention: AttentionConfig::Softmax,
                persistent_memory: 0,
                feed_forward: true,
                init: ResidualInit::Default,
            }
        )
    }

    /// Check every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // The one stack that carries ResiDual's dual stream: no placement is refused here.
        self.stack_of(self.n_layers)
            .validate_sizes(self.vocab_size, self.span)?;
        if self.init == ResidualInit::Admin && self.placement != NormPlacement::Post {
            return Err(ConfigError::new(
                "init",
                format!(
                    "\"admin\" scales post-norm residual blocks; it needs placement = \"post\", \
                     got {:?}",
                    self.placement
                ),
            ));
        }
        self.attention.validate(
            &self.stack_of(self.n_layers),
            self.span,
            self.persistent_memory,
        )?;
        if let Some(adaptive) = &self.adaptive_span {
            adaptive.validate()?;
            check_adaptive_span(&self.attention, self.persistent_memory)?;
        }
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
        let adaptive = self.adaptive_span.map(|a| a.core(self.n_heads, self.span));
        let layers = (0..self.n_layers)
            .map(|l| {
                let (attn, attn_variant) = match self.attention.init(
                    &stack,
                    self.span,
                    self.persistent_memory,
                    adaptive,
                    l,
                    device,
                ) {
                    LayerAttention::Softmax(a) => (Some(a), None),
                    LayerAttention::Variant(v) => (None, Some(v)),
                };
                let admin = self.init == ResidualInit::Admin;
                let admin = |on: bool| (admin && on).then(|| AdminScale::new(self.d_model, device));
                TransformerLayer {
                    attn_residual: stack.residual().init(device),
                    attn,
                    attn_variant,
                    ff_residual: self.feed_forward.then(|| stack.residual().init(device)),
                    ff: self.feed_forward.then(|| stack.feed_forward().init(device)),
                    attn_admin: admin(true),
                    ff_admin: admin(self.feed_forward),
                    carry: self.attention.carries(),
                }
            })
            .collect();
        TransformerLm::new(stack.token_io(self.vocab_size, device), layers)
    }
}

/// An adaptive span masks softmax attention over the span: not another mechanism, and not
/// persistent slots (they have no distance).
fn check_adaptive_span(
    attention: &AttentionConfig,
    persistent_memory: usize,
) -> Result<(), ConfigError> {
    if *attention != AttentionConfig::Softmax {
        return Err(ConfigError::new(
            "adaptive_span",
            format!(
                "masks softmax attention over the span; attention is \"{}\"",
                attention.name()
            ),
        ));
    }
    if persistent_memory > 0 {
        return Err(ConfigError::new(
            "adaptive_span",
            "not with persistent_memory slots (they have no distance to mask)",
        ));
    }
    Ok(())
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
    /// Admin's `ω` of the attention block (`init = "admin"` only).
    pub attn_admin: Option<AdminScale>,
    /// Admin's `ω` of the feed-forward block (`init = "admin"` with feed-forward only).
    pub ff_admin: Option<AdminScale>,
    /// Whether the attention continues each segment from the state the previous one left
    /// (`carry = true`: linear attention or Performer; set from the config, not saved).
    #[module(skip)]
    pub carry: bool,
}

/// The residual streams between sublayers: `x`, and ResiDual's dual stream `d` (None unless
/// `placement = "resi_dual"`).
///
/// # Shapes
/// - both `[B, T, D]`
pub type Streams = (Tensor<3>, Option<Tensor<3>>);

/// One residual block around `f`: ResiDual's two-stream update when the dual stream is carried,
/// Admin's `LN(x ⊙ ω + f(x))` when the block has an `ω`, else the block's pre- or post-norm.
fn sublayer(
    residual: &Residual,
    admin: &Option<AdminScale>,
    (x, d): Streams,
    f: impl FnOnce(Tensor<3>) -> Tensor<3>,
) -> Streams {
    match (d, admin) {
        (Some(d), _) => {
            let (x, d) = residual.forward_dual(x, d, f);
            (x, Some(d))
        }
        (None, Some(admin)) => (admin.forward(residual, x, f), None),
        (None, None) => (residual.forward(x, f), None),
    }
}

impl TransformerLayer {
    /// The layer on the one residual stream (see [`forward_streams`](Self::forward_streams)
    /// for ResiDual's two).
    ///
    /// # Shapes
    /// - x: `[B, T, D]`
    /// - output: `[B, T, D]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.forward_streams((x, None)).0
    }

    /// The layer on its residual streams (the dual stream, if carried, gets both sublayers'
    /// outputs added).
    ///
    /// # Shapes
    /// - streams: `[B, T, D]` each; output: the same
    pub fn forward_streams(&self, streams: Streams) -> Streams {
        self.with_attention(streams, |h| self.attend(h))
    }

    /// The layer on its residual streams with `attend` as the attention sublayer (the
    /// parallel, carried or step form), then the feed-forward sublayer.
    fn with_attention(
        &self,
        streams: Streams,
        attend: impl FnOnce(Tensor<3>) -> Tensor<3>,
    ) -> Streams {
        let streams = sublayer(&self.attn_residual, &self.attn_admin, streams, attend);
        self.feed_forward(streams)
    }

    /// [`forward_streams`](Self::forward_streams) continuing from the attention state in
    /// `cache`, which becomes the (detached) state after the segment
    /// ([`AttentionVariant::forward_carried`]); a layer that does not carry attends within the
    /// segment and leaves `cache` as it is.
    ///
    /// # Shapes
    /// - streams: `[B, T, D]` each; output: the same
    pub fn forward_carried_streams(
        &self,
        streams: Streams,
        cache: &mut SelfAttentionCache,
    ) -> Streams {
        self.with_attention(streams, |h| self.attend_segment(h, cache))
    }

    /// # Shapes
    /// - x: `[B, 1, D]`
    /// - output: `[B, 1, D]`
    pub fn forward_step(&self, x: Tensor<3>, cache: &mut SelfAttentionCache) -> Tensor<3> {
        self.forward_step_streams((x, None), cache).0
    }

    /// [`forward_streams`](Self::forward_streams) for one new position.
    ///
    /// # Shapes
    /// - streams: `[B, 1, D]` each; output: the same
    pub fn forward_step_streams(
        &self,
        streams: Streams,
        cache: &mut SelfAttentionCache,
    ) -> Streams {
        self.with_attention(streams, |h| self.attend_step(h, cache))
    }

    /// Admin's profiling pass through this layer (post-norm, one stream): each block's `ω` is
    /// set from `profile` and `profile` moves on ([`AdminScale::profile`]); a layer without
    /// `ω` runs as usual.
    ///
    /// # Shapes
    /// - x: `[B, T, D]`
    /// - output: `[B, T, D]`
    pub fn admin_profile(&mut self, x: Tensor<3>, profile: &mut AdminProfile) -> Tensor<3> {
        let x = match self.attn_admin.take() {
            Some(mut admin) => {
                let x = admin.profile(profile, &self.attn_residual, x, |h| self.attend(h));
                self.attn_admin = Some(admin);
                x
            }
            None => self.attn_residual.forward(x, |h| self.attend(h)),
        };
        match (self.ff_admin.take(), &self.ff_residual, &self.ff) {
            (Some(mut admin), Some(residual), Some(ff)) => {
                let x = admin.profile(profile, residual, x, |h| feed_forward(ff, h));
                self.ff_admin = Some(admin);
                x
            }
            (admin, _, _) => {
                self.ff_admin = admin;
                self.feed_forward((x, None)).0
            }
        }
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

    /// The configured self-attention over a segment of a stream: continuing from `cache` (which
    /// becomes the detached state after the segment) when the layer carries, else within the
    /// segment, `cache` untouched.
    ///
    /// # Shapes
    /// - h: `[B, T, D]`
    /// - output: `[B, T, D]`
    pub(crate) fn attend_segment(&self, h: Tensor<3>, cache: &mut SelfAttentionCache) -> Tensor<3> {
        match (&self.attn_variant, self.carry) {
            (Some(v), true) => v.forward_carried(h, cache),
            _ => self.attend(h),
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

    /// The feed-forward sublayer with its residual, or the streams unchanged in an
    /// all-attention layer.
    fn feed_forward(&self, streams: Streams) -> Streams {
        match (&self.ff_residual, &self.ff) {
            (Some(residual), Some(ff)) => {
                sublayer(residual, &self.ff_admin, streams, |h| feed_forward(ff, h))
            }
            _ => streams,
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

/// Per-layer attention states: for step-by-step decoding, and the fast weights layers with
/// `carry = true` carry from one segment to the next.
#[derive(Debug, Clone)]
pub struct TransformerState {
    /// One state per layer (key/value caches for softmax attention).
    pub caches: Vec<SelfAttentionCache>,
}

impl TransformerState {
    /// The key/value caches and the carried fast weights stay where they are: moving them is
    /// not needed between devices of the same backend.
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
        let mut streams = self.streams(self.embed(tokens)); // [B,T,D]
        for layer in &self.layers {
            streams = layer.forward_streams(streams);
        }
        self.output(streams)
    }

    /// Whether any layer carries its attention state across segments (`carry = true`).
    pub fn carries(&self) -> bool {
        self.layers.iter().any(|l| l.carry)
    }

    /// Logits for a segment of a stream, and the state to carry into its next segment: with
    /// `carry = true` the layers' fast weights continue from `state` and the returned state
    /// holds them after the segment, detached (no gradient crosses segments); otherwise the
    /// segment is attended within itself ([`forward`](Self::forward)) and the state returned
    /// is fresh. Equals `forward` over the stream so far, at this segment's rows, when every
    /// layer carries.
    ///
    /// # Shapes
    /// - tokens: `[B, T]`
    /// - output: `[B, T, V]`
    pub fn forward_segment(
        &self,
        tokens: Tensor<2, Int>,
        state: TransformerState,
    ) -> (Tensor<3>, TransformerState) {
        if !self.carries() {
            return (self.forward(tokens), self.init_state());
        }
        let mut streams = self.streams(self.embed(tokens)); // [B,T,D]
        let mut state = state;
        for (layer, cache) in self.layers.iter().zip(state.caches.iter_mut()) {
            streams = layer.forward_carried_streams(streams, cache);
        }
        (self.output(streams), state)
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
        let mut streams = self.streams(self.embed(token.unsqueeze_dim(1))); // [B,1,D]
        let mut state = state;
        for (layer, cache) in self.layers.iter().zip(state.caches.iter_mut()) {
            streams = layer.forward_step_streams(streams, cache);
        }
        let logits = self.output(streams).squeeze_dim(1); // [B,V]
        (logits, state)
    }

    /// Whether the layers carry ResiDual's dual stream (`placement = "resi_dual"`).
    pub fn is_resi_dual(&self) -> bool {
        self.layers
            .first()
            .is_some_and(|l| l.attn_residual.placement == NormPlacement::ResiDual)
    }

    /// Whether the blocks have Admin's `ω` (`init = "admin"`).
    pub fn is_admin(&self) -> bool {
        self.layers.iter().any(|l| l.attn_admin.is_some())
    }

    /// Admin's profiling (`init = "admin"`; see [`mnemo_core::admin`]): one forward pass over
    /// `tokens` that sets every block's `ω` to the running ratio `r` and moves `r` on, bottom
    /// to top, attention before feed-forward, from `r = 1`. Run once on a fresh model, before
    /// its first step (`mnemo train` does, on the first training segment); a model without
    /// `ω` is left unchanged. Dropout acts as in training if the device is an autodiff one.
    ///
    /// # Shapes
    /// - tokens: `[B, T]`
    pub fn admin_profile(&mut self, tokens: Tensor<2, Int>) {
        if !self.is_admin() {
            return;
        }
        let mut h = self.embed(tokens);
        let mut profile = AdminProfile::default();
        for layer in &mut self.layers {
            h = layer.admin_profile(h, &mut profile);
        }
    }

    /// The streams entering the bottom layer: the embeddings `h`, and (ResiDual) the dual
    /// stream starting at them too.
    fn streams(&self, h: Tensor<3>) -> Streams {
        let d = self.is_resi_dual().then(|| h.clone());
        (h, d)
    }

    /// Logits from the top layer's streams: `W_out finalnorm(x)`, or (ResiDual)
    /// `W_out (x + LN_final(d))`.
    ///
    /// # Shapes
    /// - streams: `[B, T, D]` each; output: `[B, T, V]`
    fn output(&self, (x, d): Streams) -> Tensor<3> {
        match d {
            None => self.logits(x),
            Some(d) => self
                .head
                .forward(x + output_head::normed(&self.final_norm, d)),
        }
    }
}
