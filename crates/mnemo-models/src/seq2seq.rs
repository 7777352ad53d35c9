//! An encoder-decoder Transformer for translation, whose decoder is a Transformer decoder, a
//! Feedback decoder or a Compressed Attention Network decoder.
//!
//! Vaswani et al., "Attention Is All You Need" (2017) for the encoder-decoder; Fan et al.,
//! "Addressing Some Limitations of Transformers with Feedback Memory" (2020, §4.1 translation)
//! for the Feedback decoder: feedback memory over the target side, plus cross-attention to the
//! encoder in every layer; Li et al., "An Efficient Transformer Decoder with Compressed
//! Sub-layers" (AAAI 2021) for the CAN decoder ([`crate::seq2seq_can`]): one sub-layer per
//! layer, one softmax over the target prefix's and the source's keys.
//!
//! ```text
//! e   = Encoder(√D · E[src])                      bidirectional, relative positions, PAD masked
//! h_t = Decoder(√D · E[tgt_in]_{≤t}, e)           causal (Transformer, CAN) or sequential (Feedback)
//! y_t = E · finalnorm(h_t)                        embeddings E tied: source, target and output
//! ```
//!
//! Size legend: B batch (sentences), S source length, T target length, L decoder layers,
//! H heads, D d_model, Dh = D/H, V joint vocabulary. Token id [`PAD`] = 0 is padding on both
//! sides; [`BOS`] = 2 starts every target, [`EOS`] = 3 ends it.
//!
//! Embeddings are initialised `N(0, 1/D)` and scaled by `√D` on input (fairseq's convention for
//! tied embeddings), so that the tied output projection starts with unit-scale logits.
//! Differences from the paper's setup: positions are relative (learned vectors per distance,
//! clamped at `span` in the encoder) rather than sinusoidal; see [`crate::seq2seq_decoder`] for
//! the decoders.
//!
//! Encoder token mixing (`mixing`): self-attention (default), or FNet's parameter-free Fourier
//! mixing (Lee-Thorp et al., "FNet: Mixing Tokens with Fourier Transforms", 2021;
//! [`mnemo_core::fourier_mixing`]) in its place inside the same residual block:
//!
//! ```text
//! h += Re(F_n · norm(h) · F_D) / √(n·D)           n = the sentence's non-PAD tokens; PAD rows 0
//! h += FF(norm(h))
//! ```
//!
//! The option is the encoder's only: the decoders are causal and keep their attention.
use crate::feed_forward::feed_forward;
use crate::host_cross::HostCross;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer};
use burn::tensor::{Bool, Device, Int, Tensor};
pub use mnemo_core::TokenMixing;
use mnemo_core::{
    BidirectionalSelfAttention, BidirectionalSelfAttentionConfig, FeedForward, FourierMixing, Norm,
    NormKind, NormPlacement, Residual, key_padding_mask,
};
use serde::{Deserialize, Serialize};

use crate::model_config;

use crate::config::{ConfigError, check_common};
use crate::seq2seq_cache::DecodeState;
use crate::seq2seq_decoder::Decoder;
pub use crate::seq2seq_decoder_config::{DecoderConfig, DecoderKind};
use crate::tied_head::PackedHead;

/// Padding token id (source and target).
pub const PAD: u32 = 0;
/// Unknown-token id.
pub const UNK: u32 = 1;
/// Beginning-of-sentence id: the first decoder input.
pub const BOS: u32 = 2;
/// End-of-sentence id: the last decoder target.
pub const EOS: u32 = 3;

fn default_max_len() -> usize {
    200
}

