//! The error type of training, evaluation and generation.
use std::path::PathBuf;

use mnemo_data::DataError;

use crate::checkpoint::CheckpointError;
use crate::experiment::ConfigError;
use crate::update::Divergence;

/// Everything that can stop a run; each message names the file, field or step involved.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The experiment config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A checkpoint could not be written or read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The data could not be generated or batched.
    #[error("{context}: {source}")]
    Data {
        /// Which split or setting, e.g. `valid split (train.eval_batch_size = 8, ...)`.
        context: String,
        /// The data crate's error.
        source: DataError,
    },
    /// A file could not be read or written.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file of a run directory is malformed.
    #[error("{}: {message}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Training would overwrite a run that already has a checkpoint.
    #[error(
        "{}: a run with a checkpoint already exists here; pass --resume to continue it or choose \
         another --out",
        dir.display()
    )]
    RunExists {
        /// The run directory.
        dir: PathBuf,
    },
    /// The directory is not a run directory.
    #[error("{}: not a run directory ({reason})", dir.display())]
    NotARun {
        /// The directory.
        dir: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// A step's loss, gradient norm or updated weights stopped being finite; nothing of that
    /// step was written.
    #[error(
        "step {step}: {cause}; training stopped before writing anything. {}",
        match kept {
            Some((at, path)) => format!(
                "The last checkpoint (step {at}, every weight finite) is kept at {}: lower \
                 optim.lr or set train.on_nonfinite = \"skip_batch\", then continue it with \
                 --resume",
                path.display()
            ),
            None => "No checkpoint had been written yet: lower optim.lr or set \
                     train.on_nonfinite = \"skip_batch\""
                .to_string(),
        }
    )]
    NonFinite {
        /// The step that diverged.
        step: u64,
        /// What was not finite.
        cause: Divergence,
        /// The step and file of the last checkpoint, if one was written.
        kept: Option<(u64, PathBuf)>,
    },
    /// Another process holds the lock of the run directory.
    #[error(
        "{}: the run directory is locked by {}; wait for it to finish or train into another --out",
        lock.display(),
        match pid {
            Some(pid) => format!("another mnemo process (pid {pid}) training it"),
            None => "another mnemo process training it".to_string(),
        }
    )]
    RunLocked {
        /// The lock file.
        lock: PathBuf,
        /// The process holding it, when known.
        pid: Option<u32>,
    },

    /// A prompt or generation request is invalid.
    #[error("{0}")]
    Generate(String),
    /// A command-line option cannot be honoured; the message names the flag.
    #[error("{flag}: {reason}")]
    Flag {
        /// The flag, e.g. `--mem-len`.
        flag: String,
        /// Why it cannot be honoured.
        reason: String,
    },
}

impl TrainError {
    /// A [`TrainError::Data`] with its context.
    pub fn data(context: impl Into<String>, source: DataError) -> Self {
        Self::Data {
            context: context.into(),
            source,
        }
    }

    /// A [`TrainError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, action: &'static str, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            action,
            source,
        }
    }
}
