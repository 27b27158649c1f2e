//! Configuration: code sets defaults, the standard `OTEL_*` variables and our `TELEMETRY_*` variables
//! override them. Every invalid value is an error that names the variable and the value.

//!
//! The OTLP exporter settings of each signal are resolved in `otlp`, the SDK's own (sampler, batch
//! processors, attribute limits, propagators) in `sdk`, the value syntaxes in `values`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::TelemetryError;

mod otlp;
mod sdk;
mod values;
use otlp::parse_otlp;
pub(crate) use otlp::{Compression, OtlpSettings};
pub use otlp::{OtlpProtocol, Signal};
pub(crate) use sdk::{BatchSettings, DEFAULT_VALUE_LENGTH_LIMIT, Limits};
pub use sdk::{PropagatorKind, SamplerConfig};
use sdk::{parse_batch, parse_limits, parse_propagators, parse_sampler};
pub(crate) use values::{Values, parse_bool, parse_key_values};
use values::{parse_bytes, parse_positive, parse_positive_millis};

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

/// The error for `value` of `var`, and why it is invalid.
pub(crate) fn invalid(var: &str, value: &str, reason: impl Into<String>) -> TelemetryError {
    TelemetryError::InvalidConfig {
        var: var.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
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
