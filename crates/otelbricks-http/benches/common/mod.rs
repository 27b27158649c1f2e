//! Shared by the benches: the subscriber and SDK providers they run under, the router and the
//! request.
#![allow(dead_code)]

use std::convert::Infallible;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{BatchLogProcessor, LogBatch, LogExporter, SdkLoggerProvider};
use opentelemetry_sdk::metrics::{ManualReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::prelude::*;

/// Exporter that accepts and discards everything (bench only: isolates the app-side cost).
#[derive(Debug)]
pub struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        Ok(())
    }
}

impl LogExporter for Discard {
    async fn export(&self, _batch: LogBatch<'_>) -> OTelSdkResult {
        Ok(())
    }
}

/// The providers of [`install`], for the hand-wired `sdk_floor` stack.
static PROVIDERS: std::sync::OnceLock<(SdkTracerProvider, SdkLoggerProvider)> =
    std::sync::OnceLock::new();

/// How the `tracing-opentelemetry` layer, the filter and the propagator are wired; everything else
/// (providers, Discard exporters, JSON layer, log bridge) is the same.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Wiring {
    /// As `otelbricks_telemetry` wires them: the layer sees spans only, without busy/idle times or
    /// thread attributes; W3C trace context propagator.
    Ours,
    /// As init-tracing-opentelemetry wires them for axum-tracing-opentelemetry: its layer
    /// (`tracing_opentelemetry::layer().with_error_records_to_exceptions(true)`, the other options at
    /// their defaults), its propagator (`init_propagator()`: trace context + baggage) and its
    /// `otel::tracing=trace` directive, which turns on the middleware's TRACE-level span.
    InitTracingOpentelemetry,
}

pub fn install() -> (
    otelbricks_telemetry::writer::BatchWriterGuard,
    tempfile_dir::Dir,
) {
    install_with(Wiring::Ours)
}

pub fn install_with(
    wiring: Wiring,
) -> (
    otelbricks_telemetry::writer::BatchWriterGuard,
    tempfile_dir::Dir,
) {
    use opentelemetry::trace::TracerProvider as _;

    let dir = tempfile_dir::Dir::new();
    // Batches leave when full (512), never on the timer: a slow or loaded run then exports no more
    // often than a fast one, so instruction counts do not depend on the machine's load.
    let never = std::time::Duration::from_secs(3600);
    let tp = SdkTracerProvider::builder()
        .with_span_processor(
            BatchSpanProcessor::builder(Discard)
                .with_batch_config(
                    opentelemetry_sdk::trace::BatchConfigBuilder::default()
                        .with_scheduled_delay(never)
                        .build(),
                )
                .build(),
        )
        .build();
    let lp = SdkLoggerProvider::builder()
        .with_log_processor(
            BatchLogProcessor::builder(Discard)
                .with_batch_config(
                    opentelemetry_sdk::logs::BatchConfigBuilder::default()
                        .with_scheduled_delay(never)
                        .build(),
                )
                .build(),
        )
        .build();
    let mp = SdkMeterProvider::builder()
        .with_reader(ManualReader::builder().build())
        .build();
    let _ = PROVIDERS.set((tp.clone(), lp.clone()));
    opentelemetry::global::set_meter_provider(mp);
    opentelemetry::global::set_tracer_provider(tp.clone());
    let file = std::fs::File::create(dir.path().join("bench.json")).expect("file");
    let (writer, guard) =
        otelbricks_telemetry::writer::BatchWriter::spawn("bench-log", file, 32 << 20, true)
            .expect("writer");
    match wiring {
        Wiring::Ours => {
            opentelemetry::global::set_text_map_propagator(
                opentelemetry_sdk::propagation::TraceContextPropagator::new(),
            );
            set_subscriber(
                "info,tower_http=debug",
                tracing_opentelemetry::layer()
                    .with_tracer(tp.tracer("bench"))
                    .with_tracked_inactivity(false)
                    .with_threads(false)
                    .with_filter(tracing_subscriber::filter::filter_fn(|m| m.is_span())),
                writer,
                &lp,
            );
        }
        Wiring::InitTracingOpentelemetry => {
            init_tracing_opentelemetry::init_propagator().expect("propagator");
            set_subscriber(
                "info,tower_http=debug,otel::tracing=trace",
                tracing_opentelemetry::layer()
                    .with_error_records_to_exceptions(true)
                    .with_tracer(tp.tracer("")),
                writer,
                &lp,
            );
        }
    }
    (guard, dir)
}

