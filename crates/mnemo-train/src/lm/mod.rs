//! Language modelling and the algorithmic tasks: [`train`] runs an [`ExperimentConfig`]'s
//! model as an [`LmTask`] in the one [`Trainer`](crate::trainer::Trainer).
//!
//! Adam(W) with linear warmup, clipping of the global gradient norm; Feedback models get their
//! gradients from the hand-written exact backward ([`LmStep`]) unless
//! `train.feedback_backward = "autodiff"` or the model has dropout or post-norm.
mod state;
mod step;
mod task;

pub use state::{LmPosition, TrainerState};
pub use step::{LmBatch, LmStep};
pub use task::LmTask;

use crate::error::TrainError;
use crate::experiment::ExperimentConfig;
use crate::memory::check_memory;
use crate::run_dir::RunDir;
use crate::summary::RunSummary;
use crate::trainer::{TrainOptions, Trainer, open_run};

/// Train model `model_name` of `config` on `opts.device`; see the [module docs](self) and
/// [`Trainer`].
///
/// Writes `config.toml`, `vocab.json`, `metrics.jsonl`, `checkpoint.mnemo` and `summary.json`
/// into the run directory ([`RunDir`]) and returns the summary.
pub fn train(
    config: &ExperimentConfig,
    model_name: &str,
    opts: &TrainOptions,
) -> Result<RunSummary, TrainError> {
    check_memory(config, model_name)?;
    let data = config
        .data
        .build()
        .map_err(|e| TrainError::data("preparing the data", e))?;
    let config = config.for_model(model_name, data.vocab.len())?;
    let dir = RunDir::new(&opts.out_dir, &config.run.name, model_name);
    let (lock, resuming) = open_run(&dir, opts)?;
    let device = opts.device.clone().autodiff();
    let task = LmTask::new(&config, data, &device)?;
    Trainer::new(task, &config, model_name, dir, device)
        .locked(lock)
        .train(opts, resuming)
}
