//! Unit tests on the sampler and the thread lifecycle (integration tests live in `tests/`).

use std::time::{Duration, Instant};

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::{
    InMemoryMetricExporter, PeriodicReader, SdkMeterProvider, data::ResourceMetrics,
};

use crate::sampler::Sampler;
use crate::{Config, HostMetrics, HostMetricsError, Source};

fn sampler(config: Config) -> Sampler {
    Sampler::new(config).expect("sysinfo works on the test machine")
}

fn burn_cpu(for_how_long: Duration) {
    let worker = std::thread::spawn(move || {
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < for_how_long {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        x
    });
    let _ = worker.join();
}

#[test]
fn first_sample_primes_cpu_and_the_second_reports_a_ratio() {
    let mut s = sampler(Config::default());
    let first = s.sample();
    let cpu = first.cpu.expect("cpu source reports");
    assert!(
        cpu.total.is_none(),
        "priming sample must not report utilization"
    );
    assert!(first.process.expect("process").cpu_utilization.is_empty());

    std::thread::sleep(Duration::from_millis(300));
    let second = s.sample();
    let total = second
        .cpu
        .and_then(|c| c.total)
        .expect("second sample reports");
    assert!((0.0..=1.0).contains(&total), "{total}");
}

#[test]
fn per_cpu_mode_reports_one_value_per_logical_cpu_and_no_total() {
    let mut s = sampler(Config {
        per_cpu: true,
        ..Config::default()
    });
    s.sample();
    std::thread::sleep(Duration::from_millis(300));
    let cpu = s.sample().cpu.expect("cpu");
    assert!(cpu.total.is_none());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(cpu.per_cpu.len() >= cpus, "{} < {cpus}", cpu.per_cpu.len());
    for (i, (number, value)) in cpu.per_cpu.iter().enumerate() {
        assert_eq!(*number, i as i64);
        assert!((0.0..=1.0).contains(value), "{value}");
    }
}

#[test]
fn memory_used_is_at_most_total_and_states_sum_to_total() {
    let m = sampler(Config::default()).sample().memory.expect("memory");
    assert!(m.total > 0);
    assert!(m.used <= m.total);
    assert_eq!(m.used + m.free + m.cached, m.total);
}

#[test]
fn filesystems_skip_pseudo_types_and_used_free_reserved_add_up_to_total() {
    let fs = sampler(Config::default())
        .sample()
        .filesystems
        .expect("filesystem source reports");
    for f in &fs {
        assert!(
            !crate::sampler::PSEUDO_FILESYSTEMS.contains(&f.fs_type.as_ref()),
            "{f:?}"
        );
        assert!(
            f.used + f.free + f.reserved == f.total && f.total > 0,
            "{f:?}"
        );
    }
}

#[test]
fn process_cpu_utilization_is_positive_under_a_busy_loop() {
    let mut s = sampler(Config::default());
    s.sample();
    burn_cpu(Duration::from_millis(400));
    let p = s.sample().process.expect("process");
    let busy: f64 = p.cpu_utilization.iter().map(|(_, v)| v).sum();
    assert!(busy > 0.0, "{:?}", p.cpu_utilization);
    assert!(
        p.cpu_utilization
            .iter()
            .all(|(_, v)| (0.0..=1.0).contains(v))
    );
    if cfg!(unix) {
        let modes: Vec<_> = p.cpu_utilization.iter().map(|(m, _)| *m).collect();
        assert_eq!(modes, [Some("user"), Some("system")]);
    }
    assert!(p.memory_usage > 0 && p.memory_virtual >= p.memory_usage);
    assert!(p.uptime_seconds > 0.0 && p.uptime_seconds.is_finite());
    if cfg!(target_os = "linux") {
        assert!(p.threads.unwrap_or(0) >= 1);
        assert!(p.open_fds.unwrap_or(0) >= 3);
    }
}

#[cfg(target_os = "linux")]
#[test]
fn process_uptime_has_sub_second_precision_and_advances_with_the_clock() {
    let a = crate::sampler::precise_uptime().expect("uptime");
    std::thread::sleep(Duration::from_millis(250));
    let b = crate::sampler::precise_uptime().expect("uptime");
    let advanced = b - a;
    assert!((0.15..1.0).contains(&advanced), "advanced by {advanced}");
}

#[test]
fn a_panicking_source_is_skipped_each_time_warned_once_and_the_rest_still_report() {
    let mut s = sampler(Config {
        panic_in: Some(Source::Memory),
        ..Config::default()
    });
    for _ in 0..3 {
        let snap = s.sample();
        assert!(snap.memory.is_none());
        assert!(snap.cpu.is_some());
        assert!(snap.process.is_some());
        assert!(snap.network.is_some());
        assert!(snap.filesystems.is_some());
    }
    assert_eq!(s.warned, [Source::Memory], "warned once, for memory only");
}

fn provider() -> (SdkMeterProvider, InMemoryMetricExporter) {
    let exporter = InMemoryMetricExporter::default();
    let reader = PeriodicReader::builder(exporter.clone())
        .with_interval(Duration::from_secs(3600))
        .build();
    (
        SdkMeterProvider::builder().with_reader(reader).build(),
        exporter,
    )
}

fn metric_names(provider: &SdkMeterProvider, exporter: &InMemoryMetricExporter) -> Vec<String> {
    exporter.reset();
    provider.force_flush().expect("flush");
    let exported: Vec<ResourceMetrics> = exporter.get_finished_metrics().expect("metrics");
    exported
        .iter()
        .flat_map(|rm| rm.scope_metrics())
        .flat_map(|sm| sm.metrics())
        .map(|m| m.name().to_owned())
        .collect()
}

#[test]
fn a_panicking_source_is_skipped_in_the_exported_metrics_while_the_rest_report() {
    let (provider, exporter) = provider();
    let handle = HostMetrics::builder()
        .with_interval(Duration::from_millis(200))
        .with_panic_in(Source::Cpu)
        .build()
        .start(&provider.meter("test"))
        .expect("start");
    let deadline = Instant::now() + Duration::from_secs(10);
    let names = loop {
        let names = metric_names(&provider, &exporter);
        if names.iter().any(|n| n == "process.cpu.utilization") || Instant::now() > deadline {
            break names;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        names.iter().any(|n| n == "system.memory.usage"),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n == "process.cpu.utilization"),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.starts_with("system.cpu.")),
        "{names:?}"
    );
    handle.shutdown().expect("shutdown");
}

