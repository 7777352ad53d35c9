//! The figures of `mnemo report`, built from what runs and benchmarks wrote:
//!
//! - [`learning_curves`]: every model of a run on one figure, from each `metrics.jsonl`: the
//!   train and valid loss (nats) against the step, and beside it the valid figure of merit,
//!   bits per character (`bpc`), perplexity (`ppl`) or accuracy, whichever the log holds;
//! - [`memory_mix`] and [`attention_distance`]: the Feedback memory analysis
//!   ([`crate::memory`]): `softmax(w)` per source (grouped bars, one series per model) and the
//!   attention mass over memory distance (one line per layer and head);
//! - [`scaling`]: `mnemo bench --scaling` JSON (ms per training step and peak RSS against the
//!   sequence length T, log-log, one line per mechanism).
use std::path::Path;

use serde_json::Value;

use crate::chart::{Figure, Panel, PanelKind, Series};
use crate::error::AnalysisError;
use crate::memory::MemoryAnalysis;

/// One record of a `metrics.jsonl`: step, split and the numeric fields.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsRecord {
    /// Optimizer step.
    pub step: f64,
    /// `train`, `valid` or `test`.
    pub split: String,
    /// The record's object.
    pub fields: serde_json::Map<String, Value>,
}

/// The records of a `metrics.jsonl` (unreadable lines, e.g. a partial last line, skipped).
pub fn read_metrics(path: &Path) -> Result<Vec<MetricsRecord>, AnalysisError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| AnalysisError::io(path, "cannot read", e))?;
    Ok(text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|v| {
            let Value::Object(fields) = v else {
                return None;
            };
            Some(MetricsRecord {
                step: fields.get("step")?.as_f64()?,
                split: fields.get("split")?.as_str()?.to_string(),
                fields,
            })
        })
        .collect())
}

/// `(step, field)` of the records of `split` that hold a finite `field`.
fn curve(records: &[MetricsRecord], split: &str, field: &str) -> Vec<(f64, f64)> {
    records
        .iter()
        .filter(|r| r.split == split)
        .filter_map(|r| Some((r.step, r.fields.get(field)?.as_f64()?)))
        .filter(|p| p.1.is_finite())
        .collect()
}

/// The learning curves of the models `(name, records)` of run `title`; see the
/// [module docs](self). Series: `<model> train` and `<model> valid` (the latter in both panels).
pub fn learning_curves(title: &str, models: &[(String, Vec<MetricsRecord>)]) -> Figure {
    let has = |field: &str| {
        models.iter().any(|(_, r)| {
            r.iter()
                .any(|r| r.split == "valid" && r.fields.contains_key(field))
        })
    };
    let (field, label) = if has("bpc") {
        ("bpc", "valid bits per character")
    } else if has("ppl") {
        ("ppl", "valid perplexity")
    } else {
        ("accuracy", "valid accuracy")
    };
    let mut loss = Vec::new();
    let mut merit = Vec::new();
    for (name, records) in models {
        for split in ["train", "valid"] {
            let points = curve(records, split, "loss");
            if !points.is_empty() {
                loss.push(Series {
                    name: format!("{name} {split}"),
                    points,
                });
            }
        }
        let points = curve(records, "valid", field);
        if !points.is_empty() {
            merit.push(Series {
                name: format!("{name} valid"),
                points,
            });
        }
    }
    let panel = |title: String, y_label: &str, series| Panel {
        title,
        x_label: "step".into(),
        y_label: y_label.into(),
        log_x: false,
        log_y: false,
        kind: PanelKind::Lines(series),
    };
    Figure {
        panels: vec![
            panel(format!("{title}: loss"), "loss (nats)", loss),
            panel(format!("{title}: {label}"), label, merit),
        ],
        panel_size: (640, 440),
    }
}

/// `softmax(w)` of each Feedback model of `analyses`, grouped by source.
pub fn memory_mix(title: &str, analyses: &[MemoryAnalysis]) -> Figure {
    let categories = analyses
        .iter()
        .max_by_key(|a| a.sources.len())
        .map(|a| a.sources.clone())
        .unwrap_or_default();
    let series = analyses
        .iter()
        .map(|a| {
            let w = a.mix_weights.iter().map(|&v| f64::from(v)).collect();
            (format!("{} ({})", a.model, a.memory), w)
        })
        .collect();
    Figure {
        panels: vec![Panel::bars(
            format!("{title}: memory mixing weights softmax(w)"),
            "memory source",
            "weight",
            categories,
            series,
        )],
        panel_size: (640, 440),
    }
}

/// The attention mass over memory distance of one Feedback model: one line per layer and head.
pub fn attention_distance(title: &str, analysis: &MemoryAnalysis) -> Figure {
    let series = analysis
        .attention
        .iter()
        .flat_map(|layer| {
            layer.heads.iter().map(move |head| Series {
                name: format!("layer {} head {}", layer.layer + 1, head.head),
                points: head
                    .by_distance
                    .iter()
                    .enumerate()
                    .map(|(i, &p)| ((i + 1) as f64, f64::from(p)))
                    .collect(),
            })
        })
        .collect();
    Figure {
        panels: vec![Panel {
            title: format!(
                "{title}: attention over memory distance ({} queries)",
                analysis.queries
            ),
            x_label: "distance (steps back)".into(),
            y_label: "mean attention mass".into(),
            log_x: false,
            log_y: false,
            kind: PanelKind::Lines(series),
        }],
        panel_size: (760, 480),
    }
}

/// Whether `doc` is `mnemo bench --scaling` output.
pub fn is_scaling(doc: &Value) -> bool {
    doc.get("benchmark").and_then(Value::as_str) == Some("mnemo_attention_scaling")
}

/// The scaling figure of a `mnemo bench --scaling` document (skipped points left out, their
/// lengths named in the series name).
pub fn scaling(doc: &Value) -> Figure {
    let mut names: Vec<String> = Vec::new();
    let mut time: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut rss: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut skipped: Vec<Vec<u64>> = Vec::new();
    for p in doc
        .get("points")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(name), Some(t)) = (
            p.get("mechanism").and_then(Value::as_str),
            p.get("seq_len").and_then(Value::as_u64),
        ) else {
            continue;
        };
        let i = match names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                names.push(name.to_string());
                time.push(Vec::new());
                rss.push(Vec::new());
                skipped.push(Vec::new());
                names.len() - 1
            }
        };
        if p.get("skipped").is_some() {
            skipped[i].push(t);
            continue;
        }
        if let (Some(ms), Some(mb)) = (
            p.get("ms_per_step").and_then(Value::as_f64),
            p.get("peak_rss_mb").and_then(Value::as_f64),
        ) {
            time[i].push((t as f64, ms));
            rss[i].push((t as f64, mb));
        }
    }
    let label = |i: usize| match skipped[i].as_slice() {
        [] => names[i].clone(),
        ts => format!(
            "{} (skipped T = {})",
            names[i],
            ts.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
        ),
    };
    let panel = |title: &str, y_label: &str, columns: &[Vec<(f64, f64)>]| Panel {
        title: title.into(),
        x_label: "sequence length T".into(),
        y_label: y_label.into(),
        log_x: true,
        log_y: true,
        kind: PanelKind::Lines(
            (0..names.len())
                .map(|i| Series {
                    name: label(i),
                    points: columns[i].clone(),
                })
                .collect(),
        ),
    };
    Figure {
        panels: vec![
            panel("time per training step", "ms per step", &time),
            panel("peak memory", "peak RSS (MB)", &rss),
        ],
        panel_size: (600, 440),
    }
}
