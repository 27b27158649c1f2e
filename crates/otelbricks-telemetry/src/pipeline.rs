//! Builds the providers, the `tracing` layers and the background pieces from resolved settings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry::global;
use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{
    BatchConfigBuilder as LogBatchConfigBuilder, BatchLogProcessor, SdkLoggerProvider,
};
use opentelemetry_sdk::metrics::{
    Aggregation, Instrument, InstrumentKind, PeriodicReader, SdkMeterProvider, Stream,
};
use opentelemetry_sdk::propagation::BaggagePropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider,
};
use tracing::Level;
use tracing_subscriber::EnvFilter;

use crate::admin::{self, AdminServer};
use crate::config::{ConsoleFormat, PropagatorKind, SamplerConfig, Settings, Signal};
use crate::export::{self, ExportStats, Observed, Reachability};
use crate::files::{self, LogFile, Rotate};
use crate::json::JsonLayer;
use crate::layer::Layers;
use crate::processors::{LogGate, SpanGate};
use crate::writer::{BatchWriter, BatchWriterGuard};
use crate::{TelemetryError, TelemetryGuard};

/// Bucket boundaries, in seconds, for HTTP request durations: the OTel semantic-convention advice,
/// which is also the Python design's bucket list.
pub const HTTP_DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Targets whose events never reach the OTel log exporter: the HTTP/gRPC stack the exporters use
/// and the OTel SDK itself, so an export error cannot produce a log record that is exported again.
const FEEDBACK_TARGETS: &[&str] = &[
    "hyper",
    "hyper_util",
    "h2",
    "tonic",
    "tower",
    "reqwest",
    "opentelemetry",
    "otelbricks_telemetry::export",
];

/// True when events of `target` may be exported as OTel log records: false for the HTTP/gRPC
/// stack the exporters use (`hyper`, `h2`, `tonic`, `tower`, `reqwest`), the OTel SDK and our
/// exporter wrapper, so an export error cannot produce a record that is exported again.
pub fn no_feedback_target(target: &str) -> bool {
    !FEEDBACK_TARGETS.iter().any(|t| {
        target.strip_prefix(t).is_some_and(|rest| {
            rest.is_empty()
                || rest.starts_with("::")
                || rest.starts_with('_')
                || rest.starts_with('-')
        })
    })
}

/// Directives added to the level filter for chatty dependencies, unless the filter names them.
const QUIET: &[&str] = &[
    "h2=warn",
    "hyper=warn",
    "hyper_util=warn",
    "tonic=warn",
    "tower=warn",
    "reqwest=warn",
    "opentelemetry=warn",
    "opentelemetry_sdk=warn",
    "opentelemetry-otlp=warn",
];

pub(crate) fn env_filter(directives: &str) -> Result<EnvFilter, TelemetryError> {
    let mut all = directives.to_owned();
    for q in QUIET {
        let name = q.split('=').next().unwrap_or_default();
        if !directives.contains(name) {
            all.push(',');
            all.push_str(q);
        }
    }
    EnvFilter::builder()
        .parse(&all)
        .map_err(|e| TelemetryError::InvalidConfig {
            var: "RUST_LOG".into(),
            value: directives.into(),
            reason: e.to_string(),
        })
}

pub(crate) fn resource(s: &Settings) -> Resource {
    let os_type = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let mut attrs = vec![
        KeyValue::new("service.instance.id", uuid::Uuid::new_v4().to_string()),
        KeyValue::new("os.type", os_type),
        KeyValue::new("process.pid", i64::from(std::process::id())),
    ];
    if let Some(v) = &s.service_version {
        attrs.push(KeyValue::new("service.version", v.clone()));
    }
    if let Some(env) = &s.environment {
        attrs.push(KeyValue::new("deployment.environment.name", env.clone()));
    }
    if let Ok(host) = hostname::get() {
        attrs.push(KeyValue::new(
            "host.name",
            host.to_string_lossy().into_owned(),
        ));
    }
    attrs.extend(
        s.resource_attributes
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
    );
    Resource::builder_empty()
        .with_detector(Box::new(
            opentelemetry_sdk::resource::TelemetryResourceDetector,
        ))
        .with_service_name(s.service_name.clone())
        .with_attributes(attrs)
        .build()
}

