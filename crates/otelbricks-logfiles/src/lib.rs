//! Rotating JSON log files, and what happens to them afterwards: compression, archival
//! (optionally `age`-encrypted), retention. One crate owns the file names, so the writer that
//! rotates and the jobs that archive and delete agree on them ([`naming`]).
//!
//! * `RotatingFile` (feature `writer`, on by default): the writer side. An active file rotated by size before a write that would
//!   cross the limit, rotations gzipped on a background thread, the newest `keep` kept.
//! * [`rotate`]: the same rotation done from outside, for appenders that do not rotate
//!   themselves ([`LineAppender`]); also finishes what a crashed writer left behind.
//! * [`archive`]: compressed rotations older than `archive_after` move to `archive/`, encrypted to
//!   `age` recipients when configured (feature `age`, on by default).
//! * [`cleanup`]: archives older than `retention` are deleted.
//!
//! Each call touches only the files of the active files that [`ManageConfig::pattern`] names.
//!
//! Safety rules: a source is deleted only after its compressed (or encrypted) copy was written
//! to a temporary name, fsynced, and linked to its final name without replacing anything, and the
//! directory was fsynced. A rotated file is compressed only once it has been untouched for
//! `settle` (its writer has moved to the new file), and only if its size did not change while it
//! was compressed. Lines are never split: rotation renames whole files, and appenders write whole
//! lines with one `write(2)` on an `O_APPEND` descriptor.
//!
//! ```
//! use std::time::Duration;
//! use otelbricks_logfiles::{ManageConfig, archive, cleanup, rotate};
//!
//! let dir = tempfile::tempdir()?;
//! let config = ManageConfig {
//!     dir: dir.path().to_path_buf(),
//!     pattern: "app.json".into(),
//!     archive_after: Duration::from_secs(30 * 86_400),
//!     ..ManageConfig::default()
//! };
//! rotate(&config)?;
//! let archived = archive(&config)?;
//! let deleted = cleanup(&config)?;
//! assert!(archived.is_empty() && deleted.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod appender;
mod archive;
mod crypt;
mod error;
mod fsutil;
pub mod naming;
#[cfg(feature = "writer")]
mod rolling;
mod rotate;

use std::path::PathBuf;
use std::time::Duration;

pub use appender::{LineAppender, read_decompressed};
pub use archive::{archive, cleanup};
pub use crypt::check_recipients;
#[cfg(feature = "age")]
pub use crypt::parse_recipients;
pub use error::Error;
pub use fsutil::{open_append, rename_no_replace};
#[cfg(feature = "writer")]
pub use rolling::RotatingFile;
pub use rotate::{RotateOutcome, rotate};

/// Mode of every log, rotation and archive file this crate creates (owner rw, group r).
pub const LOG_FILE_MODE: u32 = 0o640;

/// Configuration of [`rotate`], [`archive`] and [`cleanup`].
#[derive(Debug, Clone)]
pub struct ManageConfig {
    /// The log directory.
    pub dir: PathBuf,
    /// Glob matched against file names to find active logs (default `*.json`); only these files,
    /// their rotations and their archives are touched.
    pub pattern: String,
    /// An active file larger than this is rotated by [`rotate`] (default 100 MiB).
    pub max_size: u64,
    /// Compressed rotations kept per active file (default 10).
    pub keep: usize,
    /// Compressed rotations older than this move to `archive/` (default 30 days).
    pub archive_after: Duration,
    /// Archives older than this are deleted (default 365 days).
    pub retention: Duration,
    /// `age` X25519 recipients (`age1...`); when set, archives are encrypted.
    pub recipients: Vec<String>,
    /// A rotated file is compressed only after being untouched this long (default 5 s).
    pub settle: Duration,
    /// gzip level (default 6).
    pub level: u32,
}

impl Default for ManageConfig {
    fn default() -> Self {
        ManageConfig {
            dir: PathBuf::from("logs"),
            pattern: "*.json".into(),
            max_size: 100 << 20,
            keep: 10,
            archive_after: Duration::from_secs(30 * 86_400),
            retention: Duration::from_secs(365 * 86_400),
            recipients: Vec::new(),
            settle: Duration::from_secs(5),
            level: 6,
        }
    }
}

impl ManageConfig {
    /// The defaults for the log directory `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ManageConfig {
            dir: dir.into(),
            ..ManageConfig::default()
        }
    }
}
