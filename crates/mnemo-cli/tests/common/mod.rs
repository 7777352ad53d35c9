//! Running the `mnemo` binary from the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Run `mnemo args...` in `dir` and collect its output.
pub fn mnemo_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mnemo"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run mnemo")
}

/// Run `mnemo args...` in `dir`, which must succeed, and collect its output.
pub fn mnemo_ok_in(dir: &Path, args: &[&str]) -> Output {
    let out = mnemo_in(dir, args);
    assert!(out.status.success(), "mnemo {args:?}: {}", stderr(&out));
    out
}

/// The stderr of a run, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Run `mnemo args...` in the current directory.
pub fn mnemo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mnemo"))
        .args(args)
        .output()
        .expect("run mnemo")
}

/// `experiments/smoke/tiny.toml`: the seconds-long config CI runs.
pub fn smoke_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/smoke/tiny.toml")
}

/// Exit code 2 and a single-line message on stderr; returns the message.
pub fn assert_fails(out: &Output) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected: {err}"
    );
    err
}

/// Run `mnemo train CONFIG --out OUT extra...` in the current directory.
pub fn train(config: &Path, out: &Path, extra: &[&str]) -> Output {
    let args = ["train", utf8(config), "--out", utf8(out)];
    mnemo(&[&args[..], extra].concat())
}

/// Train the smoke config's Feedback model quietly under `out`; its run directory.
pub fn trained_smoke_feedback(out: &Path) -> PathBuf {
    let trained = train(&smoke_config(), out, &["--model", "feedback", "--quiet"]);
    assert!(trained.status.success(), "{}", stderr(&trained));
    out.join("smoke-tiny/feedback")
}

/// A path as a command-line argument.
pub fn utf8(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// [`assert_fails`], and the message names each of `names`; returns the message.
pub fn assert_fails_naming(out: &Output, names: &[&str]) -> String {
    let err = assert_fails(out);
    assert_names(&err, names);
    err
}

/// Exit code 2 and each of `names` on stderr (which may run over several lines); returns
/// stderr.
pub fn assert_exit_2_naming(out: &Output, names: &[&str]) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert_names(&err, names);
    err
}

/// `text` contains each of `names`.
fn assert_names(text: &str, names: &[&str]) {
    for name in names {
        assert!(text.contains(name), "`{name}` not named: {text}");
    }
}
