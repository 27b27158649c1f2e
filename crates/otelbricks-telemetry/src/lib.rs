//! One call in `main` gives a Rust service OpenTelemetry traces, metrics and logs.
//!
//! ```no_run
//! fn main() -> Result<(), otelbricks_telemetry::TelemetryError> {
//!     let _telemetry = otelbricks_telemetry::builder("checkout")
//!         .service_version(env!("CARGO_PKG_VERSION"))
//!         .install()?;
//!     tracing::info!(order_id = 42, "service started");
//!     Ok(())
//! } // the guard flushes and shuts everything down, bounded in time
//! ```
//!
//! A service that owns its `tracing` subscriber takes the same pipeline as one layer,
//! [`TelemetryLayer`], from [`TelemetryBuilder::build`], and composes it with its own layers:
//!
//! ```no_run
//! use tracing_subscriber::prelude::*;
//!
//! let (telemetry, _guard) = otelbricks_telemetry::builder("checkout").build()?;
//! tracing_subscriber::registry()
//!     .with(telemetry)
//!     .with(tracing_subscriber::fmt::layer().with_filter(tracing::level_filters::LevelFilter::WARN))
//!     .init();
//! # Ok::<(), otelbricks_telemetry::TelemetryError>(())
//! ```
//!
//! Which globals each way sets:
//!
//! | | `tracing` subscriber | OTel tracer provider, meter provider, propagator |
//! |---|---|---|
//! | [`TelemetryBuilder::install`] | set | set |
//! | [`TelemetryBuilder::build`] | **not set** (yours to set) | set |
//! | either, with [`TelemetryBuilder::without_otel_globals`] | as above | not set |
//!
//! What the pipeline holds:
//! - a tracer provider exporting OTLP (gRPC or HTTP/protobuf) with a parent-based sampler, the W3C
//!   trace-context and baggage propagators, and the `tracing-opentelemetry` layer, so `tracing` spans
//!   become OTel spans;
//! - a meter provider with a periodic OTLP reader (every 15 s) and a Prometheus pull reader served on
//!   an admin listener (default `127.0.0.1:9464/metrics`; beyond loopback only with a token or an
//!   explicit opt-in), explicit second-based buckets for HTTP durations and a cardinality limit per
//!   instrument;
//! - a logger provider exporting `tracing` events as OTLP log records with trace and span ids;
//! - JSON log lines ([`json`]) on the console (readable text, control characters escaped, when
//!   `ENVIRONMENT=development`) and in `<log dir>/<service>.json` and `<service>_errors.json`,
//!   rotated by size with gzip;
//! - limits: attribute values, log bodies and JSON line values cut at 4 KiB, 128 attributes per
//!   span or log record (the `OTEL_*_ATTRIBUTE_*_LIMIT` variables change them);
//! - self-metrics: spans and log records dropped by full queues, export outcomes, log lines dropped
//!   by the file writer; and at shutdown a [`ShutdownReport`] of what never reached the collector.
//!
//! Configuration: builder methods set defaults; the standard `OTEL_*` variables and our
//! `TELEMETRY_*` variables override them (the table is in the repository's
//! `docs/configuration.md`). An invalid value is an error naming the variable and the value
//! (header values excepted: they are secrets).

#![warn(missing_docs)]

mod admin;
#[cfg(feature = "log-archival")]
mod archival;
mod config;
mod console;
mod export;
mod files;
mod guard;
pub mod json;
mod layer;
mod pipeline;
mod processors;
mod report;
#[cfg(feature = "testing")]
pub mod testing;
pub mod writer;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[cfg(feature = "log-archival")]
pub use archival::LogArchival;
pub use config::{ConsoleFormat, OtlpProtocol, PropagatorKind, SamplerConfig, Signal};
pub use files::log_file_path;
pub use guard::TelemetryGuard;
pub use layer::TelemetryLayer;
pub use pipeline::{HTTP_DURATION_BUCKETS, no_feedback_target};
pub use report::ShutdownReport;

use config::{Defaults, EnvSource, Settings};

