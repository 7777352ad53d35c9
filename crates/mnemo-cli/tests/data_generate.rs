//! `mnemo data generate code-execution` writes the official format (`{train,valid,test}.txt` +
//! `.txt.labels`, Fan et al. 2020's code), and `task = "labelled_text"` reads it back as exactly
//! the generated task: same streams, and the same training results.
mod common;

use std::path::Path;

use common::{assert_fails_naming, mnemo, smoke_config, stderr, train, utf8};
use mnemo_data::{CodeExecConfig, CodeExecStyle, LabelledTextConfig, TaskConfig};
use serde_json::Value;

/// The smoke config's `[data]`: 3 variables, 10 statements, 50/10/10 programs, seed 1.
fn smoke_data(style: CodeExecStyle) -> CodeExecConfig {
    CodeExecConfig {
        variables: 3,
        statements: 10,
        train_programs: 50,
        valid_programs: 10,
        test_programs: 10,
        seed: 1,
        style,
        curriculum: None,
    }
}

fn generate(out: &Path, style: &str) {
    let args = [
        "data",
        "generate",
        "code-execution",
        "--variables",
        "3",
        "--statements",
        "10",
        "--programs-train",
        "50",
        "--programs-valid",
        "10",
        "--programs-test",
        "10",
        "--seed",
        "1",
        "--style",
        style,
        "--out",
        utf8(out),
    ];
    let run = mnemo(&args);
    assert!(run.status.success(), "{}", stderr(&run));
    let said = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(said.contains("programs 50/10/10"), "{said}");
}

#[test]
fn generated_files_read_back_as_the_code_execution_task() {
    let dir = tempfile::tempdir().unwrap();
    for (style, name) in [
        (CodeExecStyle::Official, "official"),
        (CodeExecStyle::FrontLoaded, "front_loaded"),
    ] {
        let out = dir.path().join(name);
        generate(&out, name);
        for (file, lines) in [
            ("train.txt", 50),
            ("train.txt.labels", 50),
            ("valid.txt", 10),
            ("test.txt.labels", 10),
        ] {
            let text = std::fs::read_to_string(out.join(file)).unwrap();
            assert_eq!(text.lines().count(), lines, "{file}");
        }
        let read = TaskConfig::LabelledText(LabelledTextConfig { dir: out.clone() })
            .build()
            .unwrap();
        let generated = TaskConfig::CodeExecution(smoke_data(style))
            .build()
            .unwrap();
        assert_eq!(read, generated, "{name}");
    }
    let official = std::fs::read(dir.path().join("official/train.txt")).unwrap();
    let front = std::fs::read(dir.path().join("front_loaded/train.txt")).unwrap();
    assert_ne!(official, front, "--style is applied");
}

#[test]
fn bad_sizes_and_styles_exit_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let out = utf8(dir.path());
    let base = ["data", "generate", "code-execution", "--out", out];
    assert_fails_naming(
        &mnemo(&[&base[..], &["--variables", "4"]].concat()),
        &["--variables must be 3 or 5, got 4"],
    );
    assert_fails_naming(
        &mnemo(&[&base[..], &["--programs-valid", "0"]].concat()),
        &["--programs-valid must be at least 1"],
    );
    let run = mnemo(&[&base[..], &["--style", "shuffled"]].concat());
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(stderr(&run).contains("official"), "{}", stderr(&run));
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[test]
fn training_on_the_written_files_equals_training_on_the_generated_task() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    generate(&data, "official");
    let text = std::fs::read_to_string(smoke_config()).unwrap();
    let start = text.find("[data]").unwrap();
    let end = text.find("[train]").unwrap();
    let labelled = format!(
        "{}[data]\ntask = \"labelled_text\"\ndir = {:?}\n\n{}",
        &text[..start],
        utf8(&data),
        &text[end..]
    );
    let configs = dir.path().join("configs");
    std::fs::create_dir_all(&configs).unwrap();
    let mut summaries = Vec::new();
    for (name, config) in [("generated", text.clone()), ("labelled", labelled)] {
        let path = configs.join(format!("{name}.toml"));
        std::fs::write(&path, config).unwrap();
        let out = dir.path().join(name);
        let run = train(&path, &out, &["--model", "transformer", "--quiet"]);
        assert!(run.status.success(), "{name}: {}", stderr(&run));
        let summary = out.join("smoke-tiny/transformer/summary.json");
        let summary: Value = serde_json::from_slice(&std::fs::read(summary).unwrap()).unwrap();
        summaries.push(summary);
    }
    for split in ["valid", "test"] {
        for field in ["loss", "accuracy", "scored"] {
            let (a, b) = (&summaries[0][split][field], &summaries[1][split][field]);
            assert!(!a.is_null(), "{split}.{field}: {}", summaries[0]);
            assert_eq!(a, b, "{split}.{field}");
        }
    }
}
