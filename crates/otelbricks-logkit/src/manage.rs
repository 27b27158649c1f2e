//! Rotation, compression, archival and cleanup of log files — crash-safe.
//!
//! Naming follows `logroller` 0.1.12 (the writer used by the `telemetry` crate), so that
//! `rotate` also finishes what a crashed logroller left behind:
//!
//! * `<name>` — the active file (e.g. `app.json`), written by one or more appenders;
//! * `<name>.pending.<N>` — a rotated file waiting for compression;
//! * `<name>.pending.<N>.gz.tmp` — logroller's compression in progress
//!   (ours: `<name>.pending.<N>.gz.logkit-tmp`);
//! * `<name>.<i>.gz` — compressed rotations, `1` the newest; `<name>.<i>` uncompressed ones;
//! * `archive/<name>.<YYYYMMDDTHHMMSSZ>.gz[.age]` — archived (optionally age-encrypted) logs.
//!
//! Safety rules: a source is deleted only after its compressed (or encrypted) copy was
//! written to a temporary name, fsynced, and linked to its final name without replacing
//! anything, and the directory was fsynced. A rotated file is compressed only once it has
//! been untouched for `settle` (its writer has moved to the new file), and only if its size
//! did not change while it was compressed. Lines are never split: rotation renames whole
//! files, and appenders write whole lines with one `write(2)` on an `O_APPEND` descriptor.

use crate::error::ManageError;
use flate2::write::GzEncoder;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Mode of every log, rotation and archive file logkit creates (owner rw, group r).
pub const LOG_FILE_MODE: u32 = 0o640;
const OUR_TMP: &str = ".gz.logkit-tmp";
const ARCHIVE_TMP: &str = ".logkit-tmp";

/// Configuration of [`rotate`], [`archive`] and [`cleanup`].
#[derive(Debug, Clone)]
pub struct ManageConfig {
    /// The log directory.
    pub dir: PathBuf,
    /// Glob matched against file names to find active logs (default `*.json`).
    pub pattern: String,
    /// An active file larger than this is rotated (default 100 MiB).
    pub max_size: u64,
    /// Compressed rotations kept per active file (default 10).
    pub keep: usize,
    /// Compressed rotations older than this move to `archive/` (default 30 days).
    pub archive_after: Duration,
    /// Archives older than this are deleted (default 365 days).
    pub retention: Duration,
    /// age X25519 recipients (`age1...`); when set, archives are encrypted.
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

/// What [`rotate`] did.
#[derive(Debug, Default, Clone)]
pub struct RotateOutcome {
    /// Active files renamed to `.pending.N`.
    pub rotated: Vec<PathBuf>,
    /// Compressed rotations written (`<name>.1.gz` …).
    pub compressed: Vec<PathBuf>,
    /// Rotations removed beyond `keep`, and stale temporary files.
    pub removed: Vec<PathBuf>,
    /// Rotated files left for a later run (still being written, or changed meanwhile).
    pub deferred: Vec<PathBuf>,
}

fn io_err(op: &'static str, p: &Path) -> impl FnOnce(io::Error) -> ManageError {
    ManageError::io(op, p)
}

/// `flock(2)` on a file (retrying on EINTR). Cooperating appenders ([`LineAppender`]) hold a
/// shared lock from their rename check to the end of each write; [`rotate`] takes an
/// exclusive lock on a rotated file before compressing it, so no write can land in a file
/// that is being compressed or was deleted.
#[cfg(unix)]
fn flock(f: &File, op: libc::c_int) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    loop {
        // SAFETY: `flock` only reads the descriptor number, which `f` keeps open.
        let r = unsafe { libc::flock(f.as_raw_fd(), op) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
#[cfg(not(unix))]
fn flock(_: &File, _: i32) -> io::Result<()> {
    Ok(())
}
#[cfg(not(unix))]
mod libc {
    pub const LOCK_SH: i32 = 0;
    pub const LOCK_EX: i32 = 0;
    pub const LOCK_UN: i32 = 0;
}

fn set_mode(p: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(p, fs::Permissions::from_mode(LOG_FILE_MODE))?;
    }
    Ok(())
}

fn create_new(p: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(LOG_FILE_MODE);
    }
    o.open(p)
}

/// Opens (creating with mode 0640) a log file for appending.
pub fn open_append(p: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(LOG_FILE_MODE);
    }
    o.open(p)
}

fn sync_dir(dir: &Path) -> Result<(), ManageError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))?;
    Ok(())
}

#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}
#[cfg(not(unix))]
fn same_file(_: &Path, _: &Path) -> bool {
    false
}

