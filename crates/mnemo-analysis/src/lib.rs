//! What trained mnemo models hold, and pictures of runs.
//!
//! Analysis (`mnemo analyze`):
//! - [`capture`]: run a trained model over a capped part of a split and keep every layer's
//!   feed-forward hidden units and (Feedback) attention probabilities, through the models'
//!   traced forwards (`TransformerLm::forward_traced`, `FeedbackLm::forward_segment_traced`).
//! - [`ffn`]: Geva et al. 2021, "Transformer Feed-Forward Layers Are Key-Value Memories": each
//!   key's top prefixes and each value's distribution `softmax(E v)` over the vocabulary.
//! - [`memory`]: Fan et al. 2020's Feedback memory: the mixing weights `softmax(w)` and the
//!   attention mass over memory distance per layer and head.
//! - [`runs`]: both on a trained run directory, written as JSON and Markdown.
//! - [`text`]: token ids as readable prefixes.
//!
//! Pictures (`mnemo report`):
//! - [`chart`]: figures of line and bar panels with `plotters`, as SVG and PNG, with a bundled
//!   font (no system fonts).
//! - [`figures`]: learning curves, memory mixing and attention distance, attention scaling.
//! - [`results_figure`]: a run's final scores and training speeds, per model, as bars.
//! - [`report`]: which figures a path gets.
#![warn(missing_docs)]

pub mod capture;
pub mod chart;
pub mod error;
pub mod ffn;
pub mod figures;
pub mod memory;
pub mod peer_figure;
pub mod report;
pub mod results_figure;
pub mod runs;
pub mod text;

pub use capture::{Capture, capture};
pub use chart::{Figure, Panel, PanelKind, Series};
pub use error::AnalysisError;
pub use ffn::{FfnAnalysis, FfnOptions, analyze_ffn, ffn_markdown};
pub use memory::{MemoryAnalysis, analyze_memory, memory_markdown};
pub use report::{Report, ReportOptions, report};
pub use runs::{ffn_of_run, memory_of_run, write_outputs};
