//! The SDK's own settings: the sampler, the batch processors (`OTEL_BSP_*`, `OTEL_BLRP_*`), the
//! attribute limits and the propagators.

use std::time::Duration;

use super::values::{parse_positive, parse_positive_millis};
use super::{EnvSource, invalid};
use crate::TelemetryError;

/// Sampler choice, as `OTEL_TRACES_SAMPLER` names them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplerConfig {
    /// Record every trace.
    AlwaysOn,
    /// Record none.
    AlwaysOff,
    /// Record this fraction of traces, by trace id.
    TraceIdRatio(f64),
    /// Follow the parent's decision; root spans recorded.
    ParentBasedAlwaysOn,
    /// Follow the parent's decision; root spans dropped.
    ParentBasedAlwaysOff,
    /// Follow the parent's decision; root spans sampled by ratio.
    ParentBasedTraceIdRatio(f64),
}

/// Batch processor settings (`OTEL_BSP_*` for spans, `OTEL_BLRP_*` for logs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BatchSettings {
    pub schedule_delay: Duration,
    pub export_timeout: Duration,
    pub max_queue_size: usize,
    pub max_export_batch_size: usize,
}

/// Attribute limits (`OTEL_*_ATTRIBUTE_*_LIMIT`), so that no client can make one record, or one
/// export, arbitrarily large.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Longest span attribute value, bytes (strings cut on a character boundary).
    pub span_value_len: usize,
    /// Most attributes per span.
    pub span_count: u32,
    /// Longest log-record attribute value or body, bytes; also bounds each value of a JSON line.
    pub log_value_len: usize,
    /// Most attributes per log record.
    pub log_count: usize,
}

/// Default value-length limit of span and log-record attributes and JSON line values. The OTel
/// default is "no limit"; 4 KiB keeps a batch of 512 records far below a collector's 4 MiB gRPC
/// message limit while keeping stack traces and SQL statements readable.
pub(crate) const DEFAULT_VALUE_LENGTH_LIMIT: usize = 4096;

/// Default attribute-count limit (the OTel specification's).
pub(crate) const DEFAULT_COUNT_LIMIT: usize = 128;

pub(super) fn parse_limits(env: &EnvSource) -> Result<Limits, TelemetryError> {
    let get = |var: &str, default: usize| -> Result<usize, TelemetryError> {
        env.get(var)
            .map_or(Ok(default), |v| parse_positive(var, &v))
    };
    let value_len = get(
        "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
        DEFAULT_VALUE_LENGTH_LIMIT,
    )?;
    let count = get("OTEL_ATTRIBUTE_COUNT_LIMIT", DEFAULT_COUNT_LIMIT)?;
    let span_count = get("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", count)?;
    Ok(Limits {
        span_value_len: get("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", value_len)?,
        span_count: u32::try_from(span_count).unwrap_or(u32::MAX),
        log_value_len: get("OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT", value_len)?,
        log_count: get("OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT", count)?,
    })
}

/// Context propagators, as `OTEL_PROPAGATORS` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropagatorKind {
    /// W3C `traceparent`/`tracestate`.
    TraceContext,
    /// W3C `baggage`.
    Baggage,
}
pub(super) fn parse_sampler(
    env: &EnvSource,
    default: SamplerConfig,
) -> Result<SamplerConfig, TelemetryError> {
    const VAR: &str = "OTEL_TRACES_SAMPLER";
    const ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
    let ratio = || -> Result<f64, TelemetryError> {
        match env.get(ARG) {
            None => Ok(1.0),
            Some(a) => match a.parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                _ => Err(invalid(ARG, &a, "expected a probability between 0 and 1")),
            },
        }
    };
    let Some(v) = env.get(VAR) else {
        return Ok(default);
    };
    Ok(match v.as_str() {
        "always_on" => SamplerConfig::AlwaysOn,
        "always_off" => SamplerConfig::AlwaysOff,
        "traceidratio" => SamplerConfig::TraceIdRatio(ratio()?),
        "parentbased_always_on" => SamplerConfig::ParentBasedAlwaysOn,
        "parentbased_always_off" => SamplerConfig::ParentBasedAlwaysOff,
        "parentbased_traceidratio" => SamplerConfig::ParentBasedTraceIdRatio(ratio()?),
        "jaeger_remote" | "parentbased_jaeger_remote" | "xray" => {
            return Err(invalid(VAR, &v, "this sampler is not supported"));
        }
        _ => {
            return Err(invalid(
                VAR,
                &v,
                "expected one of always_on, always_off, traceidratio, parentbased_always_on, \
                 parentbased_always_off, parentbased_traceidratio",
            ));
        }
    })
}

pub(super) fn parse_batch(env: &EnvSource, prefix: &str) -> Result<BatchSettings, TelemetryError> {
    let var = |name: &str| format!("{prefix}_{name}");
    let mut b = BatchSettings {
        schedule_delay: Duration::from_millis(if prefix == "OTEL_BSP" { 5000 } else { 1000 }),
        export_timeout: Duration::from_millis(30000),
        max_queue_size: 2048,
        max_export_batch_size: 512,
    };
    if let Some(v) = env.get(&var("SCHEDULE_DELAY")) {
        b.schedule_delay = parse_positive_millis(&var("SCHEDULE_DELAY"), &v)?;
    }
    if let Some(v) = env.get(&var("EXPORT_TIMEOUT")) {
        b.export_timeout = parse_positive_millis(&var("EXPORT_TIMEOUT"), &v)?;
    }
    if let Some(v) = env.get(&var("MAX_QUEUE_SIZE")) {
        b.max_queue_size = parse_positive(&var("MAX_QUEUE_SIZE"), &v)?;
    }
    if let Some(v) = env.get(&var("MAX_EXPORT_BATCH_SIZE")) {
        b.max_export_batch_size = parse_positive(&var("MAX_EXPORT_BATCH_SIZE"), &v)?;
    }
    // The spec: the batch size must not exceed the queue size.
    b.max_export_batch_size = b.max_export_batch_size.min(b.max_queue_size);
    Ok(b)
}

pub(super) fn parse_propagators(env: &EnvSource) -> Result<Vec<PropagatorKind>, TelemetryError> {
    const VAR: &str = "OTEL_PROPAGATORS";
    let Some(v) = env.get(VAR) else {
        return Ok(vec![PropagatorKind::TraceContext, PropagatorKind::Baggage]);
    };
    let mut out = Vec::new();
    for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let kind = match name {
            "tracecontext" => PropagatorKind::TraceContext,
            "baggage" => PropagatorKind::Baggage,
            "none" => continue,
            "b3" | "b3multi" | "jaeger" | "xray" | "ottrace" => {
                return Err(invalid(
                    VAR,
                    &v,
                    format!(
                        "propagator {name:?} is not supported; use tracecontext, baggage or none"
                    ),
                ));
            }
            _ => {
                return Err(invalid(
                    VAR,
                    &v,
                    format!("unknown propagator {name:?}; expected tracecontext, baggage or none"),
                ));
            }
        };
        if !out.contains(&kind) {
            out.push(kind);
        }
    }
    Ok(out)
}
