//! `mnemo report PATH... [--out DIR]`: figures (SVG and PNG) of runs and benchmarks
//! (mnemo-analysis): every model's learning curves of a run on one chart, the Feedback
//! memory's mixing weights and attention over distance, `mnemo bench --scaling` curves, and
//! the speed and memory of a `scripts/bench-vs-peer.sh` run against the PyTorch peer.
use std::path::PathBuf;

use clap::Args;

use crate::backend_arg::BackendArg;
use mnemo_analysis::{ReportOptions, report};

use crate::analyze_cmd::split_of;

/// Arguments of `mnemo report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Runs to draw: a model's run directory, a run (runs/quickstart), a directory of runs
    /// (runs), a `mnemo bench --scaling` JSON file, or a `scripts/bench-vs-peer.sh`
    /// summary.json.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Directory the figures go to.
    #[arg(long, value_name = "DIR", default_value = "report")]
    out: PathBuf,
    /// Split the memory figures sample.
    #[arg(long, default_value = "valid", value_parser = ["train", "valid", "test"])]
    split: String,
    /// Positions each Feedback model reads for the memory figures (0: no memory figures).
    #[arg(long, value_name = "N", default_value_t = 1024)]
    memory_tokens: usize,
    #[command(flatten)]
    backend: BackendArg,
}

/// Draw the figures and list them.
pub fn run(args: &ReportArgs) -> anyhow::Result<()> {
    let device = args.backend.device()?;
    let options = ReportOptions {
        out: args.out.clone(),
        split: split_of(&args.split),
        memory_positions: args.memory_tokens,
        device,
    };
    let written = report(&args.paths, &options)?;
    for note in &written.notes {
        eprintln!("note: {note}");
    }
    for file in &written.files {
        println!("wrote {}", file.display());
    }
    Ok(())
}
