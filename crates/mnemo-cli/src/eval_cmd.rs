//! `mnemo eval`: loss and accuracy of a trained run on a split; bits per character (byte
//! corpora) or perplexity (word corpora) for language modelling; a translation run's
//! teacher-forced perplexity ([`crate::eval_translation`]).
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::backend_arg::BackendArg;
use crate::run_kind::{self, RunKind};
use mnemo_data::Split;
use mnemo_train::{EvalOptions, load_run};
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
    pub(crate) fn split(self) -> Split {
        match self {
            SplitArg::Train => Split::Train,
            SplitArg::Valid => Split::Valid,
            SplitArg::Test => Split::Test,
        }
    }

    pub(crate) fn name(self) -> &'static str {
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
    /// Run directory, e.g. runs/smoke-tiny/feedback (a language model's or a translation
    /// model's).
    pub(crate) run_dir: PathBuf,
    /// Split to evaluate on.
    #[arg(long, value_enum, default_value = "valid")]
    pub(crate) split: SplitArg,
    #[command(flatten)]
    pub(crate) backend: BackendArg,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// Evaluation span: tokens per segment (default: the run's train.segment_len). State is
    /// carried across segments either way.
    #[arg(long, value_name = "N")]
    pub(crate) eval_span: Option<usize>,
    /// Memory length to evaluate with: Transformer-XL's memory (may exceed the trained one), or
    /// the Feedback Transformer's attention span (1 to its trained span; every layer attends to
    /// the last N memories).
    #[arg(long, value_name = "N")]
    pub(crate) mem_len: Option<usize>,
}

/// Reload the run and evaluate it exactly as the trainer does.
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let takes = [RunKind::LanguageModel, RunKind::Translation];
    if run_kind::expect(&args.run_dir, "eval", &takes)? == Some(RunKind::Translation) {
        return crate::eval_translation::run(args);
    }
    let device = args.backend.device()?;
    let mut run = load_run(&args.run_dir, &device)?;
    let options = EvalOptions {
        span: args.eval_span,
        mem_len: args.mem_len,
    };
    let metrics = run.evaluate_with(args.split.split(), &options)?;
    if args.json {
        let mut record = json!({
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
        if let Some((name, value)) = metrics.lm_figure() {
            record[name] = json!(value);
        }
        println!("{record}");
    } else {
        // "<model> (<kind>, step <n>) on <split>", then the figures.
        let what = format!(
            "{} ({}, step {}) on {}",
            run.model_name,
            run.model.kind(),
            run.trainer.step,
            args.split.name(),
        );
        if let Some((name, value)) = metrics.lm_figure() {
            println!(
                "{what}: {name} {value:.4}, loss {:.4} nats over {} scored positions",
                metrics.loss, metrics.scored,
            );
        } else {
            println!(
                "{what}: loss {:.4}, accuracy {:.2}% over {} scored positions ({} tokens)",
                metrics.loss,
                100.0 * metrics.accuracy,
                metrics.scored,
                metrics.tokens
            );
        }
    }
    Ok(())
}