model_config! {
    /// Configuration of a [`Seq2Seq`] model (a `[models.<name>]` table in an experiment TOML).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Seq2SeqConfig {
        /// Joint vocabulary size V (0 = filled in from the data by the trainer).
        #[serde(default)]
        pub vocab_size: usize,
        /// Model width D.
        pub d_model: usize,
        /// Number of heads H (divides D).
        pub n_heads: usize,
        /// Feed-forward hidden width.
        pub d_ff: usize,
        /// Number of encoder layers.
        pub encoder_layers: usize,
        /// Token mixing of every encoder layer: `"attention"` (bidirectional self-attention,
        /// default) or `"fourier"` (FNet's parameter-free Fourier mixing, PAD excluded). The
        /// decoders are causal and always use attention.
        #[serde(default)]
        pub mixing: TokenMixing,
        /// Number of decoder layers L.
        pub decoder_layers: usize,
        /// Decoder architecture.
        pub decoder: DecoderConfig,
        /// Span S: the largest relative distance with its own position vector in the encoder
        /// (further distances share the last one); the decoder's self-attention span (Transformer,
        /// CAN) or memory window (Feedback). Set it ≥ the longest target (in subwords) so the decoder
        /// sees the whole prefix.
        pub span: usize,
        @dropout
        @norm
        /// Hard cap on the number of generated target tokens (EOS excluded) at decoding.
        #[serde(default = "default_max_len")]
        pub max_len: usize,
    }
}

impl Seq2SeqConfig {
    /// A tiny preset for tests.
    pub fn tiny(vocab_size: usize, decoder: DecoderKind) -> Self {
        let decoder = DecoderConfig::of(decoder);
        Self {
            vocab_size,
            d_model: 32,
            n_heads: 2,
            d_ff: 64,
            encoder_layers: 2,
            mixing: TokenMixing::Attention,
            decoder_layers: 2,
            decoder,
            span: 16,
            dropout: 0.0,
            norm: NormKind::Layer,
            placement: NormPlacement::Pre,
            max_len: 32,
        }
    }

    /// Check every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_common(
            self.vocab_size,
            self.d_model,
            self.n_heads,
            1,
            self.d_ff,
            self.span,
            self.dropout,
        )?;
        self.stack_of(1).check_single_stream()?;
        if self.vocab_size <= EOS as usize {
            return Err(ConfigError::new(
                "vocab_size",
                format!(
                    "must exceed the 4 special tokens (<pad> <unk> <s> </s>), got {}",
                    self.vocab_size
                ),
            ));
        }
        if self.encoder_layers == 0 {
            return Err(ConfigError::new("encoder_layers", "must be at least 1"));
        }
        if self.decoder_layers == 0 {
            return Err(ConfigError::new("decoder_layers", "must be at least 1"));
        }
        if self.max_len == 0 {
            return Err(ConfigError::new("max_len", "must be at least 1"));
        }
        if self.decoder == DecoderConfig::Can && !self.d_ff.is_multiple_of(self.n_heads) {
            return Err(ConfigError::new(
                "d_ff",
                format!(
                    "the CAN decoder splits its d_ff-wide values into the n_heads = {} heads; \
                     {} is not a multiple of it",
                    self.n_heads, self.d_ff
                ),
            ));
        }
        Ok(())
    }

    /// Whether norms come before their sublayers (and a final norm closes each stack).
    pub fn is_pre_norm(&self) -> bool {
        self.placement == NormPlacement::Pre
    }

    /// Build the model with its parameters materialised (seed the device first to reproduce).
    pub fn init(&self, device: &Device) -> Seq2Seq {
        self.build(device).materialize()
    }

    /// Number of parameters (counted without allocating them).
    pub fn num_params(&self) -> usize {
        self.build(&Device::default()).num_params()
    }

    fn build(&self, device: &Device) -> Seq2Seq {
        let d = self.d_model;
        let stack = self.stack_of(self.encoder_layers);
        let attention = BidirectionalSelfAttentionConfig {
            d_model: d,
            n_heads: self.n_heads,
            span: self.span,
            dropout: self.dropout,
            out_init_scale: stack.out_init_scale(),
        };
        let encoder = (0..self.encoder_layers)
            .map(|_| EncoderLayer {
                attn_residual: stack.residual().init(device),
                attn: match self.mixing {
                    TokenMixing::Attention => Some(attention.init(device)),
                    TokenMixing::Fourier => None,
                },
                fourier: FourierMixing,
                ff_residual: stack.residual().init(device),
                ff: stack.feed_forward().init(device),
            })
            .collect();
        let std = 1.0 / (d as f64).sqrt();
        Seq2Seq {
            embedding: EmbeddingConfig::new(self.vocab_size, d)
                .with_initializer(Initializer::Normal { mean: 0.0, std })
                .init(device),
            encoder,
            encoder_norm: stack.final_norm(device),
            decoder: Decoder::init(self, device),
            dropout: DropoutConfig::new(self.dropout).init(),
            max_len: self.max_len,
        }
    }
}

