//! `OTEL_EXPORTER_OTLP_COMPRESSION=gzip` compresses every OTLP/HTTP request (its own process:
//! `build()` sets the OTel globals).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::io::Read as _;

use tracing_subscriber::prelude::*;

mod common;

#[test]
fn gzip_compression_is_applied_to_otlp_http_exports() {
    let (receiver, addr) = common::Receiver::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (telemetry, guard) = otelbricks_telemetry::builder("shop")
        .env_lookup(move |k| match k {
            "OTEL_EXPORTER_OTLP_COMPRESSION" => Some("gzip".to_owned()),
            other => common::env(addr)(other),
        })
        .log_dir(tmp.path())
        .console(otelbricks_telemetry::ConsoleFormat::Off)
        .without_admin()
        .build()
        .expect("build");
    let trace_id = tracing::subscriber::with_default(
        tracing_subscriber::registry().with(telemetry),
        common::scenario,
    );
    guard.shutdown().expect("clean shutdown");
    let requests = receiver.requests.lock().expect("lock").clone();
    let traces: Vec<_> = requests
        .iter()
        .filter(|(p, _, _)| p == "/v1/traces")
        .collect();
    assert!(!traces.is_empty(), "spans were exported");
    for (path, body, encoding) in &requests {
        assert_eq!(encoding.as_deref(), Some("gzip"), "{path} not compressed");
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(body.as_slice())
            .read_to_end(&mut plain)
            .expect("valid gzip");
        if path == "/v1/traces" {
            let id = trace_id.to_bytes();
            assert!(
                plain.windows(16).any(|w| w == id),
                "the span is in the body"
            );
        }
    }
}
