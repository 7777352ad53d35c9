//! `mnemo translate`: translate a split of a trained translation run (or a file of source
//! sentences) with beam search; report BLEU and decoding speed.
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use crate::backend_arg::BackendArg;
use crate::run_kind;
use mnemo_data::Split;
use mnemo_train::translation::evaluate::search_config;
use mnemo_train::translation::{evaluate_bleu, translate};
use serde_json::json;

/// A split to translate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MtSplitArg {
    /// The validation split.
    Valid,
    /// The test split.
    Test,
}

/// Arguments of `mnemo translate`.
#[derive(Debug, Args)]
pub struct TranslateArgs {
    /// Translation run directory, e.g. runs/mt-mini/feedback-2.
    run_dir: PathBuf,
    /// Split to translate and score with BLEU (ignored with --input).
    #[arg(long, value_enum, default_value = "test")]
    split: MtSplitArg,
    /// Translate the lines of this file instead (no BLEU; translations go to stdout or --out).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Beam size (default: the run's decode.beam_size; 1 = greedy).
    #[arg(long, value_name = "K")]
    beam: Option<usize>,
    /// Length penalty alpha (default: the run's decode.length_penalty).
    #[arg(long, value_name = "ALPHA")]
    length_penalty: Option<f64>,
    /// Translate only the first N sentences of the split (0 = all; default: decode.max_pairs).
    #[arg(long, value_name = "N")]
    max_pairs: Option<usize>,
    /// Write the translations to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    backend: BackendArg,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Reload the run, translate, and print BLEU (sacrebleu's string) and speed.
pub fn run(args: &TranslateArgs) -> anyhow::Result<()> {
    let loaded = run_kind::load_translation(&args.run_dir, "translate", &args.backend)?;
    let mut decode = loaded.config.decode.clone();
    if let Some(beam) = args.beam {
        if beam == 0 {
            bail!("--beam: must be at least 1");
        }
        decode.beam_size = beam;
    }
    if let Some(alpha) = args.length_penalty {
        if !(alpha.is_finite() && alpha >= 0.0) {
            bail!("--length-penalty: must be a number >= 0, got {alpha}");
        }
        decode.length_penalty = alpha;
    }
    if let Some(n) = args.max_pairs {
        decode.max_pairs = n;
    }
    let max_tokens = loaded.config.train.eval_max_tokens();
    let name = loaded.trainer.model_name.clone();
    if let Some(input) = &args.input {
        let text = std::fs::read_to_string(input)
            .with_context(|| format!("--input {}", input.display()))?;
        let sources: Vec<Vec<u32>> = text
            .lines()
            .map(|l| loaded.tokenizer.encode(l.trim()))
            .collect();
        let search = search_config(&decode, decode.beam_size);
        let (hyps, generated, seconds) = translate(
            &loaded.model,
            &loaded.tokenizer,
            &sources,
            &search,
            max_tokens,
            &loaded.device,
        );
        write_hyps(args, &hyps)?;
        eprintln!(
            "{name}: {} sentences, {generated} tokens in {seconds:.2} s ({:.0} tokens/s, beam {})",
            hyps.len(),
            generated as f64 / seconds.max(1e-9),
            decode.beam_size
        );
        return Ok(());
    }
    let (split, split_name) = match args.split {
        MtSplitArg::Valid => (Split::Valid, "valid"),
        MtSplitArg::Test => (Split::Test, "test"),
    };
    let (report, hyps) = evaluate_bleu(
        &loaded.model,
        &loaded.tokenizer,
        loaded.split(split),
        &decode,
        decode.beam_size,
        max_tokens,
        &loaded.device,
    );
    if args.out.is_some() {
        write_hyps(args, &hyps)?;
    }
    if args.json {
        println!(
            "{}",
            json!({
                "run_dir": args.run_dir, "model": name, "step": loaded.trainer.step,
                "split": split_name, "bleu": report.bleu.score,
                "bleu_string": report.bleu.to_string(), "beam_size": report.beam_size,
                "length_penalty": decode.length_penalty, "sentences": report.sentences,
                "generated_tokens": report.generated_tokens, "decode_s": report.decode_s,
                "tokens_per_s": report.tokens_per_s, "sentences_per_s": report.sentences_per_s,
            })
        );
    } else {
        println!(
            "{name} (step {}) on {split_name}, {} sentences, beam {}: {}\n\
             decoding: {} tokens in {:.2} s = {:.0} tokens/s, {:.1} sentences/s",
            loaded.trainer.step,
            report.sentences,
            report.beam_size,
            report.bleu,
            report.generated_tokens,
            report.decode_s,
            report.tokens_per_s,
            report.sentences_per_s
        );
    }
    Ok(())
}

fn write_hyps(args: &TranslateArgs, hyps: &[String]) -> anyhow::Result<()> {
    let mut text = hyps.join("\n");
    text.push('\n');
    match &args.out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("--out {}", path.display()))
        }
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .context("cannot write to stdout"),
    }
}
