//! The two decoders of [`Seq2Seq`](crate::Seq2Seq): a Transformer decoder and a Feedback decoder.
//!
//! Both layers are `self-attention → cross-attention → feed-forward`, each sublayer residual
//! with the configured norm placement; they differ only in what the first sublayer attends to.
//!
//! - Transformer decoder (Vaswani et al., 2017): causal self-attention over the previous target
//!   positions of the same layer (the position itself included), with learned relative
//!   positions and span S ([`mnemo_core::CausalSelfAttention`]); parallel over T in training.
//! - Feedback decoder (Fan et al., 2020): DESIGN.md §4 over the target side. Per step t every
//!   layer attends to the keys/values of the S previous *memories* (never to step t itself),
//!   `m_t = Σ_{l=0..L} softmax(w)_l hˡ_t` mixes the embedding and all layer outputs, and
//!   `K_t = W_k norm(m_t)`, `V_t = W_v norm(m_t)` are computed once per step (`share_kv`) or per
//!   layer. Each sentence starts from zero memories, as the language model starts a fresh
//!   stream, so the first step attends to S copies of the zero memory's key/value. Built from
//!   the language model's [`FeedbackLayer`] and [`MemoryProjection`], with the cross-attention
//!   sublayer placed between its two halves.
//!
//! Size legend: B rows, T target length, S span, L layers, H heads, D d_model, Dh = D/H.
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Device, Tensor};
use mnemo_core::heads::{merge_heads, split_heads};
use mnemo_core::{
    CausalSelfAttention, CausalSelfAttentionConfig, CrossAttention, CrossAttentionConfig, FeedForward,
    FeedForwardConfig, FeedbackWindow, Norm, NormConfig, attend,
};

use crate::feedback_layer::{FeedbackLayer, FeedbackLayerConfig, MemoryProjection};
use crate::seq2seq::{Encoded, Seq2SeqConfig};
use crate::seq2seq_cache::{DecodeState, DecoderCache, SelfAttentionCache};
use crate::seq2seq_feedback_cache::{FeedbackDecodeCache, attend_folded};

/// Residual sublayer `f` around `x`: `x + f(norm(x))` (pre-norm) or `norm(x + f(x))`.
pub(crate) fn residual(pre_norm: bool, norm: &Norm, x: Tensor<3>, f: impl FnOnce(Tensor<3>) -> Tensor<3>) -> Tensor<3> {
    if pre_norm { x.clone() + f(norm.forward(x)) } else { norm.forward(x.clone() + f(x)) }
}

/// Encoder keys and values for one layer's cross-attention. Shapes `[B, H, S_src, Dh]`.
pub type CrossMemory = (Tensor<4>, Tensor<4>);

/// The decoder of a [`Seq2Seq`](crate::Seq2Seq).
#[derive(Module, Debug)]
pub enum Decoder {
    /// Causal Transformer decoder.
    Transformer(TransformerDecoder),
    /// Feedback decoder.
    Feedback(FeedbackDecoder),
}

impl Decoder {
    /// Build the decoder `config.decoder` names.
    pub fn init(config: &Seq2SeqConfig, device: &Device) -> Decoder {
        let d = config.d_model;
        let l = config.decoder_layers;
        let out_init_scale = if config.pre_norm { 1.0 / (2.0 * l as f64).sqrt() } else { 1.0 };
        let cross = CrossAttentionConfig { d_model: d, n_heads: config.n_heads, dropout: config.dropout, out_init_scale };
        let final_norm = config.pre_norm.then(|| NormConfig::new(d, config.norm).init(device));
        match config.decoder {
            crate::DecoderKind::Transformer => Decoder::Transformer(TransformerDecoder {
                layers: (0..l)
                    .map(|_| TransformerDecoderLayer {
                        self_norm: NormConfig::new(d, config.norm).init(device),
                        self_attn: CausalSelfAttentionConfig {
                            d_model: d,
                            n_heads: config.n_heads,
                            span: config.span,
                            dropout: config.dropout,
                            out_init_scale,
                        }
                        .init(device),
                        cross_norm: NormConfig::new(d, config.norm).init(device),
                        cross: cross.init(device),
                        ff_norm: NormConfig::new(d, config.norm).init(device),
                        ff: FeedForwardConfig { d_model: d, d_ff: config.d_ff, dropout: config.dropout }.init(device),
                        pre_norm: config.pre_norm,
                    })
                    .collect(),
                final_norm,
            }),
            crate::DecoderKind::Feedback => {
                let layer = FeedbackLayerConfig {
                    d_model: d,
                    n_heads: config.n_heads,
                    d_ff: config.d_ff,
                    span: config.span,
                    dropout: config.dropout,
                    norm: config.norm,
                    pre_norm: config.pre_norm,
                    out_init_scale,
                };
                let n_proj = if config.share_kv { 1 } else { l };
                Decoder::Feedback(FeedbackDecoder {
                    layers: (0..l)
                        .map(|_| FeedbackDecoderLayer {
                            memory: layer.init(device),
                            cross_norm: NormConfig::new(d, config.norm).init(device),
                            cross: cross.init(device),
                        })
                        .collect(),
                    memory_projections: (0..n_proj)
                        .map(|_| MemoryProjection::init(d, config.n_heads, config.norm, device))
                        .collect(),
                    mix: Initializer::Zeros.init([l + 1], device),
                    final_norm,
                    span: config.span,
                })
            }
        }
    }

