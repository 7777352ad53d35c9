//! Which self-attention mechanism a Transformer's layers use (`attention = { kind = ... }` in a
//! model table), with the settings only that mechanism has.
//!
//! ```toml
//! [models.softmax]
//! kind = "transformer"          # attention defaults to { kind = "softmax" }
//!
//! [models.persistent]
//! kind = "transformer"
//! persistent_memory = 16        # 16 learned key/value slots per head and layer
//! feed_forward = false          # the all-attention layer
//! ```
//!
//! See [`mnemo_core::self_attention`] for the mechanisms and `docs/models.md` for their papers.
use burn::tensor::Device;
use mnemo_core::CausalSelfAttention;
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
    /// FNet's Fourier mixing (Lee-Thorp et al. 2021). It mixes every position with every other,
    /// future ones included, so a causal language model refuses it; the translation encoder
    /// takes it as `mixing = "fourier"`.
    Fourier,
}

impl AttentionConfig {
    /// Short name (`softmax`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            AttentionConfig::Softmax => "softmax",
            AttentionConfig::Fourier => "fourier",
        }
    }

    /// Check the settings for a causal language model with `persistent_memory` slots; errors
    /// name the field.
    pub fn validate(&self, persistent_memory: usize) -> Result<(), ConfigError> {
        match self {
            AttentionConfig::Softmax => Ok(()),
            AttentionConfig::Fourier => Err(ConfigError::new(
                "attention.kind",
                "\"fourier\" (FNet) mixes each position with later ones, which a causal \
                 language model must not see; use it in a translation encoder \
                 (mixing = \"fourier\" in a translation model table)",
            )),
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

    /// Build one layer's attention with span S (validated config).
    pub fn init(
        &self,
        stack: &StackConfig,
        span: usize,
        persistent_memory: usize,
        device: &Device,
    ) -> CausalSelfAttention {
        match self {
            AttentionConfig::Softmax => {
                let mut config = stack.self_attention(span);
                config.persistent_memory = persistent_memory;
                config.init(device)
            }
            AttentionConfig::Fourier => unreachable!("validate refuses fourier for a causal LM"),
        }
    }
}