#[test]
fn shutdown_is_prompt_even_with_a_long_interval_and_stops_reporting() {
    let (provider, exporter) = provider();
    let handle = HostMetrics::builder()
        .with_interval(Duration::from_secs(3600))
        .build()
        .start(&provider.meter("test"))
        .expect("start");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !metric_names(&provider, &exporter).contains(&"system.memory.usage".to_owned()) {
        assert!(Instant::now() < deadline, "first sample never arrived");
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = Instant::now();
    handle.shutdown().expect("shutdown");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let after = metric_names(&provider, &exporter);
    assert!(
        !after
            .iter()
            .any(|n| n.starts_with("system.") || n.starts_with("process.")),
        "{after:?}"
    );
}

#[test]
fn dropping_the_handle_stops_the_sampler_thread() {
    let (provider, _exporter) = provider();
    let handle = HostMetrics::builder()
        .with_interval(Duration::from_secs(3600))
        .build()
        .start(&provider.meter("test"))
        .expect("start");
    let started = Instant::now();
    drop(handle); // waits for the thread's exit signal (at most 2 s)
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn the_sampler_thread_is_named_host_metrics() {
    let (provider, _exporter) = provider();
    let handle = HostMetrics::builder()
        .build()
        .start(&provider.meter("test"))
        .expect("start");
    let name = handle
        .thread
        .as_ref()
        .and_then(|t| t.thread().name().map(str::to_owned));
    assert_eq!(name.as_deref(), Some("host-metrics"));
}

#[test]
fn a_zero_interval_is_rejected() {
    let (provider, _exporter) = provider();
    let err = HostMetrics::builder()
        .with_interval(Duration::ZERO)
        .build()
        .start(&provider.meter("test"))
        .expect_err("zero interval");
    assert!(matches!(err, HostMetricsError::ZeroInterval));
}

#[test]
fn the_handle_is_send_and_sync_so_it_can_live_in_a_shared_guard() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<crate::HostMetricsHandle>();
    assert_send_sync::<crate::HostMetrics>();
    assert_send_sync::<crate::HostMetricsError>();
}
