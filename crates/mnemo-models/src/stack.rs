//! The sizes every layer stack of a mnemo model is built from, and the blocks built from them,
//! written once for the Transformer, Transformer-XL, the Feedback language model and both sides
//! of the encoder-decoder.
//!
//! Each model's config keeps its own flat serde fields (so a `[models.<name>]` table lists them
//! all and `deny_unknown_fields` names any stray key); the fields they share are declared once,
//! by [`model_config!`], and [`StackConfig`] is the view of them. The builders here are the only
//! place a residual block, a causal self-attention, a feed-forward sublayer, a Transformer
//! layer, a Feedback core or the token embedding and output head of a language model is
//! configured from them.
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::Device;
use mnemo_core::{CausalSelfAttentionConfig, FeedForwardConfig, Norm, NormConfig, ResidualConfig};
/// The norm choices of [`model_config!`]'s `@norm` fields.
pub use mnemo_core::{NormKind, NormPlacement};

use crate::config::{ConfigError, check_common};
use crate::feedback::{FeedbackConfig, FeedbackCoreConfig, MemorySource};
use crate::seq2seq::Seq2SeqConfig;
use crate::transformer::{TransformerConfig, TransformerLayer};
use crate::transformer_xl::TransformerXlConfig;

/// The sizes of a stack of L layers of width D.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StackConfig {
    /// Model width D.
    pub d_model: usize,
    /// Number of layers L.
    pub n_layers: usize,
    /// Number of heads H.
    pub n_heads: usize,
    /// Feed-forward hidden width.
    pub d_ff: usize,
    /// Dropout on embeddings, attention and feed-forward outputs.
    pub dropout: f64,
    /// LayerNorm or RMSNorm.
    pub norm: NormKind,
    /// Pre-norm, post-norm or ResiDual.
    pub placement: NormPlacement,
}

