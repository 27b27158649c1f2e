//! Log files: `<app>.json` (all levels) and `<app>_errors.json` (ERROR), rotated by size with gzip
//! and a file count. Rotation is `otelbricks_logfiles::RotatingFile` (it rotates before a write, so a
//! line is never split, and compresses on its own thread), the same crate whose naming archival
//! reads; writes leave the caller's thread through a [`BatchWriter`], lossless by default.

use std::fs;
use std::path::{Path, PathBuf};

use otelbricks_logfiles::RotatingFile;

use crate::TelemetryError;
use crate::writer::{BatchWriter, BatchWriterGuard};

/// Bytes of log lines a file may hold in memory before its writer is behind (about 128k lines).
pub(crate) const BUFFER_BYTES: usize = 32 * 1024 * 1024;

/// One rotating file behind a batching writer thread.
pub(crate) struct LogFile {
    pub writer: BatchWriter,
    /// Writes what is buffered and stops the thread.
    pub guard: BatchWriterGuard,
    pub name: String,
}

/// Rotation settings of one file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rotate {
    pub max_bytes: u64,
    pub max_files: usize,
}

/// A file name safe to use for a service name: letters, digits, `-`, `_` and `.` kept.
pub(crate) fn file_stem(service_name: &str) -> String {
    let s: String = service_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("app{s}")
    } else {
        s
    }
}

fn dir_error(path: &Path, source: std::io::Error) -> TelemetryError {
    TelemetryError::LogDir {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates the directory (mode 0750 on Unix) and checks that a file can be created in it.
pub(crate) fn prepare_dir(dir: &Path) -> Result<(), TelemetryError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o750);
    builder.create(dir).map_err(|e| dir_error(dir, e))?;
    let probe = dir.join(format!(".telemetry-write-test-{}", std::process::id()));
    fs::write(&probe, b"").map_err(|e| dir_error(dir, e))?;
    let _ = fs::remove_file(&probe);
    Ok(())
}

/// Opens `dir/name` for appending with size rotation, behind a non-blocking writer thread.
pub(crate) fn open(
    dir: &Path,
    name: &str,
    rotate: Rotate,
    lossy: bool,
) -> Result<LogFile, TelemetryError> {
    let roller = RotatingFile::open(dir, name, rotate.max_bytes, rotate.max_files)
        .map_err(|e| dir_error(&dir.join(name), std::io::Error::other(e)))?;
    let (writer, guard) = BatchWriter::spawn(
        &format!("telemetry-log-{name}"),
        roller,
        BUFFER_BYTES,
        lossy,
    )
    .map_err(TelemetryError::Runtime)?;
    Ok(LogFile {
        writer,
        guard,
        name: name.to_owned(),
    })
}

/// The paths of the two log files of a service.
pub(crate) fn names(service_name: &str) -> (String, String) {
    let stem = file_stem(service_name);
    (format!("{stem}.json"), format!("{stem}_errors.json"))
}

/// Where the main log file of `service_name` is written in `dir`.
pub fn log_file_path(dir: &Path, service_name: &str) -> PathBuf {
    dir.join(names(service_name).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_stem_keeps_safe_characters_only() {
        assert_eq!(file_stem("image2model"), "image2model");
        assert_eq!(file_stem("a/b c"), "a_b_c");
        assert_eq!(file_stem("../etc"), "app.._etc");
        assert_eq!(file_stem(""), "app");
    }

    #[test]
    fn a_directory_under_a_regular_file_is_an_error() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("plain");
        fs::write(&file, b"x").expect("write");
        let err = prepare_dir(&file.join("logs")).expect_err("cannot create a dir under a file");
        assert!(matches!(err, TelemetryError::LogDir { .. }), "{err}");
    }
}
