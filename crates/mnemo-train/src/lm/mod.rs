//! Language modelling and the algorithmic tasks: [`train`] runs an [`ExperimentConfig`]'s
//! model as an [`LmTask`] in the one [`Trainer`](crate::trainer::Trainer).
//!
//! Adam(W) with linear warmup, clipping of the global gradient norm; Feedback models get their
//! gradients from the hand-written exact backward ([`LmStep`]) unless
//! `train.feedback_backward = "autodiff"` or the model has dropout or post-norm.
mod curriculum;
mod state;
mod step;
mod task;

pub use state::{LmPosition, TrainerState};
pub use step::{LmBatch, LmStep};
pub use task::LmTask;

use std::path::Path;

use crate::error::TrainError;
use crate::evaluate::read_run_config;
use crate::experiment::ExperimentConfig;
use crate::memory::check_memory;
use crate::run_dir::RunDir;
use crate::summary::RunSummary;
use crate::trainer::{TrainOptions, Trainer, open_run};
use crate::weight_transfer::config_differences;

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

/// Fine-tune: train model `model_name` of `config` (new data, schedule, `[optim]` fine-tuning
/// options) starting from the weights of the trained run in `from`; see
/// [`weight_transfer`](crate::weight_transfer). The model must be the run's architecture:
/// only `vocab_size` (rows matched by token) and `dropout` may differ, anything else is an
/// error naming the field. A resumed fine-tuning run continues from its own checkpoint.
pub fn finetune(
    config: &ExperimentConfig,
    model_name: &str,
    from: &Path,
    opts: &TrainOptions,
) -> Result<RunSummary, TrainError> {
    let (source, name, _) = read_run_config(&RunDir::at(from))?;
    let Some(target) = config.models.get(model_name) else {
        return Err(TrainError::Flag {
            flag: format!("--model {model_name}"),
            reason: "no such model in the config".into(),
        });
    };
    let differences = config_differences(&source.models[&name], target, &["vocab_size", "dropout"]);
    if let Some(field) = differences.first() {
        return Err(TrainError::Flag {
            flag: format!("models.{model_name}.{field}"),
            reason: format!(
                "differs from the model of {} (`{name}`); fine-tuning keeps the architecture \
                 (only vocab_size and dropout may change){}",
                from.display(),
                match differences.len() {
                    1 => String::new(),
                    n => format!("; {} fields differ: {}", n, differences.join(", ")),
                }
            ),
        });
    }
    let opts = TrainOptions {
        init_from: Some(from.to_path_buf()),
        ..opts.clone()
    };
    train(config, model_name, &opts)
}
