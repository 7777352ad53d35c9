//! The one error type of mnemo-analysis: what went wrong and where (file, run, flag).
use std::path::PathBuf;

use mnemo_train::TrainError;

/// An analysis or report failure.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// Loading or evaluating the run failed.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// A file could not be read or written.
    #[error("{path}: {what}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// A file that exists but does not hold what it should.
    #[error("{path}: {message}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The analysis does not apply (e.g. `memory` of a Transformer); names the flag or model.
    #[error("{what}: {reason}")]
    Unsupported {
        /// The run, model or flag.
        what: String,
        /// Why.
        reason: String,
    },
    /// Drawing a chart failed.
    #[error("{path}: cannot draw: {message}")]
    Draw {
        /// The figure being written.
        path: PathBuf,
        /// The backend's message.
        message: String,
    },
}

impl AnalysisError {
    /// An [`AnalysisError::Io`] error.
    pub fn io(path: impl Into<PathBuf>, what: &'static str, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            what,
            source,
        }
    }
}
