//! `mnemo bleu` against scores sacrebleu 2.6.0 computed (mnemo-train's
//! `tests/fixtures/bleu/sacrebleu_refs.json`), from files and from stdin; `mnemo runs` on a
//! trained smoke run, a run still in progress (metrics.jsonl only) and bad directories.
mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{assert_fails_naming, mnemo, stderr, trained_smoke_feedback, utf8};
use serde_json::Value;

fn sacrebleu_corpora() -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mnemo-train/tests/fixtures/bleu/sacrebleu_refs.json");
    let refs: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    refs["corpora"].as_array().unwrap().clone()
}

fn lines(value: &Value) -> Option<String> {
    let segments: Vec<&str> = value
        .as_array()?
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let usable = !segments.is_empty() && segments.iter().all(|s| !s.contains(['\n', '\r']));
    usable.then(|| segments.iter().map(|s| format!("{s}\n")).collect())
}

#[test]
fn bleu_prints_sacrebleus_line_and_json_for_files_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for corpus in sacrebleu_corpora() {
        let (Some(hyps), Some(refs)) = (lines(&corpus["hypotheses"]), lines(&corpus["references"]))
        else {
            continue;
        };
        let name = corpus["name"].as_str().unwrap();
        let (hyp, reference) = (dir.path().join("hyp.txt"), dir.path().join("ref.txt"));
        std::fs::write(&hyp, &hyps).unwrap();
        std::fs::write(&reference, &refs).unwrap();
        let out = mnemo(&["bleu", utf8(&reference), utf8(&hyp)]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let expected = corpus["string"].as_str().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim_end(),
            expected,
            "{name}"
        );

        let out = mnemo(&["bleu", utf8(&reference), utf8(&hyp), "--json"]);
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        // The exact f64 sacrebleu computed, and its parts.
        assert_eq!(
            json["score"].as_f64().unwrap().to_bits(),
            corpus["score_bits"].as_u64().unwrap(),
            "{name}"
        );
        for field in ["counts", "totals", "sys_len", "ref_len"] {
            assert_eq!(json[field], corpus[field], "{name}: {field}");
        }
        assert!(expected.ends_with(json["verbose_score"].as_str().unwrap()));

        // HYP from stdin.
        let mut child = Command::new(env!("CARGO_BIN_EXE_mnemo"))
            .args(["bleu", utf8(&reference)])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(hyps.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim_end(),
            expected,
            "{name} (stdin)"
        );
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} corpora checked");
}

#[test]
fn bleu_refuses_line_count_mismatch_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let (hyp, reference) = (dir.path().join("hyp.txt"), dir.path().join("ref.txt"));
    std::fs::write(&hyp, "a b c\n").unwrap();
    std::fs::write(&reference, "a b c\nd e f\n").unwrap();
    assert_fails_naming(
        &mnemo(&["bleu", utf8(&reference), utf8(&hyp)]),
        &["has 1 lines", "ref.txt has 2"],
    );
    assert_fails_naming(
        &mnemo(&["bleu", utf8(&dir.path().join("none.txt")), utf8(&hyp)]),
        &["REF", "none.txt"],
    );
}

#[test]
fn runs_lists_finished_and_unfinished_runs() {
    let out = tempfile::tempdir().unwrap();
    let run = trained_smoke_feedback(out.path());
    let summary: Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    // A second run, stopped before its summary: config and metrics only.
    let partial = out.path().join("other/transformer");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(
        partial.join("config.toml"),
        "[run]\nname = \"other\"\n\n[models.transformer]\nkind = \"transformer\"\n",
    )
    .unwrap();
    std::fs::write(
        partial.join("metrics.jsonl"),
        concat!(
            r#"{"accuracy":0.1,"loss":2.5,"scored":10,"split":"train","step":3}"#,
            "\n",
            r#"{"accuracy":0.25,"loss":2.0,"scored":12,"split":"valid","step":6}"#,
            "\n",
            r#"{"accuracy":0.125,"loss":2.1,"scored":12,"split":"valid","step":9}"#,
            "\n",
            r#"{"accuracy":0.2,"loss":1.9,"scored":10,"split":"train","step":12}"#,
            "\n",
        ),
    )
    .unwrap();
    // Not a run: no config.
    std::fs::create_dir_all(out.path().join("notes")).unwrap();

    let listed = mnemo(&["runs", utf8(out.path())]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let text = String::from_utf8_lossy(&listed.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    // Sorted by path: other/ before smoke-tiny/.
    assert!(lines[0].starts_with(utf8(&partial)), "{text}");
    assert!(
        lines[0].ends_with(
            "transformer  transformer  step 12  (running or stopped)  valid acc 12.50%  \
             (best acc 25.00% at step 6)"
        ),
        "{text}"
    );
    let acc = |m: &Value| format!("acc {:.2}%", 100.0 * m["accuracy"].as_f64().unwrap());
    let expected = format!(
        "feedback  feedback  step 12  valid {}  (best {} at step {})  test {}",
        acc(&summary["valid"]),
        acc(&summary["best_valid"][1]),
        summary["best_valid"][0],
        acc(&summary["test"])
    );
    assert!(lines[1].starts_with(utf8(&run)), "{text}");
    assert!(lines[1].ends_with(&expected), "{text}\nexpected {expected}");

    // One run directory lists itself; a missing DIR exits 2 naming it.
    let one = mnemo(&["runs", utf8(&run)]);
    assert_eq!(String::from_utf8_lossy(&one.stdout).lines().count(), 1);
    assert_fails_naming(&mnemo(&["runs", "/no/such/runs"]), &["/no/such/runs"]);
}
