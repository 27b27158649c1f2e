//! OTLP exporters, wrapped so that every export is counted (self-metrics) and failures are logged
//! at most once a minute per signal instead of once per batch.

use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Meter};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter};
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use crate::TelemetryError;
use crate::config::{Compression, OtlpProtocol, OtlpSettings, Signal};

/// How often a failing signal may log its failure.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// Which collectors the exporters found unreachable, and whether shutdown has begun. During
/// shutdown an export to a collector the last attempt could not reach is not tried again (the
/// exporter would retry with backoff until its timeout): it is dropped at once and counted.
#[derive(Debug, Default)]
pub(crate) struct Reachability {
    shutting_down: AtomicBool,
    /// `scheme://host:port` of the collectors whose last export failed to connect.
    unreachable: Mutex<Vec<String>>,
}

impl Reachability {
    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    fn skip(&self, authority: &str) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
            && self
                .unreachable
                .lock()
                .is_ok_and(|u| u.iter().any(|a| a == authority))
    }

    fn mark(&self, authority: &str, reachable: bool) {
        let Ok(mut u) = self.unreachable.lock() else {
            return;
        };
        let known = u.iter().position(|a| a == authority);
        match (reachable, known) {
            (true, Some(i)) => {
                u.swap_remove(i);
            }
            (false, None) => u.push(authority.to_owned()),
            _ => {}
        }
    }
}

/// What one signal's exporter did, for the shutdown report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub signal: Signal,
    /// The endpoint without credentials or query.
    pub endpoint: String,
    /// Spans or log records that entered the batch queue (0 for metrics).
    pub accepted: u64,
    /// Items the collector accepted.
    pub delivered: u64,
    /// Items of failed exports.
    pub failed: u64,
    /// Export calls that failed.
    pub failed_exports: u64,
    /// The last failure was a connection failure or a timeout.
    pub unreachable: bool,
    /// The last failure, credentials removed.
    pub last_error: Option<String>,
}

