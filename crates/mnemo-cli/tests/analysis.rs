//! `mnemo analyze` and `mnemo report` end to end on the smoke run (mnemo-analysis holds the
//! checks of the analyses themselves): the files each command promises are written and hold
//! what they say (every key of both layers, softmax(w) summing to 1, SVG and PNG figures);
//! a Transformer's memory analysis and bad flags exit 2 naming the culprit.
mod common;

use common::{assert_fails_naming, mnemo, mnemo_ok_in, smoke_config, train, utf8};
use serde_json::Value;

#[test]
fn analyze_and_report_on_the_smoke_run() {
    let out = tempfile::tempdir().unwrap();
    let trained = train(&smoke_config(), out.path(), &["--quiet"]);
    assert!(trained.status.success());
    let runs = out.path().join("smoke-tiny");
    let feedback = runs.join("feedback");
    let dir = out.path().join("analysis");
    let args = ["analyze", "ffn", utf8(&feedback), "--max-tokens", "100"];
    mnemo_ok_in(
        out.path(),
        &[&args[..], &["--top-k", "3", "--out", utf8(&dir)]].concat(),
    );
    let ffn: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("ffn.json")).unwrap()).unwrap();
    assert_eq!(ffn["positions"], 100);
    let layers = ffn["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    for layer in layers {
        let keys = layer["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 64, "d_ff keys");
        assert!(keys.iter().all(|k| k["top"].as_array().unwrap().len() == 3));
    }
    let md = std::fs::read_to_string(dir.join("ffn.md")).unwrap();
    assert!(md.contains("## Layer 1") && md.contains("Geva"), "{md}");

    let memory = mnemo_ok_in(out.path(), &["analyze", "memory", utf8(&feedback)]);
    let text = String::from_utf8_lossy(&memory.stdout);
    assert!(
        text.contains("softmax(w)") && text.contains("memory.json"),
        "{text}"
    );
    let json = feedback.join("analysis/memory.json");
    let memory: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let sum: f64 = memory["mix_weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_f64().unwrap())
        .sum();
    assert!((sum - 1.0).abs() < 1e-5);

    assert_fails_naming(
        &mnemo(&["analyze", "memory", utf8(&runs.join("transformer"))]),
        &["transformer", "feedback"],
    );
    assert_fails_naming(
        &mnemo(&["analyze", "ffn", utf8(&feedback), "--top-k", "0"]),
        &["--top-k"],
    );

    let figures = out.path().join("figures");
    let report = [
        "report",
        utf8(&runs),
        "--out",
        utf8(&figures),
        "--memory-tokens",
        "64",
    ];
    mnemo_ok_in(out.path(), &report);
    for name in [
        "smoke-tiny-curves",
        "smoke-tiny-memory-mix",
        "smoke-tiny-feedback-attention-distance",
    ] {
        let png = std::fs::read(figures.join(format!("{name}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}.png");
        let svg = std::fs::read_to_string(figures.join(format!("{name}.svg"))).unwrap();
        assert!(svg.starts_with("<svg"), "{name}.svg");
    }
    assert_fails_naming(
        &mnemo(&["report", utf8(&dir)]),
        &[utf8(&dir), "metrics.jsonl"],
    );
}
