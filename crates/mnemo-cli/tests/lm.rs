//! Language modelling end to end through the `mnemo` binary, on corpora written by the test:
//! a byte corpus (enwik8 format) and a WikiText directory made by `mnemo data prepare`.
use std::process::Output;

mod common;
use common::{assert_exit_2_naming, mnemo_in, mnemo_ok_in, stderr};

use serde_json::Value;

fn json_of(out: &Output) -> Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// An experiment config with a tiny transformer, feedback and Transformer-XL model on `data`.
fn config(name: &str, data: &str, steps: u32) -> String {
    format!(
        r#"[run]
name = "{name}"
seed = 1
steps = {steps}
eval_every = {steps}
checkpoint_every = {steps}
log_every = 5

{data}

[train]
batch_size = 4
segment_len = 16

[optim]
lr = 1e-2
warmup_steps = 3
grad_clip = 1.0

[models.transformer]
kind = "transformer"
d_model = 32
n_layers = 1
n_heads = 2
d_ff = 64
span = 16

[models.feedback]
kind = "feedback"
d_model = 32
n_layers = 1
n_heads = 2
d_ff = 64
span = 8

[models.xl]
kind = "transformer_xl"
d_model = 32
n_layers = 1
n_heads = 2
d_ff = 64
memory_len = 8
relative_span = 32
"#
    )
}

#[test]
fn byte_corpus_trains_and_eval_reports_the_summary_bpc() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("corpus")).unwrap();
    // 6,000 bytes of very repetitive "XML": 5,400 train, 300 valid, 300 test.
    let text = "<page><title>abc</title><text>the cat sat on the mat</text></page>\n".repeat(100);
    let bytes = &text.as_bytes()[..6000];
    std::fs::write(dir.path().join("corpus/enwik8"), bytes).unwrap();
    let data = "[data]\ntask = \"bytes\"\npath = \"corpus/enwik8\"";
    std::fs::write(dir.path().join("lm.toml"), config("lm", data, 40)).unwrap();

    let train = mnemo_ok_in(
        dir.path(),
        &["train", "lm.toml", "--out", "runs", "--quiet"],
    );
    let table = String::from_utf8_lossy(&train.stdout).into_owned();
    assert!(table.contains("bpc "), "{table}");

    for model in ["transformer", "feedback", "xl"] {
        let run = format!("runs/lm/{model}");
        let summary: Value = serde_json::from_slice(
            &std::fs::read(dir.path().join(&run).join("summary.json")).unwrap(),
        )
        .unwrap();
        let eval = json_of(&mnemo_in(
            dir.path(),
            &["eval", &run, "--split", "test", "--json"],
        ));
        let bpc = eval["bpc"].as_f64().unwrap();
        assert_eq!(eval["bpc"], summary["test"]["bpc"], "{model}: {eval}");
        assert_eq!(eval["loss"], summary["test"]["loss"], "{model}: {eval}");
        assert!(
            bpc.is_finite() && bpc < 8.0,
            "{model}: bpc {bpc} after training"
        );
        assert!(
            (bpc - eval["loss"].as_f64().unwrap() / std::f64::consts::LN_2).abs() < 1e-12,
            "bpc = loss / ln 2"
        );
        // 299 test positions in 4 rows of 74 (3 left over): all 296 scored, with or without
        // a partial last segment, whatever the evaluation span.
        assert_eq!(eval["scored"], 296);
        let short = json_of(&mnemo_in(
            dir.path(),
            &[
                "eval",
                &run,
                "--split",
                "test",
                "--json",
                "--eval-span",
                "7",
            ],
        ));
        assert_eq!(short["scored"], 296);
        assert!(short["bpc"].as_f64().unwrap().is_finite());
        let text = mnemo_in(dir.path(), &["eval", &run, "--split", "test"]);
        assert!(
            String::from_utf8_lossy(&text.stdout).contains("on test: bpc "),
            "{}",
            String::from_utf8_lossy(&text.stdout)
        );
        // The metrics log carries bpc on every record.
        let log = std::fs::read_to_string(dir.path().join(&run).join("metrics.jsonl")).unwrap();
        assert!(log.lines().all(|l| l.contains("\"bpc\":")), "{log}");
    }

    for (run, len, why) in [
        ("runs/lm/feedback", "9", "distances 1..=8 only"),
        ("runs/lm/feedback", "0", "at least 1"),
        ("runs/lm/transformer", "8", "carries no memory"),
    ] {
        let err = stderr(&mnemo_in(dir.path(), &["eval", run, "--mem-len", len]));
        assert!(
            err.contains(&format!("--mem-len {len}")) && err.contains(why),
            "{err}"
        );
    }
    // Evaluating with another memory length than trained scores the same positions, and the
    // figure changes: the Feedback Transformer with a shorter span than trained (8), and
    // Transformer-XL with a longer memory (the extra context is really used).
    let eval_test = |run: &str, extra: &[&str]| {
        let mut args = vec!["eval", run, "--split", "test", "--json"];
        args.extend_from_slice(extra);
        json_of(&mnemo_in(dir.path(), &args))
    };
    for (run, len) in [("runs/lm/feedback", "2"), ("runs/lm/xl", "24")] {
        let (trained, other) = (eval_test(run, &[]), eval_test(run, &["--mem-len", len]));
        assert_eq!(other["scored"], trained["scored"], "{run}");
        let (a, b) = (
            trained["bpc"].as_f64().unwrap(),
            other["bpc"].as_f64().unwrap(),
        );
        assert!(
            b.is_finite() && a != b,
            "{run}: --mem-len {len} gave {b}, the trained memory gave {a}"
        );
    }
    let feedback = |extra: &[&str]| eval_test("runs/lm/feedback", extra)["bpc"].clone();
    assert_eq!(feedback(&["--mem-len", "8"]), feedback(&[]));
    let err = stderr(&mnemo_in(
        dir.path(),
        &["eval", "runs/lm/feedback", "--eval-span", "0"],
    ));
    assert!(err.contains("--eval-span"), "{err}");
}

