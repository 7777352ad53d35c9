//! The result of a translation run (`summary.json`) and the table of an experiment.
use std::fmt::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;
use crate::summary::RunSummary;
use crate::translation::evaluate::BleuReport;
use crate::translation::task::decoder_name;
use mnemo_models::Seq2SeqConfig;

/// What a finished (or stopped) translation run reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MtSummary {
    /// Name of the model in the config.
    pub model: String,
    /// Decoder kind (`transformer`, `feedback` or `can`).
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
    #[serde(with = "crate::float_repr::exact")]
    pub train_time_s: f64,
    /// Target tokens trained on per second.
    #[serde(with = "crate::float_repr::exact")]
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

impl MtSummary {
    /// The summary of a run of `model` that ended as `run` says and decoded with BLEU
    /// `valid_bleu` and `test_bleu`.
    pub fn new(
        run: RunSummary,
        model: &Seq2SeqConfig,
        valid_bleu: BleuReport,
        test_bleu: BleuReport,
    ) -> Self {
        Self {
            model: run.model,
            decoder: decoder_name(model.decoder.kind()).to_string(),
            encoder_layers: model.encoder_layers,
            decoder_layers: model.decoder_layers,
            params: run.params,
            steps: run.steps,
            finished: run.finished,
            train_time_s: run.train_time_s,
            train_tokens_per_s: run.tokens_per_s,
            valid: run.valid,
            test: run.test,
            best_valid: run.best_valid,
            valid_bleu,
            test_bleu,
            run_dir: run.run_dir,
        }
    }
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
