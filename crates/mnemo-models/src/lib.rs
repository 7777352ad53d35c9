//! Language models built from `mnemo-core` blocks.
//!
//! - [`transformer`]: the causal Transformer baseline, parallel over a segment, with a KV cache
//!   for step-by-step decoding; its attention mechanism, persistent slots and all-attention
//!   layers are options ([`attention_config`]).
//! - [`feedback`]: the Feedback Transformer (Fan et al., 2020), sequential over time, every layer
//!   attending to one memory per past step: one core over input vectors, its memory, its exact
//!   manual backward, and the language model and translation decoder built on it.
//! - [`transformer_xl`]: Transformer-XL, segment recurrence over detached per-layer memories
//!   whose lengths follow a per-layer schedule ([`memory_schedule`]).
//!
//! - [`seq2seq`]: an encoder-decoder for translation whose decoder is a Transformer, a
//!   Feedback or a Compressed Attention Network decoder ([`seq2seq_decoder`],
//!   [`feedback::decoder`], [`seq2seq_can`]), with incremental decoding ([`seq2seq_cache`]) and
//!   greedy/beam search ([`seq2seq_search`]); it has its own interface, not [`Model`].
//!
//! The language models sit behind one language-model interface ([`Model`], [`ModelState`]): a segment in,
//! logits and a new state out; or one step in, logits and a new state out. The trainer and the
//! generator never look inside.
#![warn(missing_docs)]

pub mod attention_config;
pub mod config;
pub mod feature_redraw;
mod feed_forward;
pub mod feedback;
pub mod host_cross;
mod host_product;
pub mod host_self_attention;
pub mod learnt_spans;
pub mod lm;
pub mod memory_schedule;
mod output_head;
pub mod seq2seq;
pub mod seq2seq_cache;
pub mod seq2seq_can;
pub mod seq2seq_decoder;
pub mod seq2seq_decoder_config;
pub mod seq2seq_search;
pub mod span_config;
pub mod stack;
pub mod stack_lm;
mod tied_head;
#[cfg(test)]
mod toml_field;
pub mod transformer;
pub mod transformer_xl;
mod two_cores;

pub use attention_config::AttentionConfig;
pub use config::{ConfigError, ModelConfig};
pub use feedback::{
    FeedbackConfig, FeedbackCore, FeedbackCoreConfig, FeedbackLm, FeedbackMemory, FeedbackState,
    SegmentGradients, StepProducts,
};
pub use lm::{Model, ModelState, SegmentOutput, StateSnapshot, StepOutput};
pub use memory_schedule::MemorySchedule;
pub use seq2seq::{
    BOS, DecoderConfig, DecoderKind, EOS, Encoded, PAD, Seq2Seq, Seq2SeqConfig, UNK,
};
pub use seq2seq_cache::DecodeState;
pub use seq2seq_decoder::Decoder;
pub use seq2seq_search::{SearchConfig, beam_search, greedy, greedy_search, next_token_log_probs};
pub use stack::StackConfig;
pub use stack_lm::StackLm;
pub use transformer::{ResidualInit, TransformerConfig, TransformerLm, TransformerState};
pub use transformer_xl::{TransformerXlConfig, TransformerXlLm, TransformerXlState};
