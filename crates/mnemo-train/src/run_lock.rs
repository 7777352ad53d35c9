//! The exclusive lock on a run directory, held for the whole of a training run.
//!
//! `run.lock` in the run directory carries an advisory lock ([`File::try_lock`], `flock` on
//! Unix) for as long as a [`RunLock`] lives, and the process id of its holder. A second
//! `train` or `--resume` on the same directory gets [`TrainError::RunLocked`] naming the lock
//! and the holder, instead of sharing the checkpoint's `.tmp` file or mixing configs.
//!
//! The operating system drops the lock when its process dies, however it dies; a clean exit
//! also empties the file. So a lock file that still names a process but is not locked was left
//! by a process that was killed: the next run takes it over and reports that process
//! ([`RunLock::stale`]). On a file system without `flock` the process id alone decides (a
//! holder that is still running keeps the directory).
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::TrainError;
use crate::run_dir::RunDir;

/// A held lock on a run directory; released (and its file emptied) when dropped.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
    stale: Option<u32>,
}

impl RunLock {
    /// Lock `dir` (created if missing) for this process, or fail with
    /// [`TrainError::RunLocked`] when another process holds it.
    pub fn acquire(dir: &RunDir) -> Result<Self, TrainError> {
        std::fs::create_dir_all(dir.path())
            .map_err(|e| TrainError::io(dir.path(), "cannot create run directory", e))?;
        let path = dir.lock();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| TrainError::io(&path, "cannot open the run lock", e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(TrainError::RunLocked {
                    lock: path,
                    pid: holder(&mut file),
                });
            }
            Err(TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                // No flock here: trust the process id.
                if let Some(pid) = holder(&mut file).filter(|&p| is_running(p) == Some(true)) {
                    return Err(TrainError::RunLocked {
                        lock: path,
                        pid: Some(pid),
                    });
                }
            }
            Err(TryLockError::Error(e)) => {
                return Err(TrainError::io(&path, "cannot lock the run directory", e));
            }
        }
        let stale = holder(&mut file).filter(|&p| p != std::process::id());
        let pid = std::process::id().to_string();
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(pid.as_bytes()))
            .and_then(|()| file.sync_all())
            .map_err(|e| TrainError::io(&path, "cannot write the run lock", e))?;
        Ok(Self { file, path, stale })
    }

    /// The process id a previous holder left in the lock file when it did not exit cleanly
    /// (killed, or crashed), if any: the run it was writing was interrupted.
    pub fn stale(&self) -> Option<u32> {
        self.stale
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Empty the file first, so that the next holder does not report this one as killed.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// The process id written in an open lock file, if any.
fn holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Whether process `pid` is running (`None` where this cannot be told).
fn is_running(pid: u32) -> Option<bool> {
    let proc = Path::new("/proc");
    proc.is_dir().then(|| proc.join(pid.to_string()).exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::at(tmp.path().join("run"));
        let first = RunLock::acquire(&dir).unwrap();
        assert_eq!(first.stale(), None);
        let err = RunLock::acquire(&dir).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&dir.lock().display().to_string())
                && msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        drop(first);
        assert_eq!(std::fs::read_to_string(dir.lock()).unwrap(), "");
        let again = RunLock::acquire(&dir).unwrap();
        assert_eq!(again.stale(), None, "a clean release is not stale");
    }

    #[test]
    fn a_lock_file_left_by_a_dead_process_is_taken_over_and_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::at(tmp.path());
        // What `kill -9` leaves: the holder's pid, no lock.
        std::fs::write(dir.lock(), "4194303").unwrap();
        let lock = RunLock::acquire(&dir).unwrap();
        assert_eq!(lock.stale(), Some(4_194_303));
        assert_eq!(
            std::fs::read_to_string(dir.lock()).unwrap(),
            std::process::id().to_string()
        );
    }
}
