//! The writer side: an active log file rotated by size, its rotations gzipped on a background
//! thread, the newest `keep` kept. Rotation happens before a write that would cross the size
//! limit, so a write is never split between two files; hand it whole lines (or whole batches of
//! lines) and no line is split either.
//!
//! The rotated files carry the names of [`naming`](crate::naming), which is what
//! [`rotate`](crate::rotate), [`archive`](crate::archive) and [`cleanup`](crate::cleanup) read.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use logroller::{Compression, LogRoller, LogRollerBuilder, Rotation, RotationSize};

use crate::{Error, LOG_FILE_MODE};

/// An active log file that rotates itself by size: rotation happens before a write that would
/// cross the size limit (so hand it whole lines), rotations are gzipped on a background thread
/// and the newest `keep` are kept, under the names of [`naming`](crate::naming).
///
/// ```
/// use std::io::Write;
/// let dir = tempfile::tempdir()?;
/// let mut file = otelbricks_logfiles::RotatingFile::open(dir.path(), "app.json", 10 << 20, 5)?;
/// file.write_all(b"{\"message\":\"hello\"}\n")?;
/// file.flush()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RotatingFile {
    roller: LogRoller,
    path: PathBuf,
}

impl std::fmt::Debug for RotatingFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatingFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RotatingFile {
    /// Opens `dir/name` for appending (mode 0640, created if missing); rotates it when it would
    /// grow past `max_bytes` and keeps the newest `keep` compressed rotations.
    pub fn open(dir: &Path, name: &str, max_bytes: u64, keep: usize) -> Result<Self, Error> {
        let path = dir.join(name);
        let roller = LogRollerBuilder::new(dir, Path::new(name))
            .rotation(Rotation::SizeBased(RotationSize::Bytes(max_bytes)))
            .max_keep_files(keep as u64)
            .compression(Compression::Gzip)
            .file_mode(LOG_FILE_MODE)
            // Dropping the file waits for the compression of the last rotation.
            .graceful_shutdown(true)
            .build()
            .map_err(|e| Error::Open {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        Ok(RotatingFile { roller, path })
    }

    /// The active file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.roller.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.roller.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.roller.flush()
    }
}
