//! No collector at all (a closed local port): shutdown does not wait out the retries, stays within
//! its bound, and reports in one line what was dropped, without the endpoint's credentials.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use otelbricks_telemetry::TelemetryError;

#[test]
fn shutdown_without_a_collector_is_quick_and_counts_what_was_dropped() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    }; // closed again: connections are refused
    let tmp = tempfile::tempdir().expect("tempdir");
    let traces = format!("http://user:s3cret@127.0.0.1:{port}/v1/traces?api_key=k3y");
    let base = format!("http://127.0.0.1:{port}");
    let env = {
        let base = base.clone();
        move |k: &str| match k {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(base.clone()),
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" => Some(traces.clone()),
            _ => None,
        }
    };
    let guard = otelbricks_telemetry::builder("no-collector")
        .env_lookup(env)
        .log_dir(tmp.path())
        .console(otelbricks_telemetry::ConsoleFormat::Off)
        .without_admin()
        .install()
        .expect("install works without a collector");
    // Load: more spans than the queue holds (2048), each with a log line.
    for i in 0..3000 {
        tracing::info_span!("work", i).in_scope(|| tracing::info!("working"));
    }

    let started = Instant::now();
    let result = guard.shutdown();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "shutdown took {took:?}: the 5 s bound holds and an unreachable collector is not retried"
    );
    let Err(TelemetryError::Undelivered(report)) = result else {
        panic!("expected a report of what was dropped, got {result:?}");
    };
    assert_eq!(report.spans_dropped, 3000, "{report}");
    assert_eq!(report.log_records_dropped, 3000, "{report}");
    assert!(report.unreachable, "{report}");
    let line = report.to_string();
    assert!(
        line.starts_with(&format!("collector unreachable at {base}")),
        "{line}"
    );
    assert!(
        line.contains("dropped 3000 spans, 3000 log records"),
        "{line}"
    );
    eprintln!("shutdown took {took:?}: {line}");
    assert!(!line.contains('\n'), "one line: {line}");
    assert!(!line.contains("s3cret") && !line.contains("k3y"), "{line}");

    let log = std::fs::read_to_string(tmp.path().join("no-collector.json")).expect("log file");
    assert!(log.contains("telemetry export failed"), "{log}");
    assert!(
        !log.contains("s3cret") && !log.contains("k3y"),
        "export warnings carry no credentials:\n{log}"
    );
}
