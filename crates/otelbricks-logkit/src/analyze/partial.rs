//! One worker's results: scanning the lines of a block and aggregating the request and error
//! lines into per-day aggregates.

use super::agg::{Agg, Counted, Perf, Slow, bump, push_slow};
use super::percentile::{Dist, new_sketch};
use super::read::{Chunk, FAULT_AROUND, FileRange, RangeSource, fill_range, map_range};
use super::sum::OrderFreeSum;
use super::{FIRST_LINES, Options, Reason, UNKNOWN_DAY};
use crate::line::{self, Val};
use crate::timestamp::{self, MICROS_PER_DAY, MICROS_PER_MINUTE, Micros};
use rustc_hash::FxHashMap as HashMap;
use std::sync::atomic::Ordering;

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

    pub(super) fn process_chunk(&mut self, c: &mut Chunk, opts: &Options) {
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
            // the drop (a check of all ten fields) is skipped.
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
        let request = l.is_request();
        if !is_error && !request {
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
        if request {
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