/// Counts exports and rate-limits the failure log of one signal's exporter.
pub(crate) struct ExportStats {
    signal: Signal,
    /// The endpoint without credentials or query: the only form that is logged.
    endpoint: String,
    /// `scheme://host:port`, the key of [`Reachability`].
    authority: String,
    reach: Arc<Reachability>,
    /// Spans or log records that entered the batch queue (counted by the processor gates).
    pub(crate) accepted: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    failed_exports: AtomicU64,
    last_error: Mutex<Option<(bool, String)>>,
    component: KeyValue,
    /// `otel.sdk.exporter.{span,log}.exported`: items, with `error.type` when the export failed.
    items: Option<Counter<u64>>,
    /// `telemetry.exporter.batches`: export calls per signal, with `error.type` on failure.
    batches: Counter<u64>,
    last_log: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl fmt::Debug for ExportStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportStats")
            .field("signal", &self.signal)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl ExportStats {
    pub(crate) fn new(
        meter: &Meter,
        signal: Signal,
        settings: &OtlpSettings,
        reach: Arc<Reachability>,
    ) -> Arc<Self> {
        let proto = match settings.protocol {
            OtlpProtocol::Grpc => "grpc",
            OtlpProtocol::HttpProtobuf => "http",
        };
        let (items, kind) = match signal {
            Signal::Traces => (
                Some(
                    meter
                        .u64_counter("otel.sdk.exporter.span.exported")
                        .with_unit("{span}")
                        .with_description("Spans handed to the exporter, by outcome.")
                        .build(),
                ),
                "span",
            ),
            Signal::Logs => (
                Some(
                    meter
                        .u64_counter("otel.sdk.exporter.log.exported")
                        .with_unit("{log_record}")
                        .with_description("Log records handed to the exporter, by outcome.")
                        .build(),
                ),
                "log",
            ),
            Signal::Metrics => (None, "metric"),
        };
        Arc::new(ExportStats {
            signal,
            endpoint: redact_url(&settings.endpoint),
            authority: authority(&settings.endpoint),
            reach,
            accepted: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            failed_exports: AtomicU64::new(0),
            last_error: Mutex::new(None),
            component: KeyValue::new(
                "otel.component.type",
                format!("otlp_{proto}_{kind}_exporter"),
            ),
            items,
            batches: meter
                .u64_counter("telemetry.exporter.batches")
                .with_unit("{batch}")
                .with_description("OTLP export calls, by signal and outcome.")
                .build(),
            last_log: Mutex::new(None),
            suppressed: AtomicU64::new(0),
        })
    }

    /// During shutdown, the result of not trying an export to a collector found unreachable.
    pub(crate) fn skip(&self, n: usize) -> Option<OTelSdkResult> {
        if !self.reach.skip(&self.authority) {
            return None;
        }
        let r = Err(opentelemetry_sdk::error::OTelSdkError::InternalFailure(
            "collector unreachable; not retried during shutdown".into(),
        ));
        self.record(n, &r);
        Some(r)
    }

    /// What this exporter did so far.
    pub(crate) fn outcome(&self) -> Outcome {
        let last = self.last_error.lock().ok().and_then(|l| l.clone());
        Outcome {
            signal: self.signal,
            endpoint: self.endpoint.clone(),
            accepted: self.accepted.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            failed_exports: self.failed_exports.load(Ordering::Relaxed),
            unreachable: last.as_ref().is_some_and(|(u, _)| *u),
            last_error: last.map(|(_, e)| e),
        }
    }

    pub(crate) fn record(&self, n: usize, result: &OTelSdkResult) {
        let signal = KeyValue::new("signal", self.signal.as_str());
        match result {
            Ok(()) => {
                self.delivered.fetch_add(n as u64, Ordering::Relaxed);
                self.reach.mark(&self.authority, true);
                if let Some(items) = &self.items {
                    items.add(n as u64, std::slice::from_ref(&self.component));
                }
                self.batches.add(1, &[signal]);
            }
            Err(err) => {
                self.failed.fetch_add(n as u64, Ordering::Relaxed);
                self.failed_exports.fetch_add(1, Ordering::Relaxed);
                let unreachable = is_unreachable(err);
                let text = redact_text(&err.to_string());
                if !text.contains("not retried during shutdown")
                    && let Ok(mut last) = self.last_error.lock()
                {
                    *last = Some((unreachable, text));
                }
                self.reach.mark(&self.authority, !unreachable);
                let error_type = KeyValue::new("error.type", error_type(err));
                if let Some(items) = &self.items {
                    items.add(n as u64, &[self.component.clone(), error_type.clone()]);
                }
                self.batches.add(1, &[signal, error_type]);
                self.log_failure(n, err);
            }
        }
    }

    fn log_failure(&self, n: usize, err: &opentelemetry_sdk::error::OTelSdkError) {
        let now = Instant::now();
        let Ok(mut last) = self.last_log.lock() else {
            return;
        };
        if last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *last = Some(now);
        drop(last);
        let suppressed = self.suppressed.swap(0, Ordering::Relaxed);
        tracing::warn!(
            target: "otelbricks_telemetry::export",
            signal = self.signal.as_str(),
            endpoint = %self.endpoint,
            items = n,
            failures_not_logged = suppressed,
            error = %redact_text(&err.to_string()),
            "telemetry export failed; the batch is dropped and counted (logged at most once a minute per signal)"
        );
    }
}

/// A failure to connect (refused, no route, DNS) or a timeout: the collector is not there.
fn is_unreachable(err: &opentelemetry_sdk::error::OTelSdkError) -> bool {
    use opentelemetry_sdk::error::OTelSdkError;
    match err {
        OTelSdkError::Timeout(_) => true,
        OTelSdkError::InternalFailure(msg) => {
            let m = msg.to_ascii_lowercase();
            [
                "network error",
                "connect",
                "refused",
                "unavailable",
                "dns",
                "timed out",
                "unreachable",
            ]
            .iter()
            .any(|needle| m.contains(needle))
        }
        OTelSdkError::AlreadyShutdown => false,
    }
}

/// `scheme://host:port` of a URL, credentials removed.
fn authority(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = rest[..end]
        .rsplit_once('@')
        .map_or(&rest[..end], |(_, h)| h);
    format!("{scheme}://{host}")
}

/// `url` without user information (`user:password@`), query and fragment: the form that may be
/// logged. `http://u:secret@collector:4318/v1/traces?token=x` becomes
/// `http://collector:4318/v1/traces`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.split(['?', '#']).next().unwrap_or_default().to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = rest[..end]
        .rsplit_once('@')
        .map_or(&rest[..end], |(_, h)| h);
    let path = rest[end..].split(['?', '#']).next().unwrap_or_default();
    format!("{scheme}://{host}{path}")
}