fn sampler(s: SamplerConfig) -> Sampler {
    match s {
        SamplerConfig::AlwaysOn => Sampler::AlwaysOn,
        SamplerConfig::AlwaysOff => Sampler::AlwaysOff,
        SamplerConfig::TraceIdRatio(r) => Sampler::TraceIdRatioBased(r),
        SamplerConfig::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        SamplerConfig::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        SamplerConfig::ParentBasedTraceIdRatio(r) => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r)))
        }
    }
}

/// The configured propagators as one composite. `tracecontext` is our W3C Level 1+2 conformant
/// propagator (crate `trace-context`), not the SDK's.
pub(crate) fn propagator(kinds: &[PropagatorKind]) -> TextMapCompositePropagator {
    let list: Vec<Box<dyn TextMapPropagator + Send + Sync>> = kinds
        .iter()
        .map(|k| -> Box<dyn TextMapPropagator + Send + Sync> {
            match k {
                PropagatorKind::TraceContext => {
                    Box::new(otelbricks_trace_context::W3CTraceContextPropagator::new())
                }
                PropagatorKind::Baggage => Box::new(BaggagePropagator::new()),
            }
        })
        .collect();
    TextMapCompositePropagator::new(list)
}

/// Views: a cardinality limit on every instrument, and explicit boundaries for the duration
/// histograms that would otherwise get the SDK's millisecond defaults.
pub(crate) fn with_views(
    mut builder: opentelemetry_sdk::metrics::MeterProviderBuilder,
    cardinality_limit: usize,
    buckets: &[(String, Vec<f64>)],
) -> opentelemetry_sdk::metrics::MeterProviderBuilder {
    let mut table: Vec<(String, Vec<f64>)> = vec![
        (
            "http.server.request.duration".into(),
            HTTP_DURATION_BUCKETS.to_vec(),
        ),
        (
            "http.client.request.duration".into(),
            HTTP_DURATION_BUCKETS.to_vec(),
        ),
    ];
    table.extend(buckets.iter().cloned());
    let table = Arc::new(table);
    builder = builder.with_view(move |inst: &Instrument| {
        let mut stream = Stream::builder().with_cardinality_limit(cardinality_limit);
        let bounds = table.iter().rev().find(|(n, _)| n == inst.name());
        if let (InstrumentKind::Histogram, Some((_, bounds))) = (inst.kind(), bounds) {
            stream = stream.with_aggregation(Aggregation::ExplicitBucketHistogram {
                boundaries: bounds.clone(),
                record_min_max: true,
            });
        }
        stream.build().ok()
    });
    builder
}

/// A current-thread Tokio runtime on its own thread: serves the admin listener and drives the gRPC
/// exporters, independent of the application's runtime (or its absence).
pub(crate) struct BackgroundRuntime {
    pub handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundRuntime {
    pub(crate) fn start() -> Result<Self, TelemetryError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("telemetry-rt")
            .build()
            .map_err(TelemetryError::Runtime)?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("telemetry-rt".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = stopped.await;
                });
                rt.shutdown_timeout(Duration::from_millis(200));
            })
            .map_err(TelemetryError::Runtime)?;
        Ok(BackgroundRuntime {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for BackgroundRuntime {
    fn drop(&mut self) {
        self.stop();
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exporter_stack_targets_never_feed_the_log_exporter() {
        for t in [
            "hyper",
            "hyper_util::client",
            "h2::codec",
            "tonic::transport",
            "reqwest",
            "opentelemetry_sdk",
            "opentelemetry-otlp",
            "otelbricks_telemetry::export",
        ] {
            assert!(!no_feedback_target(t), "{t} must be filtered");
        }
        for t in [
            "image2model",
            "hyperion",
            "telemetry_http",
            "my_app::tonicity",
        ] {
            assert!(no_feedback_target(t), "{t} must pass");
        }
    }

    #[test]
    fn quiet_directives_are_added_unless_the_filter_names_the_crate() {
        let f = env_filter("info,hyper=debug").expect("valid").to_string();
        assert!(f.contains("hyper=debug"), "{f}");
        assert!(!f.contains("hyper=warn"), "{f}");
        assert!(f.contains("h2=warn"), "{f}");
    }
}
