//! The Feedback Transformer (Fan et al., 2020, "Addressing Some Limitations of Transformers with
//! Feedback Memory"): the only place its equations live.
//!
//! - [`memory`]: one [`FeedbackMemory`] (the window of S memories' keys/values, written in place;
//!   decoding push, folded zero start, host layout for the CPU kernels).
//! - `host_memory`: a host copy of the memory's windows, attended by the CPU kernels when
//!   decoding with host products.
//! - [`layer`]: a layer's memory attention and feed-forward, and the memory K/V projection.
//! - [`core`]: [`FeedbackCore`], the layers + projections + mix over input vectors `[B, T, D]`,
//!   with `forward` (a segment) and `step`, and a per-layer hook.
//! - [`lm`]: the language model, embedding + core + head.
//! - [`inspect`]: a segment that also returns each layer's attention probabilities and
//!   feed-forward hidden units (`mnemo analyze`).
//! - [`eval_span`]: evaluating with a shorter span than trained (`mnemo eval --mem-len N`).
//! - [`decoder`]: the translation decoder, core + a cross-attention hook.
//! - [`backward`]: the exact manual backward of the core (and of the LM and decoder around it).
pub mod backward;
pub mod core;
pub mod decoder;
pub mod eval_span;
pub(crate) mod host_memory;
mod host_norm;
mod host_step;
pub mod inspect;
pub mod layer;
pub mod lm;
pub mod memory;
pub mod tied_norms;

pub(crate) use backward::host_window::host;
pub use backward::lm::SegmentGradients;
pub use backward::seq2seq::Seq2SeqGradients;
pub use backward::{CoreOutput, ManualHook, NoManualHook, StepMatrix, StepProducts, move_grads};
pub use core::{
    FeedbackCore, FeedbackCoreConfig, FeedbackOptions, LayerHook, MemorySource, no_hook,
};
pub use decoder::FeedbackDecoder;
pub use inspect::FeedbackTrace;
pub use layer::{FeedbackLayer, MemoryProjection};
pub use lm::{Carry, FeedbackConfig, FeedbackLm, FeedbackState};
pub use memory::{FeedbackMemory, StepConstants, WindowView};
