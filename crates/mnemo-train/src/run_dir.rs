//! The layout of a run directory: `<out>/<run name>/<model name>/`.
use std::path::{Path, PathBuf};

use crate::checkpoint::CHECKPOINT_FILE;

/// The files of one run (one model of an experiment).
///
/// | file               | written                       | holds                                   |
/// |--------------------|-------------------------------|-----------------------------------------|
/// | `config.toml`      | at the start                  | the resolved single-model experiment    |
/// | `vocab.json`       | at the start                  | the data's vocabulary                   |
/// | `metrics.jsonl`    | every `log_every`/`eval_every`| one JSON object per line                |
/// | `checkpoint.mnemo` | every `checkpoint_every`, end | see [`checkpoint`](crate::checkpoint)   |
/// | `summary.json`     | at the end                    | [`RunSummary`](crate::RunSummary)       |
/// | `run.lock`         | while a process trains here   | its pid; see [`RunLock`](crate::RunLock) |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    dir: PathBuf,
}

impl RunDir {
    /// The run of model `model` of experiment `run_name` under `out`.
    pub fn new(out: &Path, run_name: &str, model: &str) -> Self {
        Self {
            dir: out.join(run_name).join(model),
        }
    }

    /// An existing run directory.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `config.toml`: the resolved single-model config.
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    /// `vocab.json`: the vocabulary.
    pub fn vocab(&self) -> PathBuf {
        self.dir.join("vocab.json")
    }

    /// `metrics.jsonl`: train and valid metrics, one JSON object per line.
    pub fn metrics(&self) -> PathBuf {
        self.dir.join("metrics.jsonl")
    }

    /// `checkpoint.mnemo`: the latest checkpoint.
    pub fn checkpoint(&self) -> PathBuf {
        self.dir.join(CHECKPOINT_FILE)
    }

    /// `run.lock`: the lock of the process training here ([`RunLock`](crate::RunLock)).
    pub fn lock(&self) -> PathBuf {
        self.dir.join("run.lock")
    }

    /// `summary.json`: the final results.
    pub fn summary(&self) -> PathBuf {
        self.dir.join("summary.json")
    }
}
