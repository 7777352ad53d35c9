//! Training, evaluation and generation for mnemo models.
//!
//! - [`experiment`]: the TOML experiment config ([`ExperimentConfig`]), validated on load with
//!   errors naming file, line and field.
//! - [`trainer`]: the one training loop, [`Trainer`], for every [`Task`] ([`task`]): the
//!   optimizer step ([`update`]), logs, evaluations and checkpoints on schedule, exact resume.
//! - [`lm`]: [`train`] streams segments of the training split, carrying the model's memory
//!   from one segment to the next ([`LmTask`]); its step, [`LmStep`], is also what
//!   `mnemo compare-backends` and `mnemo bench` run.
//! - [`translation`]: encoder–decoders on parallel text ([`translation::MtTask`]).
//! - [`loss`], [`metrics`]: masked cross-entropy and accuracy over the scored positions.
//! - [`checkpoint`]: one checksummed file, written atomically; [`run_lock`]: one process per
//!   run directory; [`fingerprint`]: resume refuses changed data files; [`float_repr`]: saved
//!   floats read back bit for bit.
//! - [`evaluate`](mod@evaluate): whole-split evaluation and [`load_run`] to reload a run from disk.
//! - [`generate`](mod@generate): step-by-step decoding with seeded sampling.
//! - [`weights`], [`weights_run`]: a model's weights as safetensors with PyTorch names and
//!   layouts (burn-store), `mnemo export` / `mnemo import safetensors`; [`official`]: reading
//!   the official Feedback Transformer code's checkpoints (burn-store's PyTorch reader).
//! - [`bleu`]: corpus BLEU exactly as sacrebleu's default `BLEU()` (13a tokenizer in
//!   [`bleu_tokenize`]).
//!
//! Devices are opened by the caller (the `mnemo` binary, through `mnemo-backend`) and passed
//! in: this crate knows no backend names.
//!
//! ```no_run
//! use burn::tensor::Device;
//! use mnemo_train::{ExperimentConfig, TrainOptions, train};
//!
//! let config = ExperimentConfig::load("experiments/smoke/tiny.toml")?;
//! let options = TrainOptions::new("runs", Device::flex().autodiff());
//! for name in config.model_names() {
//!     let summary = train(&config, &name, &options)?;
//!     println!("{}: test accuracy {:.3}", summary.model, summary.test.accuracy);
//! }
//! # Ok::<(), mnemo_train::TrainError>(())
//! ```
#![warn(missing_docs)]

pub mod bleu;
pub mod bleu_tokenize;
pub mod checkpoint;
pub mod clip;
pub mod config_file;
pub mod error;
pub mod eval_memory;
pub mod evaluate;
pub mod experiment;
pub mod feedback_step;
pub mod fingerprint;
pub mod float_repr;
pub mod generate;
pub mod host_adamw;
pub mod layer_groups;
pub mod linf_ball;
pub mod lm;
pub mod loss;
pub mod memory;
pub mod metrics;
pub mod metrics_log;
pub mod model_table;
pub mod official;
pub mod official_export;
pub mod official_import;
pub mod official_vocab;
pub mod optim;
pub mod progress;
pub mod rng;
pub mod run_dir;
pub mod run_lock;
pub mod summary;
pub mod task;
#[cfg(test)]
mod test_layers;
mod toml_source;
pub mod trainer;
pub mod translation;
pub mod update;
pub mod weight_transfer;
pub mod weights;
pub mod weights_run;

pub use bleu::{Bleu, BleuError, BleuStats, corpus_bleu, sentence_bleu};
pub use checkpoint::{CHECKPOINT_FILE, Checkpoint, CheckpointError};
pub use config_file::Experiment;
pub use error::TrainError;
pub use eval_memory::apply_eval_memory;
pub use evaluate::{EvalOptions, LoadedRun, evaluate, forward_segment, load_run, segment_tokens};
pub use experiment::{ConfigError, ExperimentConfig, OnNonFinite, RunConfig, TrainConfig};
pub use feedback_step::{
    FeedbackBackward, FeedbackStep, ManualBackward, manual_backward, masked_cross_entropy_grad,
    step_products, train_feedback_segment,
};
pub use generate::{GenerateConfig, Generation, generate};
pub use lm::{LmBatch, LmPosition, LmStep, LmTask, TrainerState, finetune, train};
pub use loss::{LossStats, MaskedLoss, masked_cross_entropy, masked_loss_stats};
pub use metrics::{Metrics, MetricsAccumulator};
pub use metrics_log::MetricsLog;
pub use optim::{LrDecay, OptimConfig};
pub use rng::seeded;
pub use run_dir::RunDir;
pub use run_lock::RunLock;
pub use summary::{RunSummary, results_table};
pub use task::{Ending, StepOutput, Task};
pub use trainer::{RunState, TrainOptions, Trainer, initialize_params, step_seed};
pub use update::{Divergence, StepLr, apply_update, checked_update};
pub use weights::{SAFETENSORS_FILE, WeightsError, export_safetensors, import_safetensors};
pub use weights_run::{ImportedRun, export_run, import_model, import_run};
