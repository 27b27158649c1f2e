//! The analysis engine: reads inputs in large blocks on one thread, splits them at line
//! boundaries, and parses/aggregates the blocks on worker threads; the per-worker results
//! are merged at the end (ties are broken by first appearance in the input, as the seed's
//! `Counter.most_common` does).

use crate::error::AnalyzeError;
use crate::input::{self, Source};
use crate::keys::{StrIndex, StrSet};
use crate::line::{self, Val};
use crate::report::{self, Report};
use crate::timestamp::{self, MICROS_PER_DAY, MICROS_PER_MINUTE, Micros};
use rustc_hash::FxHashMap as HashMap;
use sketches_ddsketch::{Config as SketchConfig, DDSketch};
use std::io::{ErrorKind, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

/// Relative accuracy of the percentile sketch used past [`Options::exact_limit`] values.
pub const SKETCH_RELATIVE_ERROR: f64 = 0.005;
/// Request ids kept per minute of the error timeline.
pub const TIMELINE_REQUEST_IDS: usize = 5;
/// Line numbers kept per skip reason.
pub const FIRST_LINES: usize = 5;
/// The seed's number of slowest requests.
pub const SLOW_REQUESTS: usize = 20;

/// Analysis options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only lines with `timestamp >= since` (lines without a readable timestamp are skipped
    /// when a filter is set).
    pub since: Option<Micros>,
    /// Only lines with `timestamp < until`.
    pub until: Option<Micros>,
    /// Requests slower than this many seconds are listed (the seed: 5.0).
    pub slow_threshold: f64,
    /// Parser threads (default: available cores).
    pub threads: usize,
    /// age identity file for encrypted inputs.
    pub identity: Option<PathBuf>,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Longer lines are skipped (`line_too_long`) without being held in memory.
    pub max_line_bytes: usize,
    /// Durations kept exactly (per worker thread) before percentiles switch to a sketch.
    pub exact_limit: usize,
    /// Block size handed to the parser threads.
    pub chunk_bytes: usize,
    /// Parse plain files in place through a read-only memory mapping (no copy); `false`
    /// reads them with `pread` (safe against files truncated while being read).
    pub mmap: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            since: None,
            until: None,
            slow_threshold: 5.0,
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            identity: None,
            progress: false,
            max_line_bytes: 16 << 20,
            exact_limit: 2_000_000,
            chunk_bytes: 1 << 20,
            mmap: true,
        }
    }
}

/// Why a line was skipped (or, for `InvalidDuration`, partly ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    MalformedJson,
    NotAnObject,
    InvalidUtf8,
    LineTooLong,
    BlankLine,
    NoTimestamp,
    InvalidDuration,
}

impl Reason {
    pub const ALL: [Reason; 7] = [
        Reason::MalformedJson,
        Reason::NotAnObject,
        Reason::InvalidUtf8,
        Reason::LineTooLong,
        Reason::BlankLine,
        Reason::NoTimestamp,
        Reason::InvalidDuration,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MalformedJson => "malformed_json",
            Reason::NotAnObject => "not_an_object",
            Reason::InvalidUtf8 => "invalid_utf8",
            Reason::LineTooLong => "line_too_long",
            Reason::BlankLine => "blank_line",
            Reason::NoTimestamp => "no_timestamp_with_time_filter",
            Reason::InvalidDuration => "invalid_duration",
        }
    }
    /// Whether the whole line was left out (`InvalidDuration` lines still count as requests).
    pub fn whole_line(self) -> bool {
        self != Reason::InvalidDuration
    }
}

/// A count with the position of the first occurrence (for stable tie-breaking).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counted {
    pub count: u64,
    pub first: u64,
}

impl Counted {
    fn new(first: u64) -> Self {
        Counted { count: 0, first }
    }
    fn merge(&mut self, o: &Counted) {
        self.count += o.count;
        self.first = self.first.min(o.first);
    }
}

fn bump<
    K: std::hash::Hash + Eq + std::borrow::Borrow<Q>,
    Q: std::hash::Hash + Eq + ?Sized + ToOwned<Owned = K>,
>(
    m: &mut HashMap<K, Counted>,
    k: &Q,
    seq: u64,
) {
    if let Some(c) = m.get_mut(k) {
        c.count += 1;
    } else {
        m.insert(
            k.to_owned(),
            Counted {
                count: 1,
                first: seq,
            },
        );
    }
}

fn merge_counts<K: std::hash::Hash + Eq>(
    into: &mut HashMap<K, Counted>,
    from: HashMap<K, Counted>,
) {
    for (k, c) in from {
        into.entry(k).or_insert(Counted::new(c.first)).merge(&c);
    }
}

/// Durations of one endpoint: exact values, or a sketch once there are too many.
#[derive(Clone)]
pub(crate) enum Dist {
    Exact(Vec<f64>),
    /// Exact values of several merged aggregates, kept apart: concatenating them would only
    /// copy every value into new memory (page faults) before the percentile selection.
    Parts(Vec<Vec<f64>>),
    Sketch(Box<DDSketch>),
}

pub(crate) fn new_sketch() -> DDSketch {
    DDSketch::new(SketchConfig::new(SKETCH_RELATIVE_ERROR, 8192, 1e-9))
}

