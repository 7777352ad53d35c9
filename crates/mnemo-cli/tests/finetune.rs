//! `mnemo finetune RUN CONFIG` through the binary: the smoke run fine-tuned on 5-variable
//! programs with ULMFiT's options and the ℓ∞ ball, then evaluated; a model of another
//! architecture is refused naming the field.
mod common;

use common::{assert_fails_naming, mnemo, mnemo_ok_in, smoke_config, train, utf8};

#[test]
fn finetune_the_smoke_run_then_evaluate_it() {
    let out = tempfile::tempdir().unwrap();
    let trained = train(&smoke_config(), out.path(), &["--quiet"]);
    assert!(trained.status.success(), "{}", common::stderr(&trained));
    let text = std::fs::read_to_string(smoke_config())
        .unwrap()
        .replace("name = \"smoke-tiny\"", "name = \"smoke-ft\"")
        .replace("steps = 12", "steps = 4")
        .replace("variables = 3", "variables = 5")
        .replace(
            "warmup_steps = 3",
            "decay = \"slanted_triangular\"\nlayer_lr_decay = 2.6\nunfreeze_every = 2\n\
             max_change = 0.01",
        );
    let config = out.path().join("ft.toml");
    std::fs::write(&config, text).unwrap();
    let run = out.path().join("smoke-tiny/feedback");
    let done = mnemo_ok_in(
        out.path(),
        &[
            "finetune",
            utf8(&run),
            utf8(&config),
            "--out",
            utf8(out.path()),
            "--quiet",
        ],
    );
    // The run's model name picks the config's `feedback`; one results row.
    let table = String::from_utf8_lossy(&done.stdout);
    assert!(table.contains("feedback"), "{table}");
    let tuned = out.path().join("smoke-ft/feedback");
    assert!(tuned.join("start-weights.mnemo").is_file());
    let eval = mnemo(&["eval", utf8(&tuned), "--split", "test", "--json"]);
    assert!(eval.status.success(), "{}", common::stderr(&eval));
    let record: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(record["step"], 4);
    // The Transformer of the config is not the run's architecture.
    let refused = mnemo(&[
        "finetune",
        utf8(&run),
        utf8(&config),
        "--model",
        "transformer",
        "--out",
        utf8(out.path()),
    ]);
    assert_fails_naming(&refused, &["models.transformer.", "smoke-tiny/feedback"]);
}
