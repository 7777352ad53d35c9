//! The result of a run (`summary.json`) and the table comparing the runs of an experiment.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;

/// What a finished (or stopped) run reports, whatever its task; written to `summary.json` of
/// language-model runs, and part of every task's summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Name of the model in the experiment config.
    pub model: String,
    /// Architecture (`transformer`, `feedback`, ...; `seq2seq` for translation).
    pub kind: String,
    /// Number of parameters.
    pub params: usize,
    /// Optimizer steps taken.
    pub steps: u64,
    /// Whether all `run.steps` were taken (false when stopped early on request).
    pub finished: bool,
    /// Seconds spent in training steps (all sessions; evaluation excluded).
    #[serde(with = "crate::float_repr::exact")]
    pub train_time_s: f64,
    /// Counted training positions per second over `train_time_s` (target tokens for
    /// translation).
    #[serde(with = "crate::float_repr::exact")]
    pub tokens_per_s: f64,
    /// Metrics on the whole validation split at the end.
    pub valid: Metrics,
    /// Metrics on the whole test split at the end.
    pub test: Metrics,
    /// The best validation result seen during training and its step.
    pub best_valid: Option<(u64, Metrics)>,
    /// The run directory.
    pub run_dir: PathBuf,
    /// Language models with adaptive spans: each head's learnt span `z_h·S` at the end, per
    /// layer bottom first (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learnt_spans: Option<Vec<Vec<f32>>>,
}

/// A Markdown table of runs: model, kind, params, steps, train time, valid accuracy, test
/// accuracy, test loss, and test bpc or perplexity (`-` for tasks that are not language
/// modelling).
pub fn results_table(summaries: &[RunSummary]) -> String {
    let mut rows = vec![[
        "model".to_string(),
        "kind".into(),
        "params".into(),
        "steps".into(),
        "train time".into(),
        "valid acc".into(),
        "test acc".into(),
        "test loss".into(),
        "test bpc/ppl".into(),
    ]];
    for s in summaries {
        rows.push([
            s.model.clone(),
            s.kind.clone(),
            s.params.to_string(),
            s.steps.to_string(),
            format!("{:.1} s", s.train_time_s),
            format!("{:.2}%", 100.0 * s.valid.accuracy),
            format!("{:.2}%", 100.0 * s.test.accuracy),
            format!("{:.4}", s.test.loss),
            match s.test.lm_figure() {
                Some((name, value)) => format!("{name} {value:.4}"),
                None => "-".into(),
            },
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let line = |cells: &[String]| {
        let cells: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| format!("{cell:<w$}"))
            .collect();
        format!("| {} |\n", cells.join(" | "))
    };
    let mut out = line(&rows[0]);
    let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    out.push_str(&line(&rule));
    for row in &rows[1..] {
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_a_row_per_run_with_aligned_columns() {
        let m = Metrics {
            loss: 0.5,
            accuracy: 0.875,
            scored: 8,
            tokens: 64,
            bpc: None,
            ppl: None,
        };
        let s = RunSummary {
            model: "feedback".into(),
            kind: "feedback".into(),
            params: 1234,
            steps: 20,
            finished: true,
            train_time_s: 3.25,
            tokens_per_s: 100.0,
            valid: m,
            test: Metrics { accuracy: 0.5, ..m },
            best_valid: None,
            run_dir: "runs/x/feedback".into(),
            learnt_spans: None,
        };
        let table = results_table(&[
            s.clone(),
            RunSummary {
                model: "t".into(),
                ..s
            },
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(
            lines[2].contains("| 87.50%") && lines[2].contains("| 50.00%"),
            "{table}"
        );
        assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{table}");
    }
}
