//! What the telemetry layer costs an application's own layer when both share one registry
//! (`build()`): one `info!` event with 3 fields inside a request span, seen by a minimal layer of
//! the application's (it counts events), side by side in one run:
//! - the application's layer alone;
//! - with our layer added, its `RUST_LOG` filter at `warn` (the event is below it);
//! - with our layer at `info` writing the JSON line to a file (lossy writer: the caller's cost).
//!
//! OTel export is off (`OTEL_SDK_DISABLED=true`) so the figures are the layer plumbing and the
//! JSON line, not the SDK.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use tracing_subscriber::prelude::*;

#[derive(Clone, Default)]
struct Counting(Arc<AtomicU64>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Counting {
    fn on_event(&self, _e: &tracing::Event<'_>, _cx: tracing_subscriber::layer::Context<'_, S>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

fn run(c: &mut Criterion, name: &str, dispatch: tracing::Dispatch, seen: &Counting) {
    tracing::dispatcher::with_default(&dispatch, || {
        let span = tracing::info_span!("request", request_id = "0f8c2a9e-5d1b-4e8a");
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
    assert!(
        seen.0.load(Ordering::Relaxed) > 0,
        "{name}: the application's layer saw nothing"
    );
}

fn telemetry(
    dir: &std::path::Path,
    filter: &str,
) -> (
    otelbricks_telemetry::TelemetryLayer<
        tracing_subscriber::layer::Layered<Counting, tracing_subscriber::Registry>,
    >,
    otelbricks_telemetry::TelemetryGuard,
) {
    otelbricks_telemetry::builder("bench")
        .env_lookup(|k| match k {
            "OTEL_SDK_DISABLED" | "TELEMETRY_LOG_FILE_LOSSY" => Some("true".into()),
            _ => None,
        })
        .filter(filter)
        .log_dir(dir)
        .console(otelbricks_telemetry::ConsoleFormat::Off)
        .build()
        .expect("build")
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");

    let seen = Counting::default();
    let alone = tracing_subscriber::registry().with(seen.clone());
    run(
        c,
        "application layer alone",
        tracing::Dispatch::new(alone),
        &seen,
    );

    let seen = Counting::default();
    let (ours, guard) = telemetry(&tmp.path().join("warn"), "warn");
    let both = tracing_subscriber::registry().with(seen.clone()).with(ours);
    run(
        c,
        "application layer + telemetry layer filtered at warn",
        tracing::Dispatch::new(both),
        &seen,
    );
    drop(guard);

    let seen = Counting::default();
    let (ours, guard) = telemetry(&tmp.path().join("info"), "info");
    let both = tracing_subscriber::registry().with(seen.clone()).with(ours);
    run(
        c,
        "application layer + telemetry layer at info (JSON line to a file)",
        tracing::Dispatch::new(both),
        &seen,
    );
    drop(guard);
}

criterion_group!(benches, bench);
criterion_main!(benches);
