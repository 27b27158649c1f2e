//! A self-contained HTML report with inline SVG charts.

use crate::report::{Report, Summary};
use std::fmt::Write as _;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Horizontal grouped bars: p50/p95/p99 latency by endpoint.
fn latency_chart(o: &mut String, s: &Summary) {
    let eps = &s.performance.endpoint_stats;
    let max = eps.iter().map(|e| e.p99).fold(0.0f64, f64::max).max(1e-9);
    let row = 42;
    let h = 30 + row * eps.len().max(1);
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="860" height="{h}" role="img" aria-label="latency percentiles by endpoint">"#
    );
    let colors = [("p50", "#4c78a8"), ("p95", "#f58518"), ("p99", "#e45756")];
    for (i, (name, c)) in colors.iter().enumerate() {
        let _ = write!(
            o,
            r#"<rect x="{}" y="4" width="10" height="10" fill="{c}"/><text x="{}" y="13" font-size="11">{name}</text>"#,
            260 + i * 60,
            274 + i * 60
        );
    }
    for (i, e) in eps.iter().enumerate() {
        let y = 24 + i * row;
        let _ = write!(
            o,
            r#"<text x="0" y="{}" font-size="12">{}</text>"#,
            y + 20,
            esc(&e.path)
        );
        for (j, (v, (_, c))) in [e.p50, e.p95, e.p99].iter().zip(colors.iter()).enumerate() {
            let w = (v / max * 520.0).max(1.0);
            let yy = y + j * 12;
            let _ = write!(
                o,
                r#"<rect x="260" y="{yy}" width="{w:.1}" height="11" fill="{c}"><title>{:.4}s</title></rect><text x="{:.1}" y="{}" font-size="10">{:.3}s</text>"#,
                v,
                264.0 + w,
                yy + 10,
                v
            );
        }
    }
    o.push_str("</svg>");
}

fn timeline_chart(o: &mut String, s: &Summary) {
    let t = &s.errors.timeline;
    if t.is_empty() {
        o.push_str("<p>No errors.</p>");
        return;
    }
    let max = t.iter().map(|m| m.count).max().unwrap_or(1).max(1) as f64;
    let (w, h) = (860.0, 200.0);
    let step = w / t.len() as f64;
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{}" role="img" aria-label="errors per minute">"#,
        h + 30.0
    );
    for (i, m) in t.iter().enumerate() {
        let bh = m.count as f64 / max * h;
        let _ = write!(
            o,
            r##"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{bh:.2}" fill="#e45756"><title>{} {} errors</title></rect>"##,
            i as f64 * step,
            h - bh,
            step.max(0.5),
            esc(&m.minute),
            m.count
        );
    }
    let _ = write!(
        o,
        r#"<text x="0" y="{}" font-size="11">{}</text><text x="{}" y="{}" font-size="11" text-anchor="end">{}</text><text x="2" y="12" font-size="11">max {} / min</text></svg>"#,
        h + 20.0,
        esc(&t[0].minute),
        w,
        h + 20.0,
        esc(&t[t.len() - 1].minute),
        max
    );
}

fn status_chart(o: &mut String, s: &Summary) {
    let total: u64 = s.status_codes.iter().map(|c| c.count).sum::<u64>().max(1);
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="860" height="{}" role="img" aria-label="status codes">"#,
        24 * s.status_codes.len().max(1)
    );
    for (i, c) in s.status_codes.iter().enumerate() {
        let color = match c.status_code.chars().next() {
            Some('2') => "#54a24b",
            Some('3') => "#4c78a8",
            Some('4') => "#f58518",
            _ => "#e45756",
        };
        let w = c.count as f64 / total as f64 * 700.0;
        let y = i * 24;
        let _ = write!(
            o,
            r#"<text x="0" y="{}" font-size="12">{}</text><rect x="60" y="{}" width="{w:.1}" height="18" fill="{color}"/><text x="{:.1}" y="{}" font-size="11">{} ({:.1}%)</text>"#,
            y + 14,
            esc(&c.status_code),
            y + 2,
            64.0 + w,
            y + 14,
            c.count,
            c.count as f64 * 100.0 / total as f64
        );
    }
    o.push_str("</svg>");
}

/// Renders the report as one HTML page (no external resources).
pub fn render(r: &Report) -> String {
    let s = &r.overall;
    let mut o = String::from(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>logkit report</title><style>body{font-family:sans-serif;margin:2em;max-width:920px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}td:first-child,th:first-child{text-align:left}</style></head><body><h1>logkit report</h1>",
    );
    let _ = write!(
        o,
        "<p>Period {} .. {} &middot; lines read {} &middot; skipped {}</p>",
        esc(r.first_timestamp.as_deref().unwrap_or("-")),
        esc(r.last_timestamp.as_deref().unwrap_or("-")),
        r.lines_read,
        r.skipped_lines.total
    );
    let _ = write!(
        o,
        "<table><tr><th>total requests</th><th>successful</th><th>failed</th><th>unique users</th><th>errors</th></tr><tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        s.total_requests, s.successful_requests, s.failed_requests, s.unique_users, s.errors.total
    );
    let _ = write!(
        o,
        "<h2>Latency percentiles by endpoint ({})</h2>",
        esc(&s.performance.percentile_method)
    );
    latency_chart(&mut o, s);
    o.push_str("<table><tr><th>endpoint</th><th>count</th><th>avg</th><th>min</th><th>max</th><th>p50</th><th>p95</th><th>p99</th></tr>");
    for e in &s.performance.endpoint_stats {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td></tr>",
            esc(&e.path),
            e.count,
            e.avg,
            e.min,
            e.max,
            e.p50,
            e.p95,
            e.p99
        );
    }
    o.push_str("</table><h2>Errors per minute</h2>");
    timeline_chart(&mut o, s);
    o.push_str("<table><tr><th>error type</th><th>count</th></tr>");
    for e in &s.errors.top_errors {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td></tr>",
            esc(&e.error_type),
            e.count
        );
    }
    o.push_str("</table><h2>Status codes</h2>");
    status_chart(&mut o, s);
    if r.days.len() > 1 {
        o.push_str("<h2>Per day</h2><table><tr><th>date</th><th>requests</th><th>successful</th><th>failed</th><th>users</th><th>errors</th></tr>");
        for d in &r.days {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(d.date.as_deref().unwrap_or("")),
                d.total_requests,
                d.successful_requests,
                d.failed_requests,
                d.unique_users,
                d.errors.total
            );
        }
        o.push_str("</table>");
    }
    if !r.skipped_lines.reasons.is_empty() {
        o.push_str("<h2>Skipped lines</h2><table><tr><th>reason</th><th>count</th><th>first lines</th></tr>");
        for s in &r.skipped_lines.reasons {
            let l: Vec<String> = s
                .first_lines
                .iter()
                .map(|l| format!("{}:{}", esc(&l.source), l.line))
                .collect();
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&s.reason),
                s.count,
                l.join(", ")
            );
        }
        o.push_str("</table>");
    }
    o.push_str("</body></html>\n");
    o
}
