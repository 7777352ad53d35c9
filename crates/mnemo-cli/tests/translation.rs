//! Translation end to end through the `mnemo` binary on a parallel corpus written by the test:
//! `mnemo train` on a `task = "translation"` config, `mnemo translate` on the run, and the
//! errors of `mnemo data prepare translation`.
use std::path::Path;

use serde_json::Value;

mod common;
use common::{assert_exit_2_naming, mnemo_in, stderr};

/// 120 training pairs of a toy language (word-by-word substitution), 8 valid, 6 test.
fn write_corpus(dir: &Path) {
    let words = [
        "red", "blue", "cat", "dog", "runs", "sleeps", "big", "small", "the", "a",
    ];
    let other = [
        "rot", "blau", "Katze", "Hund", "rennt", "schläft", "groß", "klein", "der", "ein",
    ];
    let mut state = 7u64;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as usize) % n
    };
    for (split, n) in [("train", 120), ("valid", 8), ("test", 6)] {
        let (mut en, mut de) = (String::new(), String::new());
        for _ in 0..n {
            let ids: Vec<usize> = (0..2 + next(4)).map(|_| next(words.len())).collect();
            en += &(ids.iter().map(|&i| words[i]).collect::<Vec<_>>().join(" ") + "\n");
            de += &(ids.iter().map(|&i| other[i]).collect::<Vec<_>>().join(" ") + "\n");
        }
        std::fs::write(dir.join(format!("{split}.en")), en).unwrap();
        std::fs::write(dir.join(format!("{split}.de")), de).unwrap();
    }
}

const CONFIG: &str = r#"[run]
name = "mt"
seed = 2
steps = 12
log_every = 4

[data]
task = "translation"
dir = "corpus"
src = "en"
tgt = "de"
vocab_size = 280
min_frequency = 1
max_len = 16

[train]
max_tokens = 128

[optim]
lr = 3e-3
warmup_steps = 2

[decode]
beam_size = 2

[models.feedback-1]
d_model = 32
n_heads = 2
d_ff = 64
encoder_layers = 1
decoder_layers = 1
decoder = "feedback"
span = 16
max_len = 20
"#;

#[test]
fn train_then_translate_reports_the_same_bleu_and_writes_translations() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("corpus")).unwrap();
    write_corpus(&dir.path().join("corpus"));
    std::fs::write(dir.path().join("mt.toml"), CONFIG).unwrap();
    let out = mnemo_in(dir.path(), &["train", "mt.toml", "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("| feedback-1 | feedback | 1/1 |"), "{table}");
    assert!(dir.path().join("runs/mt/results.md").is_file());

    let summary: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("runs/mt/feedback-1/summary.json")).unwrap(),
    )
    .unwrap();
    let out = mnemo_in(
        dir.path(),
        &[
            "translate",
            "runs/mt/feedback-1",
            "--json",
            "--out",
            "test.txt",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["bleu"], summary["test_bleu"]["bleu"]["score"]);
    assert_eq!(report["sentences"], 6);
    assert_eq!(report["beam_size"], 2);
    let written = std::fs::read_to_string(dir.path().join("test.txt")).unwrap();
    let during_training =
        std::fs::read_to_string(dir.path().join("runs/mt/feedback-1/test.hyp.txt")).unwrap();
    assert_eq!(written, during_training);

    // --input: one translation per input line, on stdout.
    std::fs::write(
        dir.path().join("in.txt"),
        "the red cat\nthe big dog sleeps\n",
    )
    .unwrap();
    let out = mnemo_in(
        dir.path(),
        &[
            "translate",
            "runs/mt/feedback-1",
            "--input",
            "in.txt",
            "--beam",
            "1",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);

    // `mnemo eval` recomputes the trainer's final valid and test figures exactly.
    for split in ["valid", "test"] {
        let args = ["eval", "runs/mt/feedback-1", "--split", split, "--json"];
        let out = mnemo_in(dir.path(), &args);
        assert!(out.status.success(), "{}", stderr(&out));
        let eval: Value = serde_json::from_slice(&out.stdout).unwrap();
        for field in ["loss", "accuracy", "scored", "ppl"] {
            assert_eq!(eval[field], summary[split][field], "{split} {field}");
        }
        assert_eq!(eval["decoder"], "feedback");
    }
    let out = mnemo_in(
        dir.path(),
        &["eval", "runs/mt/feedback-1", "--split", "train"],
    );
    assert_exit_2_naming(&out, &["--split train"]);
    // A language model's command names the run's kind and the commands that take it.
    let out = mnemo_in(
        dir.path(),
        &["generate", "runs/mt/feedback-1", "--prompt", "a"],
    );
    assert_exit_2_naming(
        &out,
        &["a translation run", "mnemo generate", "mnemo translate"],
    );

    // Bad flags and a non-run are named.
    let out = mnemo_in(
        dir.path(),
        &["translate", "runs/mt/feedback-1", "--beam", "0"],
    );
    assert_exit_2_naming(&out, &["--beam"]);
    let out = mnemo_in(dir.path(), &["translate", "corpus"]);
    assert_exit_2_naming(&out, &["not a run directory"]);
}

#[test]
fn prepare_translation_names_bad_flags_and_missing_inputs() {
    let dir = tempfile::tempdir().unwrap();
    // An unsupported pair, then a supported one whose root is missing.
    for (pair, root, named) in [
        ("en-fr", "r", &["--pair", "en-fr"][..]),
        ("en-es", "no-such-root", &["no-such-root"]),
    ] {
        let prepare = ["data", "prepare", "translation", "--out", "o"];
        let out = mnemo_in(
            dir.path(),
            &[&prepare[..], &["--pair", pair, "--root", root]].concat(),
        );
        assert_exit_2_naming(&out, named);
    }
}
