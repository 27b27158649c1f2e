//! [`rotate`]: rotation, compression and the `keep` limit for files written by appenders that
//! do not rotate themselves (or that crashed mid-rotation).

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fsutil::{
    age_of, create_new, gzip_to, list, lock_exclusive, rename_no_replace, sync_dir,
};
use crate::naming::{self, OWN_TMP, WRITER_TMP};
use crate::{Error, ManageConfig};

/// What [`rotate`] did.
#[derive(Debug, Default, Clone)]
#[non_exhaustive]
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

/// The compiled [`ManageConfig::pattern`]: which active files (and so which rotations and
/// archives) a call may touch.
pub(crate) struct Selection(glob::Pattern);

impl Selection {
    pub(crate) fn new(cfg: &ManageConfig) -> Result<Self, Error> {
        glob::Pattern::new(&cfg.pattern)
            .map(Selection)
            .map_err(|source| Error::Pattern {
                pattern: cfg.pattern.clone(),
                source,
            })
    }

    /// `name` is an active file the pattern names.
    pub(crate) fn active(&self, name: &str) -> bool {
        self.0.matches(name)
    }

    /// `name` is a rotated, pending, temporary or archived file of an active file the pattern
    /// names.
    pub(crate) fn derived(&self, name: &str) -> bool {
        naming::base_of(name).is_some_and(|b| self.0.matches(b))
    }
}

fn shift_rotations(dir: &Path, base: &str) -> Result<(), Error> {
    let mut idx: Vec<usize> = list(dir)?
        .iter()
        .filter_map(|(n, _)| {
            naming::parse_compressed(n)
                .filter(|(b, _)| *b == base)
                .map(|(_, i)| i)
        })
        .collect();
    idx.sort_unstable();
    for i in idx.into_iter().rev() {
        let from = dir.join(naming::compressed(base, i));
        let to = dir.join(naming::compressed(base, i + 1));
        rename_no_replace(&from, &to)?;
    }
    Ok(())
}

/// Compresses one rotated file and publishes it as `<base>.1.gz` (shifting older ones).
/// Returns `Ok(None)` when the file changed while being compressed (left for later).
fn finish_pending(
    dir: &Path,
    base: &str,
    pending: &Path,
    level: u32,
) -> Result<Option<PathBuf>, Error> {
    let tmp = PathBuf::from(format!("{}{OWN_TMP}", pending.display()));
    // Wait for cooperating appenders still writing to this file; held until it is deleted.
    let lock = File::open(pending).map_err(Error::io("open", pending))?;
    lock_exclusive(&lock).map_err(Error::io("lock", pending))?;
    let size = || {
        fs::metadata(pending)
            .map(|m| m.len())
            .map_err(Error::io("stat", pending))
    };
    let before = size()?;
    let n = gzip_to(pending, &tmp, level)?;
    let after = size()?;
    if n != before || after != before {
        let _ = fs::remove_file(&tmp);
        return Ok(None);
    }
    shift_rotations(dir, base)?;
    let target = dir.join(naming::compressed(base, 1));
    rename_no_replace(&tmp, &target)?;
    sync_dir(dir)?;
    fs::remove_file(pending).map_err(Error::io("remove", pending))?;
    sync_dir(dir)?;
    drop(lock);
    Ok(Some(target))
}

/// Rotates active files over `max_size` (rename to `.pending.N`, new empty file with mode
/// 0640), compresses every settled pending or uncompressed rotation (also those a crash
/// left behind), and keeps the newest `keep` compressed rotations per file. Only files of
/// active files that [`ManageConfig::pattern`] names are touched.
pub fn rotate(cfg: &ManageConfig) -> Result<RotateOutcome, Error> {
    let sel = Selection::new(cfg)?;
    let dir = cfg.dir.as_path();
    let mut out = RotateOutcome::default();
    let files = list(dir)?;
    // 1. Rotate oversized active files.
    for (name, m) in &files {
        if !sel.active(name) || sel.derived(name) || m.len() <= cfg.max_size {
            continue;
        }
        let next = files
            .iter()
            .filter_map(|(n, _)| {
                naming::parse_pending(n)
                    .filter(|(b, _)| b == name)
                    .map(|(_, k)| k)
            })
            .max()
            .map_or(1, |k| k + 1);
        let active = dir.join(name);
        let pending = dir.join(naming::pending(name, next));
        rename_no_replace(&active, &pending)?;
        match create_new(&active) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("create", active)(e)),
        }
        sync_dir(dir)?;
        out.rotated.push(pending);
    }
    // 2. Finish pending rotations, oldest first; clear stale temporaries.
    let files = list(dir)?;
    let mut pendings: Vec<(String, u64, String, Duration)> = Vec::new();
    for (name, m) in &files {
        if !sel.derived(name) {
            continue;
        }
        if let Some(src) = naming::tmp_source(name) {
            // A temporary whose source still exists is a half-done compression: redo it.
            if age_of(m) >= cfg.settle && files.iter().any(|(n, _)| n == src) {
                let p = dir.join(name);
                fs::remove_file(&p).map_err(Error::io("remove", &p))?;
                out.removed.push(p);
            }
            continue;
        }
        if let Some((base, k)) = naming::parse_pending(name) {
            pendings.push((base.to_owned(), k, name.clone(), age_of(m)));
        }
    }
    pendings.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    for (base, _, name, age) in pendings {
        let p = dir.join(&name);
        // Another process (the writer's worker, or a concurrent `rotate`) is compressing it
        // when its temporary is still being written.
        let busy = [format!("{name}{WRITER_TMP}"), format!("{name}{OWN_TMP}")]
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
    // 3. Uncompressed numbered rotations (`<base>.<i>`, a writer without compression).
    for (name, m) in &list(dir)? {
        match naming::parse_uncompressed(name) {
            Some((base, _)) if sel.active(base) => {}
            _ => continue,
        }
        if age_of(m) < cfg.settle {
            continue;
        }
        let src = dir.join(name);
        let target = dir.join(format!("{name}.gz"));
        if target.exists() {
            continue;
        }
        let tmp = dir.join(format!("{name}{OWN_TMP}"));
        let n = gzip_to(&src, &tmp, cfg.level)?;
        if n != m.len() {
            let _ = fs::remove_file(&tmp);
            out.deferred.push(src);
            continue;
        }
        rename_no_replace(&tmp, &target)?;
        sync_dir(dir)?;
        fs::remove_file(&src).map_err(Error::io("remove", &src))?;
        out.compressed.push(target);
    }
    // 4. Keep the newest `keep` compressed rotations of the selected files.
    for (name, _) in &list(dir)? {
        if let Some((base, i)) = naming::parse_compressed(name)
            && i > cfg.keep
            && sel.active(base)
        {
            let p = dir.join(name);
            fs::remove_file(&p).map_err(Error::io("remove", &p))?;
            out.removed.push(p);
        }
    }
    Ok(out)
}