    /// Cross-attention keys/values of the encoder output, one pair per layer.
    pub fn cross_memory(&self, enc: &Encoded) -> Vec<CrossMemory> {
        let project = |c: &CrossAttention| c.project(enc.states.clone());
        match self {
            Decoder::Transformer(dec) => dec.layers.iter().map(|l| project(&l.cross)).collect(),
            Decoder::Feedback(dec) => dec.layers.iter().map(|l| project(&l.cross)).collect(),
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
            Decoder::Transformer(dec) => (dec.forward(x, &cross, &enc.key_mask), &dec.final_norm),
            Decoder::Feedback(dec) => (dec.forward(x, &cross, &enc.key_mask), &dec.final_norm),
        };
        match final_norm {
            Some(norm) => norm.forward(h),
            None => h,
        }
    }

    /// The decoding state before the first target token.
    pub fn start(&self, enc: &Encoded) -> DecodeState {
        let cache = match self {
            Decoder::Transformer(dec) => DecoderCache::Transformer(
                dec.layers.iter().map(|l| SelfAttentionCache::new(l.self_attn.span())).collect(),
            ),
            Decoder::Feedback(dec) => DecoderCache::Feedback(dec.start_cache(&enc.states.device())),
        };
        DecodeState::new(self.cross_memory(enc), enc.key_mask.clone(), cache)
    }

    /// One decoding step, final norm applied.
    ///
    /// # Shapes
    /// - x: `[B, 1, D]` embedded tokens
    /// - output: `[B, 1, D]`
    pub fn step(&self, state: &mut DecodeState, x: Tensor<3>) -> Tensor<3> {
        let DecodeState { cross, key_mask, cache, steps } = state;
        let (h, final_norm) = match (self, cache) {
            (Decoder::Transformer(dec), DecoderCache::Transformer(caches)) => {
                (dec.step(x, caches, cross, key_mask), &dec.final_norm)
            }
            (Decoder::Feedback(dec), DecoderCache::Feedback(cache)) => (dec.step(x, cache, cross, key_mask), &dec.final_norm),
            _ => panic!("decode state built for another decoder kind"),
        };
        *steps += 1;
        match final_norm {
            Some(norm) => norm.forward(h),
            None => h,
        }
    }
}

/// One Transformer decoder layer: causal self-attention, cross-attention, feed-forward.
#[derive(Module, Debug)]
pub struct TransformerDecoderLayer {
    /// Norm of the self-attention sublayer.
    pub self_norm: Norm,
    /// Causal self-attention with relative positions.
    pub self_attn: CausalSelfAttention,
    /// Norm of the cross-attention sublayer.
    pub cross_norm: Norm,
    /// Cross-attention to the encoder.
    pub cross: CrossAttention,
    /// Norm of the feed-forward sublayer.
    pub ff_norm: Norm,
    /// Feed-forward sublayer.
    pub ff: FeedForward,
    /// Pre-norm (true) or post-norm.
    pub pre_norm: bool,
}

impl TransformerDecoderLayer {
    /// # Shapes
    /// - x: `[B, T, D]`
    /// - cross: keys/values `[B, H, S_src, Dh]`; key_mask `[B, 1, 1, S_src]`
    /// - output: `[B, T, D]`
    pub fn forward(&self, x: Tensor<3>, cross: &CrossMemory, key_mask: &Tensor<4, Bool>) -> Tensor<3> {
        let x = residual(self.pre_norm, &self.self_norm, x, |h| self.self_attn.forward(h));
        self.cross_and_ff(x, cross, key_mask)
    }

    fn cross_and_ff(&self, x: Tensor<3>, cross: &CrossMemory, key_mask: &Tensor<4, Bool>) -> Tensor<3> {
        let x = residual(self.pre_norm, &self.cross_norm, x, |h| {
            self.cross.forward(h, cross.0.clone(), cross.1.clone(), Some(key_mask.clone()))
        });
        residual(self.pre_norm, &self.ff_norm, x, |h| self.ff.forward(h))
    }

