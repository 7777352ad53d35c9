//! One row per (model, backend): speed, and distance from the reference backend.
use serde::Serialize;

use crate::diff::Diff;
use crate::run::{BackendRun, Speed};
use crate::tolerance::Tolerance;

/// How one backend's compared step differs from the reference backend's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Agreement {
    /// On the logits.
    pub logits: Diff,
    /// On the loss.
    pub loss: Diff,
    /// On the parameter gradients.
    pub grads: Diff,
    /// On the parameters after one optimizer step (informative: AdamW's first step moves
    /// each weight by about `lr · sign(grad)`, so a gradient element that is ~0 on both sides
    /// may move either way).
    pub updated: Diff,
}

impl Agreement {
    /// The distance of `run` from `reference`.
    pub fn between(run: &BackendRun, reference: &BackendRun) -> Self {
        let (v, r) = (&run.values, &reference.values);
        Self {
            logits: Diff::between(&v.logits, &r.logits),
            loss: Diff::scalar(v.loss, r.loss),
            grads: Diff::between(&v.grads, &r.grads),
            updated: Diff::between(&v.updated, &r.updated),
        }
    }

    /// The names of the quantities whose relative error exceeds `tolerance` (empty: agrees).
    pub fn violations(&self, tolerance: &Tolerance) -> Vec<&'static str> {
        [
            ("logits", self.logits.within(tolerance.logits)),
            ("loss", self.loss.within(tolerance.loss)),
            ("gradients", self.grads.within(tolerance.grads)),
        ]
        .into_iter()
        .filter(|(_, ok)| !ok)
        .map(|(name, _)| name)
        .collect()
    }
}

/// One row of the comparison table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Model name in the experiment config.
    pub model: String,
    /// Backend name.
    pub backend: String,
    /// What the backend ran on; for a failed backend, why it failed.
    pub device: String,
    /// Median training-step time and generation speed (fields `step_ms` and
    /// `gen_tokens_per_s` of the row in JSON).
    #[serde(flatten)]
    pub speed: Speed,
    /// Distance from the reference (`None` when the backend failed).
    pub agreement: Option<Agreement>,
    /// Whether it agrees within the tolerance (false when it failed).
    pub within_tolerance: bool,
}

impl Row {
    /// The row of `run`, measured against `reference`.
    pub fn new(
        model: &str,
        run: &BackendRun,
        reference: &BackendRun,
        tolerance: &Tolerance,
    ) -> Self {
        let agreement = Agreement::between(run, reference);
        Self {
            model: model.to_string(),
            backend: run.backend.clone(),
            device: run.device.clone(),
            speed: run.speed,
            within_tolerance: agreement.violations(tolerance).is_empty(),
            agreement: Some(agreement),
        }
    }

    /// The row of a backend that could not run.
    pub fn failed(model: &str, backend: &str, reason: &str) -> Self {
        Self {
            model: model.to_string(),
            backend: backend.to_string(),
            device: format!("FAILED: {reason}"),
            speed: Speed::default(),
            agreement: None,
            within_tolerance: false,
        }
    }
}

/// A distance in short scientific notation; exactly zero as `0`.
fn sci(value: f64) -> String {
    match value == 0.0 {
        true => "0".into(),
        false => format!("{value:.1e}"),
    }
}

/// The whole comparison, as `mnemo compare-backends --json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The reference backend.
    pub reference: String,
    /// The accepted relative errors.
    pub tolerance: Tolerance,
    /// Warm-up and timed steps, generated tokens.
    pub timing: crate::run::Timing,
    /// One row per model and backend, the reference's included (at zero distance).
    pub rows: Vec<Row>,
}

impl Report {
    /// Whether every backend ran and agreed within tolerance.
    pub fn all_agree(&self) -> bool {
        self.rows.iter().all(|r| r.within_tolerance)
    }

    /// A Markdown table of the rows.
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| model | backend | device | step ms | gen tok/s | logits max Δ | logits rel | loss Δ | loss rel | grads max Δ | grads rel | agrees |\n\
             |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
        );
        for row in &self.rows {
            let opt = |v: Option<f64>, digits: usize| match v {
                Some(v) => format!("{v:.digits$}"),
                None => "-".into(),
            };
            let diffs = match &row.agreement {
                Some(a) => [a.logits, a.loss, a.grads]
                    .iter()
                    .map(|d| format!("{} | {}", sci(d.max_abs), sci(d.rel)))
                    .collect::<Vec<_>>()
                    .join(" | "),
                None => ["- | -"; 3].join(" | "),
            };
            let verdict = match (row.within_tolerance, &row.agreement) {
                (true, _) => "yes",
                (false, Some(_)) => "NO",
                (false, None) => "failed",
            };
            let backend = match row.backend == self.reference {
                true => format!("{} (reference)", row.backend),
                false => row.backend.clone(),
            };
            out.push_str(&format!(
                "| {} | {backend} | {} | {} | {} | {diffs} | {verdict} |\n",
                row.model,
                row.device.replace('|', "/"),
                opt(row.speed.step_ms, 1),
                opt(row.speed.gen_tokens_per_s, 0),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_print_short() {
        assert_eq!(sci(0.0), "0");
        assert_eq!(sci(6.2e-5), "6.2e-5");
        assert_eq!(sci(f64::NAN), "NaN");
    }

    #[test]
    fn speed_fields_stand_at_the_top_of_a_json_row() {
        let row = Row {
            speed: Speed {
                step_ms: Some(1.5),
                gen_tokens_per_s: None,
            },
            ..Row::failed("feedback", "wgpu", "no adapter")
        };
        let json = serde_json::to_value(&row).unwrap();
        assert_eq!(json["step_ms"], 1.5);
        assert!(json["gen_tokens_per_s"].is_null());
        assert!(json.get("speed").is_none(), "{json}");
        assert_eq!(json["device"], "FAILED: no adapter");
    }
}
