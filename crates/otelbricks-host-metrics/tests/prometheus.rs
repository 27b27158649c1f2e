//! The pull path: opentelemetry-prometheus reader, gathered and text-encoded as /metrics would be.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::eventually;

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use otelbricks_host_metrics::HostMetrics;
use prometheus::{Encoder as _, TextEncoder};

fn scrape(registry: &prometheus::Registry) -> String {
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut buf)
        .expect("encode");
    String::from_utf8(buf).expect("utf-8")
}

const EXPECTED: &[&str] = &[
    "# TYPE system_cpu_utilization_ratio gauge",
    "system_cpu_utilization_ratio{",
    "system_cpu_load_average_1m{",
    "system_memory_usage_bytes{",
    "system_memory_state=\"used\"",
    "system_memory_utilization_ratio{",
    "system_filesystem_usage_bytes{",
    "system_filesystem_mountpoint=\"",
    "# TYPE system_network_io_bytes_total counter",
    "network_io_direction=\"receive\"",
    "system_network_errors_total{",
    "# TYPE system_disk_io_bytes_total counter",
    "process_cpu_utilization_ratio{",
    "cpu_mode=\"user\"",
    "process_memory_usage_bytes{",
    "process_memory_virtual_bytes{",
    "process_uptime_seconds{",
];

#[test]
fn prometheus_scrape_shows_semconv_metrics_with_prometheus_suffixes() {
    let registry = prometheus::Registry::new();
    let exporter = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .build()
        .expect("prometheus exporter");
    let provider = SdkMeterProvider::builder().with_reader(exporter).build();
    let handle = HostMetrics::builder()
        .with_interval(Duration::from_millis(200))
        .build()
        .start(&provider.meter("host-metrics"))
        .expect("start");

    // Poll until every expected series is there (the first values need a priming sample).
    let missing = |text: &str| -> Vec<&str> {
        EXPECTED
            .iter()
            .copied()
            .filter(|e| !text.contains(e))
            .collect()
    };
    let complete = eventually(Duration::from_secs(10), || {
        Some(scrape(&registry)).filter(|text| missing(text).is_empty())
    });
    if complete.is_none() {
        let text = scrape(&registry);
        panic!("missing {:?} in\n{text}", missing(&text));
    }
    handle.shutdown().expect("shutdown");
}
