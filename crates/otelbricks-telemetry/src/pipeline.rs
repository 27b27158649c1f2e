//! Builds the providers, the `tracing` layers and the background pieces from resolved settings.
//!
//! The pieces it puts together: the level filter and the exporter's feedback guard (`filter`), the
//! resource, sampler, propagator and metric views (`sdk`), and the runtime that drives the
//! exporters and the admin listener (`runtime`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry::global;
use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry_sdk::logs::{
    BatchConfigBuilder as LogBatchConfigBuilder, BatchLogProcessor, SdkLoggerProvider,
};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use tracing::Level;

use crate::admin::{self, AdminServer};
use crate::config::{ConsoleFormat, Settings, Signal};
use crate::export::{self, ExportStats, Observed, Reachability};
use crate::files::{self, LogFile, Rotate};
use crate::json::JsonLayer;
use crate::layer::Layers;
use crate::processors::{LogGate, SpanGate};
use crate::writer::{BatchWriter, BatchWriterGuard};
use crate::{TelemetryError, TelemetryGuard};

mod filter;
mod runtime;
mod sdk;
pub(crate) use filter::env_filter;
pub use filter::no_feedback_target;
use runtime::BackgroundRuntime;
pub use sdk::HTTP_DURATION_BUCKETS;
use sdk::sampler;
pub(crate) use sdk::{propagator, resource, with_views};

/// Host metrics, started by the `telemetry` builder when asked for.
pub(crate) type HostStart =
    Box<dyn FnOnce(&Meter) -> Result<Box<dyn std::any::Any + Send>, String> + Send>;

/// Everything that runs and must be shut down.
pub(crate) struct Running {
    tracer_provider: Option<SdkTracerProvider>,
    logger_provider: Option<SdkLoggerProvider>,
    meter_provider: SdkMeterProvider,
    host_metrics: Option<Box<dyn std::any::Any + Send>>,
    admin: Option<AdminServer>,
    runtime: BackgroundRuntime,
    files: Vec<LogFile>,
    console: Option<BatchWriterGuard>,
}

impl Running {
    /// Shuts down within `timeout`: traces, logs, metrics, then the files. Returns what failed,
    /// with the signal it concerns.
    pub(crate) fn shutdown(mut self, timeout: Duration) -> Vec<(Option<Signal>, String)> {
        let deadline = Instant::now() + timeout;
        let left = || {
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        };
        let mut errors = Vec::new();
        if let Some(Err(e)) = self
            .tracer_provider
            .take()
            .map(|tp| tp.shutdown_with_timeout(left()))
        {
            errors.push((Some(Signal::Traces), format!("traces: {e}")));
        }
        if let Some(Err(e)) = self
            .logger_provider
            .take()
            .map(|lp| lp.shutdown_with_timeout(left()))
        {
            errors.push((Some(Signal::Logs), format!("logs: {e}")));
        }
        drop(self.host_metrics.take());
        if let Err(e) = self.meter_provider.shutdown_with_timeout(left()) {
            errors.push((Some(Signal::Metrics), format!("metrics: {e}")));
        }
        drop(self.admin.take());
        self.runtime.stop();
        // Write out what the files and the console still buffer, within what is left of the bound.
        for f in self.files.drain(..) {
            if !f.guard.close(left()) {
                errors.push((None, format!("log file {} not fully written", f.name)));
            }
        }
        if let Some(console) = self.console.take() {
            console.close(left());
        }
        errors
    }
}

