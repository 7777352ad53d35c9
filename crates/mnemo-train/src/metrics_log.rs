//! `metrics.jsonl`: one JSON object per line, appended as training goes.
//!
//! ```text
//! {"step":10,"split":"train","loss":1.93,"accuracy":0.31,"lr":0.003,"tokens_per_s":812.5,"elapsed_s":0.8}
//! {"step":10,"split":"valid","loss":1.88,"accuracy":0.33,"scored":412,"elapsed_s":0.8}
//! ```
//!
//! `elapsed_s` is the training time so far (all sessions, evaluation excluded). Non-finite
//! values are written as `"NaN"`, `"inf"` or `"-inf"` ([`float_repr`](crate::float_repr)).
//!
//! Each record goes to the file in one `write` of the whole line on a file opened for
//! appending, so a killed run leaves at most one partial last line. A resumed run first drops
//! the lines logged after its checkpoint's step (they belong to the part of the interrupted
//! session that is about to be redone) and any final `test` line, so the file reads as if the
//! run had never stopped; it rewrites the file atomically (`.tmp` and rename). Lines that are
//! not UTF-8 or not JSON (a partial last line, a damaged byte) are reported by number and
//! skipped ([`MetricsLog::skipped`]); the lines after them are kept.
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::checkpoint::tmp_path;
use crate::error::TrainError;

/// A line of a metrics log that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// Why it could not be read.
    pub reason: String,
}

/// An open `metrics.jsonl`.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    file: File,
    skipped: Vec<BadLine>,
}

impl MetricsLog {
    /// Start a new log (truncating any old one).
    pub fn create(path: &Path) -> Result<Self, TrainError> {
        File::create(path).map_err(|e| TrainError::io(path, "cannot create metrics log", e))?;
        Self::open_append(path, Vec::new())
    }

    fn open_append(path: &Path, skipped: Vec<BadLine>) -> Result<Self, TrainError> {
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| TrainError::io(path, "cannot open metrics log", e))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            skipped,
        })
    }

    /// Continue a log after a checkpoint at `step`: lines of later steps, and unreadable
    /// lines ([`MetricsLog::skipped`]), are dropped.
    pub fn resume(path: &Path, step: u64) -> Result<Self, TrainError> {
        let (records, skipped) = match path.is_file() {
            true => Self::read_tolerant(path)?,
            false => (Vec::new(), Vec::new()),
        };
        let mut text = Vec::new();
        for (_, record) in records {
            let at = record.get("step").and_then(Value::as_u64);
            // Test results are final; the resumed run writes its own.
            if at.is_some_and(|s| s <= step)
                && record.get("split").and_then(Value::as_str) != Some("test")
            {
                text.extend(line_of(&record));
            }
        }
        let tmp = tmp_path(path);
        let written = std::fs::write(&tmp, &text)
            .map_err(|e| TrainError::io(&tmp, "cannot write metrics log", e))
            .and_then(|()| {
                std::fs::rename(&tmp, path)
                    .map_err(|e| TrainError::io(path, "cannot replace metrics log", e))
            });
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written?;
        Self::open_append(path, skipped)
    }

    /// The lines [`MetricsLog::resume`] could not read and dropped.
    pub fn skipped(&self) -> &[BadLine] {
        &self.skipped
    }

    /// Append one record, as one write of the whole line.
    pub fn append(&mut self, record: &Value) -> Result<(), TrainError> {
        self.file
            .write_all(&line_of(record))
            .map_err(|e| TrainError::io(&self.path, "cannot write metrics log", e))
    }

    /// Read every record of a log; the first unreadable line is an error naming it.
    pub fn read(path: &Path) -> Result<Vec<Value>, TrainError> {
        let (records, skipped) = Self::read_tolerant(path)?;
        match skipped.first() {
            Some(bad) => Err(TrainError::BadFile {
                path: path.to_path_buf(),
                message: format!("line {}: {}", bad.line, bad.reason),
            }),
            None => Ok(records.into_iter().map(|(_, v)| v).collect()),
        }
    }

    /// Read every readable record of a log with its 1-based line number, and the lines that
    /// are not UTF-8 or not a JSON object. Empty lines are neither.
    #[allow(clippy::type_complexity)]
    pub fn read_tolerant(path: &Path) -> Result<(Vec<(usize, Value)>, Vec<BadLine>), TrainError> {
        let bytes =
            std::fs::read(path).map_err(|e| TrainError::io(path, "cannot read metrics log", e))?;
        let mut records = Vec::new();
        let mut skipped = Vec::new();
        for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = i + 1;
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let parsed = std::str::from_utf8(raw)
                .map_err(|e| format!("not UTF-8 ({e})"))
                .and_then(|text| {
                    serde_json::from_str::<Value>(text).map_err(|e| format!("not JSON ({e})"))
                })
                .and_then(|value| match value.is_object() {
                    true => Ok(value),
                    false => Err("not a JSON object".to_string()),
                });
            match parsed {
                Ok(value) => records.push((line, value)),
                Err(reason) => skipped.push(BadLine { line, reason }),
            }
        }
        Ok((records, skipped))
    }
}

/// `record` as one line of the log, newline included.
fn line_of(record: &Value) -> Vec<u8> {
    let mut line = serde_json::to_vec(record).expect("JSON values serialise");
    line.push(b'\n');
    line
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
        assert!(log.skipped().is_empty());
        log.append(&json!({"step": 4, "split": "train", "again": true}))
            .unwrap();
        let steps: Vec<u64> = MetricsLog::read(&path)
            .unwrap()
            .iter()
            .map(|v| v["step"].as_u64().unwrap())
            .collect();
        assert_eq!(steps, [1, 2, 3, 4]);
        assert!(!tmp_path(&path).exists());
    }

    #[test]
    fn a_bad_line_is_reported_and_the_lines_after_it_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let mut bytes = Vec::new();
        bytes.extend(b"{\"step\":1,\"split\":\"train\"}\n");
        bytes.extend(b"{\"step\":2,\"split\":\"tr\xffain\"}\n"); // not UTF-8
        bytes.extend(b"{\"step\":3,\"split\":\"train\"}\n");
        bytes.extend(b"{\"step\":4,\"spl"); // cut off by a kill
        std::fs::write(&path, &bytes).unwrap();

        let msg = MetricsLog::read(&path).unwrap_err().to_string();
        assert!(
            msg.contains("metrics.jsonl") && msg.contains("line 2") && msg.contains("UTF-8"),
            "{msg}"
        );
        let log = MetricsLog::resume(&path, 10).unwrap();
        let lines: Vec<usize> = log.skipped().iter().map(|b| b.line).collect();
        assert_eq!(lines, [2, 4]);
        drop(log);
        let steps: Vec<u64> = MetricsLog::read(&path)
            .unwrap()
            .iter()
            .map(|v| v["step"].as_u64().unwrap())
            .collect();
        assert_eq!(steps, [1, 3]);
    }
}
