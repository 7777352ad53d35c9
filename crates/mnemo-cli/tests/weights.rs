//! `mnemo export` and `mnemo import safetensors` end to end: a trained run exported and
//! imported into a new run directory evaluates to exactly the same loss, trains on with
//! `--resume`, and a damaged file or an occupied directory is refused naming the culprit.
mod common;

use common::{
    assert_fails_naming, mnemo, mnemo_ok_in, stderr, train, trained_smoke_feedback, utf8,
};
use serde_json::Value;

/// `mnemo eval RUN --split test --json`.
fn eval(run: &std::path::Path) -> Value {
    let out = mnemo(&["eval", utf8(run), "--split", "test", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn export_import_round_trip_evaluates_the_same_and_resumes() {
    let out = tempfile::tempdir().unwrap();
    let run = trained_smoke_feedback(out.path());

    let file = out.path().join("feedback.safetensors");
    let exported = mnemo_ok_in(
        out.path(),
        &[
            "export",
            utf8(&run),
            "--format",
            "safetensors",
            "--out",
            utf8(&file),
        ],
    );
    let said = String::from_utf8_lossy(&exported.stdout);
    assert!(
        said.contains("step 12") && said.contains("feedback.safetensors"),
        "{said}"
    );

    // Into <root>/<run.name>/<model>, where `train --resume` looks for it.
    let root = out.path().join("imported");
    let copy = root.join("smoke-tiny/feedback");
    let config = run.join("config.toml");
    let args = [
        "import",
        "safetensors",
        utf8(&file),
        "--config",
        utf8(&config),
        "--out",
        utf8(&copy),
    ];
    mnemo_ok_in(out.path(), &args);
    let (a, b) = (eval(&run), eval(&copy));
    assert_eq!(a["loss"], b["loss"], "{a} {b}");
    assert_eq!(a["accuracy"], b["accuracy"]);
    assert_eq!(b["step"], 0, "an imported run starts at step 0");

    // Importing over it is refused; the run is kept.
    assert_fails_naming(&mnemo(&args), &[utf8(&copy), "already exists"]);

    // The imported run trains on from the file's weights.
    let resumed = train(&config, &root, &["--quiet", "--resume"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let summary: Value =
        serde_json::from_slice(&std::fs::read(copy.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["steps"], 12);

    // A damaged file: the error names the file and the tensor.
    let mut bytes = std::fs::read(&file).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let text = String::from_utf8_lossy(&bytes[8..8 + header_len]).into_owned();
    let at = 8 + text
        .find("\"embed.weight\"")
        .expect("embed.weight in the header");
    bytes[at + 1..at + 6].copy_from_slice(b"EMBED");
    let bad = out.path().join("bad.safetensors");
    std::fs::write(&bad, bytes).unwrap();
    let other = out.path().join("other");
    assert_fails_naming(
        &mnemo(&[
            "import",
            "safetensors",
            utf8(&bad),
            "--config",
            utf8(&config),
            "--out",
            utf8(&other),
        ]),
        &[
            "bad.safetensors",
            "`embed.weight` is missing",
            "`EMBED.weight` is not part of this model",
        ],
    );
}

/// mnemo-train's official fixtures, a temporary directory, and in it an experiment config
/// (`official.toml`) over the fixtures' labelled text whose model the import replaces.
fn official_setup() -> (std::path::PathBuf, tempfile::TempDir, std::path::PathBuf) {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mnemo-train/tests/fixtures/official");
    let out = tempfile::tempdir().unwrap();
    let config = out.path().join("official.toml");
    std::fs::write(
        &config,
        format!(
            "[run]\nname = \"official\"\nseed = 1\nsteps = 2\n\n[data]\ntask = \"labelled_text\"\n\
             dir = \"{}\"\n\n[train]\nbatch_size = 2\nsegment_len = 8\n\n[optim]\nlr = 1e-3\n\n\
             [models.feedback]\nkind = \"feedback\"\nd_model = 8\nn_layers = 1\nn_heads = 1\n\
             d_ff = 8\nspan = 4\n",
            fixtures.join("data").display()
        ),
    )
    .unwrap();
    (fixtures, out, config)
}

/// `mnemo import official` of the fixture `case` (2 layers, 2 heads of 5, feed-forward 20,
/// blocks of 4) into `run`, with the other official flags `extra`.
fn import_fixture(
    fixtures: &std::path::Path,
    config: &std::path::Path,
    case: &str,
    run: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    let checkpoint = fixtures.join(case).join("checkpoint.pt");
    let data = fixtures.join("data");
    let args = [
        "import",
        "official",
        utf8(&checkpoint),
        "--config",
        utf8(config),
        "--data",
        utf8(&data),
        "--out",
        utf8(run),
        "--nlayers",
        "2",
        "--nheads",
        "2",
        "--head-dim",
        "5",
        "--inner-hid-sz",
        "20",
        "--mem-sz",
        "4",
    ];
    mnemo(&[&args[..], extra].concat())
}

/// `mnemo import official` on a checkpoint the official code wrote (mnemo-train's fixture):
/// the run evaluates; a wrong flag is refused naming the official tensors that do not fit, a
/// Feedback checkpoint read without `--feedback` naming the mixing weights it does not expect.
#[test]
fn import_official_makes_a_run_that_evaluates() {
    let (fixtures, out, config) = official_setup();
    let run = out.path().join("run");
    let import = |run: &std::path::Path, extra: &[&str]| {
        let flags = [&["--attn-lim", "6", "--pre-norm"][..], extra].concat();
        import_fixture(&fixtures, &config, "pre_per_layer", run, &flags)
    };
    let done = import(&run, &["--hid-sz", "12", "--feedback"]);
    assert!(done.status.success(), "{}", stderr(&done));
    let eval = mnemo(&["eval", utf8(&run), "--json"]);
    assert!(eval.status.success(), "{}", stderr(&eval));
    let result: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert!(result["loss"].as_f64().unwrap().is_finite(), "{result}");

    assert_fails_naming(
        &import(&out.path().join("wide"), &["--hid-sz", "16", "--feedback"]),
        &["checkpoint.pt", "in_emb.weight"],
    );
    // Without --feedback the checkpoint is read as a TransformerSeq, which has no mixing
    // weights.
    assert_fails_naming(
        &import(&out.path().join("seq"), &["--hid-sz", "12"]),
        &["checkpoint.pt", "single_memory_attn_params"],
    );
}

/// `mnemo import official` without `--feedback` imports the official baseline TransformerSeq as
/// a Transformer-XL run named `transformer_seq` that evaluates, generates and trains on with
/// `--resume`, and `mnemo export --format official` writes its state dict back under the
/// official names.
#[test]
fn import_official_transformer_seq_evaluates_and_exports() {
    let (fixtures, out, config) = official_setup();
    // Into <root>/<run.name>/<model>, where `train --resume` looks for it.
    let root = out.path().join("runs");
    let run = root.join("official/transformer_seq");
    let data = fixtures.join("data");
    let done = import_fixture(
        &fixtures,
        &config,
        "seq_post",
        &run,
        &["--hid-sz", "12", "--attn-lim", "3"],
    );
    assert!(done.status.success(), "{}", stderr(&done));
    let saved = std::fs::read_to_string(run.join("transformer_seq/config.toml"))
        .or_else(|_| std::fs::read_to_string(run.join("config.toml")))
        .unwrap();
    assert!(
        saved.contains("transformer_xl") && saved.contains("attend_self = false"),
        "{saved}"
    );
    let eval = mnemo(&["eval", utf8(&run), "--json"]);
    assert!(eval.status.success(), "{}", stderr(&eval));
    let result: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert!(result["loss"].as_f64().unwrap().is_finite(), "{result}");
    let generated = mnemo(&[
        "generate",
        utf8(&run),
        "--prompt",
        "a = 3 ;",
        "--max-new-tokens",
        "4",
    ]);
    assert!(generated.status.success(), "{}", stderr(&generated));
    let config = run.join("config.toml");
    let resumed = train(&config, &root, &["--quiet", "--resume"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["steps"], 2);
    let file = out.path().join("official.safetensors");
    let export = mnemo(&[
        "export",
        utf8(&run),
        "--format",
        "official",
        "--data",
        utf8(&data),
        "--out",
        utf8(&file),
    ]);
    assert!(export.status.success(), "{}", stderr(&export));
    let names = mnemo_train::official::read_official(&file).unwrap();
    assert!(names.contains_key("layers.1.attn.attn.key_pe"));
    assert!(!names.contains_key("single_memory_attn_params"));
}
