//! In-memory capture of spans, metrics, log records and JSON log lines, for tests of services that
//! use this crate. It builds the same layer stack as [`crate::TelemetryBuilder::install`], with the
//! SDK's in-memory exporters and synchronous processors, and installs nothing globally: the
//! subscriber is set per thread with [`Capture::set_default`].
//!
//! ```
//! use otelbricks_telemetry::testing::Capture;
//!
//! let capture = Capture::new("checkout");
//! {
//!     let _guard = capture.set_default();
//!     let span = tracing::info_span!("charge", request_id = "r-1");
//!     let _enter = span.enter();
//!     tracing::info!(amount = 12, "charged");
//! }
//! let lines = capture.json_lines();
//! assert_eq!(lines[0]["message"], "charged");
//! assert_eq!(lines[0]["request_id"], "r-1");
//! assert_eq!(capture.finished_spans()[0].name, "charge");
//! ```

use std::sync::{Arc, Mutex};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLoggerProvider, SimpleLogProcessor};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::Level;

pub use opentelemetry_sdk::logs::in_memory_exporter::LogDataWithResource;

use crate::config::{Defaults, EnvSource, PropagatorKind, Settings};
use crate::json::{JsonLayer, LineSink};
use crate::layer::Layers;
use crate::pipeline;

#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl LineSink for Lines {
    fn write_line(&self, line: &[u8]) {
        if let Ok(mut buf) = self.0.lock() {
            buf.extend_from_slice(line);
        }
    }
}

/// One value of a metric stream, flattened for assertions.
#[derive(Debug, Clone, PartialEq)]
pub enum PointValue {
    /// A counter, up-down counter or gauge value.
    Number(f64),
    /// A histogram: count, sum and the bucket counts with their upper bounds.
    Histogram {
        /// Number of recorded values.
        count: u64,
        /// Their sum.
        sum: f64,
        /// Upper bounds of the buckets (the last, +Inf bucket has no bound).
        bounds: Vec<f64>,
        /// Count per bucket, `bounds.len() + 1` of them.
        bucket_counts: Vec<u64>,
    },
}

/// One data point of a metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The instrument's name.
    pub name: String,
    /// Its unit.
    pub unit: String,
    /// The data point's attributes.
    pub attributes: Vec<KeyValue>,
    /// Its value.
    pub value: PointValue,
}

impl Point {
    /// The value of attribute `key` as a string, if the point has it.
    pub fn attr(&self, key: &str) -> Option<String> {
        self.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.as_str().into_owned())
    }
}

/// In-memory telemetry for one test. See the [module docs](self).
pub struct Capture {
    spans: InMemorySpanExporter,
    logs: InMemoryLogExporter,
    metrics: InMemoryMetricExporter,
    tracer_provider: SdkTracerProvider,
    logger_provider: SdkLoggerProvider,
    meter_provider: SdkMeterProvider,
    lines: Lines,
    dispatch: tracing::Dispatch,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture").finish_non_exhaustive()
    }
}

impl Capture {
    /// A capture with the `trace` level filter and service name `service_name`.
    pub fn new(service_name: &str) -> Self {
        Self::with_filter(service_name, "trace")
    }

