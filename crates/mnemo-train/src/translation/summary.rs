//! The result of a translation run (`summary.json`) and the table of an experiment.
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::summary::RunSummary;
use crate::translation::evaluate::BleuReport;
use crate::translation::task::decoder_name;
use mnemo_models::Seq2SeqConfig;

/// What a finished (or stopped) translation run reports: every run's figures (`kind` is
/// `seq2seq`, `tokens_per_s` counts target tokens, the metrics are teacher-forced, the best
/// validation result is the lowest loss) and the translation's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MtSummary {
    /// What every run reports, its fields at the top level of `summary.json`.
    #[serde(flatten)]
    pub run: RunSummary,
    /// Decoder kind (`transformer`, `feedback` or `can`).
    pub decoder: String,
    /// Encoder layers.
    pub encoder_layers: usize,
    /// Decoder layers.
    pub decoder_layers: usize,
    /// BLEU of the decoded validation split.
    pub valid_bleu: BleuReport,
    /// BLEU of the decoded test split.
    pub test_bleu: BleuReport,
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
            run,
            decoder: decoder_name(model.decoder.kind()).to_string(),
            encoder_layers: model.encoder_layers,
            decoder_layers: model.decoder_layers,
            valid_bleu,
            test_bleu,
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
            s.run.model,
            s.decoder,
            s.encoder_layers,
            s.decoder_layers,
            s.run.params,
            s.run.steps,
            if s.run.finished { "" } else { " (stopped)" },
            s.valid_bleu.bleu.score,
            s.test_bleu.bleu.score,
            s.run.test.ppl.unwrap_or(f64::NAN),
            s.run.tokens_per_s,
            s.test_bleu.tokens_per_s,
            s.test_bleu.beam_size,
        );
    }
    out
}
