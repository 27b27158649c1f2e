//! Settings of `image2model serve`; every option also from an `IMAGE2MODEL_*` variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::limits::LimitsConfig;
use crate::sim::SimConfig;

/// `image2model serve` settings.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeConfig {
    /// Address of the API.
    #[arg(long, env = "IMAGE2MODEL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Data directory: SQLite database, uploads, results.
    #[arg(long, env = "IMAGE2MODEL_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Jobs run at the same time.
    #[arg(long, env = "IMAGE2MODEL_WORKERS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub workers: u32,
    /// Largest upload in bytes.
    #[arg(long, env = "IMAGE2MODEL_MAX_UPLOAD_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_upload_bytes: usize,
    /// Most files in one batch.
    #[arg(long, env = "IMAGE2MODEL_MAX_BATCH_SIZE", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_batch_size: u32,
    /// Longest a job may run (per attempt) before it fails.
    #[arg(long, env = "IMAGE2MODEL_JOB_DEADLINE", default_value = "10m", value_parser = humantime::parse_duration)]
    pub job_deadline: Duration,
    /// Time in-flight jobs get to finish on shutdown before they are requeued.
    #[arg(long, env = "IMAGE2MODEL_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// Provider base URL, http:// or https:// (e.g. `https://queue.fal.run`); unset: the built-in simulator, in-process.
    #[arg(long, env = "IMAGE2MODEL_PROVIDER_URL")]
    pub provider_url: Option<String>,
    /// PEM file of extra CA certificates trusted for an https provider (on top of the system's).
    #[arg(long, env = "IMAGE2MODEL_PROVIDER_CA_FILE")]
    pub provider_ca_file: Option<PathBuf>,
    /// Provider API key, sent as `Authorization: Key ...`, never logged.
    #[arg(long, env = "IMAGE2MODEL_PROVIDER_KEY", hide_env_values = true)]
    pub provider_key: Option<String>,
    /// Provider model path.
    #[arg(
        long,
        env = "IMAGE2MODEL_PROVIDER_MODEL",
        default_value = "fal-ai/trellis"
    )]
    pub provider_model: String,
    /// Time between status polls.
    #[arg(long, env = "IMAGE2MODEL_POLL_INTERVAL", default_value = "500ms", value_parser = humantime::parse_duration)]
    pub poll_interval: Duration,
    /// Timeout of one provider HTTP call.
    #[arg(long, env = "IMAGE2MODEL_PROVIDER_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub provider_timeout: Duration,
    /// Retries of one provider call (429, 5xx, transport errors).
    #[arg(long, env = "IMAGE2MODEL_PROVIDER_MAX_RETRIES", default_value_t = 5)]
    pub provider_max_retries: u32,
    /// First retry delay (doubles per retry, with jitter).
    #[arg(long, env = "IMAGE2MODEL_RETRY_BASE", default_value = "200ms", value_parser = humantime::parse_duration)]
    pub retry_base: Duration,
    /// Longest retry delay (also caps Retry-After).
    #[arg(long, env = "IMAGE2MODEL_RETRY_MAX", default_value = "10s", value_parser = humantime::parse_duration)]
    pub retry_max: Duration,
    /// Key of the HMAC that turns bearer tokens into `user_id`s in logs.
    #[arg(long, env = "IMAGE2MODEL_USER_ID_KEY", hide_env_values = true)]
    pub user_id_key: Option<String>,
    /// Rate limits, quotas, input sizes, timeouts, retention, download policy.
    #[command(flatten)]
    pub limits: LimitsConfig,
    /// The in-process simulator (used when no provider URL is set).
    #[command(flatten)]
    pub sim: SimConfig,
}

impl ServeConfig {
    /// Settings for tests: data in `dir`, fast polling and retries, short deadline, the given
    /// simulator.
    pub fn for_tests(dir: impl Into<PathBuf>, sim: SimConfig) -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.into(),
            workers: 2,
            max_upload_bytes: 64 * 1024,
            max_batch_size: 10,
            job_deadline: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(2),
            provider_url: None,
            provider_key: None,
            provider_ca_file: None,
            provider_model: "fal-ai/trellis".into(),
            poll_interval: Duration::from_millis(20),
            provider_timeout: Duration::from_secs(2),
            provider_max_retries: 3,
            retry_base: Duration::from_millis(10),
            retry_max: Duration::from_millis(200),
            user_id_key: None,
            limits: LimitsConfig::default(),
            sim,
        }
    }
}
