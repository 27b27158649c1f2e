//! The OTLP exporter of each signal: `OTEL_EXPORTER_OTLP_*` and their per-signal forms, and
//! `OTEL_<SIGNAL>_EXPORTER`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::values::{Values, parse_endpoint, parse_key_values, parse_positive_millis};
use super::{Defaults, EnvSource, invalid};
use crate::TelemetryError;

/// OTLP wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP over gRPC (default port 4317).
    Grpc,
    /// OTLP over HTTP with binary protobuf bodies (default port 4318). The OTel default.
    HttpProtobuf,
}

impl OtlpProtocol {
    fn parse(var: &str, v: &str) -> Result<Self, TelemetryError> {
        match v {
            "grpc" => Ok(OtlpProtocol::Grpc),
            "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
            "http/json" => Err(invalid(
                var,
                v,
                "http/json is not supported; use grpc or http/protobuf",
            )),
            _ => Err(invalid(var, v, "expected grpc or http/protobuf")),
        }
    }

    fn default_endpoint(self) -> &'static str {
        match self {
            OtlpProtocol::Grpc => "http://localhost:4317",
            OtlpProtocol::HttpProtobuf => "http://localhost:4318",
        }
    }
}

/// One of the three OTel signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// Spans.
    Traces,
    /// Metric data points.
    Metrics,
    /// Log records.
    Logs,
}

impl Signal {
    /// `traces`, `metrics` or `logs`.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }

    fn upper(self) -> &'static str {
        match self {
            Signal::Traces => "TRACES",
            Signal::Metrics => "METRICS",
            Signal::Logs => "LOGS",
        }
    }
}

/// Resolved OTLP settings of one signal.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OtlpSettings {
    pub enabled: bool,
    pub protocol: OtlpProtocol,
    /// Full URL: for HTTP it includes the `/v1/<signal>` path.
    pub endpoint: String,
    pub headers: BTreeMap<String, String>,
    pub timeout: Duration,
    /// `OTEL_EXPORTER_OTLP_COMPRESSION`: `None` (the default) or gzip.
    pub compression: Option<Compression>,
}

/// Compression of OTLP requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    Gzip,
}

fn parse_compression(var: &str, v: &str) -> Result<Option<Compression>, TelemetryError> {
    match v {
        "gzip" => Ok(Some(Compression::Gzip)),
        "none" => Ok(None),
        _ => Err(invalid(var, v, "expected gzip or none")),
    }
}

fn parse_exporter_kind(env: &EnvSource, signal: Signal) -> Result<bool, TelemetryError> {
    let var = format!("OTEL_{}_EXPORTER", signal.upper());
    match env.get(&var).as_deref() {
        None | Some("otlp") => Ok(true),
        Some("none") => Ok(false),
        Some(v) => Err(invalid(&var, v, "expected otlp or none")),
    }
}

pub(super) fn parse_otlp(
    env: &EnvSource,
    signal: Signal,
    defaults: &Defaults,
) -> Result<OtlpSettings, TelemetryError> {
    let up = signal.upper();
    let per = |name: &str| format!("OTEL_EXPORTER_OTLP_{up}_{name}");

    let protocol = match env.get(&per("PROTOCOL")) {
        Some(v) => OtlpProtocol::parse(&per("PROTOCOL"), &v)?,
        None => match env.get("OTEL_EXPORTER_OTLP_PROTOCOL") {
            Some(v) => OtlpProtocol::parse("OTEL_EXPORTER_OTLP_PROTOCOL", &v)?,
            None => defaults.protocol,
        },
    };

    // Per-signal endpoints are used as given; the base endpoint gets `/v1/<signal>` over HTTP.
    let endpoint = if let Some(v) = env.get(&per("ENDPOINT")) {
        parse_endpoint(&per("ENDPOINT"), &v)?
    } else {
        let base = match env.get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            Some(v) => parse_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", &v)?,
            None => match &defaults.endpoint {
                Some(e) => parse_endpoint("endpoint (builder)", e)?,
                None => protocol.default_endpoint().to_owned(),
            },
        };
        match protocol {
            OtlpProtocol::Grpc => base,
            OtlpProtocol::HttpProtobuf => {
                format!("{}/v1/{}", base.trim_end_matches('/'), signal.as_str())
            }
        }
    };

    let mut headers = BTreeMap::new();
    if let Some(v) = env.get("OTEL_EXPORTER_OTLP_HEADERS") {
        headers.extend(parse_key_values(
            "OTEL_EXPORTER_OTLP_HEADERS",
            &v,
            Values::Secret,
        )?);
    }
    if let Some(v) = env.get(&per("HEADERS")) {
        headers.extend(parse_key_values(&per("HEADERS"), &v, Values::Secret)?);
    }

    let timeout = match env.get(&per("TIMEOUT")) {
        Some(v) => parse_positive_millis(&per("TIMEOUT"), &v)?,
        None => match env.get("OTEL_EXPORTER_OTLP_TIMEOUT") {
            Some(v) => parse_positive_millis("OTEL_EXPORTER_OTLP_TIMEOUT", &v)?,
            None => Duration::from_secs(10),
        },
    };

    let compression = match env.get(&per("COMPRESSION")) {
        Some(v) => parse_compression(&per("COMPRESSION"), &v)?,
        None => match env.get("OTEL_EXPORTER_OTLP_COMPRESSION") {
            Some(v) => parse_compression("OTEL_EXPORTER_OTLP_COMPRESSION", &v)?,
            None => None,
        },
    };

    Ok(OtlpSettings {
        compression,
        enabled: parse_exporter_kind(env, signal)?,
        protocol,
        endpoint,
        headers,
        timeout,
    })
}