/// `text` with every URL in it redacted as [`redact_url`] does (error messages of HTTP clients
/// quote the URL they failed on).
pub(crate) fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let start = rest[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |j| j + 1);
        out.push_str(&rest[..start]);
        let end = rest[i..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ')' | '>' | ','))
            .map_or(rest.len(), |j| i + j);
        out.push_str(&redact_url(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn error_type(err: &opentelemetry_sdk::error::OTelSdkError) -> &'static str {
    use opentelemetry_sdk::error::OTelSdkError;
    match err {
        OTelSdkError::Timeout(_) => "timeout",
        OTelSdkError::AlreadyShutdown => "already_shutdown",
        OTelSdkError::InternalFailure(_) => "export_failed",
    }
}

/// An exporter wrapped with [`ExportStats`].
#[derive(Debug)]
pub(crate) struct Observed<E> {
    inner: E,
    stats: Arc<ExportStats>,
}

impl<E> Observed<E> {
    pub(crate) fn new(inner: E, stats: Arc<ExportStats>) -> Self {
        Observed { inner, stats }
    }
}

impl<E: SpanExporter> SpanExporter for Observed<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len();
        if let Some(skipped) = self.stats.skip(n) {
            return skipped;
        }
        let r = self.inner.export(batch).await;
        self.stats.record(n, &r);
        r
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource)
    }
}

impl<E: LogExporter> LogExporter for Observed<E> {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let n = batch.iter().count();
        if let Some(skipped) = self.stats.skip(n) {
            return skipped;
        }
        let r = self.inner.export(batch).await;
        self.stats.record(n, &r);
        r
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource)
    }
}

fn build_err(signal: Signal, e: impl fmt::Display) -> TelemetryError {
    TelemetryError::Exporter {
        signal: signal.as_str(),
        reason: e.to_string(),
    }
}

fn metadata(
    s: &OtlpSettings,
    signal: Signal,
) -> Result<tonic::metadata::MetadataMap, TelemetryError> {
    // Values are never quoted in errors: headers carry credentials.
    let mut map = tonic::metadata::MetadataMap::new();
    for (k, v) in &s.headers {
        let key = tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
            .map_err(|_| build_err(signal, format!("invalid header name {k:?}")))?;
        let val = v
            .parse()
            .map_err(|_| build_err(signal, format!("invalid value for header {k:?}")))?;
        map.insert(key, val);
    }
    Ok(map)
}