/// Renames without ever replacing an existing file (hard link, then unlink). A crash between
/// the two leaves two names for the same data, which the next call cleans up.
pub fn rename_no_replace(from: &Path, to: &Path) -> Result<(), ManageError> {
    match fs::hard_link(from, to) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && same_file(from, to) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(ManageError::Io {
                op: "rename (target exists)",
                path: to.to_path_buf(),
                source: e,
            });
        }
        Err(e) if e.kind() == io::ErrorKind::Unsupported => {
            if to.exists() {
                return Err(ManageError::Io {
                    op: "rename (target exists)",
                    path: to.to_path_buf(),
                    source: e,
                });
            }
            return fs::rename(from, to).map_err(io_err("rename", from));
        }
        Err(e) => {
            return Err(ManageError::Io {
                op: "link",
                path: from.to_path_buf(),
                source: e,
            });
        }
    }
    fs::remove_file(from).map_err(io_err("remove", from))
}

fn list(dir: &Path) -> Result<Vec<(String, fs::Metadata)>, ManageError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(ManageError::Io {
                op: "list",
                path: dir.to_path_buf(),
                source: e,
            });
        }
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        let Ok(m) = fs::symlink_metadata(e.path()) else {
            continue;
        };
        if m.is_file() {
            out.push((name, m));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn age_of(m: &fs::Metadata) -> Duration {
    m.modified()
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or(Duration::ZERO)
}

/// `<base>.pending.<N>` → (base, N).
fn parse_pending(name: &str) -> Option<(&str, u64)> {
    let (base, n) = name.rsplit_once(".pending.")?;
    Some((base, n.parse().ok()?))
}

/// `<base>.<i>.gz` → (base, i).
fn parse_rotation_gz(name: &str) -> Option<(&str, usize)> {
    let stem = name.strip_suffix(".gz")?;
    let (base, i) = stem.rsplit_once('.')?;
    if base.contains(".pending.") {
        return None;
    }
    Some((base, i.parse().ok()?))
}

/// Gzips `src` into `tmp` (mode 0640, fsynced). Returns the number of bytes read.
fn gzip_to(src: &Path, tmp: &Path, level: u32) -> Result<u64, ManageError> {
    let mut input = File::open(src).map_err(io_err("open", src))?;
    let _ = fs::remove_file(tmp);
    let out = create_new(tmp).map_err(io_err("create", tmp))?;
    let mut enc = GzEncoder::new(
        io::BufWriter::with_capacity(1 << 20, out),
        flate2::Compression::new(level),
    );
    let n = io::copy(&mut input, &mut enc).map_err(io_err("compress", src))?;
    let w = enc.finish().map_err(io_err("compress", tmp))?;
    let f = w.into_inner().map_err(|e| ManageError::Io {
        op: "write",
        path: tmp.to_path_buf(),
        source: e.into_error(),
    })?;
    f.sync_all().map_err(io_err("fsync", tmp))?;
    Ok(n)
}

fn shift_rotations(dir: &Path, base: &str) -> Result<(), ManageError> {
    let mut idx: Vec<usize> = list(dir)?
        .iter()
        .filter_map(|(n, _)| {
            parse_rotation_gz(n)
                .filter(|(b, _)| *b == base)
                .map(|(_, i)| i)
        })
        .collect();
    idx.sort_unstable();
    for i in idx.into_iter().rev() {
        let from = dir.join(format!("{base}.{i}.gz"));
        let to = dir.join(format!("{base}.{}.gz", i + 1));
        rename_no_replace(&from, &to)?;
    }
    Ok(())
}

/// Compresses one rotated file and publishes it as `<base>.1.gz` (shifting older ones).
/// Returns `Ok(false)` when the file changed while being compressed (left for later).
fn finish_pending(
    dir: &Path,
    base: &str,
    pending: &Path,
    level: u32,
) -> Result<Option<PathBuf>, ManageError> {
    let tmp = PathBuf::from(format!("{}{OUR_TMP}", pending.display()));
    // Wait for cooperating appenders still writing to this file; held until it is deleted.
    let lock = File::open(pending).map_err(io_err("open", pending))?;
    flock(&lock, libc::LOCK_EX).map_err(io_err("lock", pending))?;
    let before = fs::metadata(pending)
        .map_err(io_err("stat", pending))?
        .len();
    let n = gzip_to(pending, &tmp, level)?;
    let after = fs::metadata(pending)
        .map_err(io_err("stat", pending))?
        .len();
    if n != before || after != before {
        let _ = fs::remove_file(&tmp);
        return Ok(None);
    }
    shift_rotations(dir, base)?;
    let target = dir.join(format!("{base}.1.gz"));
    rename_no_replace(&tmp, &target)?;
    sync_dir(dir)?;
    fs::remove_file(pending).map_err(io_err("remove", pending))?;
    sync_dir(dir)?;
    drop(lock);
    Ok(Some(target))
}

fn glob_match(pattern: &str, name: &str) -> bool {
    glob::Pattern::new(pattern)
        .map(|p| p.matches(name))
        .unwrap_or(false)
}

/// Rotates active files over `max_size` (rename to `.pending.N`, new empty file with mode
/// 0640), compresses every settled pending or uncompressed rotation (also those a crash
/// left behind), and keeps the newest `keep` compressed rotations per file.
pub fn rotate(cfg: &ManageConfig) -> Result<RotateOutcome, ManageError> {
    if glob::Pattern::new(&cfg.pattern).is_err() {
        return Err(ManageError::Config(format!(
            "invalid pattern {:?}",
            cfg.pattern
        )));
    }
    let dir = cfg.dir.as_path();
    let mut out = RotateOutcome::default();
    let files = list(dir)?;
    // 1. Rotate oversized active files.
    for (name, m) in &files {
        if !glob_match(&cfg.pattern, name) || name.contains(".pending.") || m.len() <= cfg.max_size
        {
            continue;
        }
        let next = files
            .iter()
            .filter_map(|(n, _)| parse_pending(n).filter(|(b, _)| b == name).map(|(_, k)| k))
            .max()
            .map_or(1, |k| k + 1);
        let active = dir.join(name);
        let pending = dir.join(format!("{name}.pending.{next}"));
        rename_no_replace(&active, &pending)?;
        match create_new(&active) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(ManageError::Io {
                    op: "create",
                    path: active,
                    source: e,
                });
            }
        }
        sync_dir(dir)?;
        out.rotated.push(pending);
    }
    // 2. Finish pending rotations, oldest first; clear stale temporaries.
    let files = list(dir)?;
    let mut pendings: Vec<(String, u64, String, Duration)> = Vec::new();
    for (name, m) in &files {
        if name.ends_with(".tmp") || name.ends_with(OUR_TMP) {
            let src = name.trim_end_matches(OUR_TMP).trim_end_matches(".gz.tmp");
            // A temporary whose source still exists is a half-done compression: redo it.
            if age_of(m) >= cfg.settle && files.iter().any(|(n, _)| n == src) {
                let p = dir.join(name);
                fs::remove_file(&p).map_err(io_err("remove", &p))?;
                out.removed.push(p);
            }
            continue;
        }
        if let Some((base, k)) = parse_pending(name) {
            pendings.push((base.to_owned(), k, name.clone(), age_of(m)));
        }
    }
    pendings.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    for (base, _, name, age) in pendings {
        let p = dir.join(&name);
        // Another process (logroller's worker, or a concurrent `rotate`) is compressing it
        // when its temporary is still being written.
        let busy = [format!("{name}.gz.tmp"), format!("{name}{OUR_TMP}")]
            .iter()
            .filter_map(|t| fs::metadata(dir.join(t)).ok())
            .any(|m| age_of(&m) < cfg.settle);
        if age < cfg.settle || busy {
            out.deferred.push(p);
            continue;
        }
        match finish_pending(dir, &base, &p, cfg.level)? {
            Some(t) => out.compressed.push(t),
            None => out.deferred.push(p),
        }
    }
    // 3. Uncompressed numbered rotations (`<base>.<i>`, logroller without compression).
    for (name, m) in &list(dir)? {
        let Some((base, i)) = name.rsplit_once('.') else {
            continue;
        };
        if i.parse::<usize>().is_err()
            || base.contains(".pending")
            || !glob_match(&cfg.pattern, base)
        {
            continue;
        }
        if age_of(m) < cfg.settle {
            continue;
        }
        let src = dir.join(name);
        let target = dir.join(format!("{name}.gz"));
        if target.exists() {
            continue;
        }
        let tmp = dir.join(format!("{name}{OUR_TMP}"));
        let n = gzip_to(&src, &tmp, cfg.level)?;
        if n != m.len() {
            let _ = fs::remove_file(&tmp);
            out.deferred.push(src);
            continue;
        }
        rename_no_replace(&tmp, &target)?;
        sync_dir(dir)?;
        fs::remove_file(&src).map_err(io_err("remove", &src))?;
        out.compressed.push(target);
    }
    // 4. Keep the newest `keep` compressed rotations.
    for (name, _) in &list(dir)? {
        if let Some((_, i)) = parse_rotation_gz(name)
            && i > cfg.keep
        {
            let p = dir.join(name);
            fs::remove_file(&p).map_err(io_err("remove", &p))?;
            out.removed.push(p);
        }
    }
    Ok(out)
}

