//! `mnemo`: train, evaluate and sample from memory Transformers.
//!
//! ```text
//! mnemo train experiments/smoke/tiny.toml [--backend cpu] [--out runs] [--resume]
//!     [--allow-data-change] [--model NAME] [--quiet]
//! mnemo eval runs/smoke-tiny/feedback [--split valid|test] [--backend cpu] [--json]
//!     [--eval-span N] [--mem-len N]
//! mnemo finetune runs/smoke-tiny/feedback NEW_CONFIG.toml [--model NAME] [--out runs] [--resume]
//! mnemo generate runs/smoke-tiny/feedback --prompt "x = 4 ; print x ;" | --prompt-file F [--max-new-tokens N]
//!     [--temperature T] [--seed S] [--backend cpu]
//! mnemo translate runs/mt-mini/feedback-2 [--split valid|test] [--beam K] [--length-penalty A]
//!     [--max-pairs N] [--input FILE] [--out FILE] [--json]
//! mnemo export runs/smoke-tiny/feedback --format safetensors [--out FILE]
//! mnemo import safetensors FILE --config CONFIG.toml [--model NAME] --out RUN
//! mnemo data prepare wikitext --xml data/enwik8-mini/enwik8 --out data/wikitext-mini
//! mnemo bleu REF [HYP] [--json]
//! mnemo runs [DIR]
//! mnemo data generate code-execution [--variables 3] [--statements N] [--programs-train N]
//!     [--seed S] [--style official|front_loaded] --out DIR
//! mnemo compare-backends [CONFIG] [--backends cpu,wgpu,tch] [--model NAME] [--steps N] [--json]
//! mnemo bench [--backend cpu] [--only fb_train_chunk1,...|variants] [--quick] [--wait-idle S] [--out F]
//! mnemo bench --scaling [--only scale_softmax_1024,...] [--max-mb MB] [--out F]
//! mnemo analyze ffn runs/quickstart/feedback [--split valid] [--top-k K] [--max-tokens N] [--out DIR]
//! mnemo analyze memory runs/quickstart/feedback [--split valid] [--max-tokens N] [--out DIR]
//! mnemo report runs/quickstart [docs/bench/scaling.json ...] [OUT_DIR/summary.json] [--out DIR]
//! ```
//!
//! Every error is one line on stderr naming the file, field or flag at fault, and exits with
//! code 2.
#![warn(missing_docs)]

mod analyze_cmd;
mod backend_arg;
mod bench;
mod bleu_cmd;
mod compare_cmd;
mod data_cmd;
mod eval_cmd;
mod eval_translation;
mod export_cmd;
mod finetune_cmd;
mod generate_cmd;
mod import_cmd;
mod report_cmd;
mod rollout_cmd;
mod run_kind;
mod runs_cmd;
mod train_cmd;
mod train_place;
mod translate_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Command line of `mnemo`.
#[derive(Debug, Parser)]
#[command(
    name = "mnemo",
    version,
    about = "Memory Transformers on burn: train, eval, generate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Train every model of an experiment config (or one, with --model) and tabulate results.
    Train(train_cmd::TrainArgs),
    /// Translate a split (BLEU, decoding speed) or a file with a trained translation run.
    Translate(translate_cmd::TranslateArgs),
    /// Evaluate a trained run on a split.
    Eval(eval_cmd::EvalArgs),
    /// Train a config's model starting from a trained run's weights (fine-tuning).
    Finetune(finetune_cmd::FinetuneArgs),
    /// Read a prompt step by step, show the model's output per token, then continue it.
    Generate(generate_cmd::GenerateArgs),
    /// Run a trained RL policy for N test episodes (success, return, goals; --render draws one).
    Rollout(rollout_cmd::RolloutArgs),
    /// Write a run's weights as safetensors with PyTorch names and layouts.
    Export(export_cmd::ExportArgs),
    /// Make a run directory from weights in a file (safetensors).
    Import(import_cmd::ImportArgs),
    /// Prepare datasets (e.g. WikiText-format files from a MediaWiki XML export).
    Data(data_cmd::DataArgs),
    /// Run one training step from the same weights on every compiled backend and compare.
    CompareBackends(compare_cmd::CompareArgs),
    /// Time the Feedback and Transformer models on the peer benchmark's config (JSON out).
    Bench(bench::BenchArgs),
    /// Corpus BLEU of a hypothesis file (or stdin) against a reference file, as sacrebleu.
    Bleu(bleu_cmd::BleuArgs),
    /// List run directories (default runs/) with one summary line each.
    Runs(runs_cmd::RunsArgs),
    /// What a trained model holds: feed-forward keys and values, Feedback memory use.
    Analyze(analyze_cmd::AnalyzeArgs),
    /// Figures (SVG, PNG): learning curves, Feedback memory, attention scaling, bench vs peer.
    Report(report_cmd::ReportArgs),
}

/// mimalloc (built without transparent huge pages: clearing 2 MB pages on first touch cost
/// training more than they saved) keeps freed blocks for reuse; with glibc's allocator the
/// many small per-step buffers of decoding cost 10-15 % of its speed (docs/performance.md).
/// `main` also keeps freed memory from going back to the OS (`MIMALLOC_PURGE_DELAY` overrides).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    mnemo_kernels::allocator::keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => train_cmd::run(&args),
        Command::Translate(args) => translate_cmd::run(&args),
        Command::Eval(args) => eval_cmd::run(&args),
        Command::Finetune(args) => finetune_cmd::run(&args),
        Command::Generate(args) => generate_cmd::run(&args),
        Command::Rollout(args) => rollout_cmd::run(&args),
        Command::Export(args) => export_cmd::run(&args),
        Command::Import(args) => import_cmd::run(&args),
        Command::Data(args) => data_cmd::run(&args),
        Command::CompareBackends(args) => compare_cmd::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Bleu(args) => bleu_cmd::run(&args),
        Command::Runs(args) => runs_cmd::run(&args),
        Command::Analyze(args) => analyze_cmd::run(&args),
        Command::Report(args) => report_cmd::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::from(2)
        }
    }
}

/// `error` and its causes joined on one line, each said once: a cause whose text the message
/// already holds (an error type that prints its own source) is not repeated, so a message
/// never reads `X: X`.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::one_line;
    use anyhow::Context;

    #[test]
    fn each_cause_is_said_once() {
        // An error whose message already holds its source, as `TrainError::Io` does.
        let io = std::io::Error::other("No space left on device");
        let err = mnemo_train::TrainError::io("runs/x/checkpoint.mnemo", "cannot write", io);
        let line = one_line(&anyhow::Error::new(err));
        assert_eq!(
            line,
            "runs/x/checkpoint.mnemo: cannot write: No space left on device"
        );
        // Context that does not repeat its cause keeps it.
        let err = Err::<(), _>(std::io::Error::other("unknown backend `tpu`"))
            .context("--backend tpu")
            .unwrap_err();
        assert_eq!(one_line(&err), "--backend tpu: unknown backend `tpu`");
    }
}
