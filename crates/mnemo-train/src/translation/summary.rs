//! The result of a translation run (`summary.json`) and the table of an experiment.
use std::fmt::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;
use crate::translation::evaluate::BleuReport;

/// What a finished (or stopped) translation run reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MtSummary {
    /// Name of the model in the config.
    pub model: String,
    /// Decoder kind (`transformer` or `feedback`).
    pub decoder: String,
    /// Encoder layers.
    pub encoder_layers: usize,
    /// Decoder layers.
    pub decoder_layers: usize,
    /// Trainable parameters.
    pub params: usize,
    /// Optimizer steps taken.
    pub steps: u64,
    /// Whether all `run.steps` were taken.
    pub finished: bool,
    /// Seconds spent training.
    pub train_time_s: f64,
    /// Target tokens trained on per second.
    pub train_tokens_per_s: f64,
    /// Teacher-forced validation loss, accuracy and perplexity at the end.
    pub valid: Metrics,
    /// Teacher-forced test loss, accuracy and perplexity at the end.
    pub test: Metrics,
    /// The best validation result (lowest loss) and its step.
    pub best_valid: Option<(u64, Metrics)>,
    /// BLEU of the decoded validation split.
    pub valid_bleu: BleuReport,
    /// BLEU of the decoded test split.
    pub test_bleu: BleuReport,
    /// The run directory.
    pub run_dir: PathBuf,
}

/// A Markdown table of translation runs: decoder, layers, parameters, BLEU, perplexity,
/// training and decoding speed.
pub fn mt_results_table(summaries: &[MtSummary]) -> String {
    let mut out = String::from(
        "| model | decoder | enc/dec layers | params | steps | valid BLEU | test BLEU | test ppl | \
         train tok/s | decode tok/s (beam) |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for s in summaries {
        let _ = writeln!(
            out,
            "| {} | {} | {}/{} | {} | {}{} | {:.2} | {:.2} | {:.1} | {:.0} | {:.0} ({}) |",
            s.model,
            s.decoder,
            s.encoder_layers,
            s.decoder_layers,
            s.params,
            s.steps,
            if s.finished { "" } else { " (stopped)" },
            s.valid_bleu.bleu.score,
            s.test_bleu.bleu.score,
            s.test.ppl.unwrap_or(f64::NAN),
            s.train_tokens_per_s,
            s.test_bleu.tokens_per_s,
            s.test_bleu.beam_size,
        );
    }
    out
}
