//! The decoders of [`Seq2Seq`](crate::Seq2Seq): a Transformer decoder, a Feedback decoder and
//! a Compressed Attention Network (CAN) decoder.
//!
//! The Transformer and Feedback layers are `self-attention → cross-attention → feed-forward`,
//! each sublayer residual with the configured norm placement; they differ only in what the
//! first sublayer attends to. A CAN layer is one residual sublayer: one attention over the
//! target prefix and the source under one softmax, folded into the feed-forward network.
//!
//! - Transformer decoder (Vaswani et al., 2017): causal self-attention over the previous target
//!   positions of the same layer (the position itself included), with learned relative
//!   positions and span S ([`mnemo_core::CausalSelfAttention`]); parallel over T in training,
//!   a [`SelfCache`] per layer in decoding (on the host kernels on CPU backends,
//!   [`crate::host_self_attention`]).
//! - Feedback decoder (Fan et al., 2020): the [`FeedbackCore`](crate::feedback::FeedbackCore)
//!   over the target side with cross-attention as its per-layer hook
//!   ([`crate::feedback::decoder`]).
//! - CAN decoder (Li et al., 2021): [`crate::seq2seq_can`]; parallel over T in training, a
//!   [`KvCache`](mnemo_core::KvCache) per layer and the source keys/values in decoding.
//!
//! Size legend: B rows, T target length, S span, L layers, H heads, D d_model, Dh = D/H.
use crate::feed_forward::feed_forward;
use burn::module::Module;
use burn::tensor::{Bool, Device, Tensor};
use mnemo_core::{
    CausalSelfAttention, CrossAttentionConfig, CrossSublayer, FeedForward, Norm, Residual,
};

use crate::feedback::decoder::FeedbackDecoder;
use crate::host_cross::HostCross;
use crate::host_self_attention::SelfCache;
use crate::output_head;
use crate::seq2seq::{DecoderConfig, Encoded, Seq2SeqConfig};
use crate::seq2seq_cache::{DecodeState, DecoderCache};
use crate::seq2seq_can::{CanDecoder, CanLayer, CompressedAttentionConfig};
use crate::transformer::TransformerLayer;
pub use mnemo_core::CrossMemory;

/// The decoder of a [`Seq2Seq`](crate::Seq2Seq).
// One per model, built once and held, not moved per step: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Decoder {
    /// Causal Transformer decoder.
    Transformer(TransformerDecoder),
    /// Feedback decoder.
    Feedback(FeedbackDecoder),
    /// Compressed Attention Network decoder.
    Can(CanDecoder),
}

impl Decoder {
    /// Build the decoder `config.decoder` names.
    pub fn init(config: &Seq2SeqConfig, device: &Device) -> Decoder {
        let l = config.decoder_layers;
        let stack = config.stack_of(l);
        let cross_attention = CrossAttentionConfig {
            d_model: config.d_model,
            n_heads: config.n_heads,
            dropout: config.dropout,
            out_init_scale: stack.out_init_scale(),
        };
        let cross = || CrossSublayer {
            residual: stack.residual().init(device),
            attention: cross_attention.init(device),
        };
        let final_norm = stack.final_norm(device);
        match config.decoder {
            DecoderConfig::Transformer => Decoder::Transformer(TransformerDecoder {
                layers: (0..l)
                    .map(|_| {
                        let layer = stack.transformer_layer(config.span, device);
                        TransformerDecoderLayer::new(layer, cross())
                    })
                    .collect(),
                final_norm,
            }),
            DecoderConfig::Feedback { share_kv } => Decoder::Feedback(FeedbackDecoder {
                core: stack.feedback_core(config.span, share_kv).init(device),
                cross: (0..l).map(|_| cross()).collect(),
                final_norm,
            }),
            DecoderConfig::Can => {
                let attention = CompressedAttentionConfig {
                    d_model: config.d_model,
                    n_heads: config.n_heads,
                    d_ff: config.d_ff,
                    span: config.span,
                    dropout: config.dropout,
                };
                Decoder::Can(CanDecoder {
                    layers: (0..l)
                        .map(|_| CanLayer {
                            residual: stack.residual().init(device),
                            attention: attention.init(device),
                        })
                        .collect(),
                    final_norm,
                })
            }
        }
    }

    /// Cross-attention keys/values of the encoder output with its padding mask, one per layer
    /// (CAN: the source part of each layer's one attention; values `[B, H, S_src, F/H]`).
    pub fn cross_memory(&self, enc: &Encoded) -> Vec<CrossMemory> {
        let (states, key_mask) = (&enc.states, &enc.key_mask);
        match self {
            Decoder::Transformer(dec) => dec.cross_memory(states, key_mask),
            Decoder::Feedback(dec) => dec.cross_memory(states, key_mask),
            Decoder::Can(dec) => dec.cross_memory(states, key_mask),
        }
    }

