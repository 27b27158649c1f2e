//! Typed errors of the library.

use std::path::PathBuf;

/// Why an input could not be read (or could only be read in part).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("I/O error: {0}")]
    /// Reading failed.
    Io(#[source] std::io::Error),
    #[error("is a directory")]
    /// A directory was given where a file was expected.
    IsDirectory,
    #[error("age-encrypted, and no identity was given (use --identity FILE)")]
    /// The input is age-encrypted and no identity was given.
    NoIdentity,
    #[error("cannot decrypt: {0}")]
    /// The input could not be decrypted (wrong identity, corrupt or oversized header).
    Age(String),
    #[error("cannot read identity file {path}: {reason}")]
    /// The identity file could not be read.
    Identity {
        /// The identity file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// Errors of the analysis as a whole.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// Nothing could be read; each entry says which input and why.
    #[error("no log line could be read: {}", .0.join("; "))]
    NothingRead(Vec<String>),
    #[error("worker thread failed: {0}")]
    /// A worker thread panicked.
    Worker(String),
}
