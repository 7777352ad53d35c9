//! Running the `mnemo` binary from the integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Run `mnemo args...` in `dir` and collect its output.
pub fn mnemo_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mnemo"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run mnemo")
}

/// The stderr of a run, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
