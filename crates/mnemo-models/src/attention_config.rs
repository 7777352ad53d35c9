//! Which self-attention mechanism a Transformer's layers use (`attention = { kind = ... }` in a
//! model table), with the settings only that mechanism has.
//!
//! ```toml
//! [models.softmax]
//! kind = "transformer"          # attention defaults to { kind = "softmax" }
//!
//! [models.linear]
//! kind = "transformer"
//! attention = { kind = "linear", update = "delta" }   # fast weights, delta rule
//!
//! [models.performer]
//! kind = "transformer"
//! attention = { kind = "performer", features = 64 }
//!
//! [models.sparse]
//! kind = "transformer"
//! attention = { kind = "sparse", block = 16, window = 1, global = 1, random = 1 }
//!
//! [models.persistent]
//! kind = "transformer"
//! persistent_memory = 16        # 16 learned key/value slots per head and layer
//! feed_forward = false          # the all-attention layer
//! ```
//!
//! See [`mnemo_core::self_attention`] for the mechanisms and `docs/models.md` for their papers.
use burn::tensor::Device;
use mnemo_core::linear_attention::FastWeightUpdate;
use mnemo_core::{
    AdaptiveSpanConfig, AttentionVariant, CausalSelfAttention, LinearAttentionConfig,
    PerformerAttentionConfig, SparseAttentionConfig,
};
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::stack::StackConfig;

/// The self-attention mechanism of a Transformer layer; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AttentionConfig {
    /// Softmax attention over the span S with learned relative positions (the default).
    #[default]
    Softmax,
    /// Causal linear attention as a fast-weight memory (Katharopoulos et al. 2020; Schlag,
    /// Irie & Schmidhuber 2021): every earlier position of the segment, no span, no position
    /// terms.
    Linear {
        /// `"sum"` (default: `W += φ(k) vᵀ`, normalised reads) or `"delta"` (the delta rule
        /// with a learned write strength per head).
        #[serde(default)]
        update: LinearUpdate,
        /// Positions per chunk (default 64): of the chunked prefix sums (sum update) or of the
        /// chunked delta rule's triangular solves; cost O(T·chunk).
        #[serde(default = "default_chunk")]
        chunk: usize,
        /// Carry the fast weights from one segment to the next (default false: each segment
        /// starts from zero, as the softmax Transformer sees only its segment). See
        /// [`AttentionConfig::carries`].
        #[serde(default, skip_serializing_if = "is_false")]
        carry: bool,
    },
    /// Performer's FAVOR+ (Choromanski et al. 2021): softmax approximated by positive
    /// orthogonal random features, every earlier position, no position terms.
    Performer {
        /// Random features m per head (default 64).
        #[serde(default = "default_features")]
        features: usize,
        /// Positions per chunk of the prefix-sum form (default 64).
        #[serde(default = "default_chunk")]
        chunk: usize,
        /// Seed of the features (layer l draws from `seed + l`; default 0).
        #[serde(default)]
        seed: u64,
        /// Redraw the features every this many training steps (default 0 = never; the paper's
        /// feature redrawing). The draw follows the step, so resume is exact.
        #[serde(default)]
        redraw_every: u64,
        /// Carry the prefix sums from one segment to the next (default false); not with
        /// `redraw_every` (a state summed under old features does not fit new ones). See
        /// [`AttentionConfig::carries`].
        #[serde(default, skip_serializing_if = "is_false")]
        carry: bool,
    },
    /// Block-sparse attention (BigBird, Zaheer et al. 2020): own block, `window` blocks
    /// before it, the first `global` blocks and `random` earlier blocks; relative positions up
    /// to the span, farther distances reuse the last vector.
    Sparse {
        /// Positions per block (default 16).
        #[serde(default = "default_block")]
        block: usize,
        /// Earlier blocks attended besides a block's own (default 1).
        #[serde(default = "default_one")]
        window: usize,
        /// First blocks of the segment every later block attends (default 1).
        #[serde(default = "default_one")]
        global: usize,
        /// Earlier blocks drawn per query block (default 1).
        #[serde(default = "default_one")]
        random: usize,
        /// Seed of the random blocks (layer l draws from `seed + l`; default 0).
        #[serde(default)]
        seed: u64,
    },
    /// FNet's Fourier mixing (Lee-Thorp et al. 2021). It mixes every position with every other,
    /// future ones included, so a causal language model refuses it; the translation encoder
    /// takes it as `mixing = "fourier"`.
    Fourier,
}

