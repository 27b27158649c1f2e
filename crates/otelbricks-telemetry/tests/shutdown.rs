//! The guard shuts down within its bound with no collector listening, also on a current_thread
//! runtime (where a naive shutdown deadlocks).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use opentelemetry::metrics::MeterProvider as _;

#[tokio::test(flavor = "current_thread")]
async fn guard_returns_in_bounded_time_on_current_thread_runtime_with_no_collector() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let env = |k: &str| match k {
        // gRPC to a port nobody listens on.
        "OTEL_EXPORTER_OTLP_PROTOCOL" => Some("grpc".to_owned()),
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://127.0.0.1:1".to_owned()),
        "OTEL_BSP_SCHEDULE_DELAY" => Some("50".to_owned()),
        _ => None,
    };
    let guard = otelbricks_telemetry::builder("shutdown-test")
        .env_lookup(env)
        .log_dir(tmp.path())
        .console(otelbricks_telemetry::ConsoleFormat::Off)
        .admin_addr("127.0.0.1:0".parse().expect("addr"))
        .shutdown_timeout(Duration::from_secs(2))
        .install()
        .expect("install works without a collector");
    for i in 0..200 {
        let span = tracing::info_span!("work", i);
        let _e = span.enter();
        tracing::info!("working");
    }
    guard
        .meter_provider()
        .meter("t")
        .u64_counter("things")
        .build()
        .add(1, &[]);
    // The batch processors have tried and failed an export (polled off the runtime, which stays free).
    let log_path = tmp.path().join("shutdown-test.json");
    let failed = tokio::task::spawn_blocking(move || {
        common::eventually(Duration::from_secs(10), || {
            std::fs::read_to_string(&log_path)
                .ok()
                .filter(|log| log.contains("telemetry export failed"))
        })
    })
    .await
    .expect("poll");
    assert!(failed.is_some(), "no export failure logged within 10 s");

    let started = Instant::now();
    let _ = guard.shutdown();
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(2500),
        "shutdown took {took:?}, bound is 2 s"
    );
    let log = std::fs::read_to_string(tmp.path().join("shutdown-test.json")).expect("log file");
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("\"message\":\"working\""))
            .count(),
        200,
        "the file keeps every line even though export failed"
    );
    let export_warnings = log
        .lines()
        .filter(|l| l.contains("telemetry export failed"))
        .count();
    assert!(
        export_warnings <= 3,
        "export failures are rate-limited (one per signal per minute), got {export_warnings}"
    );
}
