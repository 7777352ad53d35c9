//! `mnemo eval`: loss and accuracy of a trained run on a split.
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use mnemo_data::Split;
use mnemo_train::load_run;
use serde_json::json;

/// A split to evaluate on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SplitArg {
    /// The training split.
    Train,
    /// The validation split.
    Valid,
    /// The test split.
    Test,
}

impl SplitArg {
    fn split(self) -> Split {
        match self {
            SplitArg::Train => Split::Train,
            SplitArg::Valid => Split::Valid,
            SplitArg::Test => Split::Test,
        }
    }

    fn name(self) -> &'static str {
        match self {
            SplitArg::Train => "train",
            SplitArg::Valid => "valid",
            SplitArg::Test => "test",
        }
    }
}

/// Arguments of `mnemo eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Run directory, e.g. runs/smoke-tiny/feedback.
    run_dir: PathBuf,
    /// Split to evaluate on.
    #[arg(long, value_enum, default_value = "valid")]
    split: SplitArg,
    /// Backend to evaluate on.
    #[arg(long, default_value = mnemo_backend::DEFAULT_BACKEND)]
    backend: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Reload the run and evaluate it exactly as the trainer does.
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let run = load_run(&args.run_dir, &args.backend)?;
    let metrics = run.evaluate(args.split.split())?;
    if args.json {
        let record = json!({
            "run_dir": args.run_dir,
            "model": run.model_name,
            "kind": run.model.kind(),
            "step": run.trainer.step,
            "split": args.split.name(),
            "loss": metrics.loss,
            "accuracy": metrics.accuracy,
            "scored": metrics.scored,
            "tokens": metrics.tokens,
        });
        println!("{record}");
    } else {
        println!(
            "{} ({}, step {}) on {}: loss {:.4}, accuracy {:.2}% over {} scored positions ({} tokens)",
            run.model_name,
            run.model.kind(),
            run.trainer.step,
            args.split.name(),
            metrics.loss,
            100.0 * metrics.accuracy,
            metrics.scored,
            metrics.tokens
        );
    }
    Ok(())
}
