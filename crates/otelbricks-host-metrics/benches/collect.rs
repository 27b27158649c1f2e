//! Cost of one full collection (all sources, on the calling thread) and of one metric-reader
//! pass over the instruments (callbacks only read the snapshot).
//!
//! cargo bench -p otelbricks-host-metrics --bench collect -- --warm-up-time 1 --measurement-time 3

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use otelbricks_host_metrics::{__bench::Collector, HostMetrics};

fn collection(c: &mut Criterion) {
    let mut group = c.benchmark_group("host_metrics");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);

    let mut all = Collector::new(&HostMetrics::builder().build()).expect("collector");
    group.bench_function("collect_all_sources", |b| {
        b.iter(|| black_box(all.collect()))
    });

    let mut per_cpu =
        Collector::new(&HostMetrics::builder().with_per_cpu(true).build()).expect("collector");
    group.bench_function("collect_all_sources_per_cpu", |b| {
        b.iter(|| black_box(per_cpu.collect()))
    });

    let mut minimal = Collector::new(
        &HostMetrics::builder()
            .with_filesystems(false)
            .with_network(false)
            .with_disk_io(false)
            .with_process(false)
            .build(),
    )
    .expect("collector");
    group.bench_function("collect_cpu_and_memory_only", |b| {
        b.iter(|| black_box(minimal.collect()))
    });

    // One extra source on top of cpu + memory, to see where the time goes.
    let base = || {
        HostMetrics::builder()
            .with_filesystems(false)
            .with_network(false)
            .with_disk_io(false)
            .with_process(false)
    };
    for (name, metrics) in [
        (
            "plus_filesystems_and_disk_io",
            base().with_filesystems(true).with_disk_io(true).build(),
        ),
        ("plus_network", base().with_network(true).build()),
        ("plus_process", base().with_process(true).build()),
    ] {
        let mut collector = Collector::new(&metrics).expect("collector");
        group.bench_function(name, |b| b.iter(|| black_box(collector.collect())));
    }

    // A reader pass: every callback reads the snapshot, the SDK aggregates, the in-memory
    // exporter stores the batch (reset each time so it does not grow).
    let exporter = InMemoryMetricExporter::default();
    let reader = PeriodicReader::builder(exporter.clone())
        .with_interval(Duration::from_secs(3600))
        .build();
    let provider = SdkMeterProvider::builder().with_reader(reader).build();
    let handle = HostMetrics::builder()
        .with_interval(Duration::from_millis(100))
        .build()
        .start(&provider.meter("bench"))
        .expect("start");
    std::thread::sleep(Duration::from_millis(1500)); // primed: every instrument has data
    group.bench_function("reader_pass_all_instruments", |b| {
        b.iter(|| {
            provider.force_flush().expect("flush");
            exporter.reset();
        })
    });
    drop(handle);
    group.finish();
}

criterion_group!(benches, collection);
criterion_main!(benches);
