//! `mnemo compare-backends` end to end, and `--backend NAME` on a binary built without it.
mod common;

use common::{assert_fails_naming, mnemo, smoke_config, train, utf8};
use serde_json::Value;

#[test]
fn cpu_against_itself_prints_a_table_and_json() {
    let config = smoke_config();
    let args = [
        "compare-backends",
        config.to_str().unwrap(),
        "--backends",
        "cpu",
        "--warmup",
        "0",
        "--steps",
        "1",
        "--gen-tokens",
        "2",
    ];
    let out = mnemo(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for model in ["feedback", "transformer"] {
        assert!(
            text.contains(&format!(
                "| {model} | cpu (reference) | flex (pure Rust, CPU) |"
            )),
            "{text}"
        );
    }

    let out = mnemo(&[&args[..], &["--json"]].concat());
    assert!(out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    assert_eq!(report["reference"], "cpu");
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{report}");
    for row in rows {
        assert_eq!(row["within_tolerance"], true);
        assert_eq!(row["agreement"]["grads"]["max_abs"], 0.0, "{row}");
        assert!(row["step_ms"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["gen_tokens_per_s"].as_f64().unwrap() > 0.0, "{row}");
    }
}

#[test]
fn backend_not_compiled_names_its_feature_and_setup() {
    if cfg!(feature = "tch") {
        return;
    }
    let config = smoke_config();
    assert_fails_naming(
        &mnemo(&["compare-backends", utf8(&config), "--backends", "cpu,tch"]),
        &["--backends", "--features tch", "scripts/setup-tch.sh"],
    );
    let out = tempfile::tempdir().unwrap();
    assert_fails_naming(
        &train(&config, out.path(), &["--backend", "tch"]),
        &["--backend tch", "--features tch"],
    );
}

#[test]
fn unknown_model_is_named() {
    let config = smoke_config();
    assert_fails_naming(
        &mnemo(&["compare-backends", utf8(&config), "--model", "xl"]),
        &["--model xl", "feedback, transformer"],
    );
}
