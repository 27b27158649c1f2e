//! OTLP exporters, wrapped so that every export is counted (self-metrics) and failures are logged
//! at most once a minute per signal instead of once per batch.

use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
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
use crate::config::{OtlpProtocol, OtlpSettings, Signal};

/// How often a failing signal may log its failure.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// Counts exports and rate-limits the failure log of one signal's exporter.
pub(crate) struct ExportStats {
    signal: Signal,
    endpoint: String,
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
    pub(crate) fn new(meter: &Meter, signal: Signal, settings: &OtlpSettings) -> Arc<Self> {
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
            endpoint: settings.endpoint.clone(),
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

    pub(crate) fn record(&self, n: usize, result: &OTelSdkResult) {
        let signal = KeyValue::new("signal", self.signal.as_str());
        match result {
            Ok(()) => {
                if let Some(items) = &self.items {
                    items.add(n as u64, std::slice::from_ref(&self.component));
                }
                self.batches.add(1, &[signal]);
            }
            Err(err) => {
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
            error = %err,
            "telemetry export failed; the batch is dropped and counted (logged at most once a minute per signal)"
        );
    }
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
    Ok(builder
        .with_endpoint(&s.endpoint)
        .with_timeout(s.timeout)
        .with_metadata(metadata(s, signal)?))
}

/// Endpoint, timeout and headers on any signal's HTTP exporter builder.
fn http<B: WithExportConfig + WithHttpConfig>(builder: B, s: &OtlpSettings) -> B {
    builder
        .with_endpoint(&s.endpoint)
        .with_timeout(s.timeout)
        .with_headers(headers(s))
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
