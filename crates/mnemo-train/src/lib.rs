//! Training, evaluation and generation for mnemo models.
//!
//! - [`experiment`]: the TOML experiment config ([`ExperimentConfig`]), validated on load with
//!   errors naming file, line and field.
//! - [`trainer`]: [`train`] streams segments of the training split, carrying the model's memory
//!   from one segment to the next; Adam(W), warmup, global-norm clipping; logs, evaluations
//!   and checkpoints on schedule; resumes exactly from a checkpoint.
//! - [`loss`], [`metrics`]: masked cross-entropy and accuracy over the scored positions.
//! - [`checkpoint`]: one checksummed file, written atomically.
//! - [`evaluate`](mod@evaluate): whole-split evaluation and [`load_run`] to reload a run from disk.
//! - [`generate`](mod@generate): step-by-step decoding with seeded sampling.
//! - [`bleu`]: corpus BLEU exactly as sacrebleu's default `BLEU()` (13a tokenizer in
//!   [`bleu_tokenize`]).
//!
//! ```no_run
//! use mnemo_train::{ExperimentConfig, TrainOptions, train};
//!
//! let config = ExperimentConfig::load("experiments/smoke/tiny.toml")?;
//! for name in config.model_names() {
//!     let summary = train(&config, &name, &TrainOptions::new("runs"))?;
//!     println!("{}: test accuracy {:.3}", summary.model, summary.test.accuracy);
//! }
//! # Ok::<(), mnemo_train::TrainError>(())
//! ```
#![warn(missing_docs)]

pub mod bleu;
pub mod bleu_tokenize;
pub mod checkpoint;
pub mod clip;
pub mod error;
pub mod eval_memory;
pub mod evaluate;
pub mod experiment;
pub mod feedback_step;
pub mod generate;
pub mod loss;
pub mod metrics;
pub mod metrics_log;
mod model_table;
pub mod optim;
pub mod progress;
pub mod run_dir;
pub mod summary;
mod toml_source;
pub mod trainer;
pub mod translation;

pub use bleu::{Bleu, BleuError, BleuStats, corpus_bleu, sentence_bleu};
pub use checkpoint::{CHECKPOINT_FILE, Checkpoint, CheckpointError, TrainerState};
pub use error::TrainError;
pub use eval_memory::apply_eval_memory;
pub use evaluate::{EvalOptions, LoadedRun, evaluate, load_run, segment_tokens};
pub use feedback_step::{FeedbackBackward, FeedbackStep, masked_cross_entropy_grad, step_products, train_feedback_segment};
pub use experiment::{ConfigError, ExperimentConfig, RunConfig, TrainConfig};
pub use generate::{GenerateConfig, Generation, generate};
pub use loss::{LossStats, MaskedLoss, masked_cross_entropy};
pub use metrics::{Metrics, MetricsAccumulator};
pub use metrics_log::MetricsLog;
pub use optim::{LrDecay, OptimConfig};
pub use run_dir::RunDir;
pub use summary::{RunSummary, results_table};
pub use trainer::{TrainOptions, train};
