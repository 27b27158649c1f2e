//! The names of rotated files, as the writer (`RotatingFile`, `logroller`
//! underneath) produces them and as [`rotate`](crate::rotate), [`archive`](crate::archive) and
//! [`cleanup`](crate::cleanup) read them. This module is the only place that knows them.
//!
//! For an active file `<name>` (e.g. `app.json`):
//!
//! * `<name>.pending.<N>` — a rotated file waiting for compression (`N` increases);
//! * `<name>.pending.<N>.gz.tmp` — the writer's compression in progress
//!   (this crate's own: `<name>.pending.<N>.gz.logkit-tmp`);
//! * `<name>.<i>.gz` — compressed rotations, `1` the newest; `<name>.<i>` uncompressed ones;
//! * `archive/<name>.<YYYYMMDDTHHMMSSZ>.gz[.age]` — archived (optionally age-encrypted) logs,
//!   `archive/<...>.logkit-tmp` while one is being written.

use std::time::SystemTime;

/// Suffix of the writer's temporary compressed file (after `<name>.pending.<N>`).
pub const WRITER_TMP: &str = ".gz.tmp";
/// Suffix of this crate's temporary compressed file (after `<name>.pending.<N>`).
pub const OWN_TMP: &str = ".gz.logkit-tmp";
/// Suffix of an archive being written (after the archive's final name).
pub const ARCHIVE_TMP: &str = ".logkit-tmp";
/// The directory, inside the log directory, that holds archives.
pub const ARCHIVE_DIR: &str = "archive";

const PENDING: &str = ".pending.";

/// `<base>.pending.<n>`: the `n`th rotated file of `base` waiting for compression.
pub fn pending(base: &str, n: u64) -> String {
    format!("{base}{PENDING}{n}")
}

/// `<base>.pending.<N>` → `(base, N)`.
pub fn parse_pending(name: &str) -> Option<(&str, u64)> {
    let (base, n) = name.rsplit_once(PENDING)?;
    Some((base, n.parse().ok()?))
}

/// `<base>.<i>.gz`: the `i`th newest compressed rotation of `base` (from 1).
pub fn compressed(base: &str, i: usize) -> String {
    format!("{base}.{i}.gz")
}

/// `<base>.<i>.gz` → `(base, i)`.
pub fn parse_compressed(name: &str) -> Option<(&str, usize)> {
    parse_uncompressed(name.strip_suffix(".gz")?)
}

/// `<base>.<i>` → `(base, i)`: an uncompressed rotation (a writer without compression).
pub fn parse_uncompressed(name: &str) -> Option<(&str, usize)> {
    let (base, i) = name.rsplit_once('.')?;
    if base.contains(PENDING) || base.ends_with(".pending") {
        return None;
    }
    Some((base, i.parse().ok()?))
}

/// The file a temporary compressed file (writer's or ours) is made from, if `name` is one.
pub fn tmp_source(name: &str) -> Option<&str> {
    name.strip_suffix(OWN_TMP)
        .or_else(|| name.strip_suffix(WRITER_TMP))
}

/// The active file a rotated, pending, temporary or archived file name belongs to.
pub fn base_of(name: &str) -> Option<&str> {
    let name = tmp_source(name).unwrap_or(name);
    if let Some((base, _)) = parse_pending(name) {
        return Some(base);
    }
    if let Some((base, _)) = parse_compressed(name).or_else(|| parse_uncompressed(name)) {
        return Some(base);
    }
    parse_archive(name).map(|(base, _)| base)
}

/// `<base>.<stamp>.gz`, `<base>.<stamp>.gz.age` (or `<stamp>-<k>` when the stamp was taken) →
/// `(base, encrypted)`.
pub fn parse_archive(name: &str) -> Option<(&str, bool)> {
    let (stem, encrypted) = match name.strip_suffix(".gz.age") {
        Some(s) => (s, true),
        None => (name.strip_suffix(".gz")?, false),
    };
    let (base, stamp) = stem.rsplit_once('.')?;
    let stamp = stamp.split_once('-').map_or(stamp, |(s, _)| s);
    let b = stamp.as_bytes();
    let is_stamp = b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
    is_stamp.then_some((base, encrypted))
}

/// The archive name of `base` for a file last modified at `mtime`; `k > 0` tells apart
/// archives with the same second.
pub fn archive(base: &str, mtime: SystemTime, k: u32, encrypted: bool) -> String {
    // `2025-12-02T01:02:03Z` -> `20251202T010203Z`
    let stamp: String = humantime::format_rfc3339_seconds(mtime)
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let ext = if encrypted { "gz.age" } else { "gz" };
    let dup = if k == 0 {
        String::new()
    } else {
        format!("-{k}")
    };
    format!("{base}.{stamp}{dup}.{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn every_rotated_name_leads_back_to_its_active_file() {
        for name in [
            pending("app.json", 3),
            format!("{}{WRITER_TMP}", pending("app.json", 3)),
            format!("{}{OWN_TMP}", pending("app.json", 3)),
            compressed("app.json", 12),
            "app.json.4".to_owned(),
            archive("app.json", at(1_764_633_600), 0, false),
            archive("app.json", at(1_764_633_600), 2, true),
        ] {
            assert_eq!(base_of(&name), Some("app.json"), "{name}");
        }
        assert_eq!(base_of("other.gz"), None);
        assert_eq!(base_of("app.json"), None);
    }

    #[test]
    fn archive_names_carry_the_utc_modification_time() {
        assert_eq!(
            archive("app.json", at(1_764_633_600 + 3_723), 0, false),
            "app.json.20251202T010203Z.gz"
        );
        assert_eq!(archive("a", at(0), 1, true), "a.19700101T000000Z-1.gz.age");
    }
}
