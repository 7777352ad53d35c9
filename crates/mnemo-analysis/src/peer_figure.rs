//! The figure of a `scripts/bench-vs-peer.sh` run (its `summary.json`): per phase, tokens/s as
//! a multiple of the PyTorch peer's (lucidrains' `feedback-transformer-pytorch` in the Feedback
//! phases, torch's `nn.TransformerEncoder` in `tf_train`; so the peer is 1), for
//! mnemo, the baseline build (`MNEMO_BASELINE`) and the paper's own code (`OFFICIAL_TREE`, timed
//! on `fb_train_chunk1` only) where the run has them; beside it each side's peak memory.
//!
//! `tf_gen_b1` / `tf_gen_b8` are left out: mnemo's Transformer decodes with a KV cache, the
//! peer's re-runs its context, so their ratio is not like for like (the script says so too);
//! `ref` (the GEMM reference) has no tokens/s.
use serde_json::Value;

use crate::chart::{Figure, Panel};

/// The phases drawn, in this order when present (other phases, e.g. `var_*`, follow sorted).
const ORDER: [&str; 5] = [
    "fb_train_chunk1",
    "fb_forward_chunk1",
    "fb_gen_b1",
    "fb_gen_b8",
    "tf_train",
];

/// Phases never drawn (see the [module docs](self)).
const LEFT_OUT: [&str; 3] = ["ref", "tf_gen_b1", "tf_gen_b8"];

const PEER: &str = "PyTorch peer";
const MNEMO: &str = "mnemo";
const BASELINE: &str = "mnemo baseline";
const OFFICIAL: &str = "the paper's code";

/// Whether `doc` is a `scripts/bench-vs-peer.sh` summary (marked `"benchmark":
/// "mnemo_vs_peer"`, or, written before the mark, results under `peer` and `mnemo`).
pub fn is_vs_peer(doc: &Value) -> bool {
    doc.get("benchmark").and_then(Value::as_str) == Some("mnemo_vs_peer")
        || (doc.get("peer").is_some_and(Value::is_object)
            && doc.get("mnemo").is_some_and(Value::is_object))
}

/// `doc[who][phase][field]` as a number.
fn number(doc: &Value, who: &str, phase: &str, field: &str) -> Option<f64> {
    doc.get(who)?.get(phase)?.get(field)?.as_f64()
}

/// The phases both sides timed, in [`ORDER`], then the others sorted.
fn phases(doc: &Value) -> Vec<String> {
    let timed = |p: &str| {
        number(doc, "peer", p, "tokens_per_s").is_some()
            && number(doc, "mnemo", p, "tokens_per_s").is_some()
    };
    let mut others: Vec<String> = doc
        .get("mnemo")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.keys())
        .filter(|p| !ORDER.contains(&p.as_str()) && !LEFT_OUT.contains(&p.as_str()))
        .cloned()
        .collect();
    others.sort();
    ORDER
        .iter()
        .map(|p| p.to_string())
        .chain(others)
        .filter(|p| timed(p))
        .collect()
}

