//! The results figure of a run (`mnemo report runs/<run>`): per model, its final validation and
//! test score as bars, and its training speed, read from each model's `summary.json`: the
//! numbers of the run's `results.md`, for a run of many models (the variant experiments) where a
//! picture reads faster than the table.
//!
//! The score is the one the run's task is judged by: BLEU (translation: `valid_bleu` /
//! `test_bleu`), bits per character (byte corpora), perplexity (word corpora), success rate
//! (reinforcement learning: `env_steps` in the summary), accuracy otherwise (code execution).
//! Lower is better for bpc and perplexity, higher for the others; the axis label says which.
use serde_json::Value;

use crate::chart::{Figure, Panel};

/// What the bars show, and how to read it off a summary's split.
struct Score {
    /// Axis label.
    label: &'static str,
    /// The value of `summary` on `split` (`valid` or `test`).
    read: fn(&Value, &str) -> Option<f64>,
}

fn field(summary: &Value, split: &str, name: &str) -> Option<f64> {
    summary.get(split)?.get(name)?.as_f64()
}

fn bleu(summary: &Value, split: &str) -> Option<f64> {
    summary
        .get(format!("{split}_bleu"))?
        .get("bleu")?
        .get("score")?
        .as_f64()
}

fn percent(summary: &Value, split: &str) -> Option<f64> {
    field(summary, split, "accuracy").map(|a| 100.0 * a)
}

/// The score of runs whose summaries are `summaries` (see the [module docs](self)).
fn score(summaries: &[(String, Value)]) -> Score {
    let any = |test: &dyn Fn(&Value) -> bool| summaries.iter().any(|(_, s)| test(s));
    if any(&|s| s.get("valid_bleu").is_some()) {
        Score {
            label: "BLEU (higher is better)",
            read: bleu,
        }
    } else if any(&|s| field(s, "valid", "bpc").is_some()) {
        Score {
            label: "bits per character (lower is better)",
            read: |s, split| field(s, split, "bpc"),
        }
    } else if any(&|s| field(s, "valid", "ppl").is_some()) {
        Score {
            label: "perplexity (lower is better)",
            read: |s, split| field(s, split, "ppl"),
        }
    } else if any(&|s| s.get("env_steps").is_some()) {
        Score {
            label: "success rate, % (higher is better)",
            read: percent,
        }
    } else {
        Score {
            label: "accuracy, % (higher is better)",
            read: percent,
        }
    }
}

/// The results figure of run `title` from its models' `(name, summary.json)`, in that order;
/// see the [module docs](self). A value a summary lacks has no bar. None without summaries.
pub fn results(title: &str, summaries: &[(String, Value)]) -> Option<Figure> {
    if summaries.is_empty() {
        return None;
    }
    let score = score(summaries);
    let names: Vec<String> = summaries.iter().map(|(name, _)| name.clone()).collect();
    let values = |read: &dyn Fn(&Value) -> Option<f64>| -> Vec<f64> {
        summaries
            .iter()
            .map(|(_, s)| read(s).unwrap_or(f64::NAN))
            .collect()
    };
    let splits = ["valid", "test"]
        .into_iter()
        .map(|split| (split.to_string(), values(&|s| (score.read)(s, split))))
        .collect();
    let rl = summaries.iter().any(|(_, s)| s.get("env_steps").is_some());
    let speed_label = if rl { "env steps/s" } else { "train tokens/s" };
    let speed = vec![(
        "training".to_string(),
        values(&|s| s.get("tokens_per_s")?.as_f64()),
    )];
    let panel = |title: String, y_label: &str, series| {
        Panel::bars(title, "model", y_label, names.clone(), series)
    };
    Some(Figure {
        panels: vec![
            panel(format!("{title}: results"), score.label, splits),
            panel(format!("{title}: training speed"), speed_label, speed),
        ],
        panel_size: ((160 + 100 * names.len() as u32).max(640), 440),
    })
}

#[cfg(test)]
mod tests {
    use crate::chart::PanelKind;
    use serde_json::json;

    use super::*;

    /// A panel's bars: its y label, the categories and the series.
    type Bars = (String, Vec<String>, Vec<(String, Vec<f64>)>);

    fn bars(figure: &Figure, panel: usize) -> Bars {
        let p = &figure.panels[panel];
        match &p.kind {
            PanelKind::Bars { categories, series } => {
                (p.y_label.clone(), categories.clone(), series.clone())
            }
            PanelKind::Lines(_) => panic!("bars expected"),
        }
    }

    fn lm(accuracy: [f64; 2], extra: Value) -> Value {
        let mut s = json!({
            "valid": {"loss": 2.0, "accuracy": accuracy[0]},
            "test": {"loss": 2.1, "accuracy": accuracy[1]},
            "tokens_per_s": 1000.0,
        });
        for (k, v) in extra.as_object().unwrap() {
            s["valid"][k] = v.clone();
            s["test"][k] = v.clone();
        }
        s
    }

    #[test]
    fn bars_are_the_summaries_scores() {
        let runs = vec![
            ("softmax".to_string(), lm([0.25, 0.2], json!({}))),
            ("feedback".to_string(), lm([0.5, 0.4], json!({}))),
        ];
        let figure = results("ce", &runs).unwrap();
        let (label, names, series) = bars(&figure, 0);
        assert!(label.starts_with("accuracy, %"), "{label}");
        assert_eq!(names, ["softmax", "feedback"]);
        assert_eq!(
            series,
            [
                ("valid".to_string(), vec![25.0, 50.0]),
                ("test".to_string(), vec![20.0, 40.0])
            ]
        );
        let (label, _, speed) = bars(&figure, 1);
        assert_eq!(
            (label.as_str(), speed[0].1.clone()),
            ("train tokens/s", vec![1000.0; 2])
        );

        // Byte corpora: bpc, not accuracy; a model without a test result has no test bar.
        let mut no_test = lm([0.1, 0.1], json!({"bpc": 3.5}));
        no_test["test"] = Value::Null;
        let runs = vec![
            ("a".to_string(), lm([0.1, 0.1], json!({"bpc": 3.25}))),
            ("b".to_string(), no_test),
        ];
        let (label, _, series) = bars(&results("ew", &runs).unwrap(), 0);
        assert!(label.starts_with("bits per character"), "{label}");
        assert_eq!(series[0].1, [3.25, 3.5]);
        assert_eq!(series[1].1[0], 3.25);
        assert!(series[1].1[1].is_nan());

        // Translation: BLEU from `<split>_bleu.bleu.score`.
        let mut mt = lm([0.1, 0.1], json!({"ppl": 300.0}));
        mt["valid_bleu"] = json!({"bleu": {"score": 0.96}});
        mt["test_bleu"] = json!({"bleu": {"score": 0.19}});
        let (label, _, series) = bars(&results("mt", &[("t6".to_string(), mt)]).unwrap(), 0);
        assert!(label.starts_with("BLEU"), "{label}");
        assert_eq!((series[0].1[0], series[1].1[0]), (0.96, 0.19));

        // Reinforcement learning: success rate, env steps/s.
        let mut rl = lm([1.0, 0.52], json!({}));
        rl["env_steps"] = json!(153600);
        let figure = results("rl", &[("tf".to_string(), rl)]).unwrap();
        let (label, _, series) = bars(&figure, 0);
        assert!(label.starts_with("success rate"), "{label}");
        assert_eq!(series[1].1, [52.0]);
        assert_eq!(bars(&figure, 1).0, "env steps/s");

        assert!(results("none", &[]).is_none());
    }
}
