//! `--backend`, the flag of every command that runs a model: which compiled-in backend opens
//! the device (backend names live in mnemo-backend; the CLI opens the device).
use anyhow::Context;
use clap::Args;
use mnemo_backend::Device;

/// The backend a command runs on.
#[derive(Debug, Clone, Args)]
pub struct BackendArg {
    /// Backend to run on (cpu, flex, ndarray, ... as compiled in).
    #[arg(long, default_value = mnemo_backend::DEFAULT_BACKEND)]
    pub backend: String,
}

impl BackendArg {
    /// The backend's device, for inference.
    pub fn device(&self) -> anyhow::Result<Device> {
        mnemo_backend::device(&self.backend).context(format!("--backend {}", self.backend))
    }

    /// The backend's device with autodiff, for training.
    pub fn autodiff_device(&self) -> anyhow::Result<Device> {
        mnemo_backend::autodiff_device(&self.backend).context(format!("--backend {}", self.backend))
    }
}
