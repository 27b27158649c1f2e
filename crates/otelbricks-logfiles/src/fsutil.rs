//! Small crash-safe file-system steps shared by rotation and archival.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use flate2::write::GzEncoder;

use crate::{Error, LOG_FILE_MODE};

/// `flock(2)` on a file (retrying on EINTR). Cooperating appenders
/// ([`LineAppender`](crate::LineAppender)) hold a shared lock from their rename check to the end
/// of each write; [`rotate`](crate::rotate) takes an exclusive lock on a rotated file before
/// compressing it, so no write can land in a file that is being compressed or was deleted.
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

/// Takes a shared lock on `f` (see [`flock`]).
pub(crate) fn lock_shared(f: &File) -> io::Result<()> {
    flock(f, libc::LOCK_SH)
}

/// Takes an exclusive lock on `f` (see [`flock`]).
pub(crate) fn lock_exclusive(f: &File) -> io::Result<()> {
    flock(f, libc::LOCK_EX)
}

/// Releases the lock on `f`.
pub(crate) fn unlock(f: &File) -> io::Result<()> {
    flock(f, libc::LOCK_UN)
}

pub(crate) fn set_mode(p: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(p, fs::Permissions::from_mode(LOG_FILE_MODE))?;
    }
    #[cfg(not(unix))]
    let _ = p;
    Ok(())
}

fn options() -> OpenOptions {
    #[allow(unused_mut)]
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(LOG_FILE_MODE);
    }
    o
}

pub(crate) fn create_new(p: &Path) -> io::Result<File> {
    options().write(true).create_new(true).open(p)
}

/// Opens (creating with mode 0640) a log file for appending.
pub fn open_append(p: &Path) -> io::Result<File> {
    options().append(true).create(true).open(p)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("fsync directory", dir))?;
    #[cfg(not(unix))]
    let _ = dir;
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
pub fn rename_no_replace(from: &Path, to: &Path) -> Result<(), Error> {
    let exists = |source| Error::Io {
        op: "rename (target exists)",
        path: to.to_path_buf(),
        source,
    };
    match fs::hard_link(from, to) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && same_file(from, to) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(exists(e)),
        Err(e) if e.kind() == io::ErrorKind::Unsupported => {
            if to.exists() {
                return Err(exists(e));
            }
            return fs::rename(from, to).map_err(Error::io("rename", from));
        }
        Err(e) => return Err(Error::io("link", from)(e)),
    }
    fs::remove_file(from).map_err(Error::io("remove", from))
}

/// The regular files of `dir` (name and metadata), sorted by name; none when `dir` is missing.
pub(crate) fn list(dir: &Path) -> Result<Vec<(String, fs::Metadata)>, Error> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list", dir)(e)),
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

pub(crate) fn age_of(m: &fs::Metadata) -> Duration {
    m.modified()
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or(Duration::ZERO)
}

/// Gzips `src` into `tmp` (mode 0640, fsynced). Returns the number of bytes read.
pub(crate) fn gzip_to(src: &Path, tmp: &Path, level: u32) -> Result<u64, Error> {
    let mut input = File::open(src).map_err(Error::io("open", src))?;
    let _ = fs::remove_file(tmp);
    let out = create_new(tmp).map_err(Error::io("create", tmp))?;
    let mut enc = GzEncoder::new(
        io::BufWriter::with_capacity(1 << 20, out),
        flate2::Compression::new(level),
    );
    let n = io::copy(&mut input, &mut enc).map_err(Error::io("compress", src))?;
    let w = enc.finish().map_err(Error::io("compress", tmp))?;
    let f = w
        .into_inner()
        .map_err(|e| Error::io("write", tmp)(e.into_error()))?;
    f.sync_all().map_err(Error::io("fsync", tmp))?;
    Ok(n)
}
