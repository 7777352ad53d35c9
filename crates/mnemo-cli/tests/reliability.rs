//! Issue 14 through the binary: concurrent runs are locked out, sizes that cannot fit are config
//! errors instead of an allocation abort, every error says its cause once, and `generate`
//! refuses an infinite temperature and reads long prompts from a file.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_fails, assert_fails_naming, mnemo, smoke_config, stderr, train, utf8};

/// The smoke config with `replace` applied, written into `dir`.
fn smoke_with(dir: &Path, name: &str, replace: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(smoke_config()).unwrap();
    for (from, to) in replace {
        assert!(text.contains(from), "{from}");
        text = text.replace(from, to);
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn two_concurrent_trains_one_runs_the_other_exits_2_naming_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runs");
    let out_s = out.to_str().unwrap();
    let long = smoke_with(
        dir.path(),
        "long.toml",
        &[
            ("steps = 12", "steps = 1000000"),
            ("checkpoint_every = 6", "checkpoint_every = 1"),
        ],
    );
    let long_s = long.to_str().unwrap();
    let args = [
        "train",
        long_s,
        "--out",
        out_s,
        "--model",
        "transformer",
        "--quiet",
    ];
    let mut first = Command::new(env!("CARGO_BIN_EXE_mnemo"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = first.id();
    let run = out.join("smoke-tiny/transformer");
    let lock = run.join("run.lock");
    // Wait (not a timing assertion: a generous bound on a machine that may be slow) until the
    // first process holds the lock and has written a checkpoint.
    let deadline = Instant::now() + Duration::from_secs(300);
    while !(std::fs::read_to_string(&lock).is_ok_and(|t| t == pid.to_string())
        && run.join("checkpoint.mnemo").is_file())
    {
        if let Some(status) = first.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(first.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("the first train exited early ({status}): {err}");
        }
        assert!(Instant::now() < deadline, "no lock after 300 s");
        std::thread::sleep(Duration::from_millis(50));
    }

    // A second `train` into the same directory, and a `--resume` of it, are refused.
    for extra in [None, Some("--resume")] {
        let mut second: Vec<&str> = args.to_vec();
        second.extend(extra);
        let err = assert_fails(&mnemo(&second));
        assert!(
            err.contains(&lock.display().to_string())
                && err.contains(&format!("pid {pid}"))
                && err.contains("locked"),
            "{extra:?}: {err}"
        );
    }
    assert!(first.try_wait().unwrap().is_none(), "the first run goes on");

    // Killed, it leaves its pid in the lock; the next `--resume` takes over and says so.
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), pid.to_string());
    let short = smoke_with(dir.path(), "short.toml", &[("steps = 12", "steps = 2")]);
    let resumed = train(&short, &out, &["--model", "transformer", "--resume"]);
    let err = stderr(&resumed);
    assert!(resumed.status.success(), "{err}");
    assert!(
        err.contains(&format!("process {pid} was killed")),
        "the stale lock is reported: {err}"
    );
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap(),
        "",
        "released on exit"
    );
    assert!(!run.join("checkpoint.mnemo.tmp").exists());
}

#[test]
fn huge_sizes_exit_2_naming_the_field_instead_of_aborting() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runs");
    for (from, to, field) in [
        (
            "d_model = 32\nn_layers = 2\nn_heads = 2\nd_ff = 64\nspan = 8",
            "d_model = 1000000000\nn_layers = 2\nn_heads = 2\nd_ff = 64\nspan = 8",
            "models.feedback.d_model",
        ),
        (
            "d_ff = 64\nspan = 8",
            "d_ff = 1000000000000\nspan = 8",
            "models.feedback.d_ff",
        ),
        (
            "train_programs = 50",
            "train_programs = 1000000000000",
            "data.train_programs",
        ),
        (
            "batch_size = 4",
            "batch_size = 100000000000",
            "train.batch_size",
        ),
    ] {
        let config = smoke_with(dir.path(), "huge.toml", &[(from, to)]);
        let output = train(&config, &out, &["--model", "feedback", "--quiet"]);
        let err = assert_fails_naming(&output, &[field, "memory"]);
        assert!(!err.contains("allocation"), "{to}: {err}");
    }
    assert!(!out.join("smoke-tiny/feedback/checkpoint.mnemo").exists());
}

#[test]
fn an_io_error_says_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    // `--out` is a file: the run directory cannot be created under it.
    let out = dir.path().join("not-a-dir");
    std::fs::write(&out, "").unwrap();
    let err = assert_fails_naming(&train(&smoke_config(), &out, &["--quiet"]), &["not-a-dir"]);
    assert_eq!(err.matches("os error").count(), 1, "{err}");
}

#[test]
fn generate_refuses_an_infinite_temperature_and_reads_a_prompt_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runs");
    let trained = train(
        &smoke_config(),
        &out,
        &["--model", "transformer", "--quiet"],
    );
    assert!(trained.status.success(), "{}", stderr(&trained));
    let run = out.join("smoke-tiny/transformer");
    let run_s = run.to_str().unwrap();
    let prompt = "x = 4 ; print x ;";

    let err = assert_fails_naming(
        &mnemo(&[
            "generate",
            run_s,
            "--prompt",
            prompt,
            "--temperature",
            "inf",
        ]),
        &["--temperature", "finite"],
    );
    assert!(!err.contains(">= 0"), "{err}");

    let file = dir.path().join("prompt.txt");
    std::fs::write(&file, format!("{prompt}\n")).unwrap();
    let from_arg = mnemo(&["generate", run_s, "--prompt", prompt]);
    let from_file = mnemo(&["generate", run_s, "--prompt-file", file.to_str().unwrap()]);
    assert!(from_file.status.success(), "{}", stderr(&from_file));
    assert_eq!(from_arg.stdout, from_file.stdout);
    assert!(String::from_utf8_lossy(&from_file.stdout).contains("generated:"));

    let missing = dir.path().join("missing.txt");
    assert_fails_naming(
        &mnemo(&["generate", run_s, "--prompt-file", utf8(&missing)]),
        &["missing.txt", "--prompt-file"],
    );
}
