//! Configuration: code sets defaults, the standard `OTEL_*` variables and our `TELEMETRY_*` variables
//! override them. Every invalid value is an error that names the variable and the value.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::TelemetryError;

mod values;
pub(crate) use values::{Values, parse_key_values};
use values::{parse_bool, parse_bytes, parse_endpoint, parse_positive, parse_positive_millis};

type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Where configuration values come from: the process environment, or a lookup given by the caller
/// (tests, or a service that keeps its settings elsewhere).
#[derive(Clone)]
pub(crate) struct EnvSource(Arc<Lookup>);

impl EnvSource {
    pub(crate) fn process() -> Self {
        EnvSource(Arc::new(|k| std::env::var(k).ok()))
    }

    pub(crate) fn from_fn(f: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        EnvSource(Arc::new(f))
    }

    /// The value of `key`, with surrounding white space removed; empty counts as unset.
    pub(crate) fn get(&self, key: &str) -> Option<String> {
        (self.0)(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }
}

impl fmt::Debug for EnvSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnvSource")
    }
}

fn invalid(var: &str, value: &str, reason: impl Into<String>) -> TelemetryError {
    TelemetryError::InvalidConfig {
        var: var.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

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

fn parse_limits(env: &EnvSource) -> Result<Limits, TelemetryError> {
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

/// How log lines are shown on the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleFormat {
    /// One JSON object a line, the same schema as the files.
    Json,
    /// Human-readable lines, for development.
    Pretty,
    /// Nothing on the console.
    Off,
}

/// The settings a builder starts from; environment variables override them.
#[derive(Debug, Clone)]
pub(crate) struct Defaults {
    pub service_name: String,
    pub service_version: Option<String>,
    pub environment: Option<String>,
    pub filter: String,
    pub log_dir: Option<PathBuf>,
    pub log_max_bytes: u64,
    pub log_max_files: usize,
    pub error_log_max_bytes: u64,
    pub error_log_max_files: usize,
    pub log_file_lossy: bool,
    pub console: Option<ConsoleFormat>,
    pub admin_addr: Option<SocketAddr>,
    pub admin_token: Option<String>,
    pub admin_unauthenticated: bool,
    pub shutdown_timeout: Duration,
    pub cardinality_limit: usize,
    pub protocol: OtlpProtocol,
    pub endpoint: Option<String>,
    pub sampler: SamplerConfig,
    pub metric_export_interval: Duration,
    pub extra_resource: Vec<(String, String)>,
}

impl Defaults {
    pub(crate) fn new(service_name: &str) -> Self {
        Defaults {
            service_name: service_name.to_owned(),
            service_version: None,
            environment: None,
            filter: "info".to_owned(),
            log_dir: Some(PathBuf::from("logs")),
            log_max_bytes: 50 * 1024 * 1024,
            log_max_files: 10,
            error_log_max_bytes: 10 * 1024 * 1024,
            error_log_max_files: 5,
            log_file_lossy: false,
            console: None,
            admin_addr: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            admin_token: None,
            admin_unauthenticated: false,
            shutdown_timeout: Duration::from_secs(5),
            cardinality_limit: 2000,
            protocol: OtlpProtocol::HttpProtobuf,
            endpoint: None,
            sampler: SamplerConfig::ParentBasedAlwaysOn,
            // One export per typical scrape interval: with the SDK's 60 s, Grafana's
            // `$__rate_interval` windows see zero or one new sample and the graphs saw-tooth.
            metric_export_interval: Duration::from_secs(15),
            extra_resource: Vec::new(),
        }
    }
}

/// Everything `init` needs, after defaults and environment are merged and validated.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub sdk_disabled: bool,
    pub service_name: String,
    pub service_version: Option<String>,
    pub environment: Option<String>,
    pub resource_attributes: Vec<(String, String)>,
    pub filter: String,
    pub console: ConsoleFormat,
    pub log_dir: Option<PathBuf>,
    pub log_max_bytes: u64,
    pub log_max_files: usize,
    pub error_log_max_bytes: u64,
    pub error_log_max_files: usize,
    pub log_file_lossy: bool,
    pub admin_addr: Option<SocketAddr>,
    pub admin_token: Option<String>,
    /// `TELEMETRY_ADMIN_ALLOW_UNAUTHENTICATED`: a non-loopback listener without a token is allowed.
    pub admin_unauthenticated: bool,
    pub shutdown_timeout: Duration,
    pub cardinality_limit: usize,
    pub traces: OtlpSettings,
    pub metrics: OtlpSettings,
    pub logs: OtlpSettings,
    pub sampler: SamplerConfig,
    pub bsp: BatchSettings,
    pub blrp: BatchSettings,
    pub metric_export_interval: Duration,
    pub propagators: Vec<PropagatorKind>,
    pub limits: Limits,
}

fn parse_sampler(env: &EnvSource, default: SamplerConfig) -> Result<SamplerConfig, TelemetryError> {
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

fn parse_batch(env: &EnvSource, prefix: &str) -> Result<BatchSettings, TelemetryError> {
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

fn parse_exporter_kind(env: &EnvSource, signal: Signal) -> Result<bool, TelemetryError> {
    let var = format!("OTEL_{}_EXPORTER", signal.upper());
    match env.get(&var).as_deref() {
        None | Some("otlp") => Ok(true),
        Some("none") => Ok(false),
        Some(v) => Err(invalid(&var, v, "expected otlp or none")),
    }
}

fn parse_otlp(
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

fn parse_propagators(env: &EnvSource) -> Result<Vec<PropagatorKind>, TelemetryError> {
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

impl Settings {
    /// Merges `defaults` with the environment and validates every value.
    pub(crate) fn resolve(
        defaults: &Defaults,
        env: &EnvSource,
    ) -> Result<Settings, TelemetryError> {
        let sdk_disabled = match env.get("OTEL_SDK_DISABLED") {
            Some(v) => parse_bool("OTEL_SDK_DISABLED", &v)?,
            None => false,
        };

        let mut resource_attributes = defaults.extra_resource.clone();
        let mut service_name = defaults.service_name.clone();
        if let Some(v) = env.get("OTEL_RESOURCE_ATTRIBUTES") {
            for (k, val) in parse_key_values("OTEL_RESOURCE_ATTRIBUTES", &v, Values::Shown)? {
                if k == "service.name" {
                    service_name = val;
                } else {
                    resource_attributes.push((k, val));
                }
            }
        }
        // OTEL_SERVICE_NAME wins over service.name in OTEL_RESOURCE_ATTRIBUTES (spec).
        if let Some(v) = env.get("OTEL_SERVICE_NAME") {
            service_name = v;
        }
        if service_name.trim().is_empty() {
            return Err(invalid(
                "OTEL_SERVICE_NAME",
                &service_name,
                "must not be empty",
            ));
        }

        let environment = env
            .get("ENVIRONMENT")
            .or_else(|| defaults.environment.clone());

        let filter = match env.get("RUST_LOG") {
            Some(v) => {
                tracing_subscriber::EnvFilter::builder()
                    .parse(&v)
                    .map_err(|e| invalid("RUST_LOG", &v, e.to_string()))?;
                v
            }
            None => defaults.filter.clone(),
        };

        let console = match env.get("TELEMETRY_CONSOLE") {
            Some(v) => match v.as_str() {
                "json" => ConsoleFormat::Json,
                "pretty" | "text" => ConsoleFormat::Pretty,
                "off" | "none" => ConsoleFormat::Off,
                _ => {
                    return Err(invalid(
                        "TELEMETRY_CONSOLE",
                        &v,
                        "expected json, pretty or off",
                    ));
                }
            },
            None => defaults
                .console
                .unwrap_or(if environment.as_deref() == Some("development") {
                    ConsoleFormat::Pretty
                } else {
                    ConsoleFormat::Json
                }),
        };

        let log_dir = match env.get("TELEMETRY_LOG_DIR") {
            Some(v) if v == "off" || v == "none" => None,
            Some(v) => Some(PathBuf::from(v)),
            None => defaults.log_dir.clone(),
        };
        let get_bytes = |var: &str, d: u64| -> Result<u64, TelemetryError> {
            env.get(var).map_or(Ok(d), |v| parse_bytes(var, &v))
        };
        let get_count = |var: &str, d: usize| -> Result<usize, TelemetryError> {
            env.get(var).map_or(Ok(d), |v| parse_positive(var, &v))
        };
        let log_max_bytes = get_bytes("TELEMETRY_LOG_MAX_BYTES", defaults.log_max_bytes)?;
        let log_max_files = get_count("TELEMETRY_LOG_MAX_FILES", defaults.log_max_files)?;
        let error_log_max_bytes = get_bytes(
            "TELEMETRY_ERROR_LOG_MAX_BYTES",
            defaults.error_log_max_bytes,
        )?;
        let error_log_max_files = get_count(
            "TELEMETRY_ERROR_LOG_MAX_FILES",
            defaults.error_log_max_files,
        )?;
        let log_file_lossy = match env.get("TELEMETRY_LOG_FILE_LOSSY") {
            Some(v) => parse_bool("TELEMETRY_LOG_FILE_LOSSY", &v)?,
            None => defaults.log_file_lossy,
        };

        let admin_addr = match env.get("TELEMETRY_ADMIN_ADDR") {
            Some(v) if v == "off" || v == "none" => None,
            Some(v) => Some(v.parse::<SocketAddr>().map_err(|_| {
                invalid(
                    "TELEMETRY_ADMIN_ADDR",
                    &v,
                    "expected ip:port (e.g. 127.0.0.1:9464) or off",
                )
            })?),
            None => defaults.admin_addr,
        };
        let admin_token = env
            .get("TELEMETRY_ADMIN_TOKEN")
            .or_else(|| defaults.admin_token.clone());
        let admin_unauthenticated = match env.get("TELEMETRY_ADMIN_ALLOW_UNAUTHENTICATED") {
            Some(v) => parse_bool("TELEMETRY_ADMIN_ALLOW_UNAUTHENTICATED", &v)?,
            None => defaults.admin_unauthenticated,
        };
        // Loopback is the machine's own business; anything wider serves the service's metrics
        // (routes, users' counts, host facts) to whoever can connect, so it needs a token or an
        // explicit yes.
        if let Some(addr) = admin_addr
            && !addr.ip().is_loopback()
            && admin_token.is_none()
            && !admin_unauthenticated
            && !sdk_disabled
        {
            return Err(invalid(
                "TELEMETRY_ADMIN_ADDR",
                &addr.to_string(),
                "a non-loopback admin listener needs TELEMETRY_ADMIN_TOKEN (or \
                 TELEMETRY_ADMIN_ALLOW_UNAUTHENTICATED=true to serve /metrics to anyone who can \
                 connect)",
            ));
        }

        let shutdown_timeout = match env.get("TELEMETRY_SHUTDOWN_TIMEOUT") {
            Some(v) => parse_positive_millis("TELEMETRY_SHUTDOWN_TIMEOUT", &v)?,
            None => defaults.shutdown_timeout,
        };
        let cardinality_limit = get_count(
            "TELEMETRY_METRICS_CARDINALITY_LIMIT",
            defaults.cardinality_limit,
        )?;

        let metric_export_interval = match env.get("OTEL_METRIC_EXPORT_INTERVAL") {
            Some(v) => parse_positive_millis("OTEL_METRIC_EXPORT_INTERVAL", &v)?,
            None => defaults.metric_export_interval,
        };
        let mut metrics = parse_otlp(env, Signal::Metrics, defaults)?;
        if let Some(v) = env.get("OTEL_METRIC_EXPORT_TIMEOUT") {
            metrics.timeout = parse_positive_millis("OTEL_METRIC_EXPORT_TIMEOUT", &v)?;
        }

        // The SDK's thread-based batch processors have no export timeout of their own (the setting
        // exists only for their async-runtime variants): an export is bounded by the exporter's
        // timeout, so `OTEL_BSP_EXPORT_TIMEOUT`/`OTEL_BLRP_EXPORT_TIMEOUT` cap that.
        let bsp = parse_batch(env, "OTEL_BSP")?;
        let blrp = parse_batch(env, "OTEL_BLRP")?;
        let mut traces = parse_otlp(env, Signal::Traces, defaults)?;
        let mut logs = parse_otlp(env, Signal::Logs, defaults)?;
        if env.get("OTEL_BSP_EXPORT_TIMEOUT").is_some() {
            traces.timeout = traces.timeout.min(bsp.export_timeout);
        }
        if env.get("OTEL_BLRP_EXPORT_TIMEOUT").is_some() {
            logs.timeout = logs.timeout.min(blrp.export_timeout);
        }
        Ok(Settings {
            sdk_disabled,
            service_name,
            service_version: defaults.service_version.clone(),
            environment,
            resource_attributes,
            filter,
            console,
            log_dir,
            log_max_bytes,
            log_max_files,
            error_log_max_bytes,
            error_log_max_files,
            log_file_lossy,
            admin_addr,
            admin_token,
            admin_unauthenticated,
            shutdown_timeout,
            cardinality_limit,
            traces,
            metrics,
            logs,
            sampler: parse_sampler(env, defaults.sampler)?,
            bsp,
            blrp,
            metric_export_interval,
            propagators: parse_propagators(env)?,
            limits: parse_limits(env)?,
        })
    }
}

#[cfg(test)]
mod tests;
