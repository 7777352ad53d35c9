//! `metrics.jsonl`: one JSON object per line, appended as training goes.
//!
//! ```text
//! {"step":10,"split":"train","loss":1.93,"accuracy":0.31,"lr":0.003,"tokens_per_s":812.5,"elapsed_s":0.8}
//! {"step":10,"split":"valid","loss":1.88,"accuracy":0.33,"scored":412,"elapsed_s":0.8}
//! ```
//!
//! `elapsed_s` is the training time so far (all sessions, evaluation excluded). A resumed run
//! first drops the lines logged after its checkpoint's step (they belong to the part of the
//! interrupted session that is about to be redone) and any final `test` line, so the file reads
//! as if the run had never stopped.
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::TrainError;

/// An open `metrics.jsonl`.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    file: File,
}

impl MetricsLog {
    /// Start a new log (truncating any old one).
    pub fn create(path: &Path) -> Result<Self, TrainError> {
        let file =
            File::create(path).map_err(|e| TrainError::io(path, "cannot create metrics log", e))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Continue a log after a checkpoint at `step`: lines of later steps are dropped.
    pub fn resume(path: &Path, step: u64) -> Result<Self, TrainError> {
        let kept: Vec<String> = match File::open(path) {
            Ok(file) => BufReader::new(file)
                .lines()
                .map_while(Result::ok)
                .filter(|line| {
                    serde_json::from_str::<Value>(line).is_ok_and(|v| {
                        let at = v.get("step").and_then(Value::as_u64);
                        // Test results are final; the resumed run writes its own.
                        at.is_some_and(|s| s <= step)
                            && v.get("split").and_then(Value::as_str) != Some("test")
                    })
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        let mut log = Self::create(path)?;
        for line in kept {
            writeln!(log.file, "{line}")
                .map_err(|e| TrainError::io(path, "cannot write metrics log", e))?;
        }
        Ok(log)
    }

    /// Append one record.
    pub fn append(&mut self, record: &Value) -> Result<(), TrainError> {
        writeln!(self.file, "{record}")
            .and_then(|()| self.file.flush())
            .map_err(|e| TrainError::io(&self.path, "cannot write metrics log", e))
    }

    /// Read every record of a log.
    pub fn read(path: &Path) -> Result<Vec<Value>, TrainError> {
        let file =
            File::open(path).map_err(|e| TrainError::io(path, "cannot read metrics log", e))?;
        BufReader::new(file)
            .lines()
            .enumerate()
            .map(|(i, line)| {
                let line = line.map_err(|e| TrainError::io(path, "cannot read metrics log", e))?;
                serde_json::from_str(&line).map_err(|e| TrainError::BadFile {
                    path: path.to_path_buf(),
                    message: format!("line {}: {e}", i + 1),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn resume_drops_lines_after_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let mut log = MetricsLog::create(&path).unwrap();
        for step in 1..=5 {
            log.append(&json!({"step": step, "split": "train"}))
                .unwrap();
        }
        log.append(&json!({"step": 3, "split": "test"})).unwrap();
        drop(log);
        let mut log = MetricsLog::resume(&path, 3).unwrap();
        log.append(&json!({"step": 4, "split": "train", "again": true}))
            .unwrap();
        let steps: Vec<u64> = MetricsLog::read(&path)
            .unwrap()
            .iter()
            .map(|v| v["step"].as_u64().unwrap())
            .collect();
        assert_eq!(steps, [1, 2, 3, 4]);
    }
}
