//! Small clients for what the tests ask the stack: Prometheus' HTTP API and Jaeger's `/api/v3`. (A
//! `/metrics` endpoint's text is read with [`crate::exposition`].)

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::error::StackError;
use crate::http::get_json;

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
        return Err(StackError::http(&url)(format!(
            "{expr}: HTTP {status}: {body}"
        )));
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
        return Err(StackError::http(&url)(format!(
            "{expr}: HTTP {status}: {body}"
        )));
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
        _ => Err(StackError::http(&url)(format!("HTTP {status}: {body}"))),
    }
}

/// Spans of one trace (empty when Jaeger does not know it).
pub fn jaeger_trace(base: &str, trace_id: &str) -> Result<Vec<JaegerSpan>, StackError> {
    let url = format!("{base}/api/v3/traces/{trace_id}");
    let (status, body) = get_json(&url, &[])?;
    match status {
        200 => Ok(spans_of(&body)),
        404 => Ok(Vec::new()),
        _ => Err(StackError::http(&url)(format!("HTTP {status}: {body}"))),
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

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
