//! Shared helpers: an SDK pipeline with the in-memory exporter, flattened to plain data.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{
    InMemoryMetricExporter, PeriodicReader, SdkMeterProvider, Temporality,
};

/// Instrument kind as it shows up in the exported data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    /// Monotonic cumulative sum (counter).
    Counter,
    /// Non-monotonic cumulative sum (up-down counter).
    UpDownCounter,
}

#[derive(Debug, Clone)]
pub struct Point {
    pub attributes: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Clone)]
pub struct Exported {
    pub name: String,
    pub unit: String,
    pub kind: Kind,
    pub points: Vec<Point>,
}

pub fn provider() -> (SdkMeterProvider, InMemoryMetricExporter) {
    let exporter = InMemoryMetricExporter::default();
    let reader = PeriodicReader::builder(exporter.clone())
        .with_interval(Duration::from_secs(3600))
        .build();
    (
        SdkMeterProvider::builder().with_reader(reader).build(),
        exporter,
    )
}

fn points<T: Copy>(data: &MetricData<T>, conv: fn(T) -> f64) -> (Kind, Vec<Point>) {
    let attrs = |it: &mut dyn Iterator<Item = &opentelemetry::KeyValue>| {
        it.map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    match data {
        MetricData::Gauge(g) => (
            Kind::Gauge,
            g.data_points()
                .map(|p| Point {
                    attributes: attrs(&mut p.attributes()),
                    value: conv(p.value()),
                })
                .collect(),
        ),
        MetricData::Sum(s) => {
            assert_eq!(s.temporality(), Temporality::Cumulative);
            (
                if s.is_monotonic() {
                    Kind::Counter
                } else {
                    Kind::UpDownCounter
                },
                s.data_points()
                    .map(|p| Point {
                        attributes: attrs(&mut p.attributes()),
                        value: conv(p.value()),
                    })
                    .collect(),
            )
        }
        _ => panic!("unexpected aggregation (histogram)"),
    }
}

/// Flushes the provider and returns what the exporter received, flattened.
pub fn collect(provider: &SdkMeterProvider, exporter: &InMemoryMetricExporter) -> Vec<Exported> {
    exporter.reset();
    provider.force_flush().expect("force_flush");
    let exported: Vec<ResourceMetrics> = exporter.get_finished_metrics().expect("metrics");
    let mut out = Vec::new();
    for metric in exported
        .iter()
        .flat_map(|rm| rm.scope_metrics())
        .flat_map(|sm| sm.metrics())
    {
        let (kind, points) = match metric.data() {
            AggregatedMetrics::F64(d) => points(d, |v| v),
            AggregatedMetrics::U64(d) => points(d, |v| v as f64),
            AggregatedMetrics::I64(d) => points(d, |v| v as f64),
        };
        out.push(Exported {
            name: metric.name().to_owned(),
            unit: metric.unit().to_owned(),
            kind,
            points,
        });
    }
    out
}

/// Polls `check` every 20 ms until it returns `Some`, at most `limit` ([`test_support::eventually`]).
pub fn eventually<T>(limit: Duration, check: impl FnMut() -> Option<T>) -> Option<T> {
    test_support::eventually(limit, Duration::from_millis(20), check)
}

/// Collects until `name` has data points (the first values need a priming sample), at most 10 s; then
/// what the last collection gave.
pub fn collect_until(
    provider: &SdkMeterProvider,
    exporter: &InMemoryMetricExporter,
    name: &str,
) -> Vec<Exported> {
    let ready = |metrics: &[Exported]| {
        metrics
            .iter()
            .any(|m| m.name == name && !m.points.is_empty())
    };
    eventually(Duration::from_secs(10), || {
        Some(collect(provider, exporter)).filter(|m| ready(m))
    })
    .unwrap_or_else(|| collect(provider, exporter))
}

pub fn find<'a>(metrics: &'a [Exported], name: &str) -> Option<&'a Exported> {
    metrics.iter().find(|m| m.name == name)
}
