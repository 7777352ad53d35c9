//! Fingerprints of the data files a run reads, saved in its checkpoint and checked on resume.
//!
//! Generated data is identified by its generator config (`[data]`, compared on resume with the
//! rest of the config); data read from files is identified by each file's size and SHA-256
//! ([`FileFingerprint`]), the files a task names through
//! [`Task::data_files`](crate::task::Task::data_files). A resumed run whose files changed since
//! the checkpoint, even with the same size, is refused naming the file, unless
//! `--allow-data-change` ([`TrainOptions::allow_data_change`](crate::TrainOptions)).
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::checkpoint::CheckpointError;
use crate::error::TrainError;

/// Size and SHA-256 of one data file, as read when the run started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileFingerprint {
    /// The file, as the config names it (relative paths against the working directory).
    pub path: PathBuf,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
}

impl FileFingerprint {
    /// Read `path` and fingerprint it.
    pub fn of(path: &Path) -> Result<Self, TrainError> {
        let io = |e| TrainError::io(path, "cannot read data file to fingerprint it", e);
        let mut file = File::open(path).map_err(io)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut bytes = 0u64;
        loop {
            let n = file.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            bytes += n as u64;
        }
        let sha256 = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self {
            path: path.to_path_buf(),
            bytes,
            sha256,
        })
    }
}

/// Fingerprints of `paths`, in order.
pub fn fingerprint_files(paths: &[PathBuf]) -> Result<Vec<FileFingerprint>, TrainError> {
    paths.iter().map(|p| FileFingerprint::of(p)).collect()
}

/// Refuse to resume the checkpoint at `checkpoint` (whose data was `saved`) on data `now`
/// unless they are the same files with the same content; the error names the first file that
/// differs.
pub fn check_same_data(
    saved: &[FileFingerprint],
    now: &[FileFingerprint],
    checkpoint: &Path,
) -> Result<(), CheckpointError> {
    let changed = |what: String| {
        CheckpointError::mismatch(
            checkpoint,
            format!(
                "{what} since this checkpoint was written; resuming would train on other data \
                 (pass --allow-data-change to resume anyway)"
            ),
        )
    };
    for old in saved {
        let Some(new) = now.iter().find(|f| f.path == old.path) else {
            return Err(changed(format!(
                "data file {} is no longer read",
                old.path.display()
            )));
        };
        if new.bytes != old.bytes {
            return Err(changed(format!(
                "data file {} changed from {} to {} bytes",
                old.path.display(),
                old.bytes,
                new.bytes
            )));
        }
        if new.sha256 != old.sha256 {
            return Err(changed(format!(
                "data file {} changed (same size, other content: sha256 {} was {})",
                old.path.display(),
                &new.sha256[..12.min(new.sha256.len())],
                &old.sha256[..12.min(old.sha256.len())]
            )));
        }
    }
    if let Some(new) = now.iter().find(|f| !saved.iter().any(|s| s.path == f.path)) {
        // A checkpoint written before fingerprints were saved has none: nothing to compare.
        if !saved.is_empty() {
            return Err(changed(format!(
                "data file {} is read now but was not",
                new.path.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_other_bytes_is_a_change_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corpus.txt");
        std::fs::write(&path, "abcdef").unwrap();
        let before = fingerprint_files(std::slice::from_ref(&path)).unwrap();
        assert_eq!(before[0].bytes, 6);
        assert_eq!(
            before[0].sha256,
            "bef57ec7f53a6d40beb640a780a639c83bc29ac8a9816f1fc6c5c6dcd93c4721"
        );
        let ckpt = Path::new("run/checkpoint.mnemo");
        check_same_data(&before, &before, ckpt).unwrap();
        std::fs::write(&path, "abcdeF").unwrap();
        let after = fingerprint_files(std::slice::from_ref(&path)).unwrap();
        let msg = check_same_data(&before, &after, ckpt)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("corpus.txt")
                && msg.contains("same size")
                && msg.contains("--allow-data-change"),
            "{msg}"
        );
        std::fs::write(&path, "abc").unwrap();
        let shorter = fingerprint_files(std::slice::from_ref(&path)).unwrap();
        let msg = check_same_data(&before, &shorter, ckpt)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("from 6 to 3 bytes"), "{msg}");
        // Checkpoints without fingerprints resume as before.
        check_same_data(&[], &after, ckpt).unwrap();
    }
}