impl Dist {
    fn make_sketch(&mut self) {
        let parts = match std::mem::replace(self, Dist::Parts(Vec::new())) {
            Dist::Exact(v) => vec![v],
            Dist::Parts(p) => p,
            sketch @ Dist::Sketch(_) => {
                *self = sketch;
                return;
            }
        };
        let mut s = new_sketch();
        for &x in parts.iter().flatten() {
            s.add(x);
        }
        *self = Dist::Sketch(Box::new(s));
    }
    /// The exact values' count (`None` for a sketch).
    fn exact_len(&self) -> Option<usize> {
        match self {
            Dist::Exact(v) => Some(v.len()),
            Dist::Parts(p) => Some(p.iter().map(Vec::len).sum()),
            Dist::Sketch(_) => None,
        }
    }
    fn into_parts(self) -> Vec<Vec<f64>> {
        match self {
            Dist::Exact(v) => vec![v],
            Dist::Parts(p) => p,
            Dist::Sketch(_) => Vec::new(),
        }
    }
    fn merge(&mut self, o: Dist, exact_limit: usize) {
        match (self.exact_len(), o.exact_len()) {
            (Some(a), Some(b)) if a + b <= exact_limit => {
                let mut parts = std::mem::replace(self, Dist::Parts(Vec::new())).into_parts();
                parts.extend(o.into_parts().into_iter().filter(|v| !v.is_empty()));
                *self = Dist::Parts(parts);
            }
            _ => {
                let mut o = o;
                self.make_sketch();
                o.make_sketch();
                if let (Dist::Sketch(a), Dist::Sketch(b)) = (self, o) {
                    // Same configuration on both sides: merge cannot fail.
                    let _ = a.merge(&b);
                }
            }
        }
    }
    /// The seed's percentile: `sorted(v)[min(int(n * p / 100), n - 1)]`.
    pub fn percentiles(&mut self, ps: &[u64]) -> Vec<f64> {
        let parts: Vec<&mut [f64]> = match self {
            Dist::Exact(v) => vec![&mut v[..]],
            Dist::Parts(p) => p.iter_mut().map(|v| &mut v[..]).collect(),
            Dist::Sketch(s) => {
                let n = s.count();
                return ps
                    .iter()
                    .map(|&p| {
                        if n == 0 {
                            return 0.0;
                        }
                        let idx = ((n as u64 * p / 100) as usize).min(n - 1);
                        let q = if idx + 1 >= n {
                            1.0
                        } else {
                            ((idx as f64 + 0.5) / (n as f64 - 1.0)).min(1.0)
                        };
                        s.quantile(q).ok().flatten().unwrap_or(0.0)
                    })
                    .collect();
            }
        };
        let n: usize = parts.iter().map(|p| p.len()).sum();
        if n == 0 {
            return vec![0.0; ps.len()];
        }
        let mut ranks: Vec<(usize, usize)> = ps
            .iter()
            .enumerate()
            .map(|(j, &p)| (((n as u64 * p / 100) as usize).min(n - 1), j))
            .collect();
        ranks.sort_unstable();
        let mut out = vec![0.0; ps.len()];
        select_ranks(parts, &ranks, &mut out);
        out
    }
    pub fn is_exact(&self) -> bool {
        !matches!(self, Dist::Sketch(_))
    }
}

/// `f64::total_cmp`'s order as integers.
#[inline]
fn total_key(x: f64) -> i64 {
    let b = x.to_bits() as i64;
    b ^ ((((b >> 63) as u64) >> 1) as i64)
}

/// The exact selection of every rank of `ranks` in `v` (ascending `(rank, slot)` pairs).
fn select_in(v: &mut [f64], ranks: &[(usize, usize)], out: &mut [f64]) {
    // In ascending rank order, each selection only searches the part above the previous
    // one (everything there is >= the previous value).
    let mut lo = 0;
    for &(idx, j) in ranks {
        out[j] = *v[lo..].select_nth_unstable_by(idx - lo, f64::total_cmp).1;
        lo = idx;
    }
}

/// Fewer values than this are selected the plain way.
const SAMPLED_SELECT_FROM: usize = 1 << 15;
/// Values sampled to find each rank's neighbourhood.
const SELECT_SAMPLE: usize = 8192;

/// For each `(rank, slot)` of `ranks` (ascending ranks in the `total_cmp` order of all of
/// `parts`' values taken together), `out[slot]` = the value of that rank: what sorting the
/// concatenation would put there, without concatenating (copying every value into new
/// memory) and without reordering all of them. A sample of the values gives each rank a key
/// interval that very likely holds it; one read-only pass counts the values below each
/// interval and collects those inside, and the rank is selected among those few. Should a
/// rank fall outside its interval after all, the values are joined and selected in full,
/// so the result is always exact.
fn select_ranks(parts: Vec<&mut [f64]>, ranks: &[(usize, usize)], out: &mut [f64]) {
    let n: usize = parts.iter().map(|p| p.len()).sum();
    if n < SAMPLED_SELECT_FROM || ranks.is_empty() {
        select_joined(parts, n, ranks, out);
        return;
    }
    // An evenly spaced sample, sorted by key.
    let step = n / SELECT_SAMPLE;
    let mut sample: Vec<i64> = parts
        .iter()
        .flat_map(|p| p.iter().step_by(step))
        .map(|&x| total_key(x))
        .collect();
    sample.sort_unstable();
    let m = sample.len();
    // Each rank's interval: its position in the sample +- 4 standard deviations.
    let bounds: Vec<(i64, i64)> = ranks
        .iter()
        .map(|&(r, _)| {
            let q = r as f64 / n as f64;
            let sd = (m as f64 * q * (1.0 - q)).sqrt();
            let d = (4.0 * sd) as usize + 8;
            let at = (q * m as f64) as usize;
            let lo = at.saturating_sub(d);
            let hi = (at + d).min(m - 1);
            (
                if lo == 0 { i64::MIN } else { sample[lo] },
                if hi == m - 1 { i64::MAX } else { sample[hi] },
            )
        })
        .collect();
    let mut below = vec![0usize; ranks.len()];
    let mut inside: Vec<Vec<f64>> = vec![Vec::new(); ranks.len()];
    // Up to three ranks per pass (the report asks for three), counts in registers.
    for ((bounds, below), inside) in bounds
        .chunks(3)
        .zip(below.chunks_mut(3))
        .zip(inside.chunks_mut(3))
    {
        // A missing slot repeats the first interval; its results are not used.
        let at = |i: usize| bounds.get(i).unwrap_or(&bounds[0]);
        let lo = [at(0).0, at(1).0, at(2).0];
        // lo <= k <= hi as one unsigned comparison: a branch that is rarely taken (few
        // values are inside), while `k < lo` (for half the values, at random) is counted.
        let width = [0, 1, 2].map(|i| at(i).1.wrapping_sub(at(i).0) as u64);
        let mut count = [0usize; 3];
        let mut spare = [Vec::new(), Vec::new()];
        for p in &parts {
            for &x in p.iter() {
                let k = total_key(x);
                for i in 0..3 {
                    count[i] += usize::from(k < lo[i]);
                    if (k.wrapping_sub(lo[i]) as u64) <= width[i] {
                        match inside.get_mut(i) {
                            Some(v) => v.push(x),
                            None => spare[i - 1].push(x),
                        }
                    }
                }
            }
        }
        for (b, c) in below.iter_mut().zip(count) {
            *b = c;
        }
    }
    let found = ranks
        .iter()
        .enumerate()
        .all(|(i, &(r, _))| r >= below[i] && r - below[i] < inside[i].len());
    if !found {
        select_joined(parts, n, ranks, out);
        return;
    }
    for (i, &(r, j)) in ranks.iter().enumerate() {
        let v = &mut inside[i];
        out[j] = *v.select_nth_unstable_by(r - below[i], f64::total_cmp).1;
    }
}