    /// One step with the self-attention cache (written in place).
    ///
    /// # Shapes
    /// - x: `[B, 1, D]`
    /// - output: `[B, 1, D]`
    pub fn step(
        &self,
        x: Tensor<3>,
        cache: &mut SelfAttentionCache,
        cross: &CrossMemory,
        key_mask: &Tensor<4, Bool>,
    ) -> Tensor<3> {
        let attn = &self.self_attn;
        let x = residual(self.pre_norm, &self.self_norm, x, |h| {
            let [_b, _one, d] = h.dims();
            let heads = attn.n_heads;
            let q = split_heads(attn.query.forward(h.clone()), heads); // [B,H,1,Dh]
            let k = split_heads(attn.key.forward(h.clone()), heads);
            let v = split_heads(attn.value.forward(h), heads);
            let (keys, values) = cache.push(k, v); // views [B,H,n,Dh]
            let n = keys.dims()[2];
            let scale = 1.0 / ((d / heads) as f64).sqrt();
            let pos = q.clone().matmul(attn.positions.window(n).transpose().unsqueeze::<4>()).mul_scalar(scale);
            let a = merge_heads(attend(q, keys, values, Some(pos), None));
            attn.dropout.forward(attn.output.forward(a))
        });
        self.cross_and_ff(x, cross, key_mask)
    }
}

/// The Transformer decoder: layers and the final norm.
#[derive(Module, Debug)]
pub struct TransformerDecoder {
    /// The L layers.
    pub layers: Vec<TransformerDecoderLayer>,
    /// Final norm (pre-norm only).
    pub final_norm: Option<Norm>,
}

impl TransformerDecoder {
    /// # Shapes
    /// - x: `[B, T, D]`
    /// - output: `[B, T, D]` (before the final norm)
    fn forward(&self, mut x: Tensor<3>, cross: &[CrossMemory], key_mask: &Tensor<4, Bool>) -> Tensor<3> {
        for (layer, c) in self.layers.iter().zip(cross) {
            x = layer.forward(x, c, key_mask);
        }
        x
    }

    fn step(
        &self,
        mut x: Tensor<3>,
        caches: &mut [SelfAttentionCache],
        cross: &[CrossMemory],
        key_mask: &Tensor<4, Bool>,
    ) -> Tensor<3> {
        for ((layer, cache), c) in self.layers.iter().zip(caches.iter_mut()).zip(cross) {
            x = layer.step(x, cache, c, key_mask);
        }
        x
    }
}

/// One Feedback decoder layer: attention to the memory window, cross-attention, feed-forward.
#[derive(Module, Debug)]
pub struct FeedbackDecoderLayer {
    /// The language model's Feedback layer (memory attention and feed-forward).
    pub memory: FeedbackLayer,
    /// Norm of the cross-attention sublayer.
    pub cross_norm: Norm,
    /// Cross-attention to the encoder.
    pub cross: CrossAttention,
}

impl FeedbackDecoderLayer {
    /// One step of this layer.
    ///
    /// # Shapes
    /// - h: `[B, 1, D]`
    /// - keys, values: `[B, H, S, Dh]` (memory window); positions `[1, 1, Dh, S]`
    /// - cross: `[B, H, S_src, Dh]` each; key_mask `[B, 1, 1, S_src]`
    /// - output: `[B, 1, D]`
    pub fn forward(
        &self,
        h: Tensor<3>,
        keys: Tensor<4>,
        values: Tensor<4>,
        positions: Tensor<4>,
        cross: &CrossMemory,
        key_mask: &Tensor<4, Bool>,
    ) -> Tensor<3> {
        let h = self.memory.attend_memory(h, keys, values, positions);
        self.cross_and_ff(h, cross, key_mask)
    }

    /// The cross-attention and feed-forward sublayers (after the memory attention).
    ///
    /// # Shapes
    /// - h: `[B, 1, D]`; output `[B, 1, D]`
    pub fn cross_and_ff(&self, h: Tensor<3>, cross: &CrossMemory, key_mask: &Tensor<4, Bool>) -> Tensor<3> {
        let h = residual(self.memory.pre_norm, &self.cross_norm, h, |x| {
            self.cross.forward(x, cross.0.clone(), cross.1.clone(), Some(key_mask.clone()))
        });
        self.memory.feed_forward(h)
    }
}

/// The Feedback decoder; see the [module docs](self).
#[derive(Module, Debug)]
pub struct FeedbackDecoder {
    /// The L layers.
    pub layers: Vec<FeedbackDecoderLayer>,
    /// One shared memory projection, or one per layer.
    pub memory_projections: Vec<MemoryProjection>,
    /// Mixing logits `w` over the embedding and the L layer outputs. Shape `[L+1]`.
    pub mix: Param<Tensor<1>>,
    /// Final norm (pre-norm only).
    pub final_norm: Option<Norm>,
    /// Memory span S.
    pub span: usize,
}