/// One encoder layer: token mixing (bidirectional self-attention with padding masked, or
/// Fourier mixing over the non-padding positions), then feed-forward.
///
/// The attention is an `Option` (burn adds no path segment for one), so a layer with attention
/// keeps the parameter names it always had (`attn.query.weight`, …) and old checkpoints load.
#[derive(Module, Debug)]
pub struct EncoderLayer {
    /// Norm and residual around the token mixing.
    pub attn_residual: Residual,
    /// Bidirectional self-attention (`mixing = "attention"`); `None` with Fourier mixing.
    pub attn: Option<BidirectionalSelfAttention>,
    /// Fourier mixing (parameter-free), used when `attn` is `None`.
    #[module(skip)]
    pub fourier: FourierMixing,
    /// Norm and residual around the feed-forward sublayer.
    pub ff_residual: Residual,
    /// Feed-forward sublayer.
    pub ff: FeedForward,
}

impl EncoderLayer {
    /// # Shapes
    /// - x: `[B, S, D]`
    /// - key_mask: `[B, 1, 1, S]` (true = padding)
    /// - output: `[B, S, D]`
    pub fn forward(&self, x: Tensor<3>, key_mask: Tensor<4, Bool>) -> Tensor<3> {
        let x = self.attn_residual.forward(x, |h| match &self.attn {
            Some(attn) => attn.forward(h, Some(key_mask)),
            None => {
                let [b, _, _, s] = key_mask.dims();
                self.fourier.forward(h, Some(key_mask.reshape([b, s])))
            }
        });
        self.ff_residual.forward(x, |h| feed_forward(&self.ff, h))
    }

    /// Which token mixing this layer uses.
    pub fn mixing(&self) -> TokenMixing {
        match self.attn {
            Some(_) => TokenMixing::Attention,
            None => TokenMixing::Fourier,
        }
    }
}

/// The encoder's output for a batch of source sentences.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// Encoder states (after the final norm when pre-norm). Shape `[B, S, D]`.
    pub states: Tensor<3>,
    /// True where the source token is padding. Shape `[B, 1, 1, S]`.
    pub key_mask: Tensor<4, Bool>,
    /// Number of non-padding source tokens per sentence.
    pub src_lens: Vec<usize>,
}

impl Encoded {
    /// Number of sentences B.
    pub fn rows(&self) -> usize {
        self.states.dims()[0]
    }

    /// The rows `rows` (in that order, repeats allowed), e.g. each sentence K times for beams.
    ///
    /// # Shapes
    /// - rows: `[B']` indices into `0..B`
    pub fn select(&self, rows: Tensor<1, Int>) -> Encoded {
        let ids: Vec<usize> = int_vec(rows.clone())
            .into_iter()
            .map(|r| r as usize)
            .collect();
        Encoded {
            states: self.states.clone().select(0, rows.clone()),
            key_mask: self.key_mask.clone().select(0, rows),
            src_lens: ids.iter().map(|&r| self.src_lens[r]).collect(),
        }
    }
}

/// The encoder-decoder model; see the [module docs](self).
#[derive(Module, Debug)]
pub struct Seq2Seq {
    /// Joint token embedding `V -> D`, tied with the output projection.
    pub embedding: Embedding,
    /// Encoder layers.
    pub encoder: Vec<EncoderLayer>,
    /// Final encoder norm (pre-norm only).
    pub encoder_norm: Option<Norm>,
    /// The decoder (Transformer, Feedback or CAN).
    pub decoder: Decoder,
    /// Dropout on the embeddings.
    pub dropout: Dropout,
    /// Decoding cap on generated tokens.
    pub max_len: usize,
}

impl Seq2Seq {
    /// Which decoder this model has.
    pub fn decoder_kind(&self) -> DecoderKind {
        match self.decoder {
            Decoder::Transformer(_) => DecoderKind::Transformer,
            Decoder::Feedback(_) => DecoderKind::Feedback,
            Decoder::Can(_) => DecoderKind::Can,
        }
    }

    /// Vocabulary size V.
    pub fn vocab_size(&self) -> usize {
        self.embedding.weight.dims()[0]
    }