/// Errors from [`TelemetryBuilder::install`] and [`TelemetryGuard::shutdown`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// A configuration value is invalid.
    #[error("invalid {var}={value:?}: {reason}")]
    InvalidConfig {
        /// The environment variable (or builder setting) at fault.
        var: String,
        /// The value it had.
        value: String,
        /// What was expected.
        reason: String,
    },
    /// The log directory cannot be created or written.
    #[error("log directory {path} is not writable (TELEMETRY_LOG_DIR)")]
    LogDir {
        /// The directory or file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The admin listener cannot listen on its address.
    #[error("admin listener cannot listen on {addr} (TELEMETRY_ADMIN_ADDR)")]
    AdminListener {
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An OTLP exporter cannot be built.
    #[error("cannot build the OTLP {signal} exporter: {reason}")]
    Exporter {
        /// `traces`, `metrics` or `logs`.
        signal: &'static str,
        /// Why.
        reason: String,
    },
    /// The Prometheus reader cannot be built.
    #[error("cannot build the Prometheus reader: {0}")]
    Prometheus(String),
    /// The telemetry background thread cannot be started.
    #[error("cannot start the telemetry runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// Another global `tracing` subscriber is already installed.
    #[error("a global tracing subscriber is already installed: {0}")]
    SubscriberAlreadySet(String),
    /// Shutdown finished, or stopped at its time bound, without delivering everything: the
    /// report counts what was dropped and says where it should have gone.
    #[error("{0}")]
    Undelivered(Box<ShutdownReport>),
    /// Shutdown finished, but a provider reported an error (e.g. the last export failed).
    #[error("telemetry shutdown: {0}")]
    Shutdown(String),
}

/// Starts a [`TelemetryBuilder`] for the service `service_name` (overridable by `OTEL_SERVICE_NAME`).
pub fn builder(service_name: &str) -> TelemetryBuilder {
    TelemetryBuilder {
        defaults: Defaults::new(service_name),
        env: EnvSource::process(),
        histogram_buckets: Vec::new(),
        host_metrics: None,
        extra_layers: Vec::new(),
        otel_globals: true,
        #[cfg(feature = "log-archival")]
        archival: None,
    }
}

/// Installs telemetry with every default: `builder(service_name).install()`.
pub fn init(service_name: &str) -> Result<TelemetryGuard, TelemetryError> {
    builder(service_name).install()
}

/// Configures and installs the telemetry pipeline. Every setting has a default; the environment
/// overrides what code sets.
#[must_use = "call install() to set telemetry up"]
pub struct TelemetryBuilder {
    defaults: Defaults,
    env: EnvSource,
    histogram_buckets: Vec<(String, Vec<f64>)>,
    host_metrics: Option<pipeline::HostStart>,
    extra_layers: Vec<layer::ExtraLayer>,
    otel_globals: bool,
    #[cfg(feature = "log-archival")]
    archival: Option<LogArchival>,
}

impl std::fmt::Debug for TelemetryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the defaults: they may hold the admin token and an endpoint with credentials.
        f.debug_struct("TelemetryBuilder")
            .field("service_name", &self.defaults.service_name)
            .finish_non_exhaustive()
    }
}

impl TelemetryBuilder {
    /// `service.version` of the resource.
    pub fn service_version(mut self, version: impl Into<String>) -> Self {
        self.defaults.service_version = Some(version.into());
        self
    }

