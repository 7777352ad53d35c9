//! The translation experiment config: `[run]`, `[data] task = "translation"`, `[train]`,
//! `[optim]`, `[decode]` and one or more `[models.<name>]` encoder–decoders.
//!
//! ```toml
//! [run]
//! name = "mt-mini"
//! seed = 1
//! steps = 2000
//! eval_every = 500
//! checkpoint_every = 500
//! log_every = 50
//!
//! [data]
//! task = "translation"
//! dir = "data/translation/en-de"   # {train,valid,test}.{en,de}
//! src = "en"
//! tgt = "de"
//! vocab_size = 8000                # joint BPE, trained on the training split
//! max_len = 64                     # training pairs longer than this (in subwords) are dropped
//!
//! [train]
//! max_tokens = 2048                # source + target tokens per batch (padded)
//!
//! [optim]
//! lr = 1e-3
//! warmup_steps = 400
//! grad_clip = 1.0
//!
//! [decode]
//! beam_size = 4
//! length_penalty = 0.6
//!
//! [models.feedback-2]
//! d_model = 128
//! n_heads = 4
//! d_ff = 512
//! encoder_layers = 3
//! decoder_layers = 2
//! decoder = "feedback"
//! span = 128
//! ```
//!
//! Every field is checked on load; errors name the file, the line and the field.
use std::collections::BTreeMap;

use mnemo_data::translation::ParallelConfig;
use mnemo_models::Seq2SeqConfig;
use serde::{Deserialize, Serialize};

use crate::experiment::{ConfigError, OnNonFinite, RunConfig, data_error};
use crate::experiment_file;
use crate::model_table::validate_models;
use crate::optim::OptimConfig;

/// `[data]` of a translation experiment: `task = "translation"` and the parallel corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum TranslationData {
    /// A line-aligned parallel corpus (see [`ParallelConfig`]).
    Translation(ParallelConfig),
}

impl TranslationData {
    /// The corpus settings.
    pub fn parallel(&self) -> &ParallelConfig {
        match self {
            Self::Translation(c) => c,
        }
    }
}

/// `[train]` of a translation experiment: batch sizes in tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtTrainConfig {
    /// Padded source + target tokens per training batch; similar lengths are batched together.
    pub max_tokens: usize,
    /// Padded tokens per batch when evaluating and decoding (default: `max_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_max_tokens: Option<usize>,
    /// What a step with a non-finite loss, gradient norm or weights does (`"stop"` or
    /// `"skip_batch"`; see [`OnNonFinite`]).
    #[serde(default, skip_serializing_if = "crate::experiment::is_default")]
    pub on_nonfinite: OnNonFinite,
}

impl MtTrainConfig {
    /// Tokens per evaluation batch.
    pub fn eval_max_tokens(&self) -> usize {
        self.eval_max_tokens.unwrap_or(self.max_tokens)
    }
}

/// `[decode]`: how the final BLEU is decoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecodeConfig {
    /// Beam size (1 = greedy).
    #[serde(default = "default_beam")]
    pub beam_size: usize,
    /// Length penalty alpha: hypotheses are ranked by sum log p / len^alpha.
    #[serde(default = "default_alpha")]
    pub length_penalty: f64,
    /// Maximum target length = `max_len_a` * source length + `max_len_b` (subwords).
    #[serde(default = "default_a")]
    pub max_len_a: f64,
    /// See `max_len_a`.
    #[serde(default = "default_b")]
    pub max_len_b: usize,
    /// Decode only the first this many pairs of valid/test for BLEU (0 = all).
    #[serde(default)]
    pub max_pairs: usize,
}

fn default_beam() -> usize {
    4
}
fn default_alpha() -> f64 {
    0.6
}
fn default_a() -> f64 {
    1.5
}
fn default_b() -> usize {
    10
}

impl Default for DecodeConfig {
    fn default() -> Self {
        Self {
            beam_size: default_beam(),
            length_penalty: default_alpha(),
            max_len_a: default_a(),
            max_len_b: default_b(),
            max_pairs: 0,
        }
    }
}

/// A whole translation experiment: see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranslationConfig {
    /// Naming, seed, cadence (as for every experiment).
    pub run: RunConfig,
    /// The parallel corpus and its subword vocabulary.
    pub data: TranslationData,
    /// Batch sizes.
    pub train: MtTrainConfig,
    /// Optimizer and schedule.
    pub optim: OptimConfig,
    /// Beam search for the final BLEU.
    #[serde(default)]
    pub decode: DecodeConfig,
    /// The encoder–decoders, by name; each is a run in `<out>/<run.name>/<model name>/`.
    pub models: BTreeMap<String, Seq2SeqConfig>,
}

experiment_file!(
    TranslationConfig,
    "translation",
    Seq2SeqConfig,
    TranslationData,
    MtTrainConfig
);

/// Whether the TOML text is a translation experiment (`[data] task = "translation"`).
pub fn is_translation_config(text: &str) -> bool {
    toml::from_str::<toml::Value>(text)
        .ok()
        .and_then(|v| {
            v.get("data")?
                .get("task")?
                .as_str()
                .map(|t| t == "translation")
        })
        .unwrap_or(false)
}

impl TranslationConfig {
    /// Check every range; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.run.validate()?;
        if self.train.max_tokens == 0 {
            return Err(ConfigError::field("train.max_tokens", "must be at least 1"));
        }
        if self.train.eval_max_tokens == Some(0) {
            return Err(ConfigError::field(
                "train.eval_max_tokens",
                "must be at least 1",
            ));
        }
        self.optim.validate()?;
        self.data.parallel().validate().map_err(data_error)?;
        let d = &self.decode;
        if d.beam_size == 0 {
            return Err(ConfigError::field("decode.beam_size", "must be at least 1"));
        }
        if !(d.length_penalty.is_finite() && d.length_penalty >= 0.0) {
            return Err(ConfigError::field(
                "decode.length_penalty",
                "must be a number >= 0",
            ));
        }
        if !(d.max_len_a.is_finite() && d.max_len_a >= 0.0) {
            return Err(ConfigError::field(
                "decode.max_len_a",
                "must be a number >= 0",
            ));
        }
        if d.max_len_a == 0.0 && d.max_len_b == 0 {
            return Err(ConfigError::field(
                "decode.max_len_b",
                "max_len_a and max_len_b cannot both be 0 (no target could be produced)",
            ));
        }
        validate_models(&self.models, "feedback-2", 8)
    }
}