fn stamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let day = secs.div_euclid(86_400);
    let (y, m, d) = crate::timestamp::civil_from_days(day);
    let r = secs.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        r / 3600,
        r / 60 % 60,
        r % 60
    )
}

/// Moves compressed logs (`*.gz` in the log directory) older than `archive_after` into
/// `archive/`, encrypting them to `recipients` when any are configured (`.gz.age`).
/// Keeps each file's modification time. Returns the archive paths written.
pub fn archive(cfg: &ManageConfig) -> Result<Vec<PathBuf>, ManageError> {
    let recipients = crate::crypt::parse_recipients(&cfg.recipients)?;
    let dir = cfg.dir.as_path();
    let adir = dir.join("archive");
    let mut done = Vec::new();
    for (name, m) in list(dir)? {
        if !name.ends_with(".gz") || age_of(&m) < cfg.archive_after {
            continue;
        }
        fs::create_dir_all(&adir).map_err(io_err("create directory", &adir))?;
        let mtime = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let base = parse_rotation_gz(&name).map_or(name.trim_end_matches(".gz"), |(b, _)| b);
        let ext = if recipients.is_empty() {
            "gz"
        } else {
            "gz.age"
        };
        let mut target = adir.join(format!("{base}.{}.{ext}", stamp(mtime)));
        let mut k = 1;
        while target.exists() {
            target = adir.join(format!("{base}.{}-{k}.{ext}", stamp(mtime)));
            k += 1;
        }
        let src = dir.join(&name);
        if recipients.is_empty() {
            rename_no_replace(&src, &target)?;
            sync_dir(&adir)?;
            sync_dir(dir)?;
        } else {
            let tmp = PathBuf::from(format!("{}{ARCHIVE_TMP}", target.display()));
            let _ = fs::remove_file(&tmp);
            let out = create_new(&tmp).map_err(io_err("create", &tmp))?;
            let mut w = crate::crypt::encrypt_writer(io::BufWriter::new(out), &recipients)?;
            let mut input = File::open(&src).map_err(io_err("open", &src))?;
            io::copy(&mut input, &mut w).map_err(io_err("encrypt", &src))?;
            let bw = w.finish().map_err(io_err("encrypt", &tmp))?;
            let f = bw.into_inner().map_err(|e| ManageError::Io {
                op: "write",
                path: tmp.clone(),
                source: e.into_error(),
            })?;
            f.set_modified(mtime).map_err(io_err("set mtime", &tmp))?;
            f.sync_all().map_err(io_err("fsync", &tmp))?;
            rename_no_replace(&tmp, &target)?;
            sync_dir(&adir)?;
            fs::remove_file(&src).map_err(io_err("remove", &src))?;
            sync_dir(dir)?;
        }
        let _ = set_mode(&target);
        done.push(target);
    }
    Ok(done)
}