fn headers(s: &OtlpSettings) -> std::collections::HashMap<String, String> {
    s.headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Endpoint, timeout and headers (as gRPC metadata) on any signal's tonic exporter builder.
fn grpc<B: WithExportConfig + WithTonicConfig>(
    builder: B,
    s: &OtlpSettings,
    signal: Signal,
) -> Result<B, TelemetryError> {
    let builder = builder
        .with_endpoint(&s.endpoint)
        .with_timeout(s.timeout)
        .with_metadata(metadata(s, signal)?);
    Ok(match s.compression {
        Some(Compression::Gzip) => builder.with_compression(opentelemetry_otlp::Compression::Gzip),
        None => builder,
    })
}

/// Endpoint, timeout and headers on any signal's HTTP exporter builder.
fn http<B: WithExportConfig + WithHttpConfig>(builder: B, s: &OtlpSettings) -> B {
    let builder = builder
        .with_endpoint(&s.endpoint)
        .with_timeout(s.timeout)
        .with_headers(headers(s));
    match s.compression {
        Some(Compression::Gzip) => builder.with_compression(opentelemetry_otlp::Compression::Gzip),
        None => builder,
    }
}

/// The OTLP span exporter for these settings. gRPC exporters must be built inside a Tokio runtime.
pub(crate) fn span_exporter(
    s: &OtlpSettings,
) -> Result<opentelemetry_otlp::SpanExporter, TelemetryError> {
    let signal = Signal::Traces;
    let builder = opentelemetry_otlp::SpanExporter::builder();
    match s.protocol {
        OtlpProtocol::Grpc => grpc(builder.with_tonic(), s, signal)?.build(),
        OtlpProtocol::HttpProtobuf => http(builder.with_http(), s).build(),
    }
    .map_err(|e| build_err(signal, e))
}

/// The OTLP log exporter for these settings.
pub(crate) fn log_exporter(
    s: &OtlpSettings,
) -> Result<opentelemetry_otlp::LogExporter, TelemetryError> {
    let signal = Signal::Logs;
    let builder = opentelemetry_otlp::LogExporter::builder();
    match s.protocol {
        OtlpProtocol::Grpc => grpc(builder.with_tonic(), s, signal)?.build(),
        OtlpProtocol::HttpProtobuf => http(builder.with_http(), s).build(),
    }
    .map_err(|e| build_err(signal, e))
}

/// The OTLP metric exporter for these settings (cumulative temporality, as Prometheus wants).
pub(crate) fn metric_exporter(
    s: &OtlpSettings,
) -> Result<opentelemetry_otlp::MetricExporter, TelemetryError> {
    let signal = Signal::Metrics;
    let builder = opentelemetry_otlp::MetricExporter::builder();
    match s.protocol {
        OtlpProtocol::Grpc => grpc(builder.with_tonic(), s, signal)?
            .with_temporality(Temporality::Cumulative)
            .build(),
        OtlpProtocol::HttpProtobuf => http(builder.with_http(), s)
            .with_temporality(Temporality::Cumulative)
            .build(),
    }
    .map_err(|e| build_err(signal, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_credentials_query_and_fragment() {
        assert_eq!(
            redact_url("http://user:s3cret@collector:4318/v1/traces?token=abc#f"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(redact_url("http://[::1]:4317"), "http://[::1]:4317");
        assert_eq!(
            authority("https://u:p@c.example:443/x?y"),
            "https://c.example:443"
        );
        let msg = "error sending request for url (http://user:s3cret@collector:4318/v1/logs?api_key=abc): \
                   connection refused; retry https://x:y@other/z";
        let red = redact_text(msg);
        assert!(
            !red.contains("s3cret") && !red.contains("abc") && !red.contains("x:y"),
            "{red}"
        );
        assert!(red.contains("(http://collector:4318/v1/logs)"), "{red}");
        assert!(red.contains("retry https://other/z"), "{red}");
    }

    #[test]
    fn connection_failures_and_timeouts_count_as_unreachable() {
        use opentelemetry_sdk::error::OTelSdkError;
        let failure = |m: &str| OTelSdkError::InternalFailure(m.into());
        assert!(is_unreachable(&failure(
            "HTTP export failed: network error"
        )));
        assert!(is_unreachable(&failure(
            "status: Unavailable, message: tcp connect error"
        )));
        assert!(is_unreachable(&OTelSdkError::Timeout(Duration::from_secs(
            1
        ))));
        assert!(!is_unreachable(&failure("HTTP export failed: status 413")));
    }
}