/// Selection on the values joined into one slice (no copy for a single part).
fn select_joined(mut parts: Vec<&mut [f64]>, n: usize, ranks: &[(usize, usize)], out: &mut [f64]) {
    parts.retain(|p| !p.is_empty());
    if parts.len() == 1 {
        select_in(parts[0], ranks, out);
    } else {
        let mut joined = Vec::with_capacity(n);
        for p in &parts {
            joined.extend_from_slice(p);
        }
        select_in(&mut joined, ranks, out);
    }
}

/// A sum of durations that does not depend on the order of addition (so results do not
/// depend on how blocks were spread over threads): fixed point with 2^-64 s resolution,
/// plus a float part for absurdly large values.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct OrderFreeSum {
    fixed: i128,
    big: f64,
}

const FIXED_SCALE: f64 = 18_446_744_073_709_551_616.0; // 2^64

/// `(d * 2^64) as i128` (truncated toward zero) for finite `|d| < 2^40`, from the bits of
/// `d` (mantissa shifted by its exponent) instead of the `__fixdfti` library call.
#[inline]
fn to_fixed(d: f64) -> i128 {
    let bits = d.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1u64 << 52) - 1);
    // |d| = mant * 2^(max(exp, 1) - 1075), so |d| * 2^64 = mant * 2^e.
    let mant = if exp == 0 { frac } else { frac | (1u64 << 52) };
    let e = exp.max(1) - 1075 + 64;
    let mag = if e >= 0 {
        i128::from(mant) << e // e < 52 and mant < 2^53 for |d| < 2^40: fits
    } else if e > -64 {
        i128::from(mant >> -e)
    } else {
        0
    };
    if bits >> 63 == 1 { -mag } else { mag }
}

impl OrderFreeSum {
    #[inline]
    pub fn add(&mut self, d: f64) {
        if d.abs() < 1_099_511_627_776.0 {
            self.fixed += to_fixed(d);
        } else {
            self.big += d;
        }
    }
    pub fn merge(&mut self, o: OrderFreeSum) {
        self.fixed += o.fixed;
        self.big += o.big;
    }
    pub fn value(&self) -> f64 {
        self.fixed as f64 / FIXED_SCALE + self.big
    }
}

#[derive(Clone)]
pub(crate) struct Perf {
    pub count: u64,
    pub sum: OrderFreeSum,
    pub min: f64,
    pub max: f64,
    pub first: u64,
    pub dist: Dist,
}

