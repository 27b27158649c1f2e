//! Typed errors of the library.

use std::path::PathBuf;

/// Why an input could not be read (or could only be read in part).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("I/O error: {0}")]
    Io(#[source] std::io::Error),
    #[error("is a directory")]
    IsDirectory,
    #[error("age-encrypted, and no identity was given (use --identity FILE)")]
    NoIdentity,
    #[error("cannot decrypt: {0}")]
    Age(String),
    #[error("cannot read identity file {path}: {reason}")]
    Identity { path: PathBuf, reason: String },
}

/// Errors of the analysis as a whole.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// Nothing could be read; each entry says which input and why.
    #[error("no log line could be read: {}", .0.join("; "))]
    NothingRead(Vec<String>),
    #[error("worker thread failed: {0}")]
    Worker(String),
}

/// Errors of rotation, archival and cleanup.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("encryption: {0}")]
    Encrypt(String),
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl ManageError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| ManageError::Io { op, path, source }
    }
}