/// Exports every span and log record still queued and waits until it is done, so a run's count
/// includes the export of all its requests, whenever the batch threads got to them.
pub fn flush() {
    if let Some((tp, lp)) = PROVIDERS.get() {
        let _ = tp.force_flush();
        let _ = lp.force_flush();
    }
}

/// The benches' subscriber: filter, the given `tracing-opentelemetry` layer, our JSON layer to a
/// lossy batched file, the OTel log bridge.
fn set_subscriber<L>(
    filter: &str,
    otel: L,
    writer: otelbricks_telemetry::writer::BatchWriter,
    lp: &SdkLoggerProvider,
) where
    L: tracing_subscriber::Layer<
            tracing_subscriber::layer::Layered<
                tracing_subscriber::EnvFilter,
                tracing_subscriber::Registry,
            >,
        > + Send
        + Sync
        + 'static,
{
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new(filter))
        .with(otel)
        .with(otelbricks_telemetry::json::JsonLayer::new().with_sink(tracing::Level::TRACE, writer))
        .with(opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(lp));
    tracing::subscriber::set_global_default(subscriber).expect("subscriber");
}

/// A temporary directory removed on drop (std only).
mod tempfile_dir {
    pub struct Dir(std::path::PathBuf);
    impl Dir {
        pub fn new() -> Self {
            let p =
                std::env::temp_dir().join(format!("telemetry-http-bench-{}", std::process::id()));
            std::fs::create_dir_all(&p).expect("temp dir");
            Dir(p)
        }
        pub fn path(&self) -> &std::path::Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// `sdk_floor`: the least a hand-wired OpenTelemetry middleware can do per request with the SDK
/// alone: extract the parent context, one server span with the four semconv attributes and the
/// status code, one `http.server.request.duration` record, one `Request completed` log record with
/// four attributes. No tracing span (so no log correlation for the handler's own lines), no JSON log
/// line, no request id, user id, active-requests or body-size metrics, the route a constant. It is a
/// lower bound on the SDK's share of any stack's per-request cost, not something a user should run.
pub fn sdk_floor(router: Router) -> Router {
    use opentelemetry::KeyValue;
    use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry::trace::{Span as _, SpanKind, Tracer as _};

    let (tp, lp) = PROVIDERS.get().expect("install() first");
    let tracer = tp.tracer("sdk_floor");
    let logger = lp.logger("sdk_floor");
    let duration = opentelemetry::global::meter("sdk_floor")
        .f64_histogram("http.server.request.duration")
        .with_unit("s")
        .build();
    router.layer(tower::layer::layer_fn(
        move |inner: axum::routing::Route| {
            let (tracer, logger, duration) = (tracer.clone(), logger.clone(), duration.clone());
            tower::service_fn(move |req: Request<Body>| {
                let start = std::time::Instant::now();
                let parent = opentelemetry::global::get_text_map_propagator(|p| {
                    p.extract(&otelbricks_http::propagation::HeaderExtractor(
                        req.headers(),
                    ))
                });
                const ROUTE: &str = "/api/v1/jobs/{job_id}";
                let mut span = tracer
                    .span_builder("GET /api/v1/jobs/{job_id}")
                    .with_kind(SpanKind::Server)
                    .with_attributes([
                        KeyValue::new("http.request.method", "GET"),
                        KeyValue::new("http.route", ROUTE),
                        KeyValue::new("url.scheme", "http"),
                        KeyValue::new("url.path", req.uri().path().to_owned()),
                    ])
                    .start_with_context(&tracer, &parent);
                let span_context = span.span_context().clone();
                let (logger, duration) = (logger.clone(), duration.clone());
                let call = tower::ServiceExt::oneshot(inner.clone(), req);
                async move {
                    let resp = call.await?;
                    let status = i64::from(resp.status().as_u16());
                    let elapsed = start.elapsed().as_secs_f64();
                    span.set_attribute(KeyValue::new("http.response.status_code", status));
                    span.end();
                    duration.record(
                        elapsed,
                        &[
                            KeyValue::new("http.request.method", "GET"),
                            KeyValue::new("http.route", ROUTE),
                            KeyValue::new("http.response.status_code", status),
                        ],
                    );
                    let mut record = logger.create_log_record();
                    record.set_body("Request completed".into());
                    record.set_severity_number(Severity::Info);
                    record.set_severity_text("INFO");
                    record.set_trace_context(
                        span_context.trace_id(),
                        span_context.span_id(),
                        Some(span_context.trace_flags()),
                    );
                    record.add_attributes([
                        ("method", opentelemetry::logs::AnyValue::from("GET")),
                        ("path", ROUTE.into()),
                        ("status_code", status.into()),
                        ("duration", elapsed.into()),
                    ]);
                    logger.emit(record);
                    Ok::<_, Infallible>(resp)
                }
            })
        },
    ))
}

/// `metrics_by_hand`: the four HTTP server instruments of `HttpMetricsLayer`, recorded with the
/// OTel metrics API by hand, as a user would write them (same attributes: method, route, status,
/// scheme, protocol version; `active_requests` by method and scheme; body sizes when known).
pub fn metrics_by_hand(router: Router) -> Router {
    use http_body::Body as _;
    use opentelemetry::KeyValue;

    let meter = opentelemetry::global::meter("by_hand");
    let duration = meter
        .f64_histogram("http.server.request.duration")
        .with_unit("s")
        .with_boundaries(otelbricks_http::DURATION_BUCKETS.to_vec())
        .build();
    let active = meter
        .i64_up_down_counter("http.server.active_requests")
        .build();
    let req_size = meter.u64_histogram("http.server.request.body.size").build();
    let res_size = meter
        .u64_histogram("http.server.response.body.size")
        .build();
    router.layer(tower::layer::layer_fn(
        move |inner: axum::routing::Route| {
            let (duration, active, req_size, res_size) = (
                duration.clone(),
                active.clone(),
                req_size.clone(),
                res_size.clone(),
            );
            tower::service_fn(move |req: Request<Body>| {
                let start = std::time::Instant::now();
                let method = otelbricks_http::method_attribute(req.method());
                let route = req
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map(|m| m.as_str().to_owned());
                let request_size = req.body().size_hint().exact();
                let active_attrs = [
                    KeyValue::new("http.request.method", method),
                    KeyValue::new("url.scheme", "http"),
                ];
                active.add(1, &active_attrs);
                let (duration, active, req_size, res_size) = (
                    duration.clone(),
                    active.clone(),
                    req_size.clone(),
                    res_size.clone(),
                );
                let call = tower::ServiceExt::oneshot(inner.clone(), req);
                async move {
                    let resp = call.await?;
                    let mut attrs = vec![
                        KeyValue::new("http.request.method", method),
                        KeyValue::new(
                            "http.response.status_code",
                            i64::from(resp.status().as_u16()),
                        ),
                        KeyValue::new("url.scheme", "http"),
                        KeyValue::new("network.protocol.version", "1.1"),
                    ];
                    if let Some(route) = route {
                        attrs.push(KeyValue::new("http.route", route));
                    }
                    duration.record(start.elapsed().as_secs_f64(), &attrs);
                    if let Some(n) = request_size {
                        req_size.record(n, &attrs);
                    }
                    if let Some(n) = resp.body().size_hint().exact() {
                        res_size.record(n, &attrs);
                    }
                    active.add(-1, &active_attrs);
                    Ok::<_, Infallible>(resp)
                }
            })
        },
    ))
}

pub fn router() -> Router {
    Router::new().route("/api/v1/jobs/{job_id}", get(|| async { "hello" }))
}

pub fn request() -> Request<Body> {
    Request::builder()
        .uri("/api/v1/jobs/42")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(Body::empty())
        .expect("request")
}
