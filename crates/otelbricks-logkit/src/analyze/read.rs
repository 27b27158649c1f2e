//! I/O: inputs read in large blocks (mapped or read with `pread` for plain files, streamed for
//! compressed or encrypted ones), split at line boundaries and handed to the worker threads.

use super::Options;
use super::partial::Partial;
use std::io::{ErrorKind, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};

pub(super) struct Chunk {
    pub(super) id: u32,
    pub(super) file: u32,
    pub(super) base: u64,
    pub(super) buf: Vec<u8>,
    pub(super) len: usize,
    /// A line longer than the limit was dropped here (the chunk holds no data).
    pub(super) too_long: bool,
    /// Plain files: the worker reads this byte range itself (no copy through the reader).
    pub(super) range: Option<FileRange>,
}

/// Lines of a plain file that *start* in `[off, off + len)`.
pub(super) struct FileRange {
    pub(super) src: RangeSource,
    pub(super) off: u64,
    pub(super) len: u64,
    pub(super) counter: Arc<AtomicU64>,
}

/// How a worker gets at the bytes of a plain file.
#[derive(Clone)]
pub(super) enum RangeSource {
    /// A read-only shared mapping of the whole file: parsed in place, no copy.
    Map(Arc<memmap2::Mmap>),
    /// `pread` into the chunk's buffer (when mapping is off or failed).
    Read(Arc<std::fs::File>),
}

/// The owned lines of `r` in a mapping of the whole file, without reading past
/// `max_line + 1` bytes of a line (an over-long line is not touched beyond that); also
/// returns the end of the bytes looked at.
pub(super) fn map_range(map: &[u8], r: &FileRange, max_line: usize) -> (RangeData, usize) {
    let size = map.len();
    let off = (r.off as usize).min(size);
    let lim = ((r.off + r.len) as usize).min(size);
    let none = RangeData {
        start: 0,
        end: 0,
        begin: 0,
        too_long_tail: false,
    };
    let start = if off == 0 {
        0
    } else {
        match memchr::memchr(b'\n', &map[off - 1..lim]) {
            Some(p) => off + p,
            None => return (none, lim),
        }
    };
    if start >= lim {
        return (none, lim);
    }
    if map[lim - 1] == b'\n' || lim == size {
        let d = RangeData {
            start,
            end: lim,
            begin: 0,
            too_long_tail: false,
        };
        return (d, lim);
    }
    // Complete the last line that starts inside the range.
    let last_start = memchr::memrchr(b'\n', &map[start..lim]).map_or(start, |p| start + p + 1);
    let window_end = last_start
        .saturating_add(max_line)
        .saturating_add(1)
        .min(size);
    let tail = if window_end < lim {
        None // no newline within `max_line + 1` bytes of the line's start
    } else {
        match memchr::memchr(b'\n', &map[lim..window_end]) {
            Some(p) => Some(lim + p),
            None if window_end == size => Some(size),
            None => None,
        }
    };
    let d = match tail {
        Some(e) if e - last_start <= max_line => RangeData {
            start,
            end: (e + 1).min(size),
            begin: 0,
            too_long_tail: false,
        },
        _ => RangeData {
            start,
            end: last_start,
            begin: 0,
            too_long_tail: true,
        },
    };
    (d, window_end.max(lim))
}

/// Linux maps up to this many bytes around a faulting page of a file mapping
/// (`fault_around_bytes`, 64 KiB by default); released with each range.
pub(super) const FAULT_AROUND: usize = 64 << 10;

/// Maps a plain file read-only (`None` when it cannot be mapped: then it is read).
fn map_file(f: &std::fs::File, size: u64) -> Option<memmap2::Mmap> {
    let len = usize::try_from(size).ok().filter(|&l| l > 0)?;
    // SAFETY: the mapping is read-only and only read through `&[u8]`. If another process
    // truncates the file while it is mapped, reading the vanished pages raises SIGBUS (as
    // for every reader of mapped files); `--no-mmap` (`Options::mmap = false`) reads with
    // `pread` instead, for files that may be truncated in place (e.g. logrotate's
    // `copytruncate`). Appends and renames (our rotation, logroller's) are harmless.
    unsafe { memmap2::MmapOptions::new().len(len).map(f) }.ok()
}

