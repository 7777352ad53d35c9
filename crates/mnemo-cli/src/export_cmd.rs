//! `mnemo export RUN --format safetensors [--out FILE]`: a trained run's weights as a
//! safetensors file with the tensor names and layouts of a plain PyTorch implementation
//! (docs/models.md, "Weights in PyTorch"; `mnemo_train::weights`).
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::backend_arg::BackendArg;
use crate::run_kind;
use mnemo_train::official_export::export_official_run;
use mnemo_train::{SAFETENSORS_FILE, export_run};

/// The formats `mnemo export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// safetensors, PyTorch names and layouts (Linear weights [out, in]).
    Safetensors,
    /// The official code's state dict (safetensors with its names; Feedback models with the
    /// official options, or Transformer-XLs that are the official TransformerSeq; needs
    /// --data): scripts/official_checkpoint.py makes the .pt.
    Official,
}

/// Arguments of `mnemo export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Run directory, e.g. runs/smoke-tiny/feedback.
    run_dir: PathBuf,
    /// File format.
    #[arg(long, value_enum, default_value = "safetensors")]
    format: Format,
    /// Output file (default: <RUN>/model.safetensors, or <RUN>/official.safetensors); replaced
    /// if it exists.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// With --format official: the official `--data` directory (its dictionary orders the rows).
    #[arg(long, value_name = "DIR", required_if_eq("format", "official"))]
    data: Option<PathBuf>,
    #[command(flatten)]
    backend: BackendArg,
}

/// Reload the run and write its weights.
pub fn run(args: &ExportArgs) -> anyhow::Result<()> {
    let run = run_kind::load_lm(&args.run_dir, "export", &args.backend)?;
    let default = match args.format {
        Format::Safetensors => SAFETENSORS_FILE,
        Format::Official => "official.safetensors",
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.run_dir.join(default));
    if args.format == Format::Official {
        let data = args
            .data
            .as_ref()
            .expect("clap requires --data with --format official");
        let flags = export_official_run(&run, data, &out)?;
        println!(
            "{}: the official state dict written to {} (convert with scripts/official_checkpoint.py); \
             official flags: {}",
            run.model_name,
            out.display(),
            serde_json::to_string(&flags)?
        );
        return Ok(());
    }
    export_run(&run, &out)?;
    let tensors = mnemo_train::weights::tensor_names(&run.model).len();
    println!(
        "{} ({}, step {}): {tensors} tensors written to {} (names: docs/models.md, \"Weights in PyTorch\")",
        run.model_name,
        run.model.kind(),
        run.trainer.step,
        out.display()
    );
    Ok(())
}
