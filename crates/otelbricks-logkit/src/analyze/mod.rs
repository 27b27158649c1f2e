//! The analysis engine: reads inputs in large blocks on one thread, splits them at line
//! boundaries, and parses/aggregates the blocks on worker threads; the per-worker results
//! are merged at the end (ties are broken by first appearance in the input, as the Python design's
//! `Counter.most_common` does).
//!
//! Modules by concern: `read` (I/O and block splitting), `partial` (line scanning and
//! aggregation per worker), `agg` (aggregates and their merge), `percentile`, `sum`.

mod agg;
mod partial;
mod percentile;
mod read;
mod sum;

pub use agg::UNKNOWN_DAY;
pub(crate) use agg::{Agg, Counted, sort_slow};
pub(crate) use partial::Partial;

use crate::error::AnalyzeError;
use crate::input::{self, Source};
use crate::report::{self, Report};
use crate::timestamp::Micros;
use read::{Chunk, Feeder, ProgressRead, worker};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};

/// Relative accuracy of the percentile sketch used past [`Options::exact_limit`] values.
pub const SKETCH_RELATIVE_ERROR: f64 = 0.005;
/// Request ids kept per minute of the error timeline.
pub const TIMELINE_REQUEST_IDS: usize = 5;
/// Line numbers kept per skip reason.
pub const FIRST_LINES: usize = 5;
/// The Python design's number of slowest requests.
pub const SLOW_REQUESTS: usize = 20;

/// Analysis options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only lines with `timestamp >= since` (lines without a readable timestamp are skipped
    /// when a filter is set).
    pub since: Option<Micros>,
    /// Only lines with `timestamp < until`.
    pub until: Option<Micros>,
    /// Requests slower than this many seconds are listed (the Python design: 5.0).
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
    /// Not valid JSON.
    MalformedJson,
    /// Valid JSON, but not an object.
    NotAnObject,
    /// Not valid UTF-8.
    InvalidUtf8,
    /// Longer than `Options::max_line_bytes`.
    LineTooLong,
    /// Empty or whitespace only.
    BlankLine,
    /// No readable `timestamp` while `--since`/`--until` filter by time.
    NoTimestamp,
    /// A `duration` that is not a number.
    InvalidDuration,
}

impl Reason {
    /// Every reason, in report order.
    pub const ALL: [Reason; 7] = [
        Reason::MalformedJson,
        Reason::NotAnObject,
        Reason::InvalidUtf8,
        Reason::LineTooLong,
        Reason::BlankLine,
        Reason::NoTimestamp,
        Reason::InvalidDuration,
    ];
    /// The reason's name in the JSON report.
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

/// What one input gave.
#[derive(Debug, Clone)]
pub struct SourceStat {
    /// The input as named on the command line (or its expansion).
    pub name: String,
    /// Bytes read from it (compressed size for compressed inputs).
    pub bytes_read: u64,
    /// The range of block ids it was split into (first, end).
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
                pb.set_message(crate::terminal::escape(&name).into_owned());
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
