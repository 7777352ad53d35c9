//! The tagged model configuration shared by configs, checkpoints and the CLI.
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::feedback::FeedbackConfig;
use crate::lm::Model;
use crate::transformer::TransformerConfig;
use crate::transformer_xl::TransformerXlConfig;

/// A model configuration problem, naming the field (relative to the model table).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model.{field}: {message}")]
pub struct ConfigError {
    /// The offending field, e.g. `n_heads`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// A new error for `field`.
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// Which architecture to build, with its settings (`kind = "transformer" | "feedback" | "transformer_xl"` in
/// TOML).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelConfig {
    /// The causal Transformer baseline.
    Transformer(TransformerConfig),
    /// The Feedback Transformer.
    Feedback(FeedbackConfig),
    /// Transformer-XL with a per-layer memory schedule.
    TransformerXl(TransformerXlConfig),
}

impl ModelConfig {
    /// Check every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            ModelConfig::Transformer(c) => c.validate(),
            ModelConfig::Feedback(c) => c.validate(),
            ModelConfig::TransformerXl(c) => c.validate(),
        }
    }

    /// Vocabulary size (0 = to be filled in from the data).
    pub fn vocab_size(&self) -> usize {
        match self {
            ModelConfig::Transformer(c) => c.vocab_size,
            ModelConfig::Feedback(c) => c.vocab_size,
            ModelConfig::TransformerXl(c) => c.vocab_size,
        }
    }

    /// Set the vocabulary size.
    pub fn set_vocab_size(&mut self, vocab_size: usize) {
        match self {
            ModelConfig::Transformer(c) => c.vocab_size = vocab_size,
            ModelConfig::Feedback(c) => c.vocab_size = vocab_size,
            ModelConfig::TransformerXl(c) => c.vocab_size = vocab_size,
        }
    }

    /// Short name of the architecture (`transformer`, `feedback`, `transformer_xl`).
    pub fn kind(&self) -> &'static str {
        match self {
            ModelConfig::Transformer(_) => "transformer",
            ModelConfig::Feedback(_) => "feedback",
            ModelConfig::TransformerXl(_) => "transformer_xl",
        }
    }

    /// Build the model (parameters materialised; seed the device first for reproducibility).
    pub fn init(&self, device: &Device) -> Model {
        use burn::module::Module;
        let model = match self {
            ModelConfig::Transformer(c) => Model::Transformer(c.init(device)),
            ModelConfig::Feedback(c) => Model::Feedback(c.init(device)),
            ModelConfig::TransformerXl(c) => Model::TransformerXl(c.init(device)),
        };
        model.materialize()
    }
}

/// Checks shared by the architectures' `validate`.
pub(crate) fn check_common(
    vocab_size: usize,
    d_model: usize,
    n_heads: usize,
    n_layers: usize,
    d_ff: usize,
    span: usize,
    dropout: f64,
) -> Result<(), ConfigError> {
    if vocab_size == 0 {
        return Err(ConfigError::new(
            "vocab_size",
            "must be set (> 0); the trainer fills it from the data",
        ));
    }
    if d_model == 0 || n_heads == 0 || !d_model.is_multiple_of(n_heads) {
        return Err(ConfigError::new(
            "n_heads",
            format!("d_model ({d_model}) must be a positive multiple of n_heads ({n_heads})"),
        ));
    }
    if n_layers == 0 {
        return Err(ConfigError::new("n_layers", "must be at least 1"));
    }
    if d_ff == 0 {
        return Err(ConfigError::new("d_ff", "must be at least 1"));
    }
    if span == 0 {
        return Err(ConfigError::new("span", "must be at least 1"));
    }
    if !(0.0..1.0).contains(&dropout) {
        return Err(ConfigError::new(
            "dropout",
            format!("must be in [0, 1), got {dropout}"),
        ));
    }
    Ok(())
}
