//! Request counts per HTTP status as each signal holds them, and the app's own count of what it dropped:
//! the readers behind the accounting tests' [`crate::accounting::Ledger`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::error::StackError;
use crate::exposition::{Exposition, failed};
use crate::query::{self, JaegerSpan};
use crate::sink::ReceivedLog;

/// Counts per HTTP status.
pub type ByStatus = BTreeMap<u16, u64>;

/// The HTTP server duration histogram's count, as Prometheus text names it.
pub const REQUEST_COUNT: &str = "http_server_request_duration_seconds_count";

/// OTLP span kind of a server span.
const SERVER: i64 = 2;

/// Per-status request counts in the app's admin `/metrics`: the samples of [`REQUEST_COUNT`] summed by their
/// `http_response_status_code` label.
pub fn exposition_by_status(exposition: &Exposition) -> ByStatus {
    let mut out = ByStatus::new();
    for sample in exposition.named(REQUEST_COUNT) {
        if let Some(status) = sample
            .label("http_response_status_code")
            .and_then(|s| s.parse().ok())
        {
            *out.entry(status).or_default() += sample.value as u64;
        }
    }
    out
}

/// Per-status counts of an instant PromQL query that sums by `http_response_status_code`.
pub fn prometheus_by_status(base: &str, expr: &str) -> Result<ByStatus, String> {
    let samples = query::prom_query(base, expr).map_err(|e| e.to_string())?;
    let mut out = ByStatus::new();
    for s in samples {
        let status = s
            .labels
            .get("http_response_status_code")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                format!(
                    "`{expr}` returned a series without a status: {:?}",
                    s.labels
                )
            })?;
        *out.entry(status).or_default() += s.value as u64;
    }
    Ok(out)
}

/// The spans of `service` in the traces that started in the last `window`, as Jaeger holds them (up to
/// `limit` traces are read: ask for more than can exist to see them all).
pub fn jaeger_spans(
    base: &str,
    service: &str,
    window: Duration,
    limit: usize,
) -> Result<Vec<JaegerSpan>, String> {
    let spans =
        query::jaeger_find(base, service, None, window, limit).map_err(|e| e.to_string())?;
    Ok(spans.into_iter().filter(|s| s.service == service).collect())
}

/// Server spans per `http.response.status_code` (0 when a span has none).
pub fn server_spans_by_status(spans: &[JaegerSpan]) -> ByStatus {
    count_by_status(
        spans
            .iter()
            .filter(|s| s.kind == SERVER)
            .map(|s| status_of(s.attributes.get("http.response.status_code"))),
    )
}

/// How many times each status occurs.
pub fn count_by_status(statuses: impl IntoIterator<Item = u16>) -> ByStatus {
    let mut out = ByStatus::new();
    for s in statuses {
        *out.entry(s).or_default() += 1;
    }
    out
}

fn status_of(text: Option<&String>) -> u16 {
    text.and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Per-status request counts through the collector in Prometheus: the server duration histogram's count of
/// `service` (its `job`), summed by status.
pub fn prometheus_requests(base: &str, service: &str) -> Result<ByStatus, String> {
    prometheus_by_status(
        base,
        &format!(r#"sum by (http_response_status_code) ({REQUEST_COUNT}{{job="{service}"}})"#),
    )
}

/// Whether a received log record is a request log line of the server layer: it carries `status_code`.
pub fn is_request_record(log: &ReceivedLog) -> bool {
    log.attributes.contains_key("status_code")
}

/// The request log records of `service` that reached the Loki endpoint, per `status_code`.
pub fn sink_requests(logs: &[ReceivedLog], service: &str) -> ByStatus {
    count_by_status(
        logs.iter()
            .filter(|l| l.service_name == service && is_request_record(l))
            .map(|l| status_of(l.attributes.get("status_code"))),
    )
}

/// One request line of a JSON log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLine {
    /// Its `request_id`.
    pub request_id: String,
    /// Its `status_code`.
    pub status: u16,
}

/// The request lines (those with a `status_code`) of a JSON log file; lines that do not parse are skipped
/// (a SIGKILL can leave the last one unfinished).
pub fn file_requests(path: &Path) -> Result<Vec<RequestLine>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            Some(RequestLine {
                status: u16::try_from(v.get("status_code")?.as_u64()?).ok()?,
                request_id: v
                    .get("request_id")
                    .and_then(|r| r.as_str())
                    .unwrap_or_default()
                    .to_string(),
            })
        })
        .collect())
}

/// How many lines of a JSON log file satisfy `keep` (lines that do not parse are skipped).
pub fn file_lines_where(
    path: &Path,
    keep: impl Fn(&serde_json::Value) -> bool,
) -> Result<u64, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| keep(v))
        .count() as u64)
}

/// Where the `logkit` binary is: next to the test binary's target directory (`target/<profile>/logkit`),
/// built with the workspace (`cargo build -p otelbricks-logkit`, or any `cargo test` of that crate).
pub fn logkit_bin() -> Result<PathBuf, StackError> {
    let exe = std::env::current_exe().map_err(StackError::io("locating the test binary"))?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join("logkit");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(StackError::Io {
            what: format!(
                "{} is not built (cargo build -p otelbricks-logkit)",
                bin.display()
            ),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })
    }
}