/// How linear attention writes its fast weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinearUpdate {
    /// `W += φ(k) vᵀ`, reads normalised by `φ(q)ᵀ Σφ(k)`.
    #[default]
    Sum,
    /// The delta rule: `W += β φ(k) (v − Wᵀφ(k))ᵀ`.
    Delta,
}

fn is_false(b: &bool) -> bool {
    !b
}

fn default_chunk() -> usize {
    64
}

fn default_features() -> usize {
    64
}

fn default_block() -> usize {
    16
}

fn default_one() -> usize {
    1
}

impl AttentionConfig {
    /// Short name (`softmax`, `linear`, `performer`, `sparse`, `fourier`).
    pub fn name(&self) -> &'static str {
        match self {
            AttentionConfig::Softmax => "softmax",
            AttentionConfig::Linear { .. } => "linear",
            AttentionConfig::Performer { .. } => "performer",
            AttentionConfig::Sparse { .. } => "sparse",
            AttentionConfig::Fourier => "fourier",
        }
    }

    /// Whether the layers carry their state across segments (`carry = true`, linear attention
    /// and Performer): each training or evaluation segment continues from the fast weights the
    /// stream's previous segment left, cut from the autodiff graph (truncated backpropagation,
    /// as Transformer-XL's memory and the Feedback Transformer's memories), so a position reads
    /// every earlier position of its stream since the last reset (the start of an epoch or of
    /// an evaluation), not only its own segment's.
    pub fn carries(&self) -> bool {
        matches!(
            self,
            AttentionConfig::Linear { carry: true, .. }
                | AttentionConfig::Performer { carry: true, .. }
        )
    }

    /// Check the settings for a causal language model with `persistent_memory` slots; errors
    /// name the field.
    pub fn validate(
        &self,
        stack: &StackConfig,
        span: usize,
        persistent_memory: usize,
    ) -> Result<(), ConfigError> {
        let field = |message: String| {
            // The mechanisms' own checks start with the field name.
            let (name, rest) = message.split_once(':').unwrap_or(("kind", &message));
            ConfigError::new(&format!("attention.{name}"), rest.trim())
        };
        match (self, self.variant(stack, span, 0)) {
            (AttentionConfig::Fourier, _) => Err(ConfigError::new(
                "attention.kind",
                "\"fourier\" (FNet) mixes each position with later ones, which a causal \
                 language model must not see; use it in a translation encoder \
                 (mixing = \"fourier\" in a translation model table)",
            )),
            (
                AttentionConfig::Performer {
                    carry: true,
                    redraw_every: 1..,
                    ..
                },
                _,
            ) => Err(ConfigError::new(
                "attention.carry",
                "a carried state is summed under the current random features and does not fit \
                 redrawn ones; carry = true needs redraw_every = 0",
            )),
            (_, Some(variant)) => variant.validate().map_err(field),
            (_, None) => Ok(()),
        }
        .and_then(|()| match (self, persistent_memory) {
            (_, 0) | (AttentionConfig::Softmax, _) => Ok(()),
            (other, _) => Err(ConfigError::new(
                "persistent_memory",
                format!(
                    "persistent slots are added to softmax attention only, not to {} attention",
                    other.name()
                ),
            )),
        })
    }

    /// Build layer `layer`'s attention with span S (validated config): the softmax attention
    /// (with the adaptive span `adaptive`, if any), or another mechanism.
    pub fn init(
        &self,
        stack: &StackConfig,
        span: usize,
        persistent_memory: usize,
        adaptive: Option<AdaptiveSpanConfig>,
        layer: usize,
        device: &Device,
    ) -> LayerAttention {
        match self.variant(stack, span, layer) {
            Some(variant) => LayerAttention::Variant(variant.init(device)),
            None if *self == AttentionConfig::Fourier => {
                unreachable!("validate refuses fourier for a causal LM")
            }
            None => {
                let mut config = stack.self_attention(span);
                config.persistent_memory = persistent_memory;
                config.adaptive_span = adaptive;
                LayerAttention::Softmax(config.init(device))
            }
        }
    }

    /// The core config of layer `layer`'s mechanism when it is not softmax attention (None for
    /// softmax and Fourier): the stack's width, heads, dropout and output init, the span, and
    /// the seeds offset by the layer.
    fn variant(&self, stack: &StackConfig, span: usize, layer: usize) -> Option<VariantConfig> {
        let (d, h, dropout) = (stack.d_model, stack.n_heads, stack.dropout);
        let out_init_scale = stack.out_init_scale();
        let layer = layer as u64;
        Some(match *self {
            AttentionConfig::Softmax | AttentionConfig::Fourier => return None,
            AttentionConfig::Linear { update, chunk, .. } => {
                let update = match update {
                    LinearUpdate::Sum => FastWeightUpdate::Sum,
                    LinearUpdate::Delta => FastWeightUpdate::Delta,
                };
                VariantConfig::Linear(LinearAttentionConfig {
                    dropout,
                    out_init_scale,
                    chunk,
                    ..LinearAttentionConfig::new(d, h, update)
                })
            }
            AttentionConfig::Performer {
                features,
                chunk,
                seed,
                redraw_every,
                ..
            } => VariantConfig::Performer(PerformerAttentionConfig {
                dropout,
                out_init_scale,
                chunk,
                redraw_every,
                ..PerformerAttentionConfig::new(d, h, features, seed + layer)
            }),
            AttentionConfig::Sparse {
                block,
                window,
                global,
                random,
                seed,
            } => VariantConfig::Sparse(SparseAttentionConfig {
                dropout,
                out_init_scale,
                window,
                global,
                random,
                seed: seed + layer,
                ..SparseAttentionConfig::new(d, h, span, block)
            }),
        })
    }
}

