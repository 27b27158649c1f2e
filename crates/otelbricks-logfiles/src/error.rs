//! The one error type of the crate.

use std::path::PathBuf;

/// Why rotation, archival, cleanup or opening a rotating file failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system operation failed; `op` says which, `path` on what.
    #[error("{op} {path}: {source}")]
    Io {
        /// The operation, e.g. `"rename"` or `"fsync directory"`.
        op: &'static str,
        /// The file or directory it was applied to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// [`ManageConfig::pattern`](crate::ManageConfig::pattern) is not a valid glob.
    #[error("invalid file-name pattern {pattern:?}: {source}")]
    Pattern {
        /// The pattern as given.
        pattern: String,
        /// What the glob parser said.
        #[source]
        source: glob::PatternError,
    },
    /// A recipient is not an `age` X25519 public key (`age1...`).
    #[error("invalid age recipient {key:?}: {reason}")]
    Recipient {
        /// The key as given.
        key: String,
        /// What the key parser said.
        reason: String,
    },
    /// Archives should be encrypted but this build has no `age` feature.
    #[error("archive encryption needs the `age` feature of otelbricks-logfiles")]
    NoEncryption,
    /// The `age` encryptor could not be set up.
    #[cfg(feature = "age")]
    #[error("encryption: {0}")]
    Encrypt(#[source] age::EncryptError),
    /// The rotating writer could not be opened.
    #[error("cannot open rotating log file {path}: {reason}")]
    Open {
        /// The active file.
        path: PathBuf,
        /// What the rotating writer said.
        reason: String,
    },
}

impl Error {
    /// A closure turning an I/O error of `op` on `path` into an [`Error::Io`].
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}
