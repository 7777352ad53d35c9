//! The error type of `mnemo-data`.

use thiserror::Error;

/// Everything that can go wrong while configuring, generating, encoding or batching data.
///
/// Messages name the offending field, token or position so that a user can fix the input
/// without reading the source.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DataError {
    /// A configuration field is out of range; `field` is its path as written under `[data]`
    /// in an experiment config (e.g. `data.variables`).
    #[error("{field} {reason}")]
    InvalidConfig {
        /// Path of the offending field, e.g. `data.variables`.
        field: String,
        /// What is wrong, e.g. `must be 3 or 5, got 4`.
        reason: String,
    },
    /// A function argument is out of range (e.g. a batch size of zero).
    #[error("{name} {reason}")]
    InvalidArgument {
        /// Name of the argument.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A token is not in the vocabulary.
    #[error("unknown token `{token}`: it is not in the vocabulary")]
    UnknownToken {
        /// The token that was looked up.
        token: String,
    },
    /// A token id is outside the vocabulary.
    #[error("unknown token id {id}: the vocabulary has {len} tokens")]
    UnknownId {
        /// The id that was looked up.
        id: u32,
        /// Size of the vocabulary.
        len: usize,
    },
    /// A serialised vocabulary is inconsistent (empty, duplicated tokens, misplaced specials).
    #[error("invalid vocabulary: {0}")]
    InvalidVocab(String),
    /// A code-execution token stream does not parse.
    #[error("malformed program at token {index} (`{token}`): {reason}")]
    Malformed {
        /// Index of the offending token in the whole stream.
        index: usize,
        /// The offending token (`<end of input>` past the end).
        token: String,
        /// What was expected or what went wrong.
        reason: String,
    },
    /// Inputs and targets of a labelled stream differ in length.
    #[error("inputs have {inputs} tokens but targets have {targets}")]
    LengthMismatch {
        /// Number of input tokens.
        inputs: usize,
        /// Number of target tokens.
        targets: usize,
    },
    /// A stream is too short to give every batch row at least one full segment.
    #[error(
        "stream of {len} tokens is too short for {batch} rows of at least one \
         {segment_len}-token segment (needs {needed})"
    )]
    StreamTooShort {
        /// Length of the stream.
        len: usize,
        /// Requested number of rows.
        batch: usize,
        /// Requested segment length.
        segment_len: usize,
        /// Minimum stream length for this batch and segment length.
        needed: usize,
    },
    /// A corpus file named by a config field cannot be read or is malformed.
    #[error("{field}: {path}: {reason}")]
    File {
        /// The config field (or argument) that names the file, e.g. `data.path`.
        field: String,
        /// The file, as given (relative paths resolve against the current directory).
        path: String,
        /// What went wrong, e.g. `No such file or directory (os error 2); run scripts/setup-data.sh`.
        reason: String,
    },
}

impl DataError {
    /// Shorthand for [`DataError::File`].
    pub fn file(
        field: impl Into<String>,
        path: &std::path::Path,
        reason: impl Into<String>,
    ) -> Self {
        Self::File {
            field: field.into(),
            path: path.display().to_string(),
            reason: reason.into(),
        }
    }

    /// A [`DataError::File`] from an I/O error; a missing file points at `scripts/setup-data.sh`.
    pub fn io(field: impl Into<String>, path: &std::path::Path, e: &std::io::Error) -> Self {
        let reason = match e.kind() {
            std::io::ErrorKind::NotFound => {
                format!("{e}; run scripts/setup-data.sh or fix the path")
            }
            _ => e.to_string(),
        };
        Self::file(field, path, reason)
    }

    /// `Ok` when the count `value` is at least 1 (not zero); otherwise [`DataError::InvalidConfig`] of `field`,
    /// `must be at least 1, got 0`.
    pub(crate) fn require_positive<T: Default + PartialEq>(
        field: impl Into<String>,
        value: T,
    ) -> Result<(), Self> {
        match value == T::default() {
            true => Err(Self::config(field, "must be at least 1, got 0")),
            false => Ok(()),
        }
    }

    /// Shorthand for [`DataError::InvalidConfig`].
    pub(crate) fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidConfig {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
