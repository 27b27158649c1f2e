//! A collector that accepts connections and never answers: shutdown stops at its bound and says
//! how much was still queued (its own process: `install` sets globals).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use otelbricks_telemetry::TelemetryError;

#[test]
fn shutdown_stops_at_its_bound_and_counts_what_was_still_queued() {
    // Accepts, reads nothing, answers nothing: every export hangs until its 10 s timeout.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    let tmp = tempfile::tempdir().expect("tempdir");
    let guard = otelbricks_telemetry::builder("slow-collector")
        .env_lookup(move |k| match k {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(format!("http://{addr}")),
            "OTEL_METRICS_EXPORTER" | "OTEL_LOGS_EXPORTER" => Some("none".into()),
            _ => None,
        })
        .log_dir(tmp.path())
        .console(otelbricks_telemetry::ConsoleFormat::Off)
        .without_admin()
        .shutdown_timeout(Duration::from_secs(1))
        .install()
        .expect("install");
    for i in 0..1000 {
        tracing::info_span!("work", i).in_scope(|| {});
    }

    let started = Instant::now();
    let result = guard.shutdown();
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(1500),
        "shutdown took {took:?}, bound 1 s"
    );
    let Err(TelemetryError::Undelivered(report)) = result else {
        panic!("expected a report, got {result:?}");
    };
    eprintln!("shutdown took {took:?}: {report}");
    assert_eq!(report.timed_out, Some(Duration::from_secs(1)), "{report}");
    assert_eq!(report.spans_dropped, 1000, "{report}");
    assert_eq!(
        report.spans_unsent, 1000,
        "no export finished, so every span was still queued or in flight: {report}"
    );
    let line = report.to_string();
    assert!(
        line.starts_with(&format!(
            "collector at http://{addr} did not answer in time"
        )),
        "{line}"
    );
    assert!(line.ends_with("with 1000 spans not yet sent"), "{line}");
}