/// The figure of a bench-vs-peer summary (see the [module docs](self)); a series a run lacks
/// (no baseline, no official code) is not drawn, and a phase a series lacks has no bar. None
/// when no phase has the tokens/s of both the peer and mnemo (nothing to draw).
pub fn vs_peer(doc: &Value) -> Option<Figure> {
    let phases = phases(doc);
    if phases.is_empty() {
        return None;
    }
    let peer_tps = |p: &str| number(doc, "peer", p, "tokens_per_s").unwrap_or(f64::NAN);
    let ratio = |who: &str| -> Vec<f64> {
        phases
            .iter()
            .map(|p| number(doc, who, p, "tokens_per_s").unwrap_or(f64::NAN) / peer_tps(p))
            .collect()
    };
    let mut speed = vec![
        (PEER.to_string(), vec![1.0; phases.len()]),
        (MNEMO.to_string(), ratio("mnemo")),
    ];
    if doc.get("baseline").is_some_and(Value::is_object) {
        speed.push((BASELINE.to_string(), ratio("baseline")));
    }
    if doc.get("official").is_some_and(Value::is_object) {
        let official = phases
            .iter()
            .map(|p| number(doc, "official", p, "fb_train_tok_s").unwrap_or(f64::NAN) / peer_tps(p))
            .collect();
        speed.push((OFFICIAL.to_string(), official));
    }
    let rss = |who: &str| -> Vec<f64> {
        phases
            .iter()
            .map(|p| number(doc, who, p, "peak_rss_mb").unwrap_or(f64::NAN))
            .collect()
    };
    let panel = |title: &str, y_label: &str, series| {
        Panel::bars(title, "phase", y_label, phases.clone(), series)
    };
    let memory = vec![
        (PEER.to_string(), rss("peer")),
        (MNEMO.to_string(), rss("mnemo")),
    ];
    Some(Figure {
        panels: vec![
            panel(
                "speed against the PyTorch peer",
                "tokens/s ÷ the peer's",
                speed,
            ),
            panel("peak memory", "peak RSS (MB)", memory),
        ],
        panel_size: (640, 440),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::PanelKind;

    fn bars(figure: &Figure, panel: usize) -> (Vec<String>, Vec<(String, Vec<f64>)>) {
        match &figure.panels[panel].kind {
            PanelKind::Bars { categories, series } => (categories.clone(), series.clone()),
            PanelKind::Lines(_) => panic!("bars expected"),
        }
    }

    /// The committed run of 2026-12-05 (`docs/bench/intel-2026-12-05-official/`): every bar
    /// is the ratio the script computed itself (in Python) and wrote under `ratios`, the
    /// paper's code has its one bar on `fb_train_chunk1`, and the left-out phases are absent.
    #[test]
    fn the_bars_are_the_scripts_ratios() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/bench/intel-2026-12-05-official/summary.json"
        );
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(is_vs_peer(&doc));
        let figure = vs_peer(&doc).expect("phases to draw");
        let (phases, speed) = bars(&figure, 0);
        assert_eq!(phases, ORDER.map(String::from));
        let names: Vec<&str> = speed.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(names, [PEER, MNEMO, OFFICIAL]);
        for (i, p) in phases.iter().enumerate() {
            let want = doc["ratios"][p].as_f64().unwrap();
            assert!(
                (speed[1].1[i] - want).abs() < 1e-3,
                "{p}: {}",
                speed[1].1[i]
            );
            assert_eq!(speed[0].1[i], 1.0);
        }
        let official = &speed[2].1;
        // ratios: mnemo ÷ peer and mnemo ÷ official, so official ÷ peer is their quotient.
        let want = doc["ratios"]["fb_train_chunk1"].as_f64().unwrap()
            / doc["ratios"]["official_fb_train_chunk1"].as_f64().unwrap();
        assert!((official[0] - want).abs() < 2e-3, "{official:?} vs {want}");
        assert!(official[1..].iter().all(|v| v.is_nan()), "{official:?}");
        let (_, memory) = bars(&figure, 1);
        assert_eq!(
            memory[1].1[0],
            doc["mnemo"]["fb_train_chunk1"]["peak_rss_mb"]
        );
        assert!(figure.to_svg().is_ok(), "bars with gaps draw");
    }

    /// A summary written before the mark, with a baseline and an extra phase, and a phase only
    /// one side timed; something else is not a summary.
    #[test]
    fn older_summaries_baselines_and_missing_phases() {
        let result =
            |tps: f64, mb: f64| serde_json::json!({"tokens_per_s": tps, "peak_rss_mb": mb});
        let doc = serde_json::json!({
            "peer": {"tf_train": result(100.0, 800.0), "var_linear_train": result(50.0, 700.0),
                     "fb_gen_b1": result(10.0, 500.0), "ref": {"sgemm_1024_gflop_per_s": 300.0}},
            "mnemo": {"tf_train": result(120.0, 200.0), "var_linear_train": result(150.0, 100.0),
                      "tf_gen_b1": result(9.0, 1.0), "ref": {"sgemm_1024_gflop_per_s": 250.0}},
            "baseline": {"tf_train": result(110.0, 210.0)},
        });
        assert!(is_vs_peer(&doc));
        assert!(!is_vs_peer(
            &serde_json::json!({"benchmark": "mnemo_attention_scaling"})
        ));
        let (phases, speed) = bars(&vs_peer(&doc).unwrap(), 0);
        assert_eq!(phases, ["tf_train", "var_linear_train"]);
        assert_eq!(speed[1], (MNEMO.to_string(), vec![1.2, 3.0]));
        assert_eq!(speed[2].0, BASELINE);
        assert!((speed[2].1[0] - 1.1).abs() < 1e-12 && speed[2].1[1].is_nan());
        // Nothing both sides timed: no figure.
        let empty =
            serde_json::json!({"peer": {"ref": {}}, "mnemo": {"tf_train": result(1.0, 1.0)}});
        assert!(is_vs_peer(&empty) && vs_peer(&empty).is_none());
    }
}
