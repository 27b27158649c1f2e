//! The admin listener serves /metrics (Prometheus text) behind its token, and the self-metrics
//! count spans dropped by a full queue.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::eventually;

fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\r\n"
    )
    .expect("write");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    (status, resp)
}

#[test]
fn metrics_endpoint_requires_the_token_and_reports_dropped_spans() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let env = |k: &str| match k {
        "OTEL_BSP_MAX_QUEUE_SIZE" => Some("8".to_owned()),
        "OTEL_BSP_SCHEDULE_DELAY" => Some("60000".to_owned()),
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://127.0.0.1:9".to_owned()),
        _ => None,
    };
    let guard = otelbricks_telemetry::builder("admin-test")
        .env_lookup(env)
        .log_dir(tmp.path())
        .console(otelbricks_telemetry::ConsoleFormat::Off)
        .admin_addr("127.0.0.1:0".parse().expect("addr"))
        .admin_token("s3cret")
        .with_host_metrics(
            otelbricks_host_metrics::HostMetrics::builder()
                .with_interval(Duration::from_millis(200)),
        )
        .install()
        .expect("install");
    let addr = guard.admin_addr().expect("admin runs");
    assert!(addr.ip().is_loopback());

    for _ in 0..500 {
        tracing::info_span!("burst").in_scope(|| {});
    }

    let (status, _) = get(addr, "/metrics", None);
    assert_eq!(status, 401, "no token, no metrics");
    let (status, _) = get(addr, "/metrics", Some("wrong"));
    assert_eq!(status, 401);
    let (status, body) = get(addr, "/metrics", Some("s3cret"));
    assert_eq!(status, 200, "{body}");
    let dropped: f64 = body
        .lines()
        .filter(|l| l.starts_with("otel_sdk_processor_span_processed") && l.contains("queue_full"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        dropped >= 400.0,
        "queue of 8 must drop most of 500 spans, counted: {dropped}\n{body}"
    );
    assert!(body.contains("telemetry_log_file_lines_dropped"), "{body}");
    assert!(
        body.contains("target_info"),
        "resource exposed as target_info"
    );
    assert!(body.contains("service_name=\"admin-test\""), "{body}");
    assert!(
        body.contains("host_arch="),
        "host-metrics adds host.arch to the resource"
    );

    // Host metrics, enabled with one builder line, reach /metrics once sampled.
    let sampled = |body: &str| {
        body.contains("system_memory_usage_bytes") && body.contains("process_cpu_utilization_ratio")
    };
    let host_metrics = eventually(Duration::from_secs(10), || {
        Some(get(addr, "/metrics", Some("s3cret")).1).filter(|body| sampled(body))
    });
    if host_metrics.is_none() {
        let (_, body) = get(addr, "/metrics", Some("s3cret"));
        panic!("no host metrics after 10 s:\n{body}");
    }
    drop(guard);
}