    /// `deployment.environment.name` (overridden by `ENVIRONMENT`). `development` selects the
    /// readable console format.
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.defaults.environment = Some(environment.into());
        self
    }

    /// Default level filter directives, `RUST_LOG` syntax (overridden by `RUST_LOG`).
    pub fn filter(mut self, directives: impl Into<String>) -> Self {
        self.defaults.filter = directives.into();
        self
    }

    /// Directory of the log files (default `logs`; `TELEMETRY_LOG_DIR`).
    pub fn log_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.defaults.log_dir = Some(dir.into());
        self
    }

    /// No log files, console only (`TELEMETRY_LOG_DIR=off`).
    pub fn without_log_files(mut self) -> Self {
        self.defaults.log_dir = None;
        self
    }

    /// Size at which `<service>.json` rotates and how many rotated files are kept
    /// (default 50 MiB and 10; `TELEMETRY_LOG_MAX_BYTES`, `TELEMETRY_LOG_MAX_FILES`).
    pub fn log_rotation(mut self, max_bytes: u64, max_files: usize) -> Self {
        self.defaults.log_max_bytes = max_bytes.max(1);
        self.defaults.log_max_files = max_files.max(1);
        self
    }

    /// The same for `<service>_errors.json` (default 10 MiB and 5;
    /// `TELEMETRY_ERROR_LOG_MAX_BYTES`, `TELEMETRY_ERROR_LOG_MAX_FILES`).
    pub fn error_log_rotation(mut self, max_bytes: u64, max_files: usize) -> Self {
        self.defaults.error_log_max_bytes = max_bytes.max(1);
        self.defaults.error_log_max_files = max_files.max(1);
        self
    }

    /// Drop log-file lines (counted) instead of waiting when the file writer falls 128k lines
    /// behind (default false: lossless; `TELEMETRY_LOG_FILE_LOSSY`).
    pub fn log_file_lossy(mut self, lossy: bool) -> Self {
        self.defaults.log_file_lossy = lossy;
        self
    }

    /// Console format (default: JSON, or readable text when the environment is `development`;
    /// `TELEMETRY_CONSOLE=json|pretty|off`).
    pub fn console(mut self, format: ConsoleFormat) -> Self {
        self.defaults.console = Some(format);
        self
    }

    /// Address of the admin `/metrics` listener (default `127.0.0.1:9464`; port 0 picks a free one;
    /// `TELEMETRY_ADMIN_ADDR`).
    pub fn admin_addr(mut self, addr: SocketAddr) -> Self {
        self.defaults.admin_addr = Some(addr);
        self
    }

    /// No admin listener (`TELEMETRY_ADMIN_ADDR=off`).
    pub fn without_admin(mut self) -> Self {
        self.defaults.admin_addr = None;
        self
    }

    /// Bearer token the admin listener requires (`TELEMETRY_ADMIN_TOKEN`).
    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
        self.defaults.admin_token = Some(token.into());
        self
    }

    /// Serves `/metrics` on a non-loopback [`admin_addr`](Self::admin_addr) without a token
    /// (`TELEMETRY_ADMIN_ALLOW_UNAUTHENTICATED`). Without a token or this, such an address makes
    /// `install`/`build` fail; with it, a warning says so once. For networks only trusted peers
    /// reach, such as a container network whose port is not published.
    pub fn admin_allow_unauthenticated(mut self, allow: bool) -> Self {
        self.defaults.admin_unauthenticated = allow;
        self
    }

    /// Upper bound of [`TelemetryGuard::shutdown`] (default 5 s; `TELEMETRY_SHUTDOWN_TIMEOUT` in ms).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.defaults.shutdown_timeout = timeout;
        self
    }

    /// Most attribute sets kept per instrument; later ones fold into one overflow series
    /// (default 2000; `TELEMETRY_METRICS_CARDINALITY_LIMIT`).
    pub fn cardinality_limit(mut self, limit: usize) -> Self {
        self.defaults.cardinality_limit = limit.max(1);
        self
    }

    /// OTLP endpoint of all signals (overridden by `OTEL_EXPORTER_OTLP_ENDPOINT` and the per-signal
    /// variables). Default `http://localhost:4318` (HTTP) or `http://localhost:4317` (gRPC).
    pub fn otlp_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.defaults.endpoint = Some(endpoint.into());
        self
    }

    /// OTLP protocol (default HTTP/protobuf; `OTEL_EXPORTER_OTLP_PROTOCOL`).
    pub fn otlp_protocol(mut self, protocol: OtlpProtocol) -> Self {
        self.defaults.protocol = protocol;
        self
    }

    /// Sampler (default parent-based always-on; `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`).
    pub fn sampler(mut self, sampler: SamplerConfig) -> Self {
        self.defaults.sampler = sampler;
        self
    }

    /// Interval of the periodic OTLP metric export (default 15 s, one export per typical Prometheus
    /// scrape interval, so `rate(...[$__rate_interval])` graphs are smooth; the SDK's 60 s makes
    /// them saw-tooth; `OTEL_METRIC_EXPORT_INTERVAL`).
    pub fn metric_export_interval(mut self, interval: Duration) -> Self {
        self.defaults.metric_export_interval = interval;
        self
    }

    /// An extra resource attribute (`OTEL_RESOURCE_ATTRIBUTES` adds more).
    pub fn resource_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.defaults
            .extra_resource
            .push((key.into(), value.into()));
        self
    }

    /// Explicit bucket boundaries for the histogram named `instrument`, for instruments created
    /// without boundaries of their own. `http.server.request.duration` and
    /// `http.client.request.duration` get [`HTTP_DURATION_BUCKETS`] without asking.
    pub fn histogram_buckets(mut self, instrument: impl Into<String>, bounds: &[f64]) -> Self {
        self.histogram_buckets
            .push((instrument.into(), bounds.to_vec()));
        self
    }

    /// Also reports host and process metrics (`system.*`, `process.*`, see the `host-metrics`
    /// crate) on the telemetry meter provider, sampled on their own thread, and adds the host's
    /// `os.*`/`host.arch` attributes to the resource.
    ///
    /// ```no_run
    /// let _telemetry = otelbricks_telemetry::builder("checkout")
    ///     .with_host_metrics(otelbricks_host_metrics::HostMetrics::builder())
    ///     .install()?;
    /// # Ok::<(), otelbricks_telemetry::TelemetryError>(())
    /// ```
    #[cfg(feature = "host-metrics")]
    pub fn with_host_metrics(mut self, host: otelbricks_host_metrics::HostMetricsBuilder) -> Self {
        for kv in otelbricks_host_metrics::resource_attributes() {
            let key = kv.key.as_str().to_owned();
            if !self.defaults.extra_resource.iter().any(|(k, _)| *k == key) {
                self.defaults
                    .extra_resource
                    .push((key, kv.value.as_str().into_owned()));
            }
        }
        self.host_metrics = Some(Box::new(move |meter: &opentelemetry::metrics::Meter| {
            host.build()
                .start(meter)
                .map(|h| Box::new(h) as Box<dyn std::any::Any + Send>)
                .map_err(|e| e.to_string())
        }));
        self
    }

    /// Reads configuration from `lookup` instead of the process environment (for tests, or a
    /// service that keeps its settings elsewhere).
    pub fn env_lookup(
        mut self,
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.env = EnvSource::from_fn(lookup);
        self
    }

    /// Archives compressed log rotations and deletes old archives on a timer (feature
    /// `log-archival`, done by `otelbricks-logfiles`); see [`LogArchival`]. Also switched on by
    /// `TELEMETRY_LOG_ARCHIVE=true`. Needs log files (a log directory).
    #[cfg(feature = "log-archival")]
    pub fn log_archival(mut self, policy: LogArchival) -> Self {
        self.archival = Some(policy);
        self
    }

    /// Validates the configuration without installing anything.
    pub fn validate(&self) -> Result<(), TelemetryError> {
        Settings::resolve(&self.defaults, &self.env)?;
        #[cfg(feature = "log-archival")]
        LogArchival::resolve(self.archival.clone(), &self.env)?;
        #[cfg(not(feature = "log-archival"))]
        refuse_archival_without_feature(&self.env)?;
        Ok(())
    }

    /// Adds a layer of the application's own to the subscriber [`install`](Self::install) sets (an
    /// error reporter, `tokio-console`, another formatter with its own filter). Our level filter
    /// does not apply to it. With [`build`](Self::build) the application composes its subscriber
    /// itself and this is not needed.
    pub fn with_layer(
        mut self,
        layer: impl tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
    ) -> Self {
        self.extra_layers.push(Box::new(layer));
        self
    }

    /// Leaves the OpenTelemetry globals alone: neither [`install`](Self::install) nor
    /// [`build`](Self::build) then sets the global tracer provider, meter provider or text-map
    /// propagator. The providers are on the guard ([`TelemetryGuard::tracer_provider`],
    /// [`TelemetryGuard::meter_provider`]); `opentelemetry::global::meter(...)` and the
    /// HTTP layers' global propagator are then the application's to set, and the HTTP server
    /// layer's spans need its tracer (`HttpServerLayer::tracer(guard.tracer_provider()…)`), since
    /// it starts them with the OpenTelemetry API, not through `tracing`. The SDK's own queue
    /// metrics (`otel_sdk_processor_*`, spans and log records dropped by a full queue) register on
    /// the global meter provider, so they are not reported unless the application sets it to
    /// [`TelemetryGuard::meter_provider`] before calling `build`.
    pub fn without_otel_globals(mut self) -> Self {
        self.otel_globals = false;
        self
    }

    /// Builds every provider, the admin listener, the log files and the console writer, and
    /// returns the `tracing` side as one [`TelemetryLayer`] for the application's own subscriber,
    /// with the guard that flushes and stops it all.
    ///
    /// ```no_run
    /// use tracing_subscriber::prelude::*;
    ///
    /// let (telemetry, guard) = otelbricks_telemetry::builder("checkout").build()?;
    /// tracing_subscriber::registry()
    ///     .with(telemetry)
    ///     .with(tracing_subscriber::fmt::layer().with_filter(tracing::level_filters::LevelFilter::WARN))
    ///     .init();
    /// # drop(guard);
    /// # Ok::<(), otelbricks_telemetry::TelemetryError>(())
    /// ```
    ///
    /// Globals: it sets the OpenTelemetry global tracer provider, meter provider and text-map
    /// propagator (unless [`without_otel_globals`](Self::without_otel_globals)); it does **not**
    /// set the global `tracing` subscriber, which is the application's to set. Nothing is
    /// recorded until the layer is part of a subscriber. Warnings found while building (host
    /// metrics that cannot start, an admin listener without a token) go to stderr, since no
    /// subscriber exists yet.
    pub fn build<S>(self) -> Result<(TelemetryLayer<S>, TelemetryGuard), TelemetryError>
    where
        S: tracing::Subscriber
            + for<'a> tracing_subscriber::registry::LookupSpan<'a>
            + Send
            + Sync
            + 'static,
    {
        let (layers, guard, warnings) = self.build_parts()?;
        for w in warnings {
            eprintln!("telemetry: warning: {w}");
        }
        Ok((layers.into_layer(), guard))
    }

    fn build_parts(
        mut self,
    ) -> Result<(layer::Layers, TelemetryGuard, Vec<String>), TelemetryError> {
        let settings = Settings::resolve(&self.defaults, &self.env)?;
        #[cfg(feature = "log-archival")]
        let archival = LogArchival::resolve(self.archival.clone(), &self.env)?;
        #[cfg(not(feature = "log-archival"))]
        refuse_archival_without_feature(&self.env)?;
        #[allow(unused_mut)]
        let (layers, mut guard, warnings) = pipeline::build(
            &settings,
            &self.histogram_buckets,
            self.host_metrics.take(),
            self.otel_globals,
        )?;
        #[cfg(feature = "log-archival")]
        if let (Some(policy), Some(dir)) = (archival, settings.log_dir.clone()) {
            guard.archiver = Some(archival::Archiver::start(dir, policy)?);
        }
        Ok((layers, guard, warnings))
    }

    /// Builds everything as [`build`](Self::build) does and sets the global `tracing` subscriber:
    /// a registry with the [`TelemetryLayer`] and the layers given to
    /// [`with_layer`](Self::with_layer). Also sets the OpenTelemetry globals (tracer and meter
    /// providers, propagator) unless [`without_otel_globals`](Self::without_otel_globals).
    pub fn install(mut self) -> Result<TelemetryGuard, TelemetryError> {
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        // Checked first: a second install must not replace the globals of the first.
        if tracing::dispatcher::has_been_set() {
            return Err(TelemetryError::SubscriberAlreadySet(
                "install() was already called, or another subscriber was set".into(),
            ));
        }
        let extra = std::mem::take(&mut self.extra_layers);
        let (layers, guard, warnings) = self.build_parts()?;
        // Chained, not a `Vec` of layers: a `Vec` does not pass the dispatcher on to its layers,
        // and the JSON layer needs it to find the span ids.
        let mut all: layer::ExtraLayer = Box::new(layers.into_layer());
        for e in extra {
            all = Box::new(tracing_subscriber::Layer::and_then(all, e));
        }
        tracing_subscriber::registry()
            .with(all)
            .try_init()
            .map_err(|e| TelemetryError::SubscriberAlreadySet(e.to_string()))?;
        for w in warnings {
            tracing::warn!(target: "otelbricks_telemetry", "{w}");
        }
        Ok(guard)
    }
}

/// `TELEMETRY_LOG_ARCHIVE` asks for something this build cannot do: say so instead of ignoring it.
#[cfg(not(feature = "log-archival"))]
fn refuse_archival_without_feature(env: &EnvSource) -> Result<(), TelemetryError> {
    match env.get("TELEMETRY_LOG_ARCHIVE") {
        Some(v) if !matches!(v.to_ascii_lowercase().as_str(), "false" | "0" | "no" | "off") => {
            Err(TelemetryError::InvalidConfig {
                var: "TELEMETRY_LOG_ARCHIVE".into(),
                value: v,
                reason: "this build of telemetry has no log archival (enable its `log-archival` feature)".into(),
            })
        }
        _ => Ok(()),
    }
}
