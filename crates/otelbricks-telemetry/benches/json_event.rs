//! One `info!` event with 3 fields inside a request span, formatted as a JSON line and written to
//! a size-rotated file through a non-blocking writer: our `JsonLayer` against tracing-subscriber's
//! own JSON layer (and json-subscriber), side by side in one run. The writers are lossy here so the
//! figure is the cost the calling thread pays (format + enqueue), not the disk's speed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use otelbricks_logfiles::RotatingFile;
use otelbricks_telemetry::json::JsonLayer;
use otelbricks_telemetry::writer::{BatchWriter, BatchWriterGuard};
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::prelude::*;

/// The rotating file the log files use (50 MiB, 3 kept, gzip).
fn roller(dir: &std::path::Path, name: &str) -> RotatingFile {
    RotatingFile::open(dir, name, 50 << 20, 3).expect("rotating file")
}

/// tracing-appender's non-blocking writer, what tracing-subscriber users pair with it.
fn file(dir: &std::path::Path, name: &str) -> (NonBlocking, WorkerGuard) {
    NonBlockingBuilder::default()
        .lossy(true)
        .finish(roller(dir, name))
}

/// Ours, as `install` sets it up.
fn batch_file(dir: &std::path::Path, name: &str) -> (BatchWriter, BatchWriterGuard) {
    BatchWriter::spawn("bench", roller(dir, name), 32 << 20, true).expect("writer")
}

fn run(c: &mut Criterion, name: &str, dispatch: tracing::Dispatch) {
    tracing::dispatcher::with_default(&dispatch, || {
        let span = tracing::info_span!(
            "request",
            request_id = "0f8c2a9e-5d1b-4e8a",
            user_id = "a1b2c3d4e5f60718"
        );
        let _e = span.enter();
        c.bench_function(name, |b| {
            b.iter(|| {
                tracing::info!(
                    method = black_box("GET"),
                    status_code = black_box(200_u64),
                    duration = black_box(0.0123_f64),
                    "Request completed"
                );
            })
        });
    });
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");

    let (w, _g1) = file(tmp.path(), "baseline.json");
    let baseline = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(w),
    );
    run(
        c,
        "json_event/tracing_subscriber_json",
        tracing::Dispatch::new(baseline),
    );

    let (w, _g2) = file(tmp.path(), "json_subscriber.json");
    let js = tracing_subscriber::registry().with(
        json_subscriber::layer()
            .with_current_span(false)
            .with_writer(w),
    );
    run(c, "json_event/json_subscriber", tracing::Dispatch::new(js));

    let (w, _g3) = batch_file(tmp.path(), "ours.json");
    let ours =
        tracing_subscriber::registry().with(JsonLayer::new().with_sink(tracing::Level::TRACE, w));
    run(c, "json_event/ours", tracing::Dispatch::new(ours));

    // The same two with the OpenTelemetry layer in the stack (ours then also writes trace ids).
    let tp = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let tracer = || opentelemetry::trace::TracerProvider::tracer(&tp, "bench");
    let (w, _g4) = file(tmp.path(), "baseline_otel.json");
    let baseline_otel = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(tracer()))
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .with_writer(w),
        );
    run(
        c,
        "json_event_with_otel/tracing_subscriber_json",
        tracing::Dispatch::new(baseline_otel),
    );
    let (w, _g5) = batch_file(tmp.path(), "ours_otel.json");
    let ours_otel = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(tracer()))
        .with(JsonLayer::new().with_sink(tracing::Level::TRACE, w));
    run(
        c,
        "json_event_with_otel/ours",
        tracing::Dispatch::new(ours_otel),
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(4))
        .sample_size(50);
    targets = bench
}
criterion_main!(benches);
