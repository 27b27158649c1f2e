//! [`archive`] and [`cleanup`]: compressed rotations move into `archive/` (optionally
//! `age`-encrypted) once old enough, and archives are deleted after the retention period.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::fsutil::{age_of, create_new, list, rename_no_replace, set_mode, sync_dir};
use crate::naming::{self, ARCHIVE_DIR, ARCHIVE_TMP};
use crate::rotate::Selection;
use crate::{Error, ManageConfig};

/// Moves compressed rotations (`<name>.<i>.gz`, and `<name>.gz`) of the active files that
/// [`ManageConfig::pattern`] names, older than `archive_after`, into `archive/`, encrypting them
/// to `recipients` when any are configured (`.gz.age`). Keeps each file's modification time.
/// Returns the archive paths written.
pub fn archive(cfg: &ManageConfig) -> Result<Vec<PathBuf>, Error> {
    let sel = Selection::new(cfg)?;
    let encrypt = crate::crypt::Encrypt::new(&cfg.recipients)?;
    let dir = cfg.dir.as_path();
    let adir = dir.join(ARCHIVE_DIR);
    let mut done = Vec::new();
    for (name, m) in list(dir)? {
        let Some(base) = naming::parse_compressed(&name)
            .map(|(b, _)| b)
            .or_else(|| name.strip_suffix(".gz"))
        else {
            continue;
        };
        if !sel.active(base) || age_of(&m) < cfg.archive_after {
            continue;
        }
        fs::create_dir_all(&adir).map_err(Error::io("create directory", &adir))?;
        let mtime = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let mut k = 0;
        let mut target = adir.join(naming::archive(base, mtime, k, encrypt.is_some()));
        while target.exists() {
            k += 1;
            target = adir.join(naming::archive(base, mtime, k, encrypt.is_some()));
        }
        let src = dir.join(&name);
        match &encrypt {
            None => {
                rename_no_replace(&src, &target)?;
                sync_dir(&adir)?;
                sync_dir(dir)?;
            }
            Some(enc) => {
                let tmp = PathBuf::from(format!("{}{ARCHIVE_TMP}", target.display()));
                encrypt_to(enc, &src, &tmp, mtime)?;
                rename_no_replace(&tmp, &target)?;
                sync_dir(&adir)?;
                fs::remove_file(&src).map_err(Error::io("remove", &src))?;
                sync_dir(dir)?;
            }
        }
        let _ = set_mode(&target);
        done.push(target);
    }
    Ok(done)
}

/// Writes `src` encrypted into `tmp` (mode 0640, modification time `mtime`, fsynced).
fn encrypt_to(
    enc: &crate::crypt::Encrypt,
    src: &Path,
    tmp: &Path,
    mtime: SystemTime,
) -> Result<(), Error> {
    let _ = fs::remove_file(tmp);
    let out = create_new(tmp).map_err(Error::io("create", tmp))?;
    let mut input = File::open(src).map_err(Error::io("open", src))?;
    let f = enc.copy(&mut input, io::BufWriter::new(out), src, tmp)?;
    f.set_modified(mtime).map_err(Error::io("set mtime", tmp))?;
    f.sync_all().map_err(Error::io("fsync", tmp))?;
    Ok(())
}

/// Deletes archives (`archive/<name>.<time>.gz[.age]`) of the active files that
/// [`ManageConfig::pattern`] names, older than `retention`, and stale temporary files of
/// interrupted archivals (their sources are still in place).
pub fn cleanup(cfg: &ManageConfig) -> Result<Vec<PathBuf>, Error> {
    let sel = Selection::new(cfg)?;
    let adir = cfg.dir.join(ARCHIVE_DIR);
    let mut removed = Vec::new();
    for (name, m) in list(&adir)? {
        let (archive_name, tmp) = match name.strip_suffix(ARCHIVE_TMP) {
            Some(n) => (n, true),
            None => (name.as_str(), false),
        };
        if !naming::parse_archive(archive_name).is_some_and(|(b, _)| sel.active(b)) {
            continue;
        }
        let stale_tmp = tmp && age_of(&m) >= cfg.settle.max(Duration::from_secs(60));
        let expired = !tmp && age_of(&m) >= cfg.retention;
        if stale_tmp || expired {
            let p = adir.join(&name);
            fs::remove_file(&p).map_err(Error::io("remove", &p))?;
            removed.push(p);
        }
    }
    Ok(removed)
}
