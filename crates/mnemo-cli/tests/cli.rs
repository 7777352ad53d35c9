//! The `mnemo` binary end to end: errors exit with code 2 and one line naming the culprit;
//! `train` then `eval` on the smoke config agree with the run's summary.
mod common;

use common::{assert_fails_naming, mnemo, smoke_config, stderr, train, utf8};
use serde_json::Value;

#[test]
fn unknown_config_field_exits_2_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(smoke_config())
        .unwrap()
        .replace("seed = 1\nsteps", "seed = 1\nepochs = 3\nsteps");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).unwrap();
    assert_fails_naming(
        &mnemo(&["train", utf8(&path), "--quiet"]),
        &["bad.toml", "run.epochs", "unknown field"],
    );
    assert_fails_naming(
        &mnemo(&["train", "/no/such/config.toml"]),
        &["/no/such/config.toml"],
    );
}

#[test]
fn unknown_backend_exits_2_listing_backends() {
    let out = tempfile::tempdir().unwrap();
    assert_fails_naming(
        &train(&smoke_config(), out.path(), &["--backend", "tpu"]),
        &["--backend tpu", "cpu, flex, ndarray"],
    );
    assert!(
        std::fs::read_dir(out.path()).unwrap().next().is_none(),
        "nothing written"
    );
}

#[test]
fn eval_of_a_missing_run_dir_exits_2() {
    assert_fails_naming(
        &mnemo(&["eval", "/no/such/run"]),
        &["/no/such/run", "not a run directory"],
    );
}

/// Two configs that share a run name (as `experiments/algorithmic/3var-{feedback,transformer}.toml`
/// do), each with one model: the results table after the second lists both, the other
/// config's model named as such.
#[test]
fn results_table_holds_every_model_under_the_run_name() {
    let out = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(smoke_config()).unwrap();
    let (head, feedback) = text.split_once("[models.feedback]").unwrap();
    let only_transformer = out.path().join("transformer.toml");
    std::fs::write(&only_transformer, head).unwrap();
    let (before, _) = head.split_once("[models.transformer]").unwrap();
    let only_feedback = out.path().join("feedback.toml");
    std::fs::write(
        &only_feedback,
        format!("{before}[models.feedback]{feedback}"),
    )
    .unwrap();
    let runs = out.path().join("runs");
    for config in [&only_transformer, &only_feedback] {
        let trained = train(config, &runs, &["--quiet"]);
        assert!(trained.status.success(), "{}", stderr(&trained));
    }
    let results = std::fs::read_to_string(runs.join("smoke-tiny/results.md")).unwrap();
    assert!(
        results.contains("| feedback") && results.contains("| transformer"),
        "{results}"
    );
    assert!(
        results.contains("feedback.toml")
            && results.contains("trained by another config under this run name: transformer."),
        "{results}"
    );
}

#[test]
fn train_then_eval_and_generate_on_the_smoke_config() {
    let out = tempfile::tempdir().unwrap();
    let config = smoke_config();
    let trained = train(&config, out.path(), &["--quiet"]);
    assert!(trained.status.success(), "{}", stderr(&trained));
    let table = String::from_utf8_lossy(&trained.stdout).into_owned();
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

    assert_fails_naming(
        &mnemo(&["generate", utf8(&run), "--prompt", "x = banana ;"]),
        &["--prompt", "`banana`"],
    );

    // Training again into the same place needs --resume; with it, the finished runs are kept.
    let feedback = ["--model", "feedback"];
    assert_fails_naming(&train(&config, out.path(), &feedback), &["--resume"]);
    let again = train(
        &config,
        out.path(),
        &[&feedback[..], &["--quiet", "--resume"]].concat(),
    );
    assert!(again.status.success(), "{}", stderr(&again));
    assert_fails_naming(
        &train(&config, out.path(), &["--model", "lstm"]),
        &["--model lstm", "feedback, transformer"],
    );
}