/// Builds every provider and the layer stack, sets the OTel globals when `otel_globals`, and starts
/// the background pieces; see [`crate::TelemetryBuilder::build`]. Sets no `tracing` subscriber, so
/// the warnings found on the way are returned for the caller to show once one exists.
pub(crate) fn build(
    s: &Settings,
    buckets: &[(String, Vec<f64>)],
    host: Option<HostStart>,
    otel_globals: bool,
) -> Result<(Layers, TelemetryGuard, Vec<String>), TelemetryError> {
    let filter = env_filter(&s.filter)?;
    let runtime = BackgroundRuntime::start()?;
    let resource = resource(s);

    // Files first: an unwritable directory is an error before anything else starts.
    let mut log_files = Vec::new();
    if let Some(dir) = &s.log_dir {
        files::prepare_dir(dir)?;
        let (all, errors) = files::names(&s.service_name);
        log_files.push(files::open(
            dir,
            &all,
            Rotate {
                max_bytes: s.log_max_bytes,
                max_files: s.log_max_files,
            },
            s.log_file_lossy,
        )?);
        log_files.push(files::open(
            dir,
            &errors,
            Rotate {
                max_bytes: s.error_log_max_bytes,
                max_files: s.error_log_max_files,
            },
            s.log_file_lossy,
        )?);
    }

    // The admin listener binds before any global is set: a taken port fails `install` cleanly.
    let registry = prometheus::Registry::new();
    let admin = match (s.admin_addr, s.sdk_disabled) {
        (Some(addr), false) => Some(admin::start(
            &runtime.handle,
            addr,
            registry.clone(),
            s.admin_token.clone(),
        )?),
        _ => None,
    };
    let admin_addr = admin.as_ref().map(|a| a.local_addr);

    // Metrics: Prometheus pull reader always (unless the SDK is disabled), OTLP push when enabled.
    let mut mp_builder = SdkMeterProvider::builder().with_resource(resource.clone());
    if !s.sdk_disabled {
        let prom = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .build()
            .map_err(|e| TelemetryError::Prometheus(e.to_string()))?;
        mp_builder = mp_builder.with_reader(prom);
    }
    let reach = Arc::new(Reachability::default());
    let mut all_stats: Vec<Arc<ExportStats>> = Vec::new();
    let mut metric_stats = None;
    if !s.sdk_disabled && s.metrics.enabled {
        let exporter = {
            let _enter = runtime.handle.enter();
            export::metric_exporter(&s.metrics)?
        };
        let stats = Arc::new(std::sync::OnceLock::new());
        metric_stats = Some(stats.clone());
        let reader = PeriodicReader::builder(LateStats::new(exporter, stats))
            .with_interval(s.metric_export_interval)
            .build();
        mp_builder = mp_builder.with_reader(reader);
    }
    let meter_provider = with_views(mp_builder, s.cardinality_limit, buckets).build();
    if !s.sdk_disabled && otel_globals {
        // Before the span and log processors are built: they register their own SDK metrics
        // (spans/logs dropped by a full queue) on the global meter provider.
        global::set_meter_provider(meter_provider.clone());
    }
    let self_meter = meter_provider.meter("telemetry");
    if let Some(late) = metric_stats {
        let stats = ExportStats::new(&self_meter, Signal::Metrics, &s.metrics, reach.clone());
        all_stats.push(stats.clone());
        let _ = late.set(stats);
    }

    let mut tracer_provider = None;
    let mut logger_provider = None;
    if !s.sdk_disabled {
        let mut tp = SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_sampler(sampler(s.sampler))
            .with_max_attributes_per_span(s.limits.span_count);
        if s.traces.enabled {
            let exporter = {
                let _enter = runtime.handle.enter();
                export::span_exporter(&s.traces)?
            };
            let stats = ExportStats::new(&self_meter, Signal::Traces, &s.traces, reach.clone());
            all_stats.push(stats.clone());
            let bsp = BatchSpanProcessor::builder(Observed::new(exporter, stats.clone()))
                .with_batch_config(
                    BatchConfigBuilder::default()
                        .with_max_queue_size(s.bsp.max_queue_size)
                        .with_max_export_batch_size(s.bsp.max_export_batch_size)
                        .with_scheduled_delay(s.bsp.schedule_delay)
                        .build(),
                )
                .build();
            tp = tp.with_span_processor(SpanGate::new(bsp, stats, s.limits.span_value_len));
        }
        let tp = tp.build();
        if otel_globals {
            global::set_tracer_provider(tp.clone());
            global::set_text_map_propagator(propagator(&s.propagators));
        }
        tracer_provider = Some(tp);

        if s.logs.enabled {
            let exporter = {
                let _enter = runtime.handle.enter();
                export::log_exporter(&s.logs)?
            };
            let stats = ExportStats::new(&self_meter, Signal::Logs, &s.logs, reach.clone());
            all_stats.push(stats.clone());
            let blp = BatchLogProcessor::builder(Observed::new(exporter, stats.clone()))
                .with_batch_config(
                    LogBatchConfigBuilder::default()
                        .with_max_queue_size(s.blrp.max_queue_size)
                        .with_max_export_batch_size(s.blrp.max_export_batch_size)
                        .with_scheduled_delay(s.blrp.schedule_delay)
                        .build(),
                )
                .build();
            logger_provider = Some(
                SdkLoggerProvider::builder()
                    .with_resource(resource.clone())
                    .with_log_processor(LogGate::new(
                        blp,
                        stats,
                        s.limits.log_value_len,
                        s.limits.log_count,
                    ))
                    .build(),
            );
        }
    }

    // The console, behind its own batching writer so a slow stdout reader cannot slow the app.
    let console = if s.console == ConsoleFormat::Json {
        let (w, g) = BatchWriter::spawn(
            "telemetry-console",
            std::io::stdout(),
            files::BUFFER_BYTES,
            s.log_file_lossy,
        )
        .map_err(TelemetryError::Runtime)?;
        Some((w, g))
    } else {
        None
    };

    // Lines the writers dropped (only when lossy) as a self-metric.
    {
        let counters: Vec<_> = log_files
            .iter()
            .map(|f| {
                (
                    f.writer.clone(),
                    KeyValue::new("log.file.name", f.name.clone()),
                )
            })
            .chain(
                console
                    .iter()
                    .map(|(w, _)| (w.clone(), KeyValue::new("log.file.name", "stdout"))),
            )
            .collect();
        let _ = meter_provider
            .meter("telemetry")
            .u64_observable_counter("telemetry.log_file.lines.dropped")
            .with_unit("{line}")
            .with_description("Log lines the file writer dropped because its queue was full.")
            .with_callback(move |obs| {
                for (counter, attr) in &counters {
                    obs.observe(counter.dropped_lines(), std::slice::from_ref(attr));
                }
            })
            .build();
    }

    // The JSON sinks: console (unless readable text or off), all-levels file, errors file.
    let mut json = JsonLayer::new().max_value_bytes(s.limits.log_value_len);
    if let Some((w, _)) = &console {
        json = json.with_sink(Level::TRACE, w.clone());
    }
    if let [all, errors] = log_files.as_slice() {
        json = json
            .with_sink(Level::TRACE, all.writer.clone())
            .with_sink(Level::ERROR, errors.writer.clone());
    }

    let layers = Layers {
        filter,
        tracer_provider: tracer_provider.clone(),
        logger_provider: logger_provider.clone(),
        json,
        pretty_console: s.console == ConsoleFormat::Pretty,
        service_name: s.service_name.clone(),
    };

    let mut warnings = Vec::new();
    if let Some(addr) = admin_addr
        && !addr.ip().is_loopback()
        && s.admin_token.is_none()
        && s.admin_unauthenticated
    {
        warnings.push(format!(
            "the admin listener on {addr} serves /metrics WITHOUT AUTHENTICATION to anyone who \
             can connect (TELEMETRY_ADMIN_ALLOW_UNAUTHENTICATED=true); set TELEMETRY_ADMIN_TOKEN \
             unless only a trusted network reaches it"
        ));
    }
    let host_metrics = match host {
        Some(start) if !s.sdk_disabled => match start(&meter_provider.meter("host-metrics")) {
            Ok(handle) => Some(handle),
            Err(e) => {
                warnings.push(format!("host metrics not started: {e}"));
                None
            }
        },
        _ => None,
    };

    let guard = TelemetryGuard {
        inner: Some(Running {
            tracer_provider,
            logger_provider,
            meter_provider: meter_provider.clone(),
            host_metrics,
            admin,
            runtime,
            files: log_files,
            console: console.map(|(_, g)| g),
        }),
        timeout: s.shutdown_timeout,
        meter_provider,
        tracer_provider: layers.tracer_provider.clone(),
        stats: all_stats,
        reach,
        logger_provider: layers.logger_provider.clone(),
        admin_addr,
        #[cfg(feature = "log-archival")]
        archiver: None,
    };
    Ok((layers, guard, warnings))
}

/// A metric exporter whose [`ExportStats`] are set after the meter provider exists (the stats'
/// counters live in that provider).
struct LateStats<E> {
    inner: E,
    stats: Arc<std::sync::OnceLock<Arc<ExportStats>>>,
}

impl<E> LateStats<E> {
    fn new(inner: E, stats: Arc<std::sync::OnceLock<Arc<ExportStats>>>) -> Self {
        LateStats { inner, stats }
    }
}

impl<E: opentelemetry_sdk::metrics::exporter::PushMetricExporter>
    opentelemetry_sdk::metrics::exporter::PushMetricExporter for LateStats<E>
{
    async fn export(
        &self,
        metrics: &opentelemetry_sdk::metrics::data::ResourceMetrics,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        if let Some(skipped) = self.stats.get().and_then(|s| s.skip(1)) {
            return skipped;
        }
        let result = self.inner.export(metrics).await;
        if let Some(stats) = self.stats.get() {
            stats.record(1, &result);
        }
        result
    }
    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn temporality(&self) -> opentelemetry_sdk::metrics::Temporality {
        self.inner.temporality()
    }
}
