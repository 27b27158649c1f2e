//! Shared by the benches: the subscriber and SDK providers they run under, the router and the
//! request.
#![allow(dead_code)]

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

pub fn install() -> (telemetry::writer::BatchWriterGuard, tempfile_dir::Dir) {
    let dir = tempfile_dir::Dir::new();
    let tp = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(Discard).build())
        .build();
    let lp = SdkLoggerProvider::builder()
        .with_log_processor(BatchLogProcessor::builder(Discard).build())
        .build();
    let mp = SdkMeterProvider::builder()
        .with_reader(ManualReader::builder().build())
        .build();
    opentelemetry::global::set_meter_provider(mp);
    opentelemetry::global::set_tracer_provider(tp.clone());
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let file = std::fs::File::create(dir.path().join("bench.json")).expect("file");
    let (writer, guard) =
        telemetry::writer::BatchWriter::spawn("bench-log", file, 32 << 20, true).expect("writer");
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("info,tower_http=debug"))
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(opentelemetry::trace::TracerProvider::tracer(&tp, "bench"))
                .with_tracked_inactivity(false)
                .with_threads(false)
                .with_filter(tracing_subscriber::filter::filter_fn(|m| m.is_span())),
        )
        .with(telemetry::json::JsonLayer::new().with_sink(tracing::Level::TRACE, writer))
        .with(opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(&lp));
    tracing::subscriber::set_global_default(subscriber).expect("subscriber");
    (guard, dir)
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