impl Perf {
    fn merge(&mut self, o: Perf, exact_limit: usize) {
        self.count += o.count;
        self.sum.merge(o.sum);
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.first = self.first.min(o.first);
        self.dist.merge(o.dist, exact_limit);
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Slow {
    pub duration: f64,
    pub seq: u64,
    pub request_id: Option<String>,
    pub endpoint: String,
    pub timestamp: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Minute {
    pub count: u64,
    pub by_type: HashMap<String, u64>,
    /// (position, request id), the first few by position.
    pub request_ids: Vec<(u64, String)>,
}

impl Minute {
    fn add_request_id(&mut self, seq: u64, id: &str) {
        if self.request_ids.len() < TIMELINE_REQUEST_IDS {
            self.request_ids.push((seq, id.to_owned()));
        } else if let Some(max) = self.request_ids.iter_mut().max_by_key(|(s, _)| *s)
            && seq < max.0
        {
            *max = (seq, id.to_owned());
        }
    }
    fn merge(&mut self, o: Minute) {
        self.count += o.count;
        for (k, v) in o.by_type {
            *self.by_type.entry(k).or_default() += v;
        }
        for (s, id) in o.request_ids {
            self.add_request_id(s, &id);
        }
    }
}

/// Everything kept per endpoint (path) of one day: one lookup per request finds both.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub name: String,
    /// Requests (every completed request, with or without a duration).
    pub seen: Counted,
    /// Durations (requests with a numeric duration); `None` until the first one.
    pub perf: Option<Perf>,
}

/// Aggregates of one day (or of everything).
#[derive(Clone, Default)]
pub(crate) struct Agg {
    pub total: u64,
    pub successful: u64,
    pub failed: u64,
    /// User ids (non-string ids as `"\u{1}"` + their JSON text).
    pub users: StrSet,
    /// Endpoints in order of first appearance in this aggregate; found by name through
    /// `endpoint_index`.
    pub endpoints: Vec<Endpoint>,
    endpoint_index: StrIndex,
    pub status_int: HashMap<i64, Counted>,
    pub status_other: HashMap<String, Counted>,
    pub errors: HashMap<String, Counted>,
    pub error_total: u64,
    pub timeline: HashMap<i64, Minute>,
    pub slow: Vec<Slow>,
    pub exact_values: usize,
}

fn push_slow(v: &mut Vec<Slow>, s: Slow) {
    v.push(s);
    if v.len() > SLOW_REQUESTS * 2 {
        sort_slow(v);
        v.truncate(SLOW_REQUESTS);
    }
}

pub(crate) fn sort_slow(v: &mut [Slow]) {
    v.sort_by(|a, b| b.duration.total_cmp(&a.duration).then(a.seq.cmp(&b.seq)));
}

impl Agg {
    /// The index of endpoint `name` in `endpoints` (added, first seen at `seq`, if new).
    #[inline]
    fn endpoint(&mut self, name: &str, seq: u64) -> usize {
        if let Some(i) = self.endpoint_index.get(name.as_bytes()) {
            return i as usize;
        }
        let i = self.endpoints.len();
        self.endpoints.push(Endpoint {
            name: name.to_owned(),
            seen: Counted::new(seq),
            perf: None,
        });
        self.endpoint_index.insert(name.as_bytes(), i as u32);
        i
    }

    pub(crate) fn merge(&mut self, o: Agg, exact_limit: usize) {
        self.total += o.total;
        self.successful += o.successful;
        self.failed += o.failed;
        self.error_total += o.error_total;
        if self.users.len() < o.users.len() {
            let mine = std::mem::replace(&mut self.users, o.users);
            self.users.extend(mine);
        } else {
            self.users.extend(o.users);
        }
        for e in o.endpoints {
            let i = self.endpoint(&e.name, e.seen.first);
            let mine = &mut self.endpoints[i];
            mine.seen.merge(&e.seen);
            match (&mut mine.perf, e.perf) {
                (Some(a), Some(b)) => a.merge(b, exact_limit),
                (a @ None, b) => *a = b,
                (Some(_), None) => {}
            }
        }
        merge_counts(&mut self.status_int, o.status_int);
        merge_counts(&mut self.status_other, o.status_other);
        merge_counts(&mut self.errors, o.errors);
        for (k, m) in o.timeline {
            self.timeline.entry(k).or_default().merge(m);
        }
        for s in o.slow {
            push_slow(&mut self.slow, s);
        }
        sort_slow(&mut self.slow);
        self.slow.truncate(SLOW_REQUESTS);
        self.exact_values += o.exact_values;
    }
}

/// The day key of lines without a readable timestamp.
pub const UNKNOWN_DAY: i64 = i64::MIN;

/// Skipped-line bookkeeping for one reason.
#[derive(Debug, Clone, Default)]
pub(crate) struct Skips {
    pub count: u64,
    /// (chunk id, line index within the chunk)
    pub first: Vec<(u32, u32)>,
}

/// One worker's results.
#[derive(Default)]
pub(crate) struct Partial {
    pub days: HashMap<i64, Agg>,
    pub skips: HashMap<Reason, Skips>,
    /// (chunk id, number of lines)
    pub chunk_lines: Vec<(u32, u32)>,
    pub lines: u64,
    pub filtered_out: u64,
    pub first_ts: Option<Micros>,
    pub last_ts: Option<Micros>,
    exact_values: usize,
    sketched: bool,
    ts_cache: timestamp::Cache,
    parser: line::LineParser,
    /// Read errors of plain files read by the workers: (file index, error).
    pub io_errors: Vec<(u32, String)>,
}

struct Chunk {
    id: u32,
    file: u32,
    base: u64,
    buf: Vec<u8>,
    len: usize,
    /// A line longer than the limit was dropped here (the chunk holds no data).
    too_long: bool,
    /// Plain files: the worker reads this byte range itself (no copy through the reader).
    range: Option<FileRange>,
}

/// Lines of a plain file that *start* in `[off, off + len)`.
struct FileRange {
    src: RangeSource,
    off: u64,
    len: u64,
    counter: Arc<AtomicU64>,
}

/// How a worker gets at the bytes of a plain file.
#[derive(Clone)]
enum RangeSource {
    /// A read-only shared mapping of the whole file: parsed in place, no copy.
    Map(Arc<memmap2::Mmap>),
    /// `pread` into the chunk's buffer (when mapping is off or failed).
    Read(Arc<std::fs::File>),
}

/// The owned lines of `r` in a mapping of the whole file, without reading past
/// `max_line + 1` bytes of a line (an over-long line is not touched beyond that); also
/// returns the end of the bytes looked at.
fn map_range(map: &[u8], r: &FileRange, max_line: usize) -> (RangeData, usize) {
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
const FAULT_AROUND: usize = 64 << 10;

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
struct RangeData {
    start: usize,
    end: usize,
    /// Absolute offset of `buf[0]`.
    begin: u64,
    /// The last owned line is longer than the limit (not in `start..end`).
    too_long_tail: bool,
}

fn fill_range(r: &FileRange, buf: &mut Vec<u8>, max_line: usize) -> std::io::Result<RangeData> {
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
    // Complete the last line that starts inside the range.
    let short = n < want; // end of file
    if short || buf[n - 1] == b'\n' {
        return Ok(RangeData {
            start,
            end: n,
            begin,
            too_long_tail: false,
        });
    }
    let last_start = memchr::memrchr(b'\n', &buf[start..n]).map_or(start, |p| start + p + 1);
    loop {
        if n - last_start > max_line {
            return Ok(RangeData {
                start,
                end: last_start,
                begin,
                too_long_tail: true,
            });
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
                return Ok(RangeData {
                    start,
                    end: last_start,
                    begin,
                    too_long_tail: true,
                });
            }
            return Ok(RangeData {
                start,
                end,
                begin,
                too_long_tail: false,
            });
        }
        n += k;
        if k < more {
            // End of file: the last line ends there.
            if n - last_start > max_line {
                return Ok(RangeData {
                    start,
                    end: last_start,
                    begin,
                    too_long_tail: true,
                });
            }
            return Ok(RangeData {
                start,
                end: n,
                begin,
                too_long_tail: false,
            });
        }
    }
}

impl Partial {
    fn skip(&mut self, r: Reason, chunk: u32, line: u32) {
        let s = self.skips.entry(r).or_default();
        s.count += 1;
        if s.first.len() < FIRST_LINES {
            s.first.push((chunk, line));
        }
    }

    fn make_sketches(&mut self) {
        for agg in self.days.values_mut() {
            for p in agg.endpoints.iter_mut().filter_map(|e| e.perf.as_mut()) {
                p.dist.make_sketch();
            }
            agg.exact_values = 0;
        }
        self.exact_values = 0;
        self.sketched = true;
    }

    fn process_chunk(&mut self, c: &mut Chunk, opts: &Options) {
        if c.too_long {
            self.skip(Reason::LineTooLong, c.id, 0);
            self.chunk_lines.push((c.id, 1));
            self.lines += 1;
            return;
        }
        let mut n = 0u32;
        if let Some(
            r @ FileRange {
                src: RangeSource::Map(map),
                ..
            },
        ) = &c.range
        {
            let (d, touched) = map_range(map, r, opts.max_line_bytes);
            n = self.process_lines(&map[d.start..d.end], c.id, c.file, d.start as u64, opts);
            if d.too_long_tail {
                self.skip(Reason::LineTooLong, c.id, n);
                n += 1;
            }
            r.counter.fetch_add(r.len, Ordering::Relaxed);
            // Give the pages back so that resident memory stays bounded by the ranges in
            // flight. Touched: from the byte before the range to the end of its last line
            // (or `max_line + 1` bytes into an over-long one), widened by the kernel's
            // fault-around window (pages next to a faulting one are mapped with it).
            let lo = (r.off as usize).saturating_sub(1 + FAULT_AROUND);
            let hi = (touched.max(d.end) + FAULT_AROUND).min(map.len());
            if hi > lo {
                // SAFETY: `map` is a read-only shared mapping of a file: after MADV_DONTNEED
                // a later access faults the same file pages back in (nothing is zeroed, as
                // it would be for private or anonymous memory), and no slice of it is used
                // here any more.
                let _ = unsafe {
                    map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, lo, hi - lo)
                };
            }
        } else if let Some(r) = &c.range {
            match fill_range(r, &mut c.buf, opts.max_line_bytes) {
                Ok(d) => {
                    n = self.process_lines(
                        &c.buf[d.start..d.end],
                        c.id,
                        c.file,
                        d.begin + d.start as u64,
                        opts,
                    );
                    if d.too_long_tail {
                        self.skip(Reason::LineTooLong, c.id, n);
                        n += 1;
                    }
                }
                Err(e) => self.io_errors.push((c.file, e.to_string())),
            }
        } else {
            let len = c.len;
            n = self.process_lines(&c.buf[..len], c.id, c.file, c.base, opts);
        }
        self.chunk_lines.push((c.id, n));
        self.lines += u64::from(n);
        if !self.sketched && self.exact_values > opts.exact_limit {
            self.make_sketches();
        }
    }

    /// Processes the newline-separated lines of `buf` (whose first byte is at input offset
    /// `base`); returns how many there were.
    fn process_lines(&mut self, buf: &[u8], id: u32, file: u32, base: u64, opts: &Options) -> u32 {
        let mut start = 0usize;
        let mut n = 0u32;
        let file_bits = u64::from(file) << 44;
        while let Some(rest) = buf.get(start..).filter(|r| !r.is_empty()) {
            let line = self.parser.next_line(rest);
            let seq = file_bits | (base + start as u64);
            start += line.len() + 1;
            self.process_line(line, seq, id, n, opts);
            n += 1;
        }
        n
    }

    #[inline]
    fn process_line(&mut self, bytes: &[u8], seq: u64, chunk: u32, n: u32, opts: &Options) {
        if bytes.len() > opts.max_line_bytes {
            return self.skip(Reason::LineTooLong, chunk, n);
        }
        let mut l = line::Line::default();
        match self.parser.parse_next(bytes, &mut l) {
            Ok(true) => {}
            Ok(false) => return self.skip(Reason::NotAnObject, chunk, n),
            Err(_) => {
                let r = match std::str::from_utf8(bytes) {
                    Err(_) => Reason::InvalidUtf8,
                    Ok(s) if s.trim().is_empty() => Reason::BlankLine,
                    Ok(_) => Reason::MalformedJson,
                };
                return self.skip(r, chunk, n);
            }
        };
        self.aggregate(&l, seq, chunk, n, opts);
        if self.parser.last_was_plain() {
            // A plain line's strings are all borrowed from the input: nothing to free, so
            // the drop (a check of all nine fields) is skipped.
            debug_assert!(line::borrows_only(&l));
            std::mem::forget(l);
        }
    }

    #[inline]
    fn aggregate(&mut self, l: &line::Line<'_>, seq: u64, chunk: u32, n: u32, opts: &Options) {
        let is_error = matches!(
            l.level.as_ref().and_then(Val::as_str),
            Some("ERROR" | "CRITICAL")
        );
        let completed = l.message.as_ref().and_then(Val::as_str).is_some_and(|m| {
            <&[u8; 17]>::try_from(m.as_bytes()).is_ok_and(|a| a == b"Request completed")
        });
        if !is_error && !completed {
            return;
        }
        let ts = l
            .timestamp
            .as_ref()
            .and_then(Val::as_str)
            .and_then(|s| timestamp::parse_cached(s, &mut self.ts_cache));
        if opts.since.is_some() || opts.until.is_some() {
            let Some(t) = ts else {
                return self.skip(Reason::NoTimestamp, chunk, n);
            };
            if opts.since.is_some_and(|s| t < s) || opts.until.is_some_and(|u| t >= u) {
                self.filtered_out += 1;
                return;
            }
        }
        if let Some(t) = ts {
            self.first_ts = Some(self.first_ts.map_or(t, |f| f.min(t)));
            self.last_ts = Some(self.last_ts.map_or(t, |f| f.max(t)));
        }
        let day = ts.map_or(UNKNOWN_DAY, |t| t.div_euclid(MICROS_PER_DAY));
        let agg = self.days.entry(day).or_default();
        if is_error {
            agg.error_total += 1;
            let et = match &l.error_type {
                None => std::borrow::Cow::Borrowed("Unknown"),
                Some(v) => v.key(),
            };
            bump(&mut agg.errors, et.as_ref(), seq);
            let minute = ts.map_or(UNKNOWN_DAY, |t| t.div_euclid(MICROS_PER_MINUTE));
            let m = agg.timeline.entry(minute).or_default();
            m.count += 1;
            match m.by_type.get_mut(et.as_ref()) {
                Some(c) => *c += 1,
                None => {
                    m.by_type.insert(et.into_owned(), 1);
                }
            }
            if let Some(rid) = &l.request_id {
                m.add_request_id(seq, &rid.key());
            }
        }
        if completed {
            agg.total += 1;
            let ok = match &l.status_code {
                None => {
                    bump_int(&mut agg.status_int, 0, seq);
                    false
                }
                Some(Val::Int(i)) => {
                    bump_int(&mut agg.status_int, *i, seq);
                    (200..400).contains(i)
                }
                Some(v @ Val::UInt(u)) => {
                    match i64::try_from(*u) {
                        Ok(i) => bump_int(&mut agg.status_int, i, seq),
                        Err(_) => bump(&mut agg.status_other, v.key().as_ref(), seq),
                    }
                    (200..400).contains(u)
                }
                Some(v @ Val::Float(f)) => {
                    bump(&mut agg.status_other, v.key().as_ref(), seq);
                    (200.0..400.0).contains(f)
                }
                Some(v) => {
                    // Non-numeric status codes count as failed, under their JSON text.
                    bump(&mut agg.status_other, v.key().as_ref(), seq);
                    false
                }
            };
            if ok {
                agg.successful += 1;
            } else {
                agg.failed += 1;
            }
            let endpoint = match &l.path {
                None => std::borrow::Cow::Borrowed("unknown"),
                Some(v) => v.key(),
            };
            let ep = agg.endpoint(endpoint.as_ref(), seq);
            agg.endpoints[ep].seen.count += 1;
            if let Some(u) = &l.user_id
                && u.truthy()
            {
                match u {
                    Val::Str(s) => {
                        agg.users.insert(s.as_bytes());
                    }
                    other => {
                        agg.users.insert(format!("\u{1}{}", other.key()).as_bytes());
                    }
                }
            }
            match l.duration.as_ref().map(|d| (d, d.as_f64())) {
                None => {}
                Some((_, None)) => self.skip(Reason::InvalidDuration, chunk, n),
                Some((_, Some(d))) => {
                    let exact = !self.sketched;
                    let p = agg.endpoints[ep].perf.get_or_insert_with(|| Perf {
                        count: 0,
                        sum: OrderFreeSum::default(),
                        min: f64::INFINITY,
                        max: f64::NEG_INFINITY,
                        first: seq,
                        dist: if exact {
                            Dist::Exact(Vec::new())
                        } else {
                            Dist::Sketch(Box::new(new_sketch()))
                        },
                    });
                    p.count += 1;
                    p.sum.add(d);
                    p.min = p.min.min(d);
                    p.max = p.max.max(d);
                    match &mut p.dist {
                        Dist::Exact(v) => {
                            v.push(d);
                            self.exact_values += 1;
                        }
                        // Only merged aggregates have parts; a worker's are never merged.
                        Dist::Parts(p) => {
                            match p.last_mut() {
                                Some(v) => v.push(d),
                                None => p.push(vec![d]),
                            }
                            self.exact_values += 1;
                        }
                        Dist::Sketch(s) => s.add(d),
                    }
                    if d > opts.slow_threshold {
                        push_slow(
                            &mut agg.slow,
                            Slow {
                                duration: d,
                                seq,
                                request_id: l.request_id.as_ref().map(|r| r.key().into_owned()),
                                endpoint: endpoint.into_owned(),
                                timestamp: l.timestamp.as_ref().map(|t| t.key().into_owned()),
                            },
                        );
                    }
                }
            }
        }
    }
}

fn bump_int(m: &mut HashMap<i64, Counted>, k: i64, seq: u64) {
    m.entry(k).or_insert(Counted::new(seq)).count += 1;
}

/// What one input gave.
#[derive(Debug, Clone)]
pub struct SourceStat {
    pub name: String,
    pub bytes_read: u64,
    pub chunks: (u32, u32),
    /// Why reading stopped early (or failed to start).
    pub error: Option<String>,
}

/// Everything the workers found, merged; turned into a [`Report`] by [`finish`].
pub struct Analysis {
    pub(crate) partial: Partial,
    pub(crate) sources: Vec<SourceStat>,
    pub(crate) chunk_file: Vec<u32>,
}

fn worker(
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

struct Feeder<'a> {
    tx: SyncSender<Chunk>,
    pool: Arc<Mutex<Vec<Vec<u8>>>>,
    next_id: u32,
    chunk_file: Vec<u32>,
    opts: &'a Options,
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
    fn feed_ranges(
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
    fn feed(&mut self, file: u32, r: &mut dyn Read) -> (u64, Option<String>) {
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

/// Analyses the inputs named by `args` (paths, directories, globs, `-`).
pub fn analyze(args: &[String], opts: &Options) -> Result<Report, AnalyzeError> {
    let (sources, unresolved) = input::expand(args);
    let mut a = run(&sources, opts)?;
    for u in unresolved {
        a.sources.push(SourceStat {
            name: u.arg,
            bytes_read: 0,
            chunks: (0, 0),
            error: Some(u.reason),
        });
    }
    let nothing = a.partial.lines == 0
        && a.sources
            .iter()
            .all(|s| s.error.is_some() || s.bytes_read == 0);
    if nothing {
        let why: Vec<String> = if a.sources.is_empty() {
            vec!["no input".into()]
        } else {
            a.sources
                .iter()
                .map(|s| format!("{}: {}", s.name, s.error.as_deref().unwrap_or("empty")))
                .collect()
        };
        return Err(AnalyzeError::NothingRead(why));
    }
    Ok(finish(a, opts))
}

/// Reads and aggregates the given sources.
pub fn run(sources: &[Source], opts: &Options) -> Result<Analysis, AnalyzeError> {
    let threads = opts.threads.max(1);
    let (tx, rx) = sync_channel::<Chunk>(threads * 2);
    // Only the workers hold the receiver: if they all stop (a panic), sending fails
    // instead of blocking forever.
    let rx = Arc::new(Mutex::new(rx));
    let worker_rx: Vec<_> = (0..threads).map(|_| Arc::clone(&rx)).collect();
    drop(rx);
    let pool = Arc::new(Mutex::new(Vec::new()));
    let counter = Arc::new(AtomicU64::new(0));
    let total_size: u64 = sources
        .iter()
        .filter_map(|s| match s {
            Source::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
            Source::Stdin => None,
        })
        .sum();
    let bar = opts.progress.then(|| {
        let pb = indicatif::ProgressBar::with_draw_target(
            Some(total_size),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} {bytes}/{total_bytes} {bar:30} {binary_bytes_per_sec} eta {eta} {msg}",
        ) {
            pb.set_style(style);
        }
        pb
    });
    let mut stats = Vec::new();
    let mut chunk_file = Vec::new();
    let partials = std::thread::scope(|scope| {
        let handles: Vec<_> = worker_rx
            .into_iter()
            .map(|rx| {
                let pool = Arc::clone(&pool);
                let o = opts.clone();
                scope.spawn(move || worker(rx, pool, o))
            })
            .collect();
        let mut feeder = Feeder {
            tx,
            pool: Arc::clone(&pool),
            next_id: 0,
            chunk_file: Vec::new(),
            opts,
        };
        for (i, src) in sources.iter().enumerate() {
            let first = feeder.next_id;
            let name = src.name();
            if let Some(pb) = &bar {
                pb.set_message(name.clone());
            }
            if let Some((f, size)) = input::plain_file(src) {
                feeder.feed_ranges(i as u32, f, size, &counter, bar.as_ref());
                stats.push(SourceStat {
                    name,
                    bytes_read: size,
                    chunks: (first, feeder.next_id),
                    error: None,
                });
                continue;
            }
            let (bytes, error) =
                match input::open(src, opts.identity.as_deref(), Arc::clone(&counter)) {
                    Ok((mut r, _)) => {
                        // Progress: poll the byte counter between blocks via a small wrapper.
                        let mut pr = ProgressRead {
                            inner: &mut r,
                            bar: bar.as_ref(),
                            counter: &counter,
                        };
                        feeder.feed(i as u32, &mut pr)
                    }
                    Err(e) => (0, Some(e.to_string())),
                };
            stats.push(SourceStat {
                name,
                bytes_read: bytes,
                chunks: (first, feeder.next_id),
                error,
            });
        }
        chunk_file = std::mem::take(&mut feeder.chunk_file);
        drop(feeder);
        let mut out = Vec::new();
        for h in handles {
            out.push(
                h.join()
                    .map_err(|_| AnalyzeError::Worker("a parser thread panicked".into()))?,
            );
        }
        Ok::<_, AnalyzeError>(out)
    })?;
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    let mut merged = Partial::default();
    for p in partials {
        merged.lines += p.lines;
        merged.filtered_out += p.filtered_out;
        merged.first_ts = match (merged.first_ts, p.first_ts) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        merged.last_ts = match (merged.last_ts, p.last_ts) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        merged.chunk_lines.extend(p.chunk_lines);
        for (f, e) in p.io_errors {
            if let Some(st) = stats.get_mut(f as usize)
                && st.error.is_none()
            {
                st.error = Some(e);
            }
        }
        for (r, s) in p.skips {
            let m = merged.skips.entry(r).or_default();
            m.count += s.count;
            m.first.extend(s.first);
        }
        for (d, agg) in p.days {
            match merged.days.get_mut(&d) {
                Some(mine) => mine.merge(agg, opts.exact_limit),
                None => {
                    merged.days.insert(d, agg);
                }
            }
        }
    }
    Ok(Analysis {
        partial: merged,
        sources: stats,
        chunk_file,
    })
}

struct ProgressRead<'a, 'b> {
    inner: &'a mut Box<dyn Read + 'b>,
    bar: Option<&'a indicatif::ProgressBar>,
    counter: &'a AtomicU64,
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

/// Turns merged aggregates into the report.
pub fn finish(a: Analysis, opts: &Options) -> Report {
    // Line numbers: chunk id -> first line number within its file.
    let mut lines_of = vec![0u32; a.chunk_file.len()];
    for (id, n) in &a.partial.chunk_lines {
        if let Some(slot) = lines_of.get_mut(*id as usize) {
            *slot = *n;
        }
    }
    let mut start_line = vec![0u64; a.chunk_file.len()];
    let mut cur_file = u32::MAX;
    let mut acc = 0u64;
    for (id, f) in a.chunk_file.iter().enumerate() {
        if *f != cur_file {
            cur_file = *f;
            acc = 0;
        }
        start_line[id] = acc + 1;
        acc += u64::from(lines_of[id]);
    }
    let names: Vec<String> = a.sources.iter().map(|s| s.name.clone()).collect();
    let locate = |(chunk, line): (u32, u32)| -> (u32, u64) {
        let f = a.chunk_file.get(chunk as usize).copied().unwrap_or(0);
        (
            f,
            start_line.get(chunk as usize).copied().unwrap_or(1) + u64::from(line),
        )
    };
    let mut skipped = report::Skipped::default();
    for r in Reason::ALL {
        if let Some(s) = a.partial.skips.get(&r) {
            let mut firsts: Vec<(u32, u64)> = s.first.iter().map(|&p| locate(p)).collect();
            firsts.sort_unstable();
            firsts.truncate(FIRST_LINES);
            if r.whole_line() {
                skipped.total += s.count;
            }
            skipped.reasons.push(report::SkipReason {
                reason: r.as_str().to_owned(),
                count: s.count,
                whole_line: r.whole_line(),
                first_lines: firsts
                    .into_iter()
                    .map(|(f, l)| report::LineRef {
                        source: names.get(f as usize).cloned().unwrap_or_default(),
                        line: l,
                    })
                    .collect(),
            });
        }
    }
    report::build(a.partial, a.sources, skipped, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_conversion_equals_the_i128_cast() {
        let mut state = 0x1234_5678_9abc_def1u64;
        let mut cases = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            5e-324,
            1e-30,
            -1e-19,
            5.421010862427522e-20, // 2^-64
            1_099_511_627_775.999_9,
            -1_099_511_627_775.999_9,
            0.0893077373300741,
        ];
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Random bit patterns (every exponent) below 2^40, and random values of
            // moderate size.
            let d = f64::from_bits(state);
            if d.is_finite() && d.abs() < 1_099_511_627_776.0 {
                cases.push(d);
            }
            let scaled =
                (state >> 11) as f64 / (1u64 << 53) as f64 * 2f64.powi((state % 60) as i32 - 20);
            cases.push(if state & 1 == 0 { scaled } else { -scaled });
        }
        for d in cases {
            assert_eq!(to_fixed(d), (d * FIXED_SCALE) as i128, "{d:e}");
        }
    }

    fn sorted_rank(parts: &[Vec<f64>], rank: usize) -> f64 {
        let mut all: Vec<f64> = parts.iter().flatten().copied().collect();
        all.sort_by(f64::total_cmp);
        all[rank]
    }

    #[test]
    fn percentiles_of_separate_parts_equal_those_of_the_sorted_concatenation() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let n = SELECT_SAMPLE * 8;
        let mut cases: Vec<Vec<Vec<f64>>> = Vec::new();
        // Random durations in two and four parts of unequal size (the sampled path).
        let random: Vec<f64> = (0..3 * n)
            .map(|_| (next() % 10_000_000) as f64 / 1e6)
            .collect();
        cases.push(vec![random[..n].to_vec(), random[n..].to_vec()]);
        cases.push(random.chunks(n * 3 / 4 + 1).map(<[f64]>::to_vec).collect());
        // Few distinct values (intervals full of equal keys), with -0.0 and 0.0 apart.
        let few: Vec<f64> = (0..2 * n)
            .map(|_| [0.0, -0.0, 0.25, 1.5, 7.0][(next() % 5) as usize])
            .collect();
        cases.push(vec![few[..n / 3].to_vec(), few[n / 3..].to_vec()]);
        // Sorted and reversed parts.
        let mut asc = random[..2 * n].to_vec();
        asc.sort_by(f64::total_cmp);
        let desc: Vec<f64> = asc.iter().rev().copied().collect();
        cases.push(vec![asc, desc]);
        // Every sampled position holds a huge value: the sample is misleading, the
        // fallback selection must give the same answers.
        let biased: Vec<f64> = (0..n)
            .map(|i| {
                if i % 8 == 0 {
                    1e9 + i as f64
                } else {
                    (next() % 1000) as f64
                }
            })
            .collect();
        cases.push(vec![biased.clone(), biased]);
        // Below the sampling size, and single parts.
        cases.push(vec![random[..100].to_vec(), random[100..150].to_vec()]);
        cases.push(vec![random.clone()]);
        for (c, parts) in cases.into_iter().enumerate() {
            let total: usize = parts.iter().map(Vec::len).sum();
            let ps = [0, 1, 50, 95, 99, 100];
            let want: Vec<f64> = ps
                .iter()
                .map(|&p| sorted_rank(&parts, ((total as u64 * p / 100) as usize).min(total - 1)))
                .collect();
            let mut d = Dist::Parts(parts);
            let got = d.percentiles(&ps);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "case {c}");
        }
    }

    #[test]
    fn merging_exact_parts_keeps_every_value_and_switches_to_a_sketch_past_the_limit() {
        let mut a = Dist::Exact(vec![1.0, 2.0]);
        a.merge(Dist::Exact(vec![3.0]), 10);
        a.merge(Dist::Parts(vec![vec![4.0, 5.0], vec![]]), 10);
        assert_eq!(a.exact_len(), Some(5));
        assert_eq!(a.percentiles(&[0, 50, 99]), vec![1.0, 3.0, 5.0]);
        a.merge(Dist::Exact(vec![6.0; 6]), 10);
        assert!(!a.is_exact());
    }
}
