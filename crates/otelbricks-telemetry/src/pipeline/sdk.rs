//! The SDK pieces built from settings: the resource, the sampler, the propagator and the metric
//! views.

use std::sync::Arc;

use opentelemetry::KeyValue;
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{Aggregation, Instrument, InstrumentKind, Stream};
use opentelemetry_sdk::propagation::BaggagePropagator;
use opentelemetry_sdk::trace::Sampler;

use crate::config::{PropagatorKind, SamplerConfig, Settings};

/// Bucket boundaries, in seconds, for HTTP request durations: the OTel semantic-convention advice,
/// which is also the Python design's bucket list.
pub const HTTP_DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

pub(crate) fn resource(s: &Settings) -> Resource {
    let os_type = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let mut attrs = vec![
        KeyValue::new("service.instance.id", uuid::Uuid::new_v4().to_string()),
        KeyValue::new("os.type", os_type),
        KeyValue::new("process.pid", i64::from(std::process::id())),
    ];
    if let Some(v) = &s.service_version {
        attrs.push(KeyValue::new("service.version", v.clone()));
    }
    if let Some(env) = &s.environment {
        attrs.push(KeyValue::new("deployment.environment.name", env.clone()));
    }
    if let Ok(host) = hostname::get() {
        attrs.push(KeyValue::new(
            "host.name",
            host.to_string_lossy().into_owned(),
        ));
    }
    attrs.extend(
        s.resource_attributes
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
    );
    Resource::builder_empty()
        .with_detector(Box::new(
            opentelemetry_sdk::resource::TelemetryResourceDetector,
        ))
        .with_service_name(s.service_name.clone())
        .with_attributes(attrs)
        .build()
}

pub(super) fn sampler(s: SamplerConfig) -> Sampler {
    match s {
        SamplerConfig::AlwaysOn => Sampler::AlwaysOn,
        SamplerConfig::AlwaysOff => Sampler::AlwaysOff,
        SamplerConfig::TraceIdRatio(r) => Sampler::TraceIdRatioBased(r),
        SamplerConfig::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        SamplerConfig::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        SamplerConfig::ParentBasedTraceIdRatio(r) => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r)))
        }
    }
}

/// The configured propagators as one composite. `tracecontext` is our W3C Level 1+2 conformant
/// propagator (crate `trace-context`), not the SDK's.
pub(crate) fn propagator(kinds: &[PropagatorKind]) -> TextMapCompositePropagator {
    let list: Vec<Box<dyn TextMapPropagator + Send + Sync>> = kinds
        .iter()
        .map(|k| -> Box<dyn TextMapPropagator + Send + Sync> {
            match k {
                PropagatorKind::TraceContext => {
                    Box::new(otelbricks_trace_context::W3CTraceContextPropagator::new())
                }
                PropagatorKind::Baggage => Box::new(BaggagePropagator::new()),
            }
        })
        .collect();
    TextMapCompositePropagator::new(list)
}

/// Views: a cardinality limit on every instrument, and explicit boundaries for the duration
/// histograms that would otherwise get the SDK's millisecond defaults.
pub(crate) fn with_views(
    mut builder: opentelemetry_sdk::metrics::MeterProviderBuilder,
    cardinality_limit: usize,
    buckets: &[(String, Vec<f64>)],
) -> opentelemetry_sdk::metrics::MeterProviderBuilder {
    let mut table: Vec<(String, Vec<f64>)> = vec![
        (
            "http.server.request.duration".into(),
            HTTP_DURATION_BUCKETS.to_vec(),
        ),
        (
            "http.client.request.duration".into(),
            HTTP_DURATION_BUCKETS.to_vec(),
        ),
    ];
    table.extend(buckets.iter().cloned());
    let table = Arc::new(table);
    builder = builder.with_view(move |inst: &Instrument| {
        let mut stream = Stream::builder().with_cardinality_limit(cardinality_limit);
        let bounds = table.iter().rev().find(|(n, _)| n == inst.name());
        if let (InstrumentKind::Histogram, Some((_, bounds))) = (inst.kind(), bounds) {
            stream = stream.with_aggregation(Aggregation::ExplicitBucketHistogram {
                boundaries: bounds.clone(),
                record_min_max: true,
            });
        }
        stream.build().ok()
    });
    builder
}