    /// Teacher-forced decoder states, final norm applied.
    ///
    /// # Shapes
    /// - x: `[B, T, D]` embedded `tgt_in`
    /// - output: `[B, T, D]`
    pub fn forward(&self, x: Tensor<3>, enc: &Encoded) -> Tensor<3> {
        let cross = self.cross_memory(enc);
        let (h, final_norm) = match self {
            Decoder::Transformer(dec) => (dec.forward(x, &cross), &dec.final_norm),
            Decoder::Feedback(dec) => (dec.forward(x, &cross), &dec.final_norm),
            Decoder::Can(dec) => (dec.forward(x, &cross), &dec.final_norm),
        };
        output_head::normed(final_norm, h)
    }

    /// The decoding state before the first target token.
    pub fn start(&self, enc: &Encoded) -> DecodeState {
        let cache = match self {
            Decoder::Transformer(dec) => DecoderCache::Transformer(dec.start()),
            Decoder::Feedback(dec) => {
                DecoderCache::Feedback(dec.start(enc.states.dims()[0], &enc.states.device()))
            }
            Decoder::Can(dec) => DecoderCache::Can(dec.start()),
        };
        DecodeState::new(
            self.cross_memory(enc),
            enc.key_mask.dims()[0],
            cache,
            enc.key_mask.device(),
        )
    }

    /// One decoding step, final norm applied.
    ///
    /// # Shapes
    /// - x: `[B, 1, D]` embedded tokens
    /// - output: `[B, 1, D]`
    pub fn step(&self, state: &mut DecodeState, x: Tensor<3>) -> Tensor<3> {
        let DecodeState {
            cross,
            cache,
            steps,
            host_cross,
            ..
        } = state;
        let host = host_cross.as_deref();
        let (h, final_norm) = match (self, cache) {
            (Decoder::Transformer(dec), DecoderCache::Transformer(caches)) => {
                (dec.step(x, caches, cross, host), &dec.final_norm)
            }
            (Decoder::Feedback(dec), DecoderCache::Feedback(cache)) => {
                (dec.step(x, cache, cross, host), &dec.final_norm)
            }
            (Decoder::Can(dec), DecoderCache::Can(caches)) => {
                (dec.step(x, caches, cross, None), &dec.final_norm)
            }
            _ => panic!("decode state built for another decoder kind"),
        };
        *steps += 1;
        output_head::normed(final_norm, h)
    }
}

/// One Transformer decoder layer: causal self-attention, cross-attention, feed-forward.
#[derive(Module, Debug)]
pub struct TransformerDecoderLayer {
    /// Norm and residual around the self-attention.
    pub self_residual: Residual,
    /// Causal self-attention with relative positions.
    pub self_attn: CausalSelfAttention,
    /// Cross-attention to the encoder, with its residual block.
    pub cross: CrossSublayer,
    /// Norm and residual around the feed-forward sublayer.
    pub ff_residual: Residual,
    /// Feed-forward sublayer.
    pub ff: FeedForward,
}

impl TransformerDecoderLayer {
    /// A Transformer layer's blocks with the cross-attention sublayer between its
    /// self-attention and its feed-forward.
    pub fn new(layer: TransformerLayer, cross: CrossSublayer) -> Self {
        let (self_residual, self_attn, ff_residual, ff) = layer.into_softmax_blocks();
        TransformerDecoderLayer {
            self_residual,
            self_attn,
            cross,
            ff_residual,
            ff,
        }
    }

    /// The cross-attention (on `host`'s copy of the source when given) and the feed-forward.
    fn cross_and_ff(
        &self,
        x: Tensor<3>,
        cross: &CrossMemory,
        host: Option<&HostCross>,
    ) -> Tensor<3> {
        let x = match host {
            Some(host) => self.cross.forward_with(x, |q| host.attend_step(q)),
            None => self.cross.forward(x, cross),
        };
        self.ff_residual.forward(x, |h| feed_forward(&self.ff, h))
    }
}

impl CachedLayer for TransformerDecoderLayer {
    type Cache = SelfCache;

    fn cross_memory(&self, states: Tensor<3>, key_mask: &Tensor<4, Bool>) -> CrossMemory {
        self.cross.attention.cross_memory(states, key_mask)
    }

    fn new_cache(&self) -> SelfCache {
        SelfCache::of(&self.self_attn)
    }

    fn forward(&self, x: Tensor<3>, cross: &CrossMemory) -> Tensor<3> {
        let x = self.self_residual.forward(x, |h| self.self_attn.forward(h));
        self.cross_and_ff(x, cross, None)
    }

