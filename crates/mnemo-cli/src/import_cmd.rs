//! `mnemo import safetensors FILE --config CONFIG.toml [--model NAME] --out RUN`: a run directory
//! whose weights are read from a safetensors file (PyTorch names and layouts, docs/models.md,
//! "Weights in PyTorch"), at step 0 with fresh optimizer moments; `mnemo eval`, `generate` and
//! `train --resume` accept it (`mnemo_train::weights_run`).
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::backend_arg::BackendArg;
use mnemo_train::{ExperimentConfig, import_run};

/// Arguments of `mnemo import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    command: ImportCommand,
}

/// What `mnemo import` reads.
#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// A safetensors file (e.g. from `mnemo export` or a PyTorch implementation).
    Safetensors(SafetensorsArgs),
}

/// Arguments of `mnemo import safetensors`.
#[derive(Debug, Args)]
struct SafetensorsArgs {
    /// The weights.
    file: PathBuf,
    /// Experiment config (TOML) with the model's architecture, data and training settings.
    #[arg(long)]
    config: PathBuf,
    /// The model of the config (needed when it has several).
    #[arg(long)]
    model: Option<String>,
    /// The run directory to create, e.g. runs/imported/feedback (must not hold a checkpoint).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    backend: BackendArg,
}

/// Read the weights into a new run directory.
pub fn run(args: &ImportArgs) -> anyhow::Result<()> {
    let ImportCommand::Safetensors(args) = &args.command;
    let device = args.backend.device()?;
    let config = ExperimentConfig::load(&args.config)?;
    let run = import_run(
        &args.file,
        &config,
        args.model.as_deref(),
        &args.out,
        &device,
    )?;
    println!(
        "{}: {} tensors read into {} (step 0, fresh optimizer state); evaluate with `mnemo eval {}`",
        args.file.display(),
        run.tensors,
        run.dir.path().display(),
        run.dir.path().display()
    );
    Ok(())
}
