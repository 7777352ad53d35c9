//! The `mnemo` binary end to end: errors exit with code 2 and one line naming the culprit;
//! `train` then `eval` on the smoke config agree with the run's summary.
mod common;

use common::{assert_fails, mnemo, smoke_config, stderr};
use serde_json::Value;

#[test]
fn unknown_config_field_exits_2_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(smoke_config())
        .unwrap()
        .replace("seed = 1\nsteps", "seed = 1\nepochs = 3\nsteps");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).unwrap();
    let err = assert_fails(&mnemo(&["train", path.to_str().unwrap(), "--quiet"]));
    assert!(
        err.contains("bad.toml") && err.contains("run.epochs") && err.contains("unknown field"),
        "{err}"
    );

    let err = assert_fails(&mnemo(&["train", "/no/such/config.toml"]));
    assert!(err.contains("/no/such/config.toml"), "{err}");
}

#[test]
fn unknown_backend_exits_2_listing_backends() {
    let out = tempfile::tempdir().unwrap();
    let err = assert_fails(&mnemo(&[
        "train",
        smoke_config().to_str().unwrap(),
        "--backend",
        "tpu",
        "--out",
        out.path().to_str().unwrap(),
    ]));
    assert!(
        err.contains("--backend tpu") && err.contains("cpu, flex, ndarray"),
        "{err}"
    );
    assert!(
        std::fs::read_dir(out.path()).unwrap().next().is_none(),
        "nothing written"
    );
}

#[test]
fn eval_of_a_missing_run_dir_exits_2() {
    let err = assert_fails(&mnemo(&["eval", "/no/such/run"]));
    assert!(
        err.contains("/no/such/run") && err.contains("not a run directory"),
        "{err}"
    );
}

#[test]
fn train_then_eval_and_generate_on_the_smoke_config() {
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().to_str().unwrap();
    let config = smoke_config();
    let train = mnemo(&[
        "train",
        config.to_str().unwrap(),
        "--out",
        out_dir,
        "--quiet",
    ]);
    assert!(train.status.success(), "{}", stderr(&train));
    let table = String::from_utf8_lossy(&train.stdout).into_owned();
    assert!(
        table.contains("| feedback") && table.contains("| transformer"),
        "{table}"
    );
    let results = std::fs::read_to_string(out.path().join("smoke-tiny/results.md")).unwrap();
    assert!(
        results.contains(&table) && results.contains("mnemo train"),
        "{results}"
    );

    for model in ["feedback", "transformer"] {
        let run = out.path().join("smoke-tiny").join(model);
        let summary: Value =
            serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
        assert_eq!(summary["steps"], 12);
        let eval = mnemo(&["eval", run.to_str().unwrap(), "--split", "test", "--json"]);
        assert!(eval.status.success(), "{}", stderr(&eval));
        let result: Value = serde_json::from_slice(&eval.stdout).unwrap();
        assert_eq!(
            result["accuracy"], summary["test"]["accuracy"],
            "{model}: {result}"
        );
        assert_eq!(result["loss"], summary["test"]["loss"], "{model}: {result}");
        assert_eq!(result["scored"], summary["test"]["scored"]);

        let text = mnemo(&["eval", run.to_str().unwrap()]);
        assert!(String::from_utf8_lossy(&text.stdout).contains("on valid: loss"));
    }

    let run = out.path().join("smoke-tiny/feedback");
    let generate = mnemo(&[
        "generate",
        run.to_str().unwrap(),
        "--prompt",
        "x = 4 ; print x ;",
        "--max-new-tokens",
        "3",
    ]);
    assert!(generate.status.success(), "{}", stderr(&generate));
    let text = String::from_utf8_lossy(&generate.stdout).into_owned();
    assert_eq!(text.lines().count(), 1 + 7 + 1, "{text}");
    assert!(
        text.lines().last().unwrap().starts_with("generated: "),
        "{text}"
    );

    let err = assert_fails(&mnemo(&[
        "generate",
        run.to_str().unwrap(),
        "--prompt",
        "x = banana ;",
    ]));
    assert!(
        err.contains("--prompt") && err.contains("`banana`"),
        "{err}"
    );

    // Training again into the same place needs --resume; with it, the finished runs are kept.
    let err = assert_fails(&mnemo(&[
        "train",
        config.to_str().unwrap(),
        "--out",
        out_dir,
        "--model",
        "feedback",
    ]));
    assert!(err.contains("--resume"), "{err}");
    let again = mnemo(&[
        "train",
        config.to_str().unwrap(),
        "--out",
        out_dir,
        "--quiet",
        "--resume",
        "--model",
        "feedback",
    ]);
    assert!(again.status.success(), "{}", stderr(&again));
    let err = assert_fails(&mnemo(&[
        "train",
        config.to_str().unwrap(),
        "--out",
        out_dir,
        "--model",
        "lstm",
    ]));
    assert!(
        err.contains("--model lstm") && err.contains("feedback, transformer"),
        "{err}"
    );
}