/// Reads at `off` until `buf[..n]` is full or the file ends; returns the bytes read.
fn read_at_most(f: &std::fs::File, off: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], off + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Where the owned lines of a range are in the buffer.
pub(super) struct RangeData {
    pub(super) start: usize,
    pub(super) end: usize,
    /// Absolute offset of `buf[0]`.
    pub(super) begin: u64,
    /// The last owned line is longer than the limit (not in `start..end`).
    pub(super) too_long_tail: bool,
}

pub(super) fn fill_range(
    r: &FileRange,
    buf: &mut Vec<u8>,
    max_line: usize,
) -> std::io::Result<RangeData> {
    let begin = r.off.saturating_sub(1);
    let want = (r.off + r.len - begin) as usize;
    if buf.len() < want {
        buf.resize(want, 0);
    }
    let RangeSource::Read(file) = &r.src else {
        return Err(std::io::Error::other("not a read range"));
    };
    let mut n = read_at_most(file, begin, &mut buf[..want])?;
    r.counter.fetch_add(n as u64, Ordering::Relaxed);
    let start = if r.off == 0 {
        0
    } else {
        match memchr::memchr(b'\n', &buf[..n]) {
            Some(p) => p + 1,
            None => n,
        }
    };
    let none = RangeData {
        start: 0,
        end: 0,
        begin,
        too_long_tail: false,
    };
    if start >= n {
        return Ok(none);
    }
    // The owned lines end at `end`; `too_long_tail`: the line after them is over the limit.
    let owned = |end: usize, too_long_tail: bool| RangeData {
        start,
        end,
        begin,
        too_long_tail,
    };
    // Complete the last line that starts inside the range.
    let short = n < want; // end of file
    if short || buf[n - 1] == b'\n' {
        return Ok(owned(n, false));
    }
    let last_start = memchr::memrchr(b'\n', &buf[start..n]).map_or(start, |p| start + p + 1);
    loop {
        if n - last_start > max_line {
            return Ok(owned(last_start, true));
        }
        let more = (n - last_start).max(64 * 1024);
        if buf.len() < n + more {
            buf.resize(n + more, 0);
        }
        let k = read_at_most(file, begin + n as u64, &mut buf[n..n + more])?;
        r.counter.fetch_add(k as u64, Ordering::Relaxed);
        if let Some(p) = memchr::memchr(b'\n', &buf[n..n + k]) {
            let end = n + p + 1;
            if end - last_start > max_line + 1 {
                return Ok(owned(last_start, true));
            }
            return Ok(owned(end, false));
        }
        n += k;
        if k < more {
            // End of file: the last line ends there.
            if n - last_start > max_line {
                return Ok(owned(last_start, true));
            }
            return Ok(owned(n, false));
        }
    }
}

pub(super) fn worker(
    rx: Arc<Mutex<Receiver<Chunk>>>,
    pool: Arc<Mutex<Vec<Vec<u8>>>>,
    opts: Options,
) -> Partial {
    let mut p = Partial::default();
    loop {
        let next = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => break,
        };
        let Ok(mut c) = next else { break };
        p.process_chunk(&mut c, &opts);
        if c.buf.len() <= opts.chunk_bytes * 4
            && !c.buf.is_empty()
            && let Ok(mut pool) = pool.lock()
            && pool.len() < 8
        {
            pool.push(c.buf);
        }
    }
    p
}

pub(super) struct Feeder<'a> {
    pub(super) tx: SyncSender<Chunk>,
    pub(super) pool: Arc<Mutex<Vec<Vec<u8>>>>,
    pub(super) next_id: u32,
    pub(super) chunk_file: Vec<u32>,
    pub(super) opts: &'a Options,
}

