//! The plain-text report (what `logkit summary|errors|perf` print without `--json`).

use super::{Errors, Performance, Report, Section, Summary};
use std::fmt::Write as _;

impl Report {
    /// Plain-text tables.
    pub fn to_text(&self, section: Section) -> String {
        let mut o = String::new();
        let multi_day = self.days.len() > 1;
        match section {
            Section::Summary => {
                text_summary(
                    &mut o,
                    &self.overall,
                    if multi_day { "All days" } else { "Summary" },
                );
                if multi_day {
                    for d in &self.days {
                        text_summary(
                            &mut o,
                            d,
                            &format!("Day {}", esc(d.date.as_deref().unwrap_or("?"))),
                        );
                    }
                }
            }
            Section::Errors => text_errors(&mut o, &self.overall.errors, true),
            Section::Perf => text_perf(&mut o, &self.overall.performance),
        }
        text_footer(&mut o, self);
        o
    }
}

fn fmt_s(x: f64) -> String {
    if x >= 1.0 {
        format!("{x:.3}s")
    } else {
        format!("{:.1}ms", x * 1000.0)
    }
}

/// A log-controlled value for the text report (see [`crate::terminal`]).
fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    crate::terminal::escape(s)
}

fn text_summary(o: &mut String, s: &Summary, title: &str) {
    let _ = writeln!(o, "== {title} ==");
    let _ = writeln!(
        o,
        "requests: {}  successful: {}  failed: {}  unique users: {}",
        s.total_requests, s.successful_requests, s.failed_requests, s.unique_users
    );
    let _ = writeln!(o, "\nTop endpoints:");
    let w = s
        .endpoints
        .iter()
        .map(|e| esc(&e.path).len())
        .max()
        .unwrap_or(8)
        .max(8);
    for e in &s.endpoints {
        let _ = writeln!(o, "  {:<w$}  {:>10}", esc(&e.path), e.count);
    }
    let _ = writeln!(o, "\nStatus codes:");
    for c in &s.status_codes {
        let _ = writeln!(o, "  {:<6} {:>10}", esc(&c.status_code), c.count);
    }
    let _ = writeln!(o);
    text_errors(o, &s.errors, false);
    text_perf(o, &s.performance);
}

fn text_errors(o: &mut String, e: &Errors, timeline: bool) {
    let _ = writeln!(o, "Errors: {}", e.total);
    for c in &e.top_errors {
        let _ = writeln!(o, "  {:<30} {:>10}", esc(&c.error_type), c.count);
    }
    if timeline && !e.timeline.is_empty() {
        let _ = writeln!(o, "\nError timeline (per minute):");
        for m in &e.timeline {
            let types: Vec<String> = m
                .by_type
                .iter()
                .map(|(k, v)| format!("{}={v}", esc(k)))
                .collect();
            let ids: Vec<_> = m.request_ids.iter().map(|r| esc(r)).collect();
            let _ = writeln!(
                o,
                "  {}  {:>6}  {}  [{}]",
                esc(&m.minute),
                m.count,
                types.join(" "),
                ids.join(", ")
            );
        }
    }
    let _ = writeln!(o);
}

fn text_perf(o: &mut String, p: &Performance) {
    let _ = writeln!(o, "Performance (percentiles: {}):", p.percentile_method);
    let w = p
        .endpoint_stats
        .iter()
        .map(|e| esc(&e.path).len())
        .max()
        .unwrap_or(8)
        .max(8);
    let _ = writeln!(
        o,
        "  {:<w$}  {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "endpoint", "count", "avg", "min", "max", "p50", "p95", "p99"
    );
    for e in &p.endpoint_stats {
        let _ = writeln!(
            o,
            "  {:<w$}  {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            esc(&e.path),
            e.count,
            fmt_s(e.avg),
            fmt_s(e.min),
            fmt_s(e.max),
            fmt_s(e.p50),
            fmt_s(e.p95),
            fmt_s(e.p99)
        );
    }
    let _ = writeln!(
        o,
        "\nSlowest requests over {}s: {}",
        p.slow_threshold_seconds,
        p.slow_requests.len()
    );
    for s in &p.slow_requests {
        let _ = writeln!(
            o,
            "  {:>9}  {:<28} {}  {}",
            fmt_s(s.duration),
            esc(&s.endpoint),
            esc(s.timestamp.as_deref().unwrap_or("-")),
            esc(s.request_id.as_deref().unwrap_or("-"))
        );
    }
    let _ = writeln!(o);
}

fn text_footer(o: &mut String, r: &Report) {
    let _ = writeln!(
        o,
        "lines read: {}  skipped: {}  outside time filter: {}  period: {} .. {}",
        r.lines_read,
        r.skipped_lines.total,
        r.filtered_out,
        esc(r.first_timestamp.as_deref().unwrap_or("-")),
        esc(r.last_timestamp.as_deref().unwrap_or("-"))
    );
    for s in &r.skipped_lines.reasons {
        let lines: Vec<String> = s
            .first_lines
            .iter()
            .map(|l| format!("{}:{}", esc(&l.source), l.line))
            .collect();
        let _ = writeln!(
            o,
            "  {:<30} {:>10}  first at {}",
            s.reason,
            s.count,
            lines.join(", ")
        );
    }
    for s in &r.sources {
        if let Some(e) = &s.error {
            let _ = writeln!(o, "  warning: {}: {}", esc(&s.source), esc(e));
        }
    }
}
