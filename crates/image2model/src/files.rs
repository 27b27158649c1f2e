//! Uploads and results on disk, image sniffing by magic bytes, and the generated GLB.

use std::path::{Path, PathBuf};

/// A file-storage failure.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {source}")]
pub struct FileError {
    op: &'static str,
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// The image formats accepted for upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// PNG.
    Png,
    /// JPEG.
    Jpeg,
    /// WebP.
    Webp,
}

impl ImageKind {
    /// Recognises PNG, JPEG and WebP by their magic bytes.
    pub fn sniff(bytes: &[u8]) -> Option<ImageKind> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(ImageKind::Png)
        } else if bytes.len() >= 3 && bytes[..3] == [0xFF, 0xD8, 0xFF] {
            Some(ImageKind::Jpeg)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(ImageKind::Webp)
        } else {
            None
        }
    }

    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            ImageKind::Png => "png",
            ImageKind::Jpeg => "jpg",
            ImageKind::Webp => "webp",
        }
    }

    /// The MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            ImageKind::Png => "image/png",
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Webp => "image/webp",
        }
    }
}

/// The data directory: `uploads/`, `results/` and the database.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Creates (if needed) the directory and its sub-directories.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, FileError> {
        let root = root.into();
        for sub in ["uploads", "results"] {
            let p = root.join(sub);
            std::fs::create_dir_all(&p).map_err(|source| FileError {
                op: "create directory",
                path: p.clone(),
                source,
            })?;
        }
        Ok(DataDir { root })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The SQLite database file.
    pub fn database(&self) -> PathBuf {
        self.root.join("image2model.sqlite3")
    }

    /// Where upload `file_id` with extension `ext` lives.
    pub fn upload_path(&self, file_id: &str, ext: &str) -> PathBuf {
        self.root.join("uploads").join(format!("{file_id}.{ext}"))
    }

    /// Where the model of job `job_id` lives.
    pub fn result_path(&self, job_id: &str) -> PathBuf {
        self.root.join("results").join(format!("{job_id}.glb"))
    }

    /// Writes `bytes` to `path` atomically (temporary file, then rename).
    pub fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), FileError> {
        let tmp = path.with_extension("part");
        std::fs::write(&tmp, bytes).map_err(|source| FileError {
            op: "write",
            path: tmp.clone(),
            source,
        })?;
        std::fs::rename(&tmp, path).map_err(|source| FileError {
            op: "rename",
            path: path.to_owned(),
            source,
        })
    }

    /// Reads a whole file (on the blocking pool).
    pub async fn read(&self, path: &Path) -> Result<Vec<u8>, FileError> {
        tokio::fs::read(path).await.map_err(|source| FileError {
            op: "read",
            path: path.to_owned(),
            source,
        })
    }

    /// Where an upload is written while it arrives.
    pub fn upload_part_path(&self, file_id: &str) -> PathBuf {
        self.root.join("uploads").join(format!("{file_id}.part"))
    }

    /// Free space for this process on the data directory's file system.
    pub fn available_space(&self) -> Result<u64, FileError> {
        fs4::available_space(&self.root).map_err(|source| FileError {
            op: "statvfs",
            path: self.root.clone(),
            source,
        })
    }

    /// Removes the files; a file already gone is no error. Returns how many were removed.
    pub fn remove_all(paths: impl IntoIterator<Item = PathBuf>) -> usize {
        let mut n = 0;
        for p in paths {
            match std::fs::remove_file(&p) {
                Ok(()) => n += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(path = %p.display(), error = %e, "cannot remove file"),
            }
        }
        n
    }

    /// Removes `*.part` files (interrupted uploads and results) older than `age`.
    pub fn remove_stale_parts(&self, age: std::time::Duration) -> usize {
        let mut stale = Vec::new();
        for sub in ["uploads", "results"] {
            let Ok(entries) = std::fs::read_dir(self.root.join(sub)) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|a| a >= age);
                if old && p.extension().is_some_and(|x| x == "part") {
                    stale.push(p);
                }
            }
        }
        Self::remove_all(stale)
    }

    /// Checks the directory is writable (readiness): writes and removes a probe file.
    pub fn probe_writable(&self) -> Result<(), FileError> {
        let p = self.root.join(".ready-probe");
        std::fs::write(&p, b"ok").map_err(|source| FileError {
            op: "write",
            path: p.clone(),
            source,
        })?;
        let _ = std::fs::remove_file(&p);
        Ok(())
    }
}

/// Why the data directory cannot be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error(
        "data directory {dir} is in use by another image2model instance{holder} (lock file {lock}); \
         stop it or give this instance its own IMAGE2MODEL_DATA_DIR"
    )]
    InUse {
        /// The data directory.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// ` (pid N)` when the holder wrote its pid, else empty.
        holder: String,
    },
    /// The lock file cannot be opened or locked.
    #[error(transparent)]
    Io(#[from] FileError),
}

