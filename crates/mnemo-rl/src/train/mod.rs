//! Training a memory policy with PPO in the one training loop of `mnemo-train`:
//! the `[task] kind = "rl"` config ([`RlConfig`]), the task ([`RlTask`]) and [`train_rl`].
mod config;
mod rollout_cmd;
mod summary;
mod task;

pub use config::{RlConfig, TaskKind, TaskTable, is_rl_config};
pub use rollout_cmd::{EPISODE_PNG, LoadedPolicy, RolloutReport, load_policy, rollout_run};
pub use summary::{RlSummary, rl_results_table};
pub use task::{Pending, RlPosition, RlTask, episode_fields, episode_metrics, split_seed};

use mnemo_train::trainer::open_run;
use mnemo_train::{RunDir, TrainError, TrainOptions, Trainer};

/// Train policy `model_name` of `config` on `opts.device` into
/// `<out>/<run.name>/<model_name>/` (config, metrics, checkpoint, summary), returning the
/// summary.
pub fn train_rl(
    config: &RlConfig,
    model_name: &str,
    opts: &TrainOptions,
) -> Result<RlSummary, TrainError> {
    let dir = RunDir::new(&opts.out_dir, &config.run.name, model_name);
    let (lock, resuming) = open_run(&dir, opts)?;
    let config = config.for_policy(model_name)?;
    let device = opts.device.clone().autodiff();
    let task = RlTask::new(config.clone(), &device)?;
    Trainer::new(task, &config, model_name, dir, device)
        .locked(lock)
        .train(opts, resuming)
}