/// Deletes archives (`archive/*.gz`, `archive/*.age`) older than `retention`, and stale
/// temporary files of interrupted archivals (their sources are still in place).
pub fn cleanup(cfg: &ManageConfig) -> Result<Vec<PathBuf>, ManageError> {
    let adir = cfg.dir.join("archive");
    let mut removed = Vec::new();
    for (name, m) in list(&adir)? {
        let stale_tmp =
            name.ends_with(ARCHIVE_TMP) && age_of(&m) >= cfg.settle.max(Duration::from_secs(60));
        let expired =
            (name.ends_with(".gz") || name.ends_with(".age")) && age_of(&m) >= cfg.retention;
        if stale_tmp || expired {
            let p = adir.join(&name);
            fs::remove_file(&p).map_err(io_err("remove", &p))?;
            removed.push(p);
        }
    }
    Ok(removed)
}

/// A minimal line appender that cooperates with [`rotate`]: each line is written with a
/// single `write(2)` on an `O_APPEND` descriptor (never split), the file is reopened when
/// rotation has renamed it (checked before every write), and a shared `flock` covers the
/// check and the write, so `rotate` (exclusive lock) never compresses a file mid-write.
pub struct LineAppender {
    path: PathBuf,
    file: File,
}

impl LineAppender {
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
        // Shared lock from the rename check to the end of the write (see `flock`).
        flock(&self.file, libc::LOCK_SH)?;
        if self.rotated() {
            let f = open_append(&self.path)?;
            flock(&f, libc::LOCK_SH)?;
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
        flock(&self.file, libc::LOCK_UN)?;
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