    /// Scaled, dropped-out embeddings of token ids.
    ///
    /// # Shapes
    /// - tokens: `[B, T]`
    /// - output: `[B, T, D]`
    pub(crate) fn embed(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let d = self.embedding.weight.dims()[1];
        self.dropout
            .forward(self.embedding.forward(tokens).mul_scalar((d as f64).sqrt()))
    }

    /// Tied output projection.
    ///
    /// # Shapes
    /// - h: `[B, T, D]` (final-normed decoder states)
    /// - output: `[B, T, V]`
    fn project(&self, h: Tensor<3>) -> Tensor<3> {
        let [b, t, d] = h.dims();
        let v = self.vocab_size();
        // One [B·T, D] x [D, V] product (a broadcast batched matmul would expand E B times).
        h.reshape([b * t, d])
            .matmul(self.embedding.weight.val().transpose())
            .reshape([b, t, v])
    }

    /// Encode a padded batch of source sentences.
    ///
    /// # Shapes
    /// - src: `[B, S]`, [`PAD`]-padded
    pub fn encode(&self, src: Tensor<2, Int>) -> Encoded {
        let [b, s] = src.dims();
        let ids = int_vec(src.clone().reshape([b * s]));
        let src_lens = ids
            .chunks(s)
            .map(|row| row.iter().filter(|&&t| t != PAD as i64).count())
            .collect();
        let key_mask = key_padding_mask(src.clone(), PAD as i64);
        let mut h = self.embed(src); // [B,S,D]
        for layer in &self.encoder {
            h = layer.forward(h, key_mask.clone());
        }
        if let Some(norm) = &self.encoder_norm {
            h = norm.forward(h);
        }
        Encoded {
            states: h,
            key_mask,
            src_lens,
        }
    }

    /// Teacher-forced logits for every target position (the Transformer and CAN decoders run in
    /// parallel and causally; the Feedback decoder runs the T steps in sequence, differentiably).
    ///
    /// # Shapes
    /// - src: `[B, S]`, PAD-padded
    /// - tgt_in: `[B, T]`, BOS then the target, PAD-padded
    /// - output: `[B, T, V]`
    pub fn forward(&self, src: Tensor<2, Int>, tgt_in: Tensor<2, Int>) -> Tensor<3> {
        let enc = self.encode(src);
        self.forward_encoded(&enc, tgt_in)
    }

    /// [`forward`](Self::forward) for an already encoded source.
    ///
    /// # Shapes
    /// - tgt_in: `[B, T]`
    /// - output: `[B, T, V]`
    pub fn forward_encoded(&self, enc: &Encoded, tgt_in: Tensor<2, Int>) -> Tensor<3> {
        let x = self.embed(tgt_in);
        self.project(self.decoder.forward(x, enc))
    }

    /// A decoding state at the start of the target (nothing generated yet) for `enc`'s rows.
    pub fn start(&self, enc: &Encoded) -> DecodeState {
        let mut state = self.decoder.start(enc);
        state.head = PackedHead::of(&self.embedding.weight.val());
        // With the head on the host kernels, the attention over the source too (the decoders
        // whose layers attend with `CrossSublayer`).
        if state.head.is_some() && !matches!(self.decoder, Decoder::Can(_)) {
            state.host_cross = state
                .cross
                .iter()
                .map(|c| HostCross::of(&c.keys, &c.values, &c.key_mask))
                .collect();
        }
        state
    }

    /// Feed one token per row; return the logits of the next position.
    ///
    /// Equals row t of [`forward`](Self::forward) when the tokens fed so far are `tgt_in[..=t]`.
    ///
    /// # Shapes
    /// - tokens: `[B]` (B = the state's rows)
    /// - output: `[B, V]`
    pub fn step(&self, state: &mut DecodeState, tokens: Tensor<1, Int>) -> Tensor<2> {
        let x = self.embed(tokens.unsqueeze_dim(1)); // [B,1,D]
        let h = self.decoder.step(state, x);
        match &state.head {
            Some(head) => head.logits(h.squeeze_dim(1)),
            None => self.project(h).squeeze_dim(1),
        }
    }
}

/// An integer tensor's values.
pub(crate) fn int_vec<const N: usize>(x: Tensor<N, Int>) -> Vec<i64> {
    x.into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .expect("int tensor data")
}
