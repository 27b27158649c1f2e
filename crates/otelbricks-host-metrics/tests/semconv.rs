//! The exported instruments against a table pinned from the OpenTelemetry semantic conventions
//! (opentelemetry-semantic-conventions 0.33.1, `semconv_experimental`; the load averages follow
//! the collector's hostmetrics receiver, as semconv 0.33 has no entry for them).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Exported, Kind, collect, collect_until, eventually, find, provider};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use otelbricks_host_metrics::HostMetrics;

const FS_KEYS: &[&str] = &[
    "system.device",
    "system.filesystem.mode",
    "system.filesystem.mountpoint",
    "system.filesystem.state",
    "system.filesystem.type",
];
const NET_KEYS: &[&str] = &["network.interface.name", "network.io.direction"];

/// (name, unit, kind, attribute keys every data point carries)
const PINNED: &[(&str, &str, Kind, &[&str])] = &[
    ("system.cpu.utilization", "1", Kind::Gauge, &[]),
    ("system.cpu.load_average.1m", "{thread}", Kind::Gauge, &[]),
    ("system.cpu.load_average.5m", "{thread}", Kind::Gauge, &[]),
    ("system.cpu.load_average.15m", "{thread}", Kind::Gauge, &[]),
    (
        "system.memory.usage",
        "By",
        Kind::UpDownCounter,
        &["system.memory.state"],
    ),
    (
        "system.memory.utilization",
        "1",
        Kind::Gauge,
        &["system.memory.state"],
    ),
    ("system.memory.limit", "By", Kind::UpDownCounter, &[]),
    (
        "system.filesystem.usage",
        "By",
        Kind::UpDownCounter,
        FS_KEYS,
    ),
    ("system.filesystem.utilization", "1", Kind::Gauge, FS_KEYS),
    ("system.network.io", "By", Kind::Counter, NET_KEYS),
    ("system.network.errors", "{error}", Kind::Counter, NET_KEYS),
    (
        "system.disk.io",
        "By",
        Kind::Counter,
        &["disk.io.direction", "system.device"],
    ),
    ("process.cpu.utilization", "1", Kind::Gauge, &["cpu.mode"]),
    ("process.memory.usage", "By", Kind::UpDownCounter, &[]),
    ("process.memory.virtual", "By", Kind::UpDownCounter, &[]),
    ("process.thread.count", "{thread}", Kind::UpDownCounter, &[]),
    (
        "process.unix.file_descriptor.count",
        "{file_descriptor}",
        Kind::UpDownCounter,
        &[],
    ),
    ("process.uptime", "s", Kind::Gauge, &[]),
];

/// Allowed values of enumerated attributes.
const ENUMS: &[(&str, &[&str])] = &[
    ("system.memory.state", &["used", "free", "cached"]),
    ("system.filesystem.state", &["used", "free", "reserved"]),
    ("system.filesystem.mode", &["ro", "rw"]),
    ("network.io.direction", &["receive", "transmit"]),
    ("disk.io.direction", &["read", "write"]),
    ("cpu.mode", &["user", "system"]),
];

/// Starts host metrics (200 ms interval) and collects once the primed values are there. Keep the
/// second element alive for the duration of the test.
fn run(
    builder: otelbricks_host_metrics::HostMetricsBuilder,
) -> (
    Vec<Exported>,
    (otelbricks_host_metrics::HostMetricsHandle, SdkMeterProvider),
) {
    let (provider, exporter) = provider();
    let handle = builder
        .with_interval(Duration::from_millis(200))
        .build()
        .start(&provider.meter("host-metrics-test"))
        .expect("start");
    let metrics = collect_until(&provider, &exporter, "system.cpu.utilization");
    (metrics, (handle, provider))
}

