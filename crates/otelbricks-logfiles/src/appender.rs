//! [`LineAppender`], a minimal writer that cooperates with [`rotate`](crate::rotate), and
//! [`read_decompressed`].

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::fsutil::{lock_shared, open_append, unlock};

/// A minimal line appender that cooperates with [`rotate`](crate::rotate): each line is written
/// with a single `write(2)` on an `O_APPEND` descriptor (never split), the file is reopened when
/// rotation has renamed it (checked before every write), and a shared `flock` covers the check
/// and the write, so `rotate` (exclusive lock) never compresses a file mid-write.
#[derive(Debug)]
pub struct LineAppender {
    path: PathBuf,
    file: File,
}

impl LineAppender {
    /// Opens `path` for appending (mode 0640, created if missing).
    pub fn open(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        let file = open_append(&path)?;
        Ok(LineAppender { path, file })
    }

    #[cfg(unix)]
    fn rotated(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (fs::metadata(&self.path), self.file.metadata()) {
            (Ok(a), Ok(b)) => a.ino() != b.ino() || a.dev() != b.dev(),
            _ => true,
        }
    }
    #[cfg(not(unix))]
    fn rotated(&self) -> bool {
        false
    }

    /// Appends one line (a newline is added when missing).
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        // Shared lock from the rename check to the end of the write (see `rotate`'s exclusive lock).
        lock_shared(&self.file)?;
        if self.rotated() {
            let f = open_append(&self.path)?;
            lock_shared(&f)?;
            self.file = f; // closing the old descriptor releases its lock
        }
        let r = if line.ends_with(b"\n") {
            self.file.write_all(line)
        } else {
            let mut v = Vec::with_capacity(line.len() + 1);
            v.extend_from_slice(line);
            v.push(b'\n');
            self.file.write_all(&v)
        };
        unlock(&self.file)?;
        r
    }
}

/// Reads a (possibly gzipped) file fully; for tests and tools.
pub fn read_decompressed(p: &Path) -> io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    File::open(p)?.read_to_end(&mut raw)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out)?;
        Ok(out)
    } else {
        Ok(raw)
    }
}