/// The core config of a mechanism other than softmax attention.
enum VariantConfig {
    Linear(LinearAttentionConfig),
    Performer(PerformerAttentionConfig),
    Sparse(SparseAttentionConfig),
}

impl VariantConfig {
    /// The mechanism's own checks; the message starts with the field name.
    fn validate(&self) -> Result<(), String> {
        match self {
            VariantConfig::Linear(c) => c.validate(),
            VariantConfig::Performer(c) => c.validate(),
            VariantConfig::Sparse(c) => c.validate(),
        }
    }

    fn init(&self, device: &Device) -> AttentionVariant {
        match self {
            VariantConfig::Linear(c) => AttentionVariant::Linear(c.init(device)),
            VariantConfig::Performer(c) => AttentionVariant::Performer(c.init(device)),
            VariantConfig::Sparse(c) => AttentionVariant::Sparse(c.init(device)),
        }
    }
}

/// A layer's attention as built: softmax, or another mechanism.
pub enum LayerAttention {
    /// Softmax attention over the span.
    Softmax(CausalSelfAttention),
    /// Linear, Performer or sparse attention.
    Variant(AttentionVariant),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toml_field;

    /// The `attention` key of `s` (absent: the default, as a model table reads it).
    fn parse(s: &str) -> Result<AttentionConfig, String> {
        toml_field::parse(s, "attention").map(Option::unwrap_or_default)
    }

    #[test]
    fn tables_parse_with_defaults_and_round_trip() {
        assert_eq!(parse("").unwrap(), AttentionConfig::Softmax);
        assert_eq!(
            parse("attention = { kind = \"linear\", update = \"delta\" }").unwrap(),
            AttentionConfig::Linear {
                update: LinearUpdate::Delta,
                chunk: 64,
                carry: false,
            }
        );
        let sparse = parse("attention = { kind = \"sparse\", block = 8, random = 2 }").unwrap();
        assert_eq!(
            sparse,
            AttentionConfig::Sparse {
                block: 8,
                window: 1,
                global: 1,
                random: 2,
                seed: 0
            }
        );
        for a in [
            sparse,
            AttentionConfig::Softmax,
            AttentionConfig::Performer {
                features: 32,
                chunk: 16,
                seed: 4,
                redraw_every: 100,
                carry: false,
            },
            AttentionConfig::Linear {
                update: LinearUpdate::Sum,
                chunk: 64,
                carry: true,
            },
        ] {
            let text = toml_field::write("attention", &a);
            assert_eq!(parse(&text).unwrap(), a, "{text}");
        }
    }

    #[test]
    fn unknown_kinds_and_fields_are_named() {
        for (text, named) in [
            (
                "attention = { kind = \"flash\" }",
                "unknown variant `flash`",
            ),
            (
                "attention = { kind = \"performer\", block = 4 }",
                "unknown field `block`",
            ),
            (
                "attention = { kind = \"linear\", update = \"hebb\" }",
                "unknown variant `hebb`",
            ),
            // Sparse attention has no fixed-size state to carry.
            (
                "attention = { kind = \"sparse\", carry = true }",
                "unknown field `carry`",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(named), "{text}: {err}");
        }
    }
}