/// An exclusive lock on a data directory (`image2model.lock`, an OS file lock), held while the
/// value lives: one instance per data directory. The OS releases it when the process dies, so a
/// crash leaves no stale lock behind.
#[derive(Debug)]
pub struct DataDirLock {
    _file: std::fs::File,
    path: PathBuf,
}

impl DataDirLock {
    /// Takes the lock of `dir` (created if needed) without waiting; writes this process's pid in
    /// the lock file.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        use std::io::{Read as _, Seek as _, Write as _};
        std::fs::create_dir_all(dir).map_err(|source| FileError {
            op: "create directory",
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join("image2model.lock");
        let io = |op: &'static str| {
            let path = path.clone();
            move |source| FileError { op, path, source }
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io("open"))?;
        // fs4, not `File::try_lock`: that is newer than the workspace's rust-version (1.88).
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                let holder = if !pid.is_empty() && pid.chars().all(|c| c.is_ascii_digit()) {
                    format!(" (pid {pid})")
                } else {
                    String::new()
                };
                return Err(LockError::InUse {
                    dir: dir.to_owned(),
                    lock: path,
                    holder,
                });
            }
            Err(fs4::TryLockError::Error(e)) => return Err(io("lock")(e).into()),
        }
        file.set_len(0).map_err(io("truncate"))?;
        file.rewind().map_err(io("seek"))?;
        writeln!(file, "{}", std::process::id()).map_err(io("write"))?;
        Ok(DataDirLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A small valid binary glTF 2.0 (GLB): one triangle, named after `name`.
pub fn triangle_glb(name: &str) -> Vec<u8> {
    // Three vertices (f32 x, y, z).
    let positions: [f32; 9] = [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    let mut bin: Vec<u8> = positions.iter().flat_map(|f| f.to_le_bytes()).collect();
    let bin_len = bin.len();
    while !bin.len().is_multiple_of(4) {
        bin.push(0);
    }
    let json = serde_json::json!({
        "asset": {"version": "2.0", "generator": "image2model provider-sim"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": name}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}],
        "buffers": [{"byteLength": bin_len}],
        "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": bin_len}],
        "accessors": [{
            "bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3",
            "min": [0.0, 0.0, 0.0], "max": [1.0, 1.0, 0.0]
        }]
    });
    let mut json_bytes = json.to_string().into_bytes();
    while !json_bytes.len().is_multiple_of(4) {
        json_bytes.push(b' ');
    }
    let total = 12 + 8 + json_bytes.len() + 8 + bin.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(b"glTF");
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&(total as u32).to_le_bytes());
    out.extend_from_slice(&(json_bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(b"JSON");
    out.extend_from_slice(&json_bytes);
    out.extend_from_slice(&(bin.len() as u32).to_le_bytes());
    out.extend_from_slice(b"BIN\0");
    out.extend_from_slice(&bin);
    out
}

/// Checks the GLB header: magic, version 2, declared length equal to the actual length.
pub fn is_valid_glb(bytes: &[u8]) -> bool {
    if bytes.len() < 20 || &bytes[..4] != b"glTF" {
        return false;
    }
    let word = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    word(4) == 2 && word(8) as usize == bytes.len() && &bytes[16..20] == b"JSON"
}

/// A 1x1 PNG, for tests and the load generator.
pub const TINY_PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_recognised_by_magic_bytes_only() {
        assert_eq!(ImageKind::sniff(TINY_PNG), Some(ImageKind::Png));
        assert_eq!(
            ImageKind::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(ImageKind::Jpeg)
        );
        assert_eq!(
            ImageKind::sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(ImageKind::Webp)
        );
        assert_eq!(ImageKind::sniff(b"GIF89a"), None);
        assert_eq!(ImageKind::sniff(b"hello, this is text"), None);
        assert_eq!(ImageKind::sniff(b""), None);
    }

    #[test]
    fn generated_glb_is_a_valid_glb_container() {
        let glb = triangle_glb("job-1");
        assert!(is_valid_glb(&glb));
        assert!(glb.len().is_multiple_of(4));
        assert!(!is_valid_glb(b"not a model"));
    }

    #[test]
    fn a_data_dir_lock_excludes_a_second_holder_until_released() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = DataDirLock::acquire(dir.path()).expect("first lock");
        let pid = std::fs::read_to_string(first.path()).expect("lock file");
        assert_eq!(pid.trim(), std::process::id().to_string());
        let err = DataDirLock::acquire(dir.path()).expect_err("second lock refused");
        let msg = err.to_string();
        assert!(matches!(err, LockError::InUse { .. }), "{msg}");
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        drop(first);
        DataDirLock::acquire(dir.path()).expect("free again once released");
    }
}