#[test]
fn missing_corpus_is_named_with_its_config_field() {
    let dir = tempfile::tempdir().unwrap();
    for (name, data, named) in [
        (
            "lm",
            "[data]\ntask = \"bytes\"\npath = \"data/enwik8-mini/enwik8\"",
            &["data.path: data/enwik8-mini/enwik8: ", "setup-data.sh"][..],
        ),
        (
            "wt",
            "[data]\ntask = \"wikitext\"\ndir = \"wt\"",
            &["data.dir: wt/wiki.train.tokens: "],
        ),
    ] {
        let file = format!("{name}.toml");
        std::fs::write(dir.path().join(&file), config(name, data, 2)).unwrap();
        let out = mnemo_in(dir.path(), &["train", &file, "--out", "runs", "--quiet"]);
        assert_exit_2_naming(&out, named);
    }
}

#[test]
fn wikitext_prepared_from_xml_trains_and_reports_perplexity() {
    let dir = tempfile::tempdir().unwrap();
    let mut xml = String::from("<mediawiki>\n");
    for i in 0..40 {
        xml.push_str(&format!(
            "<page><title>Page {}</title><ns>0</ns><revision><text>'''Cats''' sit on [[mat|mats]].\n\
             == Life ==\nThe cat sat on the mat, and the dog sat on the log.\n\
             The cat sat on the mat, and the dog sat on the log.</text></revision></page>\n",
            i % 3
        ));
    }
    xml.push_str("</mediawiki>\n");
    std::fs::write(dir.path().join("pages.xml"), xml).unwrap();
    mnemo_ok_in(
        dir.path(),
        &[
            "data",
            "prepare",
            "wikitext",
            "--xml",
            "pages.xml",
            "--out",
            "wt",
        ],
    );
    let valid = std::fs::read_to_string(dir.path().join("wt/wiki.valid.tokens")).unwrap();
    assert!(
        valid.starts_with(" \n = Page 0 = \n \n Cats sit on mats . \n \n = = Life = = \n"),
        "{valid}"
    );

    let data = "[data]\ntask = \"wikitext\"\ndir = \"wt\"";
    let text = config("wt", data, 20).replace("[train]\nbatch_size = 4", "[train]\nbatch_size = 2");
    std::fs::write(dir.path().join("wt.toml"), text).unwrap();
    mnemo_ok_in(
        dir.path(),
        &[
            "train",
            "wt.toml",
            "--out",
            "runs",
            "--quiet",
            "--model",
            "transformer",
        ],
    );
    let summary: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("runs/wt/transformer/summary.json")).unwrap(),
    )
    .unwrap();
    let eval = json_of(&mnemo_in(
        dir.path(),
        &["eval", "runs/wt/transformer", "--split", "valid", "--json"],
    ));
    assert_eq!(eval["ppl"], summary["valid"]["ppl"], "{eval}");
    let ppl = eval["ppl"].as_f64().unwrap();
    let vocab: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("runs/wt/transformer/vocab.json")).unwrap(),
    )
    .unwrap();
    let v = vocab["tokens"].as_array().unwrap().len() as f64;
    assert!(
        ppl.is_finite() && ppl > 1.0 && ppl < v,
        "ppl {ppl}, vocabulary {v}"
    );
    assert!((ppl - eval["loss"].as_f64().unwrap().exp()).abs() < 1e-9 * ppl);
    assert!(eval.get("bpc").is_none());
}
