//! The flags `mnemo train` and `mnemo finetune` share: where runs go, on what, how loudly.
use std::path::PathBuf;

use clap::Args;
use mnemo_train::TrainOptions;

use crate::backend_arg::BackendArg;

/// Backend, run root and progress of a training command.
#[derive(Debug, Args)]
pub struct TrainPlace {
    #[command(flatten)]
    pub backend: BackendArg,
    /// Root directory of runs; a model's run goes to <out>/<run.name>/<model>/.
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
    /// Show no progress.
    #[arg(long)]
    pub quiet: bool,
}

impl TrainPlace {
    /// The options of a run on the device `--backend` names (opened here, with autodiff).
    pub fn options(&self, resume: bool) -> anyhow::Result<TrainOptions> {
        let device = self.backend.autodiff_device()?;
        Ok(TrainOptions {
            resume,
            quiet: self.quiet,
            ..TrainOptions::new(&self.out, device)
        })
    }
}