    /// A capture with level filter `directives` (`RUST_LOG` syntax; invalid directives fall back
    /// to `trace`).
    pub fn with_filter(service_name: &str, directives: &str) -> Self {
        let mut defaults = Defaults::new(service_name);
        defaults.filter = directives.to_owned();
        let settings =
            Settings::resolve(&defaults, &EnvSource::from_fn(|_| None)).unwrap_or_else(|_| {
                let mut d = Defaults::new("test");
                d.filter = "trace".into();
                // The defaults with no environment are valid by construction (tested in config).
                Settings::resolve(&d, &EnvSource::from_fn(|_| None))
                    .unwrap_or_else(|e| panic!("default settings invalid: {e}"))
            });
        let resource = pipeline::resource(&settings);

        let spans = InMemorySpanExporter::default();
        let tracer_provider = SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_simple_exporter(spans.clone())
            .build();

        let logs = InMemoryLogExporter::default();
        let logger_provider = SdkLoggerProvider::builder()
            .with_resource(resource.clone())
            .with_log_processor(SimpleLogProcessor::new(logs.clone()))
            .build();

        let metrics = InMemoryMetricExporter::default();
        let meter_provider = pipeline::with_views(
            SdkMeterProvider::builder()
                .with_resource(resource)
                .with_reader(PeriodicReader::builder(metrics.clone()).build()),
            settings.cardinality_limit,
            &[],
        )
        .build();

        let lines = Lines::default();
        let filter = pipeline::env_filter(&settings.filter)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("trace"));
        let layers = Layers {
            filter,
            tracer_provider: Some(tracer_provider.clone()),
            logger_provider: Some(logger_provider.clone()),
            json: JsonLayer::new().with_sink(Level::TRACE, lines.clone()),
            pretty_console: false,
            service_name: settings.service_name.clone(),
        };
        let dispatch = tracing::Dispatch::new(layers.into_subscriber());
        Capture {
            spans,
            logs,
            metrics,
            tracer_provider,
            logger_provider,
            meter_provider,
            lines,
            dispatch,
        }
    }

    /// Makes this capture the current thread's subscriber until the guard drops.
    pub fn set_default(&self) -> tracing::subscriber::DefaultGuard {
        tracing::dispatcher::set_default(&self.dispatch)
    }

    /// The capture's `tracing` dispatcher (e.g. to install it on other threads).
    pub fn dispatch(&self) -> &tracing::Dispatch {
        &self.dispatch
    }

    /// The capture's meter provider.
    pub fn meter_provider(&self) -> &SdkMeterProvider {
        &self.meter_provider
    }

    /// A meter of the capture's provider.
    pub fn meter(&self, name: &'static str) -> Meter {
        self.meter_provider.meter(name)
    }

    /// The capture's tracer provider.
    pub fn tracer_provider(&self) -> &SdkTracerProvider {
        &self.tracer_provider
    }

    /// A tracer of the capture's provider, for middleware that starts spans with the
    /// OpenTelemetry API (e.g. `otelbricks_http::HttpTraceLayer::tracer`).
    pub fn tracer(&self, name: &'static str) -> opentelemetry_sdk::trace::SdkTracer {
        opentelemetry::trace::TracerProvider::tracer(&self.tracer_provider, name)
    }

    /// The propagators `install` uses by default (W3C trace context and baggage).
    pub fn propagator(&self) -> TextMapCompositePropagator {
        pipeline::propagator(&[PropagatorKind::TraceContext, PropagatorKind::Baggage])
    }

    /// Spans ended so far.
    pub fn finished_spans(&self) -> Vec<SpanData> {
        let _ = self.tracer_provider.force_flush();
        self.spans.get_finished_spans().unwrap_or_default()
    }

    /// OTel log records emitted so far.
    pub fn log_records(&self) -> Vec<LogDataWithResource> {
        let _ = self.logger_provider.force_flush();
        self.logs.get_emitted_logs().unwrap_or_default()
    }

    /// Collects the metrics now and returns every export so far (cumulative).
    pub fn resource_metrics(&self) -> Vec<ResourceMetrics> {
        let _ = self.meter_provider.force_flush();
        self.metrics.get_finished_metrics().unwrap_or_default()
    }

    /// The data points of the latest collection, flattened; `name` filters by instrument name.
    pub fn metric_points(&self, name: Option<&str>) -> Vec<Point> {
        let all = self.resource_metrics();
        let Some(last) = all.last() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for scope in last.scope_metrics() {
            for metric in scope.metrics() {
                if name.is_some_and(|n| n != metric.name()) {
                    continue;
                }
                let mut push = |attributes: Vec<KeyValue>, value: PointValue| {
                    out.push(Point {
                        name: metric.name().to_owned(),
                        unit: metric.unit().to_owned(),
                        attributes,
                        value,
                    })
                };
                match metric.data() {
                    AggregatedMetrics::F64(d) => flatten(d, |x| x, &mut push),
                    AggregatedMetrics::U64(d) => flatten(d, |x| x as f64, &mut push),
                    AggregatedMetrics::I64(d) => flatten(d, |x| x as f64, &mut push),
                }
            }
        }
        out
    }

    /// The JSON log lines written so far, parsed. A line that is not valid JSON panics the test,
    /// naming the line.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.raw_lines()
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("invalid JSON log line {l:?}: {e}"))
            })
            .collect()
    }

    /// The JSON log lines written so far, as text.
    pub fn raw_lines(&self) -> String {
        let buf = self.lines.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Everything captured as text (spans, log records, metrics and lines, `Debug`-formatted),
    /// for checks that a value appears nowhere, such as a secret.
    pub fn everything_as_text(&self) -> String {
        format!(
            "{:?}\n{:?}\n{:?}\n{}",
            self.finished_spans(),
            self.log_records(),
            self.resource_metrics(),
            self.raw_lines()
        )
    }
}

fn flatten<T: Copy>(
    data: &MetricData<T>,
    to_f64: impl Fn(T) -> f64,
    push: &mut impl FnMut(Vec<KeyValue>, PointValue),
) {
    match data {
        MetricData::Gauge(g) => {
            for p in g.data_points() {
                push(
                    p.attributes().cloned().collect(),
                    PointValue::Number(to_f64(p.value())),
                );
            }
        }
        MetricData::Sum(s) => {
            for p in s.data_points() {
                push(
                    p.attributes().cloned().collect(),
                    PointValue::Number(to_f64(p.value())),
                );
            }
        }
        MetricData::Histogram(h) => {
            for p in h.data_points() {
                push(
                    p.attributes().cloned().collect(),
                    PointValue::Histogram {
                        count: p.count(),
                        sum: to_f64(p.sum()),
                        bounds: p.bounds().collect(),
                        bucket_counts: p.bucket_counts().collect(),
                    },
                );
            }
        }
        MetricData::ExponentialHistogram(h) => {
            for p in h.data_points() {
                push(
                    p.attributes().cloned().collect(),
                    PointValue::Histogram {
                        count: p.count() as u64,
                        sum: to_f64(p.sum()),
                        bounds: Vec::new(),
                        bucket_counts: Vec::new(),
                    },
                );
            }
        }
    }
}
