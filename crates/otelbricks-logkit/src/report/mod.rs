//! The report: a stable JSON schema (see README.md), plain-text tables and an HTML page.

use crate::analyze::{
    Agg, Options, Partial, SKETCH_RELATIVE_ERROR, SourceStat, UNKNOWN_DAY, sort_slow,
};
use crate::timestamp;
use serde::Serialize;
use std::collections::BTreeMap;

mod text;

/// Top endpoints kept in a summary (the Python design's `most_common(20)`).
pub const TOP_ENDPOINTS: usize = 20;
/// Top error types (the Python design's `most_common(10)`).
pub const TOP_ERRORS: usize = 10;

#[derive(Debug, Clone, Serialize, PartialEq)]
/// One endpoint of the top-20 list.
pub struct EndpointCount {
    /// Requests.
    pub count: u64,
    /// The request path (route).
    pub path: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
/// One status code and its count.
pub struct StatusCount {
    /// Requests.
    pub count: u64,
    /// The status code as text (integers as digits, others as their JSON text).
    pub status_code: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
/// One error type and its count.
pub struct ErrorCount {
    /// Error lines.
    pub count: u64,
    /// The `error_type` (`Unknown` when absent).
    pub error_type: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
/// One minute of the error timeline.
pub struct TimelineMinute {
    /// Errors by type in that minute.
    pub by_type: BTreeMap<String, u64>,
    /// Errors in that minute.
    pub count: u64,
    /// `YYYY-MM-DDTHH:MMZ`, or `unknown` for lines without a readable timestamp.
    pub minute: String,
    /// The first few request ids of that minute, in input order.
    pub request_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
/// The errors section.
pub struct Errors {
    /// Every error type, by count (ties: first seen first).
    pub error_counts: Vec<ErrorCount>,
    /// Errors per minute.
    pub timeline: Vec<TimelineMinute>,
    /// The first 10 of `error_counts`.
    pub top_errors: Vec<ErrorCount>,
    /// Error lines.
    pub total: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
/// Latency of one endpoint.
pub struct EndpointStats {
    /// Mean duration, seconds.
    pub avg: f64,
    /// Requests with a duration.
    pub count: u64,
    /// Longest duration, seconds.
    pub max: f64,
    /// Shortest duration, seconds.
    pub min: f64,
    /// Median, seconds.
    pub p50: f64,
    /// 95th percentile, seconds.
    pub p95: f64,
    /// 99th percentile, seconds.
    pub p99: f64,
    /// The request path (route).
    pub path: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
/// One request slower than the threshold.
pub struct SlowRequest {
    /// Duration, seconds.
    pub duration: f64,
    /// The request path (route).
    pub endpoint: String,
    /// Its `request_id`, if any.
    pub request_id: Option<String>,
    /// Its `timestamp` as written, if any.
    pub timestamp: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
/// The performance section.
pub struct Performance {
    /// Per endpoint, by request count (ties: first seen first).
    pub endpoint_stats: Vec<EndpointStats>,
    /// `exact` or `sketch` (DDSketch, relative error at most `sketch_relative_error`).
    pub percentile_method: String,
    /// Relative error bound of the percentiles when a sketch was used.
    pub sketch_relative_error: f64,
    /// The 20 slowest requests above the threshold, slowest first.
    pub slow_requests: Vec<SlowRequest>,
    /// The slow-request threshold, seconds.
    pub slow_threshold_seconds: f64,
}

/// One day's (or the whole input's) summary: the Python design's `generate_daily_summary`.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Summary {
    /// `YYYY-MM-DD` (UTC) for a day; `unknown` for lines without a timestamp; absent overall.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Top 20 endpoints by request count.
    pub endpoints: Vec<EndpointCount>,
    /// The errors section.
    pub errors: Errors,
    /// Request lines with a status outside 200..400 (or none).
    pub failed_requests: u64,
    /// The performance section.
    pub performance: Performance,
    /// Every status code, ascending.
    pub status_codes: Vec<StatusCount>,
    /// Request lines with a status in 200..400.
    pub successful_requests: u64,
    /// Request lines.
    pub total_requests: u64,
    /// Distinct truthy `user_id` values of request lines.
    pub unique_users: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
/// A line of an input, for skipped-line reports.
pub struct LineRef {
    /// Line number within the input, from 1.
    pub line: u64,
    /// The input.
    pub source: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
/// Lines skipped for one reason.
pub struct SkipReason {
    /// How many.
    pub count: u64,
    /// The first few of them.
    pub first_lines: Vec<LineRef>,
    /// The reason (see `Reason::as_str`).
    pub reason: String,
    /// `false` for reasons where the line was still used (e.g. `invalid_duration`).
    pub whole_line: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
/// Lines that were not analysed.
pub struct Skipped {
    /// One entry per reason that occurred.
    pub reasons: Vec<SkipReason>,
    /// Lines left out entirely.
    pub total: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
/// One input.
pub struct SourceReport {
    /// Bytes read from it.
    pub bytes_read: u64,
    /// Why the input could not be read, or was read only in part.
    pub error: Option<String>,
    /// The input.
    pub source: String,
}

/// The full report. Its JSON form is the documented `--json` schema: the overall summary's
/// fields and the report's own, keys in alphabetical order like every object of the schema
/// (the field order of the structs above, which serialize in declaration order).
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The summary over all days.
    pub overall: Summary,
    /// One summary per UTC day, ascending (`unknown` last).
    pub days: Vec<Summary>,
    /// Lines that were not analysed, and why.
    pub skipped_lines: Skipped,
    /// Lines read.
    pub lines_read: u64,
    /// Lines outside `--since/--until`.
    pub filtered_out: u64,
    /// Earliest timestamp seen.
    pub first_timestamp: Option<String>,
    /// Latest timestamp seen.
    pub last_timestamp: Option<String>,
    /// The inputs.
    pub sources: Vec<SourceReport>,
}

fn ranked<K>(m: impl IntoIterator<Item = (K, crate::analyze::Counted)>) -> Vec<(K, u64)> {
    let mut v: Vec<_> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.1.first.cmp(&b.1.first)));
    v.into_iter().map(|(k, c)| (k, c.count)).collect()
}

fn summarize(agg: &mut Agg, date: Option<String>, opts: &Options) -> Summary {
    let endpoints = ranked(agg.endpoints.iter().map(|e| (e.name.clone(), e.seen)))
        .into_iter()
        .take(TOP_ENDPOINTS)
        .map(|(path, count)| EndpointCount { path, count })
        .collect();
    let mut status: Vec<(Option<i64>, String, u64)> = agg
        .status_int
        .iter()
        .map(|(k, c)| (Some(*k), k.to_string(), c.count))
        .chain(
            agg.status_other
                .iter()
                .map(|(k, c)| (None, k.clone(), c.count)),
        )
        .collect();
    status.sort_by(|a, b| (a.0.is_none(), a.0, &a.1).cmp(&(b.0.is_none(), b.0, &b.1)));
    let error_counts: Vec<ErrorCount> = ranked(agg.errors.iter().map(|(k, c)| (k.clone(), *c)))
        .into_iter()
        .map(|(error_type, count)| ErrorCount { error_type, count })
        .collect();
    // The timeline is moved out of the aggregate (its strings are not copied): nothing
    // reads it after its summary.
    let mut minutes: Vec<_> = std::mem::take(&mut agg.timeline).into_iter().collect();
    minutes.sort_unstable_by_key(|(k, _)| (*k == UNKNOWN_DAY, *k));
    let timeline = minutes
        .into_iter()
        .map(|(k, m)| {
            let mut ids = m.request_ids;
            ids.sort();
            TimelineMinute {
                minute: if k == UNKNOWN_DAY {
                    "unknown".into()
                } else {
                    timestamp::format_minute(k)
                },
                count: m.count,
                by_type: m.by_type.into_iter().collect(),
                request_ids: ids.into_iter().map(|(_, id)| id).collect(),
            }
        })
        .collect();
    let mut perf: Vec<_> = agg
        .endpoints
        .iter_mut()
        .filter_map(|e| Some((&e.name, e.perf.as_mut()?)))
        .collect();
    perf.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.1.first.cmp(&b.1.first)));
    let exact = perf.iter().all(|(_, p)| p.dist.is_exact());
    let endpoint_stats = perf
        .into_iter()
        .map(|(path, p)| {
            let ps = p.dist.percentiles(&[50, 95, 99]);
            EndpointStats {
                path: path.clone(),
                count: p.count,
                avg: if p.count > 0 {
                    p.sum.value() / p.count as f64
                } else {
                    0.0
                },
                min: p.min,
                max: p.max,
                p50: ps[0],
                p95: ps[1],
                p99: ps[2],
            }
        })
        .collect();
    sort_slow(&mut agg.slow);
    let slow_requests = agg
        .slow
        .iter()
        .take(crate::analyze::SLOW_REQUESTS)
        .map(|s| SlowRequest {
            request_id: s.request_id.clone(),
            endpoint: s.endpoint.clone(),
            duration: s.duration,
            timestamp: s.timestamp.clone(),
        })
        .collect();
    Summary {
        date,
        total_requests: agg.total,
        successful_requests: agg.successful,
        failed_requests: agg.failed,
        unique_users: agg.users.len() as u64,
        endpoints,
        status_codes: status
            .into_iter()
            .map(|(_, status_code, count)| StatusCount { status_code, count })
            .collect(),
        errors: Errors {
            total: agg.error_total,
            top_errors: error_counts.iter().take(TOP_ERRORS).cloned().collect(),
            error_counts,
            timeline,
        },
        performance: Performance {
            percentile_method: if exact {
                "exact".into()
            } else {
                "sketch".into()
            },
            sketch_relative_error: SKETCH_RELATIVE_ERROR,
            slow_threshold_seconds: opts.slow_threshold,
            endpoint_stats,
            slow_requests,
        },
    }
}

pub(crate) fn build(
    p: Partial,
    sources: Vec<SourceStat>,
    skipped: Skipped,
    opts: &Options,
) -> Report {
    let mut day_keys: Vec<i64> = p.days.keys().copied().collect();
    day_keys.sort_by_key(|d| (*d == UNKNOWN_DAY, *d));
    let mut days_map = p.days;
    let mut days = Vec::new();
    let day_name = |d: i64| {
        if d == UNKNOWN_DAY {
            "unknown".to_owned()
        } else {
            timestamp::format_day(d)
        }
    };
    let overall = match day_keys[..] {
        // One day with exact percentiles: the overall summary is that day's (the same
        // values, hence the same counts, sums and order statistics), not computed twice.
        [d] if days_map.get(&d).is_some_and(|agg| {
            agg.endpoints
                .iter()
                .all(|e| e.perf.as_ref().is_none_or(|p| p.dist.is_exact()))
        }) =>
        {
            let mut agg = days_map.remove(&d).unwrap_or_default();
            let day = summarize(&mut agg, Some(day_name(d)), opts);
            let overall = Summary {
                date: None,
                ..day.clone()
            };
            days.push(day);
            overall
        }
        _ => {
            let mut overall = Agg::default();
            let mut timeline = Vec::new();
            for d in day_keys {
                let Some(mut agg) = days_map.remove(&d) else {
                    continue;
                };
                let day = summarize(&mut agg, Some(day_name(d)), opts);
                // A minute lies in exactly one day (days are whole minutes, `unknown` lines
                // have the `unknown` minute and day, last in both orders), so the overall
                // timeline is the days' timelines in day order: not merged and sorted again.
                timeline.extend(day.errors.timeline.iter().cloned());
                days.push(day);
                // Overall percentiles: exact while the total fits, else a sketch.
                overall.merge(agg, opts.exact_limit.saturating_mul(2));
            }
            let mut s = summarize(&mut overall, None, opts);
            s.errors.timeline = timeline;
            s
        }
    };
    Report {
        overall,
        days,
        skipped_lines: skipped,
        lines_read: p.lines,
        filtered_out: p.filtered_out,
        first_timestamp: p.first_ts.map(timestamp::format_micros),
        last_timestamp: p.last_ts.map(timestamp::format_micros),
        sources: sources
            .into_iter()
            .map(|s| SourceReport {
                source: s.name,
                bytes_read: s.bytes_read,
                error: s.error,
            })
            .collect(),
    }
}

impl Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ReportJson {
            report: self,
            section: Section::Summary,
        }
        .serialize(s)
    }
}

/// A command's part of the report, as one JSON object with its keys in alphabetical order.
struct ReportJson<'a> {
    report: &'a Report,
    section: Section,
}

impl Serialize for ReportJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let r = self.report;
        let o = &r.overall;
        let all = self.section == Section::Summary;
        let errors = all || self.section == Section::Errors;
        let perf = all || self.section == Section::Perf;
        let mut m = s.serialize_map(None)?;
        // Alphabetical, the overall summary's keys merged with the report's.
        if all {
            if let Some(d) = &o.date {
                m.serialize_entry("date", d)?;
            }
            m.serialize_entry("days", &r.days)?;
            m.serialize_entry("endpoints", &o.endpoints)?;
        }
        if errors {
            m.serialize_entry("errors", &o.errors)?;
        }
        if all {
            m.serialize_entry("failed_requests", &o.failed_requests)?;
        }
        m.serialize_entry("filtered_out", &r.filtered_out)?;
        if all {
            m.serialize_entry("first_timestamp", &r.first_timestamp)?;
            m.serialize_entry("last_timestamp", &r.last_timestamp)?;
        }
        m.serialize_entry("lines_read", &r.lines_read)?;
        if perf {
            m.serialize_entry("performance", &o.performance)?;
        }
        m.serialize_entry("skipped_lines", &r.skipped_lines)?;
        m.serialize_entry("sources", &r.sources)?;
        if all {
            m.serialize_entry("status_codes", &o.status_codes)?;
            m.serialize_entry("successful_requests", &o.successful_requests)?;
            m.serialize_entry("total_requests", &o.total_requests)?;
            m.serialize_entry("unique_users", &o.unique_users)?;
        }
        m.end()
    }
}

