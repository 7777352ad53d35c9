//! `mnemo bench` with the Transformer options and `--scaling`, end to end through the child
//! processes: the names the parent lists are the names a child runs, with the intended
//! attention; a point over `--max-mb` is reported as skipped, not run; unknown phases are
//! refused naming `--only`. Nothing here asserts a time.
mod common;

use std::process::Output;

use common::{assert_fails_naming, mnemo, stderr, utf8};
use serde_json::Value;

/// Runs `mnemo <args> --out <file>` with the file in a temporary directory, asserts that it
/// succeeded, and returns the JSON document it wrote and the run.
fn run_writing_json(args: &[&str]) -> (Value, Output) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let run = mnemo(&[args, &["--out", utf8(&out)]].concat());
    assert!(run.status.success(), "{}", stderr(&run));
    let doc = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    (doc, run)
}

#[test]
fn unknown_phases_are_refused_naming_only() {
    assert_fails_naming(
        &mnemo(&["bench", "--only", "var_nope_train"]),
        &[
            "--only",
            "`var_nope_train`",
            "var_linear_train",
            "var_all_attention_gen_b1",
        ],
    );
    // Scaling points belong to --scaling, and the peer's phases do not.
    assert_fails_naming(
        &mnemo(&["bench", "--only", "scale_softmax_256"]),
        &["--only", "`scale_softmax_256`"],
    );
    assert_fails_naming(
        &mnemo(&["bench", "--scaling", "--only", "tf_train"]),
        &[
            "--only",
            "`tf_train`",
            "scale_softmax_4096",
            "softmax|linear|delta|performer|sparse",
        ],
    );
}

#[test]
fn a_variant_phase_runs_its_option_in_a_child() {
    let (doc, _) = run_writing_json(&["bench", "--quick", "--only", "var_delta_gen_b1"]);
    let res = &doc["results"]["var_delta_gen_b1"];
    assert_eq!(res["attention"]["kind"], "linear", "{res}");
    assert_eq!(res["attention"]["update"], "delta", "{res}");
    assert_eq!(res["batch"], 1);
    assert!(res["tokens_per_s"].as_f64().unwrap() > 0.0, "{res}");
    assert!(res["peak_rss_mb"].as_f64().unwrap() > 0.0, "{res}");
    // The FLOP formula models softmax attention only.
    assert!(res["approx_gflop_per_s"].is_null(), "{res}");
    assert_eq!(doc["results"].as_object().unwrap().len(), 1);
}

#[test]
fn scaling_skips_a_point_over_the_memory_limit_and_tabulates() {
    // The first point has nothing to predict from and runs; the second is predicted to need
    // more than 1 MB and is skipped without running.
    let (doc, run) = run_writing_json(&[
        "bench",
        "--scaling",
        "--quick",
        "--only",
        "scale_linear_64,scale_linear_128",
        "--max-mb",
        "1",
    ]);
    assert_eq!(doc["config"]["n_layers"], 2);
    assert_eq!(doc["config"]["attention"]["sparse"]["block"], 16);
    let points = doc["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    let first = &points[0];
    assert_eq!(
        (first["mechanism"].as_str(), first["seq_len"].as_u64()),
        (Some("linear"), Some(64))
    );
    assert_eq!(first["attention"]["kind"], "linear", "{first}");
    assert_eq!(first["tokens_per_iter"], 64, "{first}");
    assert!(first["ms_per_step"].as_f64().unwrap() > 0.0, "{first}");
    assert!(first["peak_rss_mb"].as_f64().unwrap() > 1.0, "{first}");
    let second = &points[1];
    let why = second["skipped"].as_str().unwrap();
    assert!(why.contains("> limit 1 MB"), "{second}");
    assert!(second.get("ms_per_step").is_none(), "{second}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("| T | mechanism | ms / step | tokens/s | peak MB |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| 128 | linear | skipped: predicted peak"),
        "{stdout}"
    );
}