impl FeedbackDecoder {
    fn projection_of(&self, l: usize) -> usize {
        if self.memory_projections.len() == 1 { 0 } else { l }
    }

    /// The memory of a step: the embedding and the L layer outputs mixed by `softmax(w)`.
    ///
    /// # Shapes
    /// - states: L+1 tensors `[B, 1, D]`; output `[B, 1, D]`
    fn mix_states(&self, states: Vec<Tensor<3>>) -> Tensor<3> {
        let weights = softmax(self.mix.val(), 0).reshape([self.layers.len() + 1, 1, 1, 1]);
        (Tensor::stack::<4>(states, 0) * weights).sum_dim(0).squeeze_dim(0)
    }

    /// Zero memories of `rows` fresh sentences, and their keys/values per projection.
    fn zero_memories(&self, rows: usize, device: &Device) -> (Tensor<3>, Vec<(Tensor<4>, Tensor<4>)>) {
        let d = self.layers[0].memory.query.weight.dims()[0];
        let zeros = Tensor::<3>::zeros([rows, self.span, d], device);
        let projected = self.memory_projections.iter().map(|p| p.forward(zeros.clone())).collect();
        (zeros, projected)
    }

    /// All layers for one step; returns the top state and the new memory `[B, 1, D]` each.
    fn layers_step(
        &self,
        x: Tensor<3>,
        windows: &[(Tensor<4>, Tensor<4>)],
        positions: &[Tensor<4>],
        cross: &[CrossMemory],
        key_mask: &Tensor<4, Bool>,
    ) -> (Tensor<3>, Tensor<3>) {
        let mut states = Vec::with_capacity(self.layers.len() + 1);
        let mut h = x;
        states.push(h.clone());
        for (l, layer) in self.layers.iter().enumerate() {
            let (k, v) = &windows[self.projection_of(l)];
            h = layer.forward(h, k.clone(), v.clone(), positions[l].clone(), &cross[l], key_mask);
            states.push(h.clone());
        }
        let memory = self.mix_states(states);
        (h, memory)
    }

    /// Teacher forcing: the T steps in sequence over preallocated windows written in place.
    ///
    /// # Shapes
    /// - x: `[B, T, D]`
    /// - output: `[B, T, D]` (before the final norm)
    fn forward(&self, x: Tensor<3>, cross: &[CrossMemory], key_mask: &Tensor<4, Bool>) -> Tensor<3> {
        let [b, t_len, _] = x.dims();
        let (_, projected) = self.zero_memories(b, &x.device());
        let mut windows: Vec<FeedbackWindow> =
            projected.into_iter().map(|(k, v)| FeedbackWindow::new(k, v, t_len)).collect();
        let positions: Vec<Tensor<4>> = self.layers.iter().map(|l| l.memory.window_positions()).collect();
        let mut tops = Vec::with_capacity(t_len);
        for t in 0..t_len {
            let x_t = x.clone().narrow(1, t, 1); // [B,1,D]
            let views: Vec<_> = windows.iter().map(|w| w.view(t)).collect();
            let (top, memory) = self.layers_step(x_t, &views, &positions, cross, key_mask);
            drop(views);
            for (window, projection) in windows.iter_mut().zip(&self.memory_projections) {
                let (k, v) = projection.forward(memory.clone()); // [B,H,1,Dh]
                window.write(t, k, v);
            }
            tops.push(top);
        }
        Tensor::cat(tops, 1)
    }

    /// The decoding cache of fresh sentences (zero memories, folded: nothing stored yet).
    fn start_cache(&self, device: &Device) -> FeedbackDecodeCache {
        let layers: Vec<&FeedbackLayer> = self.layers.iter().map(|l| &l.memory).collect();
        FeedbackDecodeCache::new(&self.memory_projections, &layers, self.span, device)
    }

    /// One decoding step over the decoded memories with the zero memories folded; equals a
    /// step of [`forward`](Self::forward) (see [`crate::seq2seq_feedback_cache`]).
    fn step(
        &self,
        x: Tensor<3>,
        cache: &mut FeedbackDecodeCache,
        cross: &[CrossMemory],
        key_mask: &Tensor<4, Bool>,
    ) -> Tensor<3> {
        let mut states = Vec::with_capacity(self.layers.len() + 1);
        let mut h = x;
        states.push(h.clone());
        for (l, layer) in self.layers.iter().enumerate() {
            let p = self.projection_of(l);
            let real = cache.real_window(p); // views: dropped before the push below
            h = attend_folded(&layer.memory, h, real, &cache.zero[p], cache.positions[l].clone());
            h = layer.cross_and_ff(h, &cross[l], key_mask);
            states.push(h.clone());
        }
        let memory = self.mix_states(states);
        let projected = self.memory_projections.iter().map(|p| p.forward(memory.clone())).collect();
        cache.push(projected);
        h
    }
}
