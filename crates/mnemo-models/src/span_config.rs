//! The `adaptive_span` table of a model config: a learnt soft span per head (Sukhbaatar et al.
//! 2019, as the paper's enwik8 model uses it) on the attention of every model with a span (the
//! Feedback Transformer, the Transformer, Transformer-XL).
//!
//! ```toml
//! [models.feedback]
//! kind = "feedback"
//! span = 2048                   # the maximum span S (the official attn_lim)
//! adaptive_span = { ramp = 32, loss = 5e-7 }   # official enwik8: --adapt-span-loss 5e-7
//! ```
//!
//! Absent, the span is fixed. The maximum span S is the model's `span` (Transformer-XL: its
//! number of relative distances P). See [`mnemo_core::adaptive_span`] for the mask, the loss and
//! trimming.
use mnemo_core::AdaptiveSpanConfig;
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// The `adaptive_span` table; the defaults are the official command-line defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveSpanSettings {
    /// Ramp length R ≥ 1 over which the mask falls from 1 to 0 (`--adapt-span-len`, 32).
    #[serde(default = "default_ramp")]
    pub ramp: usize,
    /// Span loss coefficient c ≥ 0: `c·S·mean(z)` per layer is added to the training loss
    /// (`--adapt-span-loss`, default 0).
    #[serde(default)]
    pub loss: f64,
    /// Initial ratio z0 ∈ [0, 1] of every head: the span starts at `z0·S` (`--adapt-span-init`,
    /// default 0).
    #[serde(default)]
    pub init: f64,
    /// One span per head (true, default) or one per layer (`--adapt-span-layer`).
    #[serde(default = "crate::stack::default_true")]
    pub per_head: bool,
    /// Trimmed window lengths are multiples of this step ≥ 1 (`--adapt-span-trim-step`, 64).
    #[serde(default = "default_trim_step")]
    pub trim_step: usize,
    /// Skip the keys beyond the widest span plus the ramp (default true; false attends the whole
    /// window, for measuring what trimming saves: the outputs are the same).
    #[serde(default = "crate::stack::default_true")]
    pub trim: bool,
}

fn default_ramp() -> usize {
    32
}

fn default_trim_step() -> usize {
    64
}

impl Default for AdaptiveSpanSettings {
    fn default() -> Self {
        Self {
            ramp: default_ramp(),
            loss: 0.0,
            init: 0.0,
            per_head: true,
            trim_step: default_trim_step(),
            trim: true,
        }
    }
}

impl AdaptiveSpanSettings {
    /// Check every field; errors name `adaptive_span.<field>`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let field = |name: &str, message: &str| {
            Err(ConfigError::new(&format!("adaptive_span.{name}"), message))
        };
        if self.ramp == 0 {
            return field("ramp", "must be at least 1");
        }
        if self.trim_step == 0 {
            return field("trim_step", "must be at least 1");
        }
        if !(self.loss.is_finite() && self.loss >= 0.0) {
            return field("loss", "must be a finite number ≥ 0");
        }
        if !(0.0..=1.0).contains(&self.init) {
            return field("init", "must lie in [0, 1] (a fraction of the span)");
        }
        Ok(())
    }

    /// The core config for `n_heads` heads over a maximum span of `max_span` table rows.
    pub fn core(&self, n_heads: usize, max_span: usize) -> AdaptiveSpanConfig {
        AdaptiveSpanConfig {
            max_span,
            ramp: self.ramp,
            loss: self.loss,
            init: self.init,
            n_heads: if self.per_head { n_heads } else { 1 },
            trim_step: self.trim_step,
            trim: self.trim,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toml_field;

    fn parse(s: &str) -> Result<Option<AdaptiveSpanSettings>, String> {
        toml_field::parse(s, "adaptive_span")
    }

    #[test]
    fn tables_parse_with_official_defaults_and_round_trip() {
        assert_eq!(parse("").unwrap(), None);
        let a = parse("adaptive_span = { loss = 5e-7, per_head = false }")
            .unwrap()
            .unwrap();
        assert_eq!(
            a,
            AdaptiveSpanSettings {
                loss: 5e-7,
                per_head: false,
                ..Default::default()
            }
        );
        assert_eq!(a.core(4, 2048).n_heads, 1);
        assert_eq!(a.core(4, 2048).ramp, 32);
        let text = toml_field::write("adaptive_span", &a);
        assert_eq!(parse(&text).unwrap(), Some(a), "{text}");
    }

    #[test]
    fn bad_fields_are_named() {
        let err = parse("adaptive_span = { ramp = 4, width = 3 }").unwrap_err();
        assert!(err.contains("unknown field `width`"), "{err}");
        let bad = |edit: fn(&mut AdaptiveSpanSettings)| {
            let mut settings = AdaptiveSpanSettings::default();
            edit(&mut settings);
            settings
        };
        for (bad, named) in [
            (bad(|s| s.ramp = 0), "adaptive_span.ramp"),
            (bad(|s| s.init = 1.5), "adaptive_span.init"),
            (bad(|s| s.loss = -1.0), "adaptive_span.loss"),
            (bad(|s| s.trim_step = 0), "adaptive_span.trim_step"),
        ] {
            let err = bad.validate().unwrap_err().to_string();
            assert!(err.contains(named), "{err}");
        }
    }
}