#[test]
fn every_instrument_matches_the_pinned_semconv_name_unit_kind_and_attribute_keys() {
    let (metrics, _keep) = run(HostMetrics::builder());
    for &(name, unit, kind, keys) in PINNED {
        let m = find(&metrics, name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(m.unit, unit, "{name} unit");
        assert_eq!(m.kind, kind, "{name} kind");
        assert!(!m.points.is_empty(), "{name} has no data points");
        let expected: BTreeSet<&str> = keys.iter().copied().collect();
        for p in &m.points {
            let got: BTreeSet<&str> = p.attributes.keys().map(String::as_str).collect();
            assert_eq!(got, expected, "{name} attribute keys");
            for (key, allowed) in ENUMS {
                if let Some(v) = p.attributes.get(*key) {
                    assert!(allowed.contains(&v.as_str()), "{name}: {key}={v}");
                }
            }
        }
    }
    let unexpected: Vec<_> = metrics
        .iter()
        .filter(|m| !PINNED.iter().any(|(n, ..)| *n == m.name))
        .map(|m| &m.name)
        .collect();
    assert!(
        unexpected.is_empty(),
        "not in the pinned table: {unexpected:?}"
    );
}

#[test]
fn utilizations_are_within_zero_and_one() {
    let (metrics, _keep) = run(HostMetrics::builder());
    for m in metrics.iter().filter(|m| m.name.ends_with(".utilization")) {
        assert!(!m.points.is_empty(), "{}", m.name);
        for p in &m.points {
            assert!((0.0..=1.0).contains(&p.value), "{} = {}", m.name, p.value);
        }
    }
}

#[test]
fn used_memory_is_at_most_the_total_and_states_sum_to_the_limit() {
    let (metrics, _keep) = run(HostMetrics::builder());
    let usage = find(&metrics, "system.memory.usage").expect("usage");
    let limit = find(&metrics, "system.memory.limit").expect("limit").points[0].value;
    let used = usage
        .points
        .iter()
        .find(|p| p.attributes["system.memory.state"] == "used")
        .expect("used state")
        .value;
    assert!(used > 0.0 && used <= limit, "used {used} limit {limit}");
    let sum: f64 = usage.points.iter().map(|p| p.value).sum();
    assert_eq!(sum, limit);
    let process_rss = find(&metrics, "process.memory.usage").expect("rss").points[0].value;
    assert!(process_rss > 0.0 && process_rss <= limit);
}

#[test]
fn process_cpu_utilization_is_above_zero_and_changes_under_a_busy_loop() {
    let (provider, exporter) = provider();
    let _handle = HostMetrics::builder()
        .with_interval(Duration::from_millis(200))
        .build()
        .start(&provider.meter("host-metrics-test"))
        .expect("start");
    let before = collect_until(&provider, &exporter, "process.cpu.utilization");
    let uptime_before = find(&before, "process.uptime").expect("uptime").points[0].value;

    // Burn one core for longer than two sampling intervals.
    let spinner = std::thread::spawn(|| {
        let start = Instant::now();
        let mut x = 1u64;
        while start.elapsed() < Duration::from_millis(1200) {
            x = std::hint::black_box(x.rotate_left(7) ^ 0x9E37_79B9_7F4A_7C15);
        }
    });
    // A sample taken after `before` while the spinner runs (one every 200 ms): uptime moved on, process CPU
    // above zero.
    let during = eventually(Duration::from_secs(5), || {
        let m = collect(&provider, &exporter);
        let uptime = find(&m, "process.uptime")?.points[0].value;
        let busy: f64 = find(&m, "process.cpu.utilization")?
            .points
            .iter()
            .map(|p| p.value)
            .sum();
        (uptime > uptime_before && busy > 0.0).then_some(m)
    })
    .unwrap_or_else(|| collect(&provider, &exporter));
    let _ = spinner.join();

    let busy: f64 = find(&during, "process.cpu.utilization")
        .expect("process cpu")
        .points
        .iter()
        .map(|p| p.value)
        .sum();
    assert!(busy > 0.0, "process.cpu.utilization = {busy}");
    let machine = find(&during, "system.cpu.utilization")
        .expect("system cpu")
        .points[0]
        .value;
    assert!(machine > 0.0, "system.cpu.utilization = {machine}");
    let uptime_during = find(&during, "process.uptime").expect("uptime").points[0].value;
    assert!(
        uptime_during > uptime_before,
        "{uptime_before} -> {uptime_during}"
    );
    let values = |m: &[common::Exported]| -> Vec<f64> {
        find(m, "process.cpu.utilization")
            .expect("process cpu")
            .points
            .iter()
            .map(|p| p.value)
            .collect()
    };
    assert_ne!(values(&before), values(&during), "snapshot did not change");
}

#[test]
fn cumulative_counters_never_decrease_between_collections() {
    let (provider, exporter) = provider();
    let _handle = HostMetrics::builder()
        .with_interval(Duration::from_millis(100))
        .build()
        .start(&provider.meter("host-metrics-test"))
        .expect("start");
    let first = collect_until(&provider, &exporter, "system.network.io");
    // A later sample (every 100 ms): its uptime has moved on.
    let uptime = |m: &[Exported]| find(m, "process.uptime").map(|u| u.points[0].value);
    let second = eventually(Duration::from_secs(5), || {
        let m = collect(&provider, &exporter);
        (uptime(&m) > uptime(&first)).then_some(m)
    })
    .expect("a new sample within 5 s");
    for name in [
        "system.network.io",
        "system.network.errors",
        "system.disk.io",
    ] {
        let a = find(&first, name).expect(name);
        let b = find(&second, name).expect(name);
        for pa in &a.points {
            if let Some(pb) = b.points.iter().find(|p| p.attributes == pa.attributes) {
                assert!(pb.value >= pa.value, "{name} {:?} decreased", pa.attributes);
            }
        }
    }
}

#[test]
fn per_cpu_mode_labels_each_logical_cpu_with_cpu_logical_number() {
    let (metrics, _keep) = run(HostMetrics::builder().with_per_cpu(true));
    let cpu = find(&metrics, "system.cpu.utilization").expect("cpu");
    let numbers: BTreeSet<i64> = cpu
        .points
        .iter()
        .map(|p| p.attributes["cpu.logical_number"].parse().expect("int"))
        .collect();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(numbers.len() >= cpus, "{numbers:?}");
    assert_eq!(numbers.first(), Some(&0));
}

#[test]
fn disabled_sources_register_no_instruments() {
    let (metrics, _keep) = run(HostMetrics::builder()
        .with_filesystems(false)
        .with_network(false)
        .with_disk_io(false)
        .with_process(false));
    // Nothing waits for process.cpu.utilization here; make sure the first sample arrived.
    for m in &metrics {
        assert!(
            m.name.starts_with("system.cpu.") || m.name.starts_with("system.memory."),
            "{} should be disabled",
            m.name
        );
    }
    assert!(find(&metrics, "system.memory.usage").is_some());
}

#[test]
fn resource_attributes_describe_the_os_and_host_with_semconv_keys() {
    let attributes = otelbricks_host_metrics::resource_attributes();
    let get = |key: &str| {
        attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    };
    for key in ["os.type", "host.arch", "os.description", "host.name"] {
        assert!(get(key).is_some_and(|v| !v.is_empty()), "{key} missing");
    }
    if cfg!(target_os = "linux") {
        assert_eq!(get("os.type").as_deref(), Some("linux"));
    }
    if cfg!(target_arch = "x86_64") {
        assert_eq!(get("host.arch").as_deref(), Some("amd64"));
    }
}