/// Per-status request counts of `logkit summary --json` over one log file.
pub fn logkit_by_status(file: &Path) -> Result<ByStatus, String> {
    let bin = logkit_bin().map_err(|e| e.to_string())?;
    let out = Command::new(&bin)
        .args(["summary", "--json", "--no-progress"])
        .arg(file)
        .output()
        .map_err(|e| format!("running {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "logkit summary failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("logkit --json: {e}"))?;
    logkit_report_by_status(&report)
}

/// The `status_codes` of a `logkit summary --json` report, per status.
pub fn logkit_report_by_status(report: &serde_json::Value) -> Result<ByStatus, String> {
    let rows = report["status_codes"]
        .as_array()
        .ok_or("the report has no status_codes")?;
    let mut out = ByStatus::new();
    for r in rows {
        let status = r["status_code"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("status_codes row without a numeric status: {r}"))?;
        let count = r["count"]
            .as_u64()
            .ok_or("status_codes row without a count")?;
        *out.entry(status).or_default() += count;
    }
    Ok(out)
}

/// What the app's self-metrics say about one signal's items (`span` or `log`): handed to the exporter and
/// accepted, and lost (export failed, or dropped by a full or stopped queue).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcomes {
    /// Exported without error (`otel.sdk.exporter.<kind>.exported` without `error.type`).
    pub exported: u64,
    /// Export failed (`otel.sdk.exporter.<kind>.exported` with `error.type`).
    pub export_failed: u64,
    /// Never reached the exporter (`otel.sdk.processor.<kind>.processed` with `error.type`).
    pub processor_dropped: u64,
}

impl Outcomes {
    /// Reads them from the app's admin `/metrics`; `kind` is `span` or `log`.
    pub fn read(exposition: &Exposition, kind: &str) -> Outcomes {
        let exporter = format!("otel_sdk_exporter_{kind}_exported");
        let processor = format!("otel_sdk_processor_{kind}_processed");
        Outcomes {
            exported: exposition.counter(&exporter, |s| !failed(s)) as u64,
            export_failed: exposition.counter(&exporter, failed) as u64,
            processor_dropped: exposition.counter(&processor, failed) as u64,
        }
    }

    /// Everything lost and counted.
    pub fn dropped(&self) -> u64 {
        self.export_failed + self.processor_dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_exposition_is_summed_per_status_over_routes_and_methods() {
        let text = "# TYPE http_server_request_duration_seconds histogram\n\
            http_server_request_duration_seconds_count{http_request_method=\"GET\",http_response_status_code=\"404\",http_route=\"a\"} 3\n\
            http_server_request_duration_seconds_count{http_request_method=\"POST\",http_response_status_code=\"404\",http_route=\"b\"} 2\n\
            http_server_request_duration_seconds_count{http_request_method=\"POST\",http_response_status_code=\"201\",http_route=\"b\"} 7\n\
            http_server_request_duration_seconds_sum{http_response_status_code=\"201\"} 0.5\n";
        assert_eq!(
            exposition_by_status(&Exposition::parse(text).expect("parses")),
            BTreeMap::from([(201, 7), (404, 5)])
        );
    }

    #[test]
    fn self_metrics_split_exported_failed_and_dropped() {
        let text = "otel_sdk_exporter_span_exported_total{otel_component_type=\"otlp_grpc_span_exporter\"} 10\n\
            otel_sdk_exporter_span_exported_total{error_type=\"export_failed\",otel_component_type=\"x\"} 4\n\
            otel_sdk_processor_span_processed_total{otel_component_type=\"batching_span_processor\"} 14\n\
            otel_sdk_processor_span_processed_total{error_type=\"queue_full\"} 2\n\
            otel_sdk_exporter_log_exported_total{otel_component_type=\"x\"} 99\n";
        let text = Exposition::parse(text).expect("parses");
        let o = Outcomes::read(&text, "span");
        assert_eq!(
            o,
            Outcomes {
                exported: 10,
                export_failed: 4,
                processor_dropped: 2
            }
        );
        assert_eq!(o.dropped(), 6);
        assert_eq!(Outcomes::read(&text, "log").exported, 99);
    }

    #[test]
    fn logkit_status_codes_are_read_per_status() {
        let report = serde_json::json!({"status_codes": [
            {"count": 3, "status_code": "201"}, {"count": 1, "status_code": "500"}
        ]});
        assert_eq!(
            logkit_report_by_status(&report),
            Ok(BTreeMap::from([(201, 3), (500, 1)]))
        );
        assert!(logkit_report_by_status(&serde_json::json!({})).is_err());
    }

    #[test]
    fn request_lines_are_those_with_a_status_code_and_a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("app.json");
        std::fs::write(
            &path,
            "{\"message\":\"Request completed\",\"status_code\":201,\"request_id\":\"a-1\"}\n\
             {\"message\":\"image uploaded\"}\n\
             {\"message\":\"Request failed\",\"status_code\":500,\"request_id\":\"a-2\"}\n\
             {\"message\":\"Request compl",
        )
        .expect("write");
        let lines = file_requests(&path).expect("read");
        assert_eq!(
            lines,
            vec![
                RequestLine {
                    request_id: "a-1".into(),
                    status: 201
                },
                RequestLine {
                    request_id: "a-2".into(),
                    status: 500
                },
            ]
        );
    }
}
