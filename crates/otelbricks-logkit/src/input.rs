//! Finding and opening log inputs: files, directories, globs and stdin; plain, gzip and
//! age-encrypted content (detected from the first bytes, not the file name).

use crate::error::InputError;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// One input to analyse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Standard input.
    Stdin,
    /// A file.
    File(PathBuf),
}

impl Source {
    /// How the input is named in reports.
    pub fn name(&self) -> String {
        match self {
            Source::Stdin => "-".to_owned(),
            Source::File(p) => p.display().to_string(),
        }
    }
}

/// An argument that named nothing readable.
#[derive(Debug, Clone)]
pub struct Unresolved {
    /// The argument as given.
    pub arg: String,
    /// Why it names nothing readable.
    pub reason: String,
}

/// Whether a file in a directory looks like one of our logs (plain, rotated, compressed,
/// encrypted), and is not a temporary file of a rotation in progress.
pub fn looks_like_log(name: &str) -> bool {
    if name.starts_with('.') || name.ends_with(".tmp") || name.contains(".logkit-tmp") {
        return false;
    }
    name.contains(".json")
        || name.contains(".log")
        || name.ends_with(".gz")
        || name.ends_with(".age")
}

fn dir_logs(dir: &Path, out: &mut Vec<Source>, depth: u32) -> io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            if depth == 0 && e.file_name() == "archive" {
                dir_logs(&path, out, depth + 1)?;
            }
        } else if looks_like_log(&e.file_name().to_string_lossy()) {
            out.push(Source::File(path));
        }
    }
    Ok(())
}

/// Expands command-line arguments: `-` is stdin; a directory gives its log files (and those
/// of its `archive/` folder); a path with `*?[` is a glob. No argument means stdin.
pub fn expand(args: &[String]) -> (Vec<Source>, Vec<Unresolved>) {
    let mut sources = Vec::new();
    let mut bad = Vec::new();
    if args.is_empty() {
        sources.push(Source::Stdin);
    }
    for arg in args {
        if arg == "-" {
            sources.push(Source::Stdin);
            continue;
        }
        let p = Path::new(arg);
        if p.is_dir() {
            let before = sources.len();
            if let Err(e) = dir_logs(p, &mut sources, 0) {
                bad.push(Unresolved {
                    arg: arg.clone(),
                    reason: format!("cannot list directory: {e}"),
                });
            } else if sources.len() == before {
                bad.push(Unresolved {
                    arg: arg.clone(),
                    reason: "directory holds no log files".into(),
                });
            }
        } else if p.exists() {
            sources.push(Source::File(p.to_path_buf()));
        } else if arg.contains(['*', '?', '[']) {
            match glob::glob(arg) {
                Ok(paths) => {
                    let before = sources.len();
                    for path in paths.flatten() {
                        if path.is_file() {
                            sources.push(Source::File(path));
                        }
                    }
                    if sources.len() == before {
                        bad.push(Unresolved {
                            arg: arg.clone(),
                            reason: "pattern matched no file".into(),
                        });
                    }
                }
                Err(e) => bad.push(Unresolved {
                    arg: arg.clone(),
                    reason: format!("bad glob pattern: {e}"),
                }),
            }
        } else {
            bad.push(Unresolved {
                arg: arg.clone(),
                reason: "no such file or directory".into(),
            });
        }
    }
    (sources, bad)
}

/// Counts the bytes read from the underlying file (for the progress bar).
pub struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const AGE_MAGIC: &[u8] = b"age-encryption.org/";
const AGE_ARMOR: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";

/// Encodings found on an input, outermost first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// age-encrypted (binary or armored).
    Age,
    /// gzip (one or more members).
    Gzip,
}

/// Wraps `r` with decoders for what its first bytes show (age, then gzip inside).
pub fn decode<'a>(
    r: Box<dyn Read + 'a>,
    identity: Option<&Path>,
    layers: &mut Vec<Layer>,
) -> Result<Box<dyn Read + 'a>, InputError> {
    let mut br = BufReader::with_capacity(256 * 1024, r);
    let head = br.fill_buf().map_err(InputError::Io)?;
    if head.starts_with(GZIP_MAGIC) {
        layers.push(Layer::Gzip);
        return Ok(Box::new(flate2::bufread::MultiGzDecoder::new(br)));
    }
    if head.starts_with(AGE_MAGIC) || head.starts_with(AGE_ARMOR) {
        if layers.contains(&Layer::Age) {
            return Err(InputError::Age("nested age encryption".into()));
        }
        layers.push(Layer::Age);
        let Some(identity) = identity else {
            return Err(InputError::NoIdentity);
        };
        let plain = crate::crypt::decrypt_reader(br, identity)?;
        return decode(plain, Some(identity), layers);
    }
    Ok(Box::new(br))
}

/// Opens a source for reading, decoded. Returns the reader and the size on disk (if known).
pub fn open(
    src: &Source,
    identity: Option<&Path>,
    counter: Arc<AtomicU64>,
) -> Result<(Box<dyn Read>, Option<u64>), InputError> {
    let (raw, size): (Box<dyn Read>, Option<u64>) = match src {
        Source::Stdin => (
            Box::new(Counting {
                inner: io::stdin(),
                count: counter,
            }),
            None,
        ),
        Source::File(p) => {
            let f = File::open(p).map_err(InputError::Io)?;
            let meta = f.metadata().map_err(InputError::Io)?;
            if meta.is_dir() {
                return Err(InputError::IsDirectory);
            }
            (
                Box::new(Counting {
                    inner: f,
                    count: counter,
                }),
                Some(meta.len()),
            )
        }
    };
    let mut layers = Vec::new();
    Ok((decode(raw, identity, &mut layers)?, size))
}

/// A regular file whose content is plain (not gzip, not age): it can be read in parallel
/// ranges. Returns the open file and its size.
pub fn plain_file(src: &Source) -> Option<(File, u64)> {
    use std::os::unix::fs::FileExt;
    let Source::File(p) = src else { return None };
    let f = File::open(p).ok()?;
    let meta = f.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let mut head = [0u8; 64];
    let n = f.read_at(&mut head, 0).ok()?;
    let head = &head[..n];
    if head.starts_with(GZIP_MAGIC) || head.starts_with(AGE_MAGIC) || head.starts_with(AGE_ARMOR) {
        return None;
    }
    Some((f, meta.len()))
}
