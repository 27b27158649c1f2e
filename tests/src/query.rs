//! Small clients for what the tests ask the stack: Prometheus' HTTP API, Jaeger's `/api/v3`, and
//! Prometheus text exposition (the collector's and the app's own `/metrics`).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::error::StackError;

fn client() -> Result<reqwest::blocking::Client, StackError> {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| http_error("client", e))
}

fn http_error(url: &str, e: impl std::fmt::Display) -> StackError {
    StackError::Http {
        url: url.to_string(),
        reason: e.to_string(),
    }
}

fn get_json(url: &str, query: &[(&str, String)]) -> Result<(u16, Value), StackError> {
    let resp = client()?
        .get(url)
        .query(query)
        .send()
        .map_err(|e| http_error(url, e))?;
    let status = resp.status().as_u16();
    let text = resp.text().map_err(|e| http_error(url, e))?;
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, value))
}

/// One series of an instant query.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Its labels (with `__name__` when the result keeps it).
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// Runs an instant PromQL query; an error when Prometheus refuses the expression.
pub fn prom_query(base: &str, expr: &str) -> Result<Vec<Sample>, StackError> {
    let url = format!("{base}/api/v1/query");
    let (status, body) = get_json(&url, &[("query", expr.to_string())])?;
    if status != 200 || body["status"] != "success" {
        return Err(http_error(&url, format!("{expr}: HTTP {status}: {body}")));
    }
    let data = &body["data"];
    let rows = match data["resultType"].as_str() {
        Some("vector") => data["result"].as_array().cloned().unwrap_or_default(),
        Some("scalar") => vec![serde_json::json!({"metric": {}, "value": data["result"].clone()})],
        _ => Vec::new(),
    };
    Ok(rows
        .iter()
        .map(|row| Sample {
            labels: row["metric"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            value: row["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN),
        })
        .collect())
}

/// An exemplar: the labels of its series and its trace id.
pub type Exemplar = (BTreeMap<String, String>, String);

/// Exemplars of the series matching `expr` over the last `window`: (series labels, trace id).
pub fn prom_exemplars(
    base: &str,
    expr: &str,
    window: Duration,
) -> Result<Vec<Exemplar>, StackError> {
    let url = format!("{base}/api/v1/query_exemplars");
    let end = unix(SystemTime::now());
    let start = end - window.as_secs_f64();
    let (status, body) = get_json(
        &url,
        &[
            ("query", expr.to_string()),
            ("start", format!("{start:.3}")),
            ("end", format!("{end:.3}")),
        ],
    )?;
    if status != 200 || body["status"] != "success" {
        return Err(http_error(&url, format!("{expr}: HTTP {status}: {body}")));
    }
    let mut out = Vec::new();
    for series in body["data"].as_array().into_iter().flatten() {
        let labels: BTreeMap<String, String> = series["seriesLabels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        for ex in series["exemplars"].as_array().into_iter().flatten() {
            if let Some(trace_id) = ex["labels"]["trace_id"].as_str() {
                out.push((labels.clone(), trace_id.to_string()));
            }
        }
    }
    Ok(out)
}

/// Names of the alerts Prometheus has firing now.
pub fn prom_firing_alerts(base: &str) -> Result<Vec<String>, StackError> {
    let url = format!("{base}/api/v1/alerts");
    let (_, body) = get_json(&url, &[])?;
    Ok(body["data"]["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["state"] == "firing")
        .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_string))
        .collect())
}

/// Scrape-target health: (job, health, last error) of every active target.
pub fn prom_targets(base: &str) -> Result<Vec<(String, String, String)>, StackError> {
    let url = format!("{base}/api/v1/targets");
    let (_, body) = get_json(&url, &[("state", "active".to_string())])?;
    Ok(body["data"]["activeTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["labels"]["job"].as_str().unwrap_or_default().to_string(),
                t["health"].as_str().unwrap_or_default().to_string(),
                t["lastError"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

/// A span as Jaeger returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JaegerSpan {
    /// Hex trace id.
    pub trace_id: String,
    /// Hex span id.
    pub span_id: String,
    /// Hex parent span id (empty for a root).
    pub parent_span_id: String,
    /// Span name.
    pub name: String,
    /// OTLP span kind (1 internal, 2 server, 3 client, 4 producer, 5 consumer).
    pub kind: i64,
    /// `service.name` of its resource.
    pub service: String,
    /// Its string attributes.
    pub attributes: BTreeMap<String, String>,
}

/// Services Jaeger knows.
pub fn jaeger_services(base: &str) -> Result<Vec<String>, StackError> {
    let (_, body) = get_json(&format!("{base}/api/v3/services"), &[])?;
    Ok(body["services"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect())
}

/// Spans of up to `limit` traces of `service` (with a span named `operation`, if given) that started in the
/// last `window` (empty when none match: Jaeger answers 404 then).
pub fn jaeger_find(
    base: &str,
    service: &str,
    operation: Option<&str>,
    window: Duration,
    limit: usize,
) -> Result<Vec<JaegerSpan>, StackError> {
    let now = SystemTime::now();
    let mut query = vec![
        ("query.service_name", service.to_string()),
        (
            "query.start_time_min",
            humantime::format_rfc3339_nanos(now - window).to_string(),
        ),
        (
            "query.start_time_max",
            humantime::format_rfc3339_nanos(now + Duration::from_secs(60)).to_string(),
        ),
        ("query.num_traces", limit.to_string()),
    ];
    if let Some(op) = operation {
        query.push(("query.operation_name", op.to_string()));
    }
    let url = format!("{base}/api/v3/traces");
    let (status, body) = get_json(&url, &query)?;
    match status {
        200 => Ok(spans_of(&body)),
        404 => Ok(Vec::new()),
        _ => Err(http_error(&url, format!("HTTP {status}: {body}"))),
    }
}

/// Spans of one trace (empty when Jaeger does not know it).
pub fn jaeger_trace(base: &str, trace_id: &str) -> Result<Vec<JaegerSpan>, StackError> {
    let url = format!("{base}/api/v3/traces/{trace_id}");
    let (status, body) = get_json(&url, &[])?;
    match status {
        200 => Ok(spans_of(&body)),
        404 => Ok(Vec::new()),
        _ => Err(http_error(&url, format!("HTTP {status}: {body}"))),
    }
}

fn spans_of(body: &Value) -> Vec<JaegerSpan> {
    let mut out = Vec::new();
    for rs in body["result"]["resourceSpans"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let service = rs["resource"]["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|kv| kv["key"] == "service.name")
            .and_then(|kv| kv["value"]["stringValue"].as_str())
            .unwrap_or_default()
            .to_string();
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            for span in ss["spans"].as_array().into_iter().flatten() {
                let attributes = span["attributes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|kv| {
                        let key = kv["key"].as_str()?;
                        let v = &kv["value"];
                        let text = v["stringValue"]
                            .as_str()
                            .map(str::to_string)
                            .or_else(|| v["intValue"].as_str().map(str::to_string))
                            .or_else(|| v["intValue"].as_i64().map(|i| i.to_string()))?;
                        Some((key.to_string(), text))
                    })
                    .collect();
                out.push(JaegerSpan {
                    trace_id: id(&span["traceId"]),
                    span_id: id(&span["spanId"]),
                    parent_span_id: id(&span["parentSpanId"]),
                    name: span["name"].as_str().unwrap_or_default().to_string(),
                    kind: span["kind"].as_i64().unwrap_or(0),
                    service: service.clone(),
                    attributes,
                });
            }
        }
    }
    out
}

fn id(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_ascii_lowercase()
}

/// Sum of every sample of `metric` (exact name, e.g. `otelcol_exporter_sent_log_records_total`) in a
/// Prometheus text exposition fetched from `url`, whose labels include all of `labels`.
pub fn scrape_sum(url: &str, metric: &str, labels: &[(&str, &str)]) -> Result<f64, StackError> {
    Ok(sum_in_exposition(&scrape(url)?, metric, labels))
}

/// Like [`scrape_sum`] for a counter, whichever way the exposition names it: `metric` (the collector's own
/// telemetry in the classic text format) or `metric_total` (OpenMetrics).
pub fn counter_sum(url: &str, metric: &str, labels: &[(&str, &str)]) -> Result<f64, StackError> {
    let wanted = label_filter(labels);
    Ok(sum_where(&scrape(url)?, metric, wanted))
}

/// Fetches a Prometheus text exposition.
pub fn scrape(url: &str) -> Result<String, StackError> {
    client()?
        .get(url)
        .send()
        .and_then(|r| r.text())
        .map_err(|e| http_error(url, e))
}

/// Sum of the samples of `metric` (or `metric_total`) whose label text (`a="1",b="2"`) satisfies `keep`.
pub fn sum_where(text: &str, metric: &str, keep: impl Fn(&str) -> bool) -> f64 {
    let total = format!("{metric}_total");
    samples(text, metric)
        .chain(samples(text, &total))
        .filter(|(labels, _)| keep(labels))
        .map(|(_, v)| v)
        .sum()
}

/// [`scrape_sum`] on text already fetched.
pub fn sum_in_exposition(text: &str, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let wanted = label_filter(labels);
    samples(text, metric)
        .filter(|(l, _)| wanted(l))
        .map(|(_, v)| v)
        .sum()
}

fn label_filter<'a>(labels: &'a [(&str, &str)]) -> impl Fn(&str) -> bool + 'a {
    move |text: &str| {
        labels
            .iter()
            .all(|(k, v)| text.contains(&format!("{k}=\"{v}\"")))
    }
}

/// `(label text, value)` of every sample line of exactly `metric` (not of longer names sharing the prefix).
fn samples<'t>(text: &'t str, metric: &'t str) -> impl Iterator<Item = (&'t str, f64)> + 't {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(move |line| {
            let rest = line.strip_prefix(metric)?;
            let (labels, value) = match rest
                .strip_prefix('{')
                .and_then(|r| r.rfind('}').map(|e| (&r[..e], &r[e + 1..])))
            {
                Some(pair) => pair,
                None if rest.starts_with(' ') => ("", rest),
                None => return None,
            };
            let value = value.split_whitespace().next()?.parse::<f64>().ok()?;
            Some((labels, value))
        })
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_sums_only_the_named_metric_with_the_given_labels() {
        let text = "# HELP x\nfoo_total{a=\"1\",b=\"2\"} 3\nfoo_total{a=\"1\",b=\"3\"} 4 1700000000\nfoo_total_other 100\nfoo_total{a=\"2\"} 50\nfoo_total 7\n";
        assert_eq!(sum_in_exposition(text, "foo_total", &[("a", "1")]), 7.0);
        assert_eq!(sum_in_exposition(text, "foo_total", &[]), 64.0);
        assert_eq!(sum_in_exposition(text, "bar_total", &[]), 0.0);
    }

    #[test]
    fn sum_where_reads_both_counter_spellings_and_filters_on_label_text() {
        let text = "x_total{error_type=\"a\"} 2\nx{error_type=\"b\"} 3\nx{ok=\"1\"} 5\nx_other 7\n";
        assert_eq!(sum_where(text, "x", |l| l.contains("error_type=")), 5.0);
        assert_eq!(sum_where(text, "x", |_| true), 10.0);
    }
}