    fn step(&self, x: Tensor<3>, cache: &mut SelfCache, source: SourceStep<'_>) -> Tensor<3> {
        let x = self
            .self_residual
            .forward(x, |h| cache.step(&self.self_attn, h));
        self.cross_and_ff(x, source.cross, source.host)
    }
}

/// What a decoder layer's step reads of the source: the keys and values as tensors and, on a
/// host device, their host copy for the CPU kernels (a layer may ignore it).
#[derive(Debug, Clone, Copy)]
pub struct SourceStep<'a> {
    /// From [`CachedLayer::cross_memory`].
    pub cross: &'a CrossMemory,
    /// The same keys and values on the host (None: attend the tensors).
    pub host: Option<&'a HostCross>,
}

/// A decoder layer that runs over a whole target in parallel in training and one position at
/// a time with a cache of its target keys/values in decoding, reading its own keys/values of
/// the encoder output: the Transformer and CAN layers (the Feedback decoder is sequential, and
/// not one).
pub trait CachedLayer {
    /// The cache of the target keys/values ([`SelfCache`] for the Transformer layer, a
    /// [`KvCache`](mnemo_core::KvCache) for CAN's).
    type Cache;

    /// The layer's keys/values of the encoder states (CAN: values `[B, H, S_src, F/H]`), with
    /// the source padding mask.
    ///
    /// # Shapes
    /// - states: `[B, S_src, D]`; key_mask: `[B, 1, 1, S_src]` (true = padding)
    /// - output: keys/values `[B, H, S_src, Dh]`
    fn cross_memory(&self, states: Tensor<3>, key_mask: &Tensor<4, Bool>) -> CrossMemory;

    /// An empty cache of the layer's target keys/values.
    fn new_cache(&self) -> Self::Cache;

    /// The layer over a whole target (position t reads target positions ≤ t and every
    /// non-padding source position).
    ///
    /// # Shapes
    /// - x: `[B, T, D]`
    /// - cross: from [`cross_memory`](Self::cross_memory)
    /// - output: `[B, T, D]`
    fn forward(&self, x: Tensor<3>, cross: &CrossMemory) -> Tensor<3>;

    /// One new target position given the cache of the earlier ones (written in place); equals
    /// the matching row of [`forward`](Self::forward).
    ///
    /// # Shapes
    /// - x: `[B, 1, D]`
    /// - output: `[B, 1, D]`
    fn step(&self, x: Tensor<3>, cache: &mut Self::Cache, source: SourceStep<'_>) -> Tensor<3>;
}

/// A decoder of [`CachedLayer`]s: the layers and the final norm.
#[derive(Module, Debug)]
pub struct LayerDecoder<L: Module> {
    /// The L layers.
    pub layers: Vec<L>,
    /// Final norm (pre-norm only).
    pub final_norm: Option<Norm>,
}

/// The Transformer decoder.
pub type TransformerDecoder = LayerDecoder<TransformerDecoderLayer>;

impl<L: Module + CachedLayer> LayerDecoder<L> {
    /// Every layer's keys/values of the encoder states, with the source padding mask.
    ///
    /// # Shapes
    /// - states: `[B, S_src, D]`; key_mask: `[B, 1, 1, S_src]` (true = padding)
    pub fn cross_memory(&self, states: &Tensor<3>, key_mask: &Tensor<4, Bool>) -> Vec<CrossMemory> {
        self.layers
            .iter()
            .map(|l| l.cross_memory(states.clone(), key_mask))
            .collect()
    }

    /// An empty target cache per layer.
    pub fn start(&self) -> Vec<L::Cache> {
        self.layers.iter().map(|l| l.new_cache()).collect()
    }

    /// # Shapes
    /// - x: `[B, T, D]`
    /// - output: `[B, T, D]` (before the final norm)
    pub(crate) fn forward(&self, mut x: Tensor<3>, cross: &[CrossMemory]) -> Tensor<3> {
        for (layer, c) in self.layers.iter().zip(cross) {
            x = layer.forward(x, c);
        }
        x
    }

    /// # Shapes
    /// - x: `[B, 1, D]`
    /// - output: `[B, 1, D]` (before the final norm)
    pub(crate) fn step(
        &self,
        mut x: Tensor<3>,
        caches: &mut [L::Cache],
        cross: &[CrossMemory],
        host: Option<&[HostCross]>,
    ) -> Tensor<3> {
        for (l, ((layer, cache), c)) in self
            .layers
            .iter()
            .zip(caches.iter_mut())
            .zip(cross)
            .enumerate()
        {
            let source = SourceStep {
                cross: c,
                host: host.map(|h| &h[l]),
            };
            x = layer.step(x, cache, source);
        }
        x
    }
}