/// Declares a model config struct whose field list may name, in the place they go, the groups
/// of fields every model config shares, each written here once with its doc and serde default:
///
/// - `@sizes`: `d_model` (width D), `n_layers` (L), `n_heads` (H), `d_ff` (feed-forward width);
/// - `@lm_sizes`: a language model's `vocab_size` (V; default 0, filled in from the data by the
///   trainer), then `@sizes`;
/// - `@dropout`: `dropout` (on embeddings, attention and feed-forward outputs; default 0);
/// - `@norm`: `norm` (LayerNorm or RMSNorm) and `placement` (pre- or post-norm), both defaulted;
/// - `@official`: the attention and feed-forward choices the official Feedback Transformer code
///   makes differently from mnemo (`activation`, `bias`, `tie_positions`, `d_head`; defaults:
///   GELU, biases, untied, D/H), for models defined in this crate;
/// - `@adaptive_span`: `adaptive_span` (the optional learnt soft span of
///   [`span_config`](crate::span_config); default absent).
///
/// The struct is exactly as if the fields were written out, in that order: same Rust fields,
/// same TOML keys, same serde errors. For example:
///
/// ```ignore
/// model_config! {
///     /// Configuration of a model.
///     #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
///     #[serde(deny_unknown_fields)]
///     pub struct MyConfig {
///         @lm_sizes
///         /// Attention span S.
///         pub span: usize,
///         @dropout
///         @norm
///     }
/// }
/// ```
#[macro_export]
macro_rules! model_config {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($fields:tt)* }) => {
        $crate::model_config!(@fields [$(#[$meta])* $vis struct $name] {} $($fields)*);
    };
    (@fields [$($head:tt)*] { $($done:tt)* }) => {
        $($head)* { $($done)* }
    };
    (@fields $head:tt { $($done:tt)* } @lm_sizes $($rest:tt)*) => {
        $crate::model_config!(@fields $head { $($done)* }
            /// Vocabulary size V (0 = filled in from the data by the trainer).
            #[serde(default)]
            pub vocab_size: usize,
            @sizes $($rest)*);
    };
    (@fields $head:tt { $($done:tt)* } @sizes $($rest:tt)*) => {
        $crate::model_config!(@fields $head { $($done)*
            /// Model width D.
            pub d_model: usize,
            /// Number of layers L.
            pub n_layers: usize,
            /// Number of heads H (D must be a multiple of H).
            pub n_heads: usize,
            /// Feed-forward hidden width.
            pub d_ff: usize,
        } $($rest)*);
    };
    (@fields $head:tt { $($done:tt)* } @dropout $($rest:tt)*) => {
        $crate::model_config!(@fields $head { $($done)*
            /// Dropout on embeddings, attention and feed-forward outputs.
            #[serde(default)]
            pub dropout: f64,
        } $($rest)*);
    };
    (@fields $head:tt { $($done:tt)* } @official $($rest:tt)*) => {
        $crate::model_config!(@fields $head { $($done)*
            /// Feed-forward activation: `"gelu"` (default) or `"relu"` (the official code).
            #[serde(default)]
            pub activation: mnemo_core::Activation,
            /// Biases on the query, key, value and attention output projections (default true;
            /// the official code has none). The feed-forward layers keep theirs.
            #[serde(default = "crate::stack::default_true")]
            pub bias: bool,
            /// One relative-position table shared by all layers (the official `key_pe`), instead
            /// of one per layer (default false).
            #[serde(default)]
            pub tie_positions: bool,
            /// Head size Dh (0 or absent: `d_model / n_heads`); queries, keys and values are
            /// `n_heads · d_head` wide (the official `--head-dim`).
            #[serde(default)]
            pub d_head: usize,
        } $($rest)*);
    };
    (@fields $head:tt { $($done:tt)* } @adaptive_span $($rest:tt)*) => {
        $crate::model_config!(@fields $head { $($done)*
            /// Adaptive attention span over the span (Sukhbaatar et al. 2019; absent: the span is
            /// fixed); see [`AdaptiveSpanSettings`](crate::span_config::AdaptiveSpanSettings).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub adaptive_span: Option<$crate::span_config::AdaptiveSpanSettings>,
        } $($rest)*);
    };
    (@fields $head:tt { $($done:tt)* } @norm $($rest:tt)*) => {
        $crate::model_config!(@fields $head { $($done)*
            /// LayerNorm or RMSNorm (`norm = "layer" | "rms"`).
            #[serde(default)]
            pub norm: $crate::stack::NormKind,
            /// Pre-norm (default; a final norm closes each stack), post-norm or ResiDual's two
            /// streams (`placement = "pre" | "post" | "resi_dual"`; `resi_dual` in the causal
            /// Transformer LM only, the other models refuse it in `validate`).
            #[serde(default)]
            pub placement: $crate::stack::NormPlacement,
        } $($rest)*);
    };
    (@fields $head:tt { $($done:tt)* } $(#[$field_meta:meta])* $field_vis:vis $field:ident: $ty:ty, $($rest:tt)*) => {
        $crate::model_config!(@fields $head { $($done)* $(#[$field_meta])* $field_vis $field: $ty, } $($rest)*);
    };
}

/// The serde default of `@official`'s `bias`.
pub(crate) fn default_true() -> bool {
    true
}

/// `stack_of(n_layers)` for the model configs, which all have the other [`StackConfig`] fields
/// under the same names.
macro_rules! stack_of {
    ($($config:ty),*) => {$(
        impl $config {
            /// The sizes of a stack of `n_layers` of its layers.
            pub(crate) fn stack_of(&self, n_layers: usize) -> StackConfig {
                StackConfig {
                    d_model: self.d_model,
                    n_layers,
                    n_heads: self.n_heads,
                    d_ff: self.d_ff,
                    dropout: self.dropout,
                    norm: self.norm,
                    placement: self.placement,
                }
            }
        }
    )*};
}

stack_of!(
    TransformerConfig,
    TransformerXlConfig,
    FeedbackConfig,
    Seq2SeqConfig
);

/// A model config literal `Config { other fields }` whose [`StackConfig`] fields come from
/// `stack`: the tiny presets written once ([`StackConfig::TINY`]).
macro_rules! with_stack {
    ($stack:expr, $config:path { $($other:tt)* }) => {{
        let stack: $crate::stack::StackConfig = $stack;
        $config {
            d_model: stack.d_model,
            n_layers: stack.n_layers,
            n_heads: stack.n_heads,
            d_ff: stack.d_ff,
            dropout: stack.dropout,
            norm: stack.norm,
            placement: stack.placement,
            $($other)*
        }
    }};
}
pub(crate) use with_stack;

/// The token embedding, final norm, output layer and embedding dropout of a language model.
pub struct TokenIo {
    /// Token embedding `V -> D`.
    pub embedding: Embedding,
    /// Final norm (pre-norm and ResiDual only).
    pub final_norm: Option<Norm>,
    /// Output layer `D -> V`.
    pub head: Linear,
    /// Dropout on the embeddings.
    pub dropout: Dropout,
}

impl StackConfig {
    /// The stack of the tiny presets (tests and the quickstart): width 32, two layers of two
    /// heads, feed-forward width 64, no dropout, pre-LayerNorm.
    pub const TINY: StackConfig = StackConfig {
        d_model: 32,
        n_layers: 2,
        n_heads: 2,
        d_ff: 64,
        dropout: 0.0,
        norm: NormKind::Layer,
        placement: NormPlacement::Pre,
    };

    /// The checks every language model's `validate` makes (vocabulary, heads, layers, widths,
    /// `span` ≥ 1, dropout; [`check_single_stream`](Self::check_single_stream)), naming the
    /// first bad field. The causal Transformer, which implements ResiDual, checks
    /// [`validate_sizes`](Self::validate_sizes) instead.
    pub fn validate(&self, vocab_size: usize, span: usize) -> Result<(), ConfigError> {
        self.validate_sizes(vocab_size, span)?;
        self.check_single_stream()
    }

    /// `placement` is not `resi_dual`: ResiDual's dual stream is carried by the causal
    /// Transformer LM only, and every other stack (Transformer-XL, the Feedback core and its
    /// manual backward, the translation encoder and decoders, the RL policies) refuses it.
    pub fn check_single_stream(&self) -> Result<(), ConfigError> {
        match self.placement {
            NormPlacement::ResiDual => Err(ConfigError::new(
                "placement",
                "\"resi_dual\" (ResiDual's dual residual stream) is implemented for the causal \
                 Transformer LM (kind = \"transformer\") only; use \"pre\" or \"post\"",
            )),
            NormPlacement::Pre | NormPlacement::Post => Ok(()),
        }
    }

    /// The checks of [`validate`](Self::validate) but the placement's.
    pub fn validate_sizes(&self, vocab_size: usize, span: usize) -> Result<(), ConfigError> {
        check_common(
            vocab_size,
            self.d_model,
            self.n_heads,
            self.n_layers,
            self.d_ff,
            span,
            self.dropout,
        )
    }

    /// Whether norms come before their sublayers (and a final norm closes the stack).
    pub fn is_pre_norm(&self) -> bool {
        self.placement == NormPlacement::Pre
    }

    /// The residual block of every sublayer.
    pub fn residual(&self) -> ResidualConfig {
        ResidualConfig {
            d_model: self.d_model,
            norm: self.norm,
            placement: self.placement,
        }
    }

    /// The final norm: pre-norm stacks (on the residual stream) and ResiDual (on the dual
    /// stream) only.
    pub fn final_norm(&self, device: &Device) -> Option<Norm> {
        self.placement
            .has_final_norm()
            .then(|| NormConfig::new(self.d_model, self.norm).init(device))
    }

    /// Multiplier on every attention output projection's initial weights (1/sqrt(2L) for
    /// pre-norm stacks).
    pub fn out_init_scale(&self) -> f64 {
        self.placement.out_init_scale(self.n_layers)
    }

    /// Causal self-attention with span S (the table of `span` relative distances).
    pub fn self_attention(&self, span: usize) -> CausalSelfAttentionConfig {
        CausalSelfAttentionConfig {
            dropout: self.dropout,
            out_init_scale: self.out_init_scale(),
            ..CausalSelfAttentionConfig::new(self.d_model, self.n_heads, span)
        }
    }

    /// The feed-forward sublayer.
    pub fn feed_forward(&self) -> FeedForwardConfig {
        FeedForwardConfig {
            d_model: self.d_model,
            d_ff: self.d_ff,
            dropout: self.dropout,
            activation: Default::default(),
        }
    }

    /// One Transformer layer: causal self-attention with span S, then feed-forward.
    pub fn transformer_layer(&self, span: usize, device: &Device) -> TransformerLayer {
        TransformerLayer {
            attn: Some(self.self_attention(span).init(device)),
            ff: Some(self.feed_forward().init(device)),
            ..self.transformer_layer_parts(device)
        }
    }

    /// A Transformer layer's residual blocks, without attention or feed-forward (the caller
    /// sets the sublayers it configures itself).
    pub fn transformer_layer_parts(&self, device: &Device) -> TransformerLayer {
        TransformerLayer {
            attn_residual: self.residual().init(device),
            attn: None,
            attn_variant: None,
            ff_residual: Some(self.residual().init(device)),
            ff: None,
            attn_admin: None,
            ff_admin: None,
            carry: false,
        }
    }

    /// The Feedback core over this stack, with memory span S.
    pub fn feedback_core(&self, span: usize, share_kv: bool) -> FeedbackCoreConfig {
        FeedbackCoreConfig {
            d_model: self.d_model,
            n_layers: self.n_layers,
            n_heads: self.n_heads,
            d_ff: self.d_ff,
            span,
            dropout: self.dropout,
            norm: self.norm,
            placement: self.placement,
            share_kv,
            memory: MemorySource::Mix,
            options: Default::default(),
            adaptive_span: None,
        }
    }

    /// The token embedding and output head of a language model over `vocab_size` tokens.
    pub fn token_io(&self, vocab_size: usize, device: &Device) -> TokenIo {
        TokenIo {
            embedding: EmbeddingConfig::new(vocab_size, self.d_model).init(device),
            final_norm: self.final_norm(device),
            head: LinearConfig::new(self.d_model, vocab_size).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}