impl Feeder<'_> {
    /// A recycled block buffer. Buffers keep `len == capacity` (zeroed once) so that
    /// reading into them needs no re-initialisation; `Chunk::len` says how much is data.
    fn buffer(&self) -> Vec<u8> {
        let b = self.pool.lock().ok().and_then(|mut p| p.pop());
        b.unwrap_or_else(|| vec![0u8; self.opts.chunk_bytes + 64 * 1024])
    }

    fn send(&mut self, file: u32, base: u64, buf: Vec<u8>, len: usize, too_long: bool) -> bool {
        let id = self.next_id;
        self.next_id += 1;
        self.chunk_file.push(file);
        self.tx
            .send(Chunk {
                id,
                file,
                base,
                buf,
                len,
                too_long,
                range: None,
            })
            .is_ok()
    }

    /// Hands a plain file to the workers as byte ranges they read themselves.
    pub(super) fn feed_ranges(
        &mut self,
        file: u32,
        f: std::fs::File,
        size: u64,
        counter: &Arc<AtomicU64>,
        bar: Option<&indicatif::ProgressBar>,
    ) {
        let src = match self.opts.mmap.then(|| map_file(&f, size)).flatten() {
            Some(m) => RangeSource::Map(Arc::new(m)),
            None => RangeSource::Read(Arc::new(f)),
        };
        let cb = self.opts.chunk_bytes.max(1) as u64;
        let mut off = 0u64;
        while off < size {
            let id = self.next_id;
            self.next_id += 1;
            self.chunk_file.push(file);
            let range = FileRange {
                src: src.clone(),
                off,
                len: cb.min(size - off),
                counter: Arc::clone(counter),
            };
            let buf = match src {
                RangeSource::Map(_) => Vec::new(),
                RangeSource::Read(_) => self.buffer(),
            };
            let c = Chunk {
                id,
                file,
                base: off,
                buf,
                len: 0,
                too_long: false,
                range: Some(range),
            };
            if self.tx.send(c).is_err() {
                return;
            }
            if let Some(pb) = bar {
                pb.set_position(counter.load(Ordering::Relaxed));
            }
            off += cb;
        }
    }

    /// Reads one input to its end (or first error), sending blocks of whole lines.
    /// Returns (bytes read, error if reading stopped early).
    pub(super) fn feed(&mut self, file: u32, r: &mut dyn Read) -> (u64, Option<String>) {
        let cb = self.opts.chunk_bytes;
        let max_line = self.opts.max_line_bytes.max(1);
        let mut carry: Vec<u8> = Vec::new();
        let mut base = 0u64; // input offset of the next block's first byte
        let mut total = 0u64;
        let mut discarding = false;
        loop {
            let mut buf = self.buffer();
            let mut filled = carry.len();
            if buf.len() < filled + cb {
                buf.resize(filled + cb, 0);
            }
            buf[..filled].copy_from_slice(&carry);
            carry.clear();
            let mut eof = false;
            let mut err = None;
            let mut target = filled.max(cb);
            loop {
                if buf.len() < target {
                    buf.resize(target, 0);
                }
                while filled < target {
                    match r.read(&mut buf[filled..target]) {
                        Ok(0) => {
                            eof = true;
                            break;
                        }
                        Ok(k) => {
                            filled += k;
                            total += k as u64;
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) => {
                            err = Some(e.to_string());
                            eof = true;
                            break;
                        }
                    }
                }
                if discarding {
                    // Inside an over-long line: drop bytes up to its newline.
                    match memchr::memchr(b'\n', &buf[..filled]) {
                        Some(p) => {
                            discarding = false;
                            buf.copy_within(p + 1..filled, 0);
                            filled -= p + 1;
                            base += p as u64 + 1;
                            if !self.send(file, base, Vec::new(), 0, true) {
                                return (total, err);
                            }
                        }
                        None => {
                            base += filled as u64;
                            filled = 0;
                            if eof {
                                let _ = self.send(file, base, Vec::new(), 0, true);
                                return (total, err);
                            }
                            continue;
                        }
                    }
                    if !eof && filled < cb {
                        target = cb;
                        continue;
                    }
                }
                if eof {
                    break;
                }
                match memchr::memrchr(b'\n', &buf[..filled]) {
                    Some(p) => {
                        carry.extend_from_slice(&buf[p + 1..filled]);
                        filled = p + 1;
                        break;
                    }
                    None if filled >= max_line => {
                        discarding = true;
                        base += filled as u64;
                        filled = 0;
                        target = cb;
                    }
                    None => target = (filled * 2).min(max_line + 1).max(filled + 1),
                }
            }
            if filled > 0 && !self.send(file, base, buf, filled, false) {
                return (total, err);
            }
            base += filled as u64;
            if eof {
                return (total, err);
            }
        }
    }
}

pub(super) struct ProgressRead<'a, 'b> {
    pub(super) inner: &'a mut Box<dyn Read + 'b>,
    pub(super) bar: Option<&'a indicatif::ProgressBar>,
    pub(super) counter: &'a AtomicU64,
}

impl Read for ProgressRead<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(pb) = self.bar {
            pb.set_position(self.counter.load(Ordering::Relaxed));
        }
        Ok(n)
    }
}
