//! `mnemo analyze ffn|memory RUN`: what a trained model holds (mnemo-analysis).
//!
//! - `ffn`: Geva et al. 2021, the feed-forward layers as key-value memories: each key's top
//!   prefixes on a split, each value's top tokens under `softmax(E v)`.
//! - `memory`: Fan et al. 2020, the Feedback memory: mixing weights `softmax(w)` and the
//!   attention mass over memory distance per layer and head.
//!
//! Both write `<out>/<ffn|memory>.json` and a Markdown report beside it (`<out>` defaults to
//! `RUN/analysis`).
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::backend_arg::BackendArg;
use crate::run_kind;
use mnemo_analysis::{
    FfnOptions, ffn_markdown, ffn_of_run, memory_markdown, memory_of_run, write_outputs,
};
use mnemo_data::Split;

/// Arguments of `mnemo analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    #[command(subcommand)]
    what: Analysis,
}

/// The analyses.
#[derive(Debug, Subcommand)]
enum Analysis {
    /// Feed-forward keys (top prefixes) and values (top tokens), per layer (Geva et al. 2021).
    Ffn(FfnArgs),
    /// Feedback memory: mixing weights and attention over memory distance (Fan et al. 2020).
    Memory(MemoryArgs),
}

/// What every analysis reads.
#[derive(Debug, Args)]
struct Common {
    /// Run directory, e.g. runs/quickstart/feedback.
    run_dir: PathBuf,
    /// Split to read.
    #[arg(long, default_value = "valid", value_parser = ["train", "valid", "test"])]
    split: String,
    /// Directory for the JSON and Markdown outputs (default: RUN/analysis).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    backend: BackendArg,
}

/// Arguments of `mnemo analyze ffn`.
#[derive(Debug, Args)]
struct FfnArgs {
    #[command(flatten)]
    common: Common,
    /// Prefixes kept per key.
    #[arg(long, default_value_t = 5)]
    top_k: usize,
    /// Positions of the split read (the first ones, as evaluation lays them out).
    #[arg(long, value_name = "N", default_value_t = 4096)]
    max_tokens: usize,
    /// Tokens per prefix.
    #[arg(long, default_value_t = 10)]
    context: usize,
    /// Top tokens listed per value.
    #[arg(long, default_value_t = 5)]
    value_tokens: usize,
    /// Keys per layer shown in the Markdown report (the JSON has all).
    #[arg(long, default_value_t = 12)]
    show: usize,
}

/// Arguments of `mnemo analyze memory`.
#[derive(Debug, Args)]
struct MemoryArgs {
    #[command(flatten)]
    common: Common,
    /// Positions (queries) of the split sampled for the attention over distance.
    #[arg(long, value_name = "N", default_value_t = 2048)]
    max_tokens: usize,
}

/// `train`, `valid` or `test` (clap checked the name).
pub fn split_of(name: &str) -> Split {
    match name {
        "train" => Split::Train,
        "test" => Split::Test,
        _ => Split::Valid,
    }
}

/// Refuse 0 for a count flag, naming it.
pub fn at_least_one(flag: &str, value: usize) -> anyhow::Result<()> {
    anyhow::ensure!(value >= 1, "{flag}: must be at least 1, got 0");
    Ok(())
}

fn out_dir(common: &Common) -> PathBuf {
    common
        .out
        .clone()
        .unwrap_or_else(|| common.run_dir.join("analysis"))
}

fn print_written(files: &[PathBuf]) {
    for file in files {
        println!("wrote {}", file.display());
    }
}

/// Run the analysis.
pub fn run(args: &AnalyzeArgs) -> anyhow::Result<()> {
    match &args.what {
        Analysis::Ffn(a) => ffn(a),
        Analysis::Memory(a) => memory(a),
    }
}

fn load(common: &Common) -> anyhow::Result<mnemo_train::LoadedRun> {
    run_kind::load_lm(&common.run_dir, "analyze", &common.backend)
}

fn ffn(args: &FfnArgs) -> anyhow::Result<()> {
    at_least_one("--top-k", args.top_k)?;
    at_least_one("--max-tokens", args.max_tokens)?;
    at_least_one("--context", args.context)?;
    at_least_one("--value-tokens", args.value_tokens)?;
    let run = load(&args.common)?;
    let options = FfnOptions {
        top_k: args.top_k,
        context: args.context,
        value_tokens: args.value_tokens,
    };
    let analysis = ffn_of_run(
        &run,
        split_of(&args.common.split),
        args.max_tokens,
        &options,
    )?;
    let files = write_outputs(
        &out_dir(&args.common),
        "ffn",
        &analysis,
        &ffn_markdown(&analysis, args.show),
    )?;
    print_written(&files);
    Ok(())
}

fn memory(args: &MemoryArgs) -> anyhow::Result<()> {
    at_least_one("--max-tokens", args.max_tokens)?;
    let run = load(&args.common)?;
    let analysis = memory_of_run(&run, split_of(&args.common.split), args.max_tokens)?;
    let markdown = memory_markdown(&analysis);
    let files = write_outputs(&out_dir(&args.common), "memory", &analysis, &markdown)?;
    print!("{markdown}");
    print_written(&files);
    Ok(())
}
