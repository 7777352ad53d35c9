//! `mnemo bleu REF [HYP] [--json]`: corpus BLEU (Papineni et al. 2002, "BLEU: a Method for
//! Automatic Evaluation of Machine Translation") of a hypothesis file against a reference file,
//! exactly as sacrebleu 2.x's default `BLEU()` (13a tokenizer, exp smoothing; see
//! `mnemo_train::bleu`), like `sacrebleu REF < HYP`.
//!
//! ```text
//! BLEU = 100 · BP · exp(Σ_{n=1..4} ¼ · ln p_n),   BP = min(1, exp(1 − ref_len / hyp_len))
//! ```
//!
//! with `p_n` the clipped n-gram precisions summed over the corpus. One segment per line (line
//! `i` of HYP against line `i` of REF); HYP is read from stdin when absent. Prints sacrebleu's
//! score line, `BLEU = 27.31 60.1/33.0/20.5/13.0 (BP = 1.000 ratio = 1.012 hyp_len = 123
//! ref_len = 121)`, or with `--json` the score and its parts.
use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use mnemo_train::bleu::{Bleu, corpus_bleu};

/// sacrebleu's signature of the settings [`corpus_bleu`] reproduces.
const SIGNATURE: &str = "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp";

/// Arguments of `mnemo bleu`.
#[derive(Debug, Args)]
pub struct BleuArgs {
    /// Reference file, one segment per line.
    reference: PathBuf,
    /// Hypothesis file, one segment per line, in the order of REF (default: stdin).
    hypothesis: Option<PathBuf>,
    /// Print JSON (score, counts, totals, precisions, bp, lengths, signature) instead.
    #[arg(long)]
    json: bool,
}

/// The lines of `text`, as sacrebleu reads a file (universal newlines, line ends removed).
fn segments(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

fn read(path: &PathBuf, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{what} {}", path.display()))
}

/// The JSON `mnemo bleu --json` prints: sacrebleu's `name`, `score`, `signature` and
/// `verbose_score`, and every part of the score.
fn bleu_json(bleu: &Bleu) -> serde_json::Value {
    let text = bleu.to_string();
    let verbose = text.splitn(4, ' ').nth(3).unwrap_or_default();
    serde_json::json!({
        "name": "BLEU",
        "score": bleu.score,
        "signature": SIGNATURE,
        "verbose_score": verbose,
        "counts": bleu.counts,
        "totals": bleu.totals,
        "precisions": bleu.precisions,
        "bp": bleu.bp,
        "ratio": bleu.ratio(),
        "sys_len": bleu.sys_len,
        "ref_len": bleu.ref_len,
    })
}

/// Run `mnemo bleu`.
pub fn run(args: &BleuArgs) -> anyhow::Result<()> {
    let references = segments(&read(&args.reference, "REF")?);
    let (hypotheses, hyp_name) = match &args.hypothesis {
        Some(path) => (segments(&read(path, "HYP")?), path.display().to_string()),
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("HYP (stdin)")?;
            (segments(&text), "stdin".to_owned())
        }
    };
    if hypotheses.len() != references.len() {
        anyhow::bail!(
            "HYP {hyp_name} has {} lines but REF {} has {}: each line of HYP is scored against \
             the same line of REF",
            hypotheses.len(),
            args.reference.display(),
            references.len()
        );
    }
    let bleu = corpus_bleu(&hypotheses, &references)
        .with_context(|| format!("REF {}", args.reference.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&bleu_json(&bleu))?);
    } else {
        println!("{bleu}");
    }
    Ok(())
}
