//! Why a comparison could not be made.
use mnemo_backend::BackendError;

/// Why a comparison could not be set up or a backend could not run it.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A backend name is unknown or not compiled in; `flag` is the option that named it.
    #[error("{flag}: {source}")]
    Backend {
        /// The option or setting that named the backend, e.g. `--backends`.
        flag: String,
        /// Why the name does not give a device.
        source: BackendError,
    },
    /// The experiment config does not give a model or data to compare on.
    #[error("{0}")]
    Config(String),
    /// The weights could not be copied to a backend.
    #[error("backend `{backend}`: cannot load the shared weights: {message}")]
    Weights {
        /// The backend that refused them.
        backend: String,
        /// burn's reason.
        message: String,
    },
    /// The backend panicked while running the step (no adapter, no driver, missing library).
    #[error("backend `{backend}` failed: {message}")]
    Failed {
        /// The backend that failed.
        backend: String,
        /// The panic message.
        message: String,
    },
}