/// Which part of the report a command shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Error counts and timeline.
    Errors,
    /// Per-endpoint latency.
    Perf,
    /// The daily summary.
    Summary,
}

impl Report {
    /// The JSON value for a command: the whole report for `summary`; for `errors` and
    /// `perf` only their section plus `skipped_lines`, `lines_read`, `filtered_out` and
    /// `sources`.
    pub fn to_json(&self, section: Section) -> serde_json::Value {
        serde_json::to_value(ReportJson {
            report: self,
            section,
        })
        .unwrap_or(serde_json::Value::Null)
    }

    /// Writes [`Report::to_json`]'s value as pretty JSON (the same bytes), straight from the
    /// report without building the value first.
    pub fn write_json<W: std::io::Write>(
        &self,
        section: Section,
        w: W,
    ) -> Result<(), serde_json::Error> {
        serde_json::to_writer_pretty(
            w,
            &ReportJson {
                report: self,
                section,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::{TIMELINE_REQUEST_IDS, run};
    use crate::input::Source;
    use std::io::Write as _;

    /// The overall timeline is built from the days' timelines in day order; it must equal
    /// the timeline of all days' aggregates merged and summarized as a whole.
    #[test]
    fn overall_timeline_is_the_days_timelines_merged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.json");
        let mut f = std::fs::File::create(&path).unwrap();
        let types = ["KeyError", "ValueError", "TimeoutError"];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..6000u64 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Three days around two midnights, a few minutes each, shuffled; some lines
            // without a readable timestamp (the `unknown` minute and day).
            let day = 26 + (state >> 5) % 3;
            let hm = if (state >> 9).is_multiple_of(2) {
                "23:5"
            } else {
                "00:0"
            };
            let ts = if state.is_multiple_of(17) {
                "\"broken\"".to_owned()
            } else {
                format!(
                    "\"2026-11-{day}T{hm}{}:{:02}.000000\"",
                    (state >> 13) % 10,
                    (state >> 20) % 60
                )
            };
            let level = if state.is_multiple_of(5) {
                "INFO"
            } else {
                "ERROR"
            };
            let rid = if state.is_multiple_of(11) {
                "null".to_owned()
            } else {
                format!("\"r{i}\"")
            };
            writeln!(
                f,
                "{{\"timestamp\": {ts}, \"level\": \"{level}\", \"message\": \"Request failed\", \
                 \"request_id\": {rid}, \"path\": \"/p{}\", \"error_type\": \"{}\", \
                 \"duration\": 0.{}}}",
                state % 4,
                types[(state % 3) as usize],
                state % 1000 + 1,
            )
            .unwrap();
        }
        drop(f);
        let opts = Options {
            threads: 3,
            chunk_bytes: 64 << 10,
            ..Options::default()
        };
        let sources = [Source::File(path)];

        let report = crate::analyze::finish(run(&sources, &opts).unwrap(), &opts);
        let mut keys: Vec<i64> = Vec::new();
        let mut merged = Agg::default();
        let mut days = run(&sources, &opts).unwrap().partial.days;
        keys.extend(days.keys().copied());
        keys.sort_by_key(|d| (*d == UNKNOWN_DAY, *d));
        for d in &keys {
            merged.merge(days.remove(d).unwrap(), opts.exact_limit.saturating_mul(2));
        }
        let whole = summarize(&mut merged, None, &opts);

        assert_eq!(keys.len(), 4, "three days and unknown");
        let t = &report.overall.errors.timeline;
        assert!(t.len() > 40, "{}", t.len());
        assert_eq!(t.last().map(|m| m.minute.as_str()), Some("unknown"));
        assert!(
            t.iter()
                .any(|m| m.count as usize > TIMELINE_REQUEST_IDS * 2)
        );
        assert_eq!(*t, whole.errors.timeline);
        assert_eq!(
            report.overall,
            Summary {
                date: None,
                ..whole
            }
        );
    }
}
