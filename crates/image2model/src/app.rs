//! The app: storage, queue, workers, provider client (and the in-process simulator) and the router.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use opentelemetry::metrics::Meter;
use tokio::sync::{mpsc, watch};

use crate::config::ServeConfig;
use crate::files::{DataDir, DataDirLock};
use crate::limits::ClientLimiter;
use crate::metrics::Metrics;
use crate::provider::{ProviderClient, ProviderConfig};
use crate::sim::SimHandle;
use crate::store::Store;
use crate::worker::StopReport;

/// Why the app cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Another instance uses the data directory.
    #[error(transparent)]
    Locked(#[from] crate::files::LockError),
    /// The data directory.
    #[error(transparent)]
    Files(#[from] crate::files::FileError),
    /// The database.
    #[error("cannot open the database: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The provider client.
    #[error(transparent)]
    Provider(#[from] crate::provider::ProviderError),
    /// Settings that contradict each other.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The in-process simulator cannot listen.
    #[error("cannot start the provider simulator on {addr}: {source}")]
    Simulator {
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Where the app's telemetry goes: the globals (default) or a given meter and tracer provider
/// (tests).
#[derive(Debug, Clone, Default)]
pub struct AppOptions {
    /// Meter of the app's, the server layer's and the client middleware's instruments.
    pub meter: Option<Meter>,
    /// Tracer provider of the server layer's spans (spans of `tracing` go where the subscriber
    /// sends them).
    pub tracer_provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

/// State shared by handlers and workers.
pub struct Shared {
    pub(crate) cfg: ServeConfig,
    pub(crate) store: Store,
    pub(crate) data: DataDir,
    pub(crate) metrics: Metrics,
    pub(crate) provider: ProviderClient,
    /// API requests per client.
    pub(crate) limiter: ClientLimiter,
    /// Jobs created per client.
    pub(crate) job_limiter: ClientLimiter,
    queue: mpsc::UnboundedSender<String>,
    /// Jobs in the queue plus room reserved by requests about to enqueue.
    queue_len: AtomicU64,
    pub(crate) workers_alive: AtomicBool,
    pub(crate) accepting: AtomicBool,
    pub(crate) inflight: Mutex<HashSet<String>>,
    pub(crate) completed: Mutex<Vec<String>>,
}

impl Shared {
    /// Puts job ids in the queue, whatever its bound (jobs recovered at start).
    pub(crate) fn enqueue(&self, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            if self.queue.send(id).is_ok() {
                self.queue_len.fetch_add(1, Ordering::SeqCst);
            }
        }
        self.metrics
            .queue_length(self.queue_len.load(Ordering::SeqCst));
    }

    /// Reserves room for `n` jobs in the bounded queue; false when it is full.
    pub(crate) fn reserve_queue(&self, n: u64) -> bool {
        let max = u64::from(self.cfg.limits.max_queued_jobs);
        self.queue_len
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |cur| {
                (cur.saturating_add(n) <= max).then_some(cur + n)
            })
            .is_ok()
    }

    /// Gives back room reserved by [`Shared::reserve_queue`] and not used.
    pub(crate) fn release_queue(&self, n: u64) {
        let _ = self
            .queue_len
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |cur| {
                Some(cur.saturating_sub(n))
            });
    }

    /// Puts job ids in the queue, in room reserved by [`Shared::reserve_queue`].
    pub(crate) fn enqueue_reserved(&self, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            if self.queue.send(id).is_err() {
                self.release_queue(1);
            }
        }
        self.metrics
            .queue_length(self.queue_len.load(Ordering::SeqCst));
    }

    pub(crate) fn dequeued(&self) {
        let n = self
            .queue_len
            .fetch_sub(1, Ordering::SeqCst)
            .saturating_sub(1);
        self.metrics.queue_length(n);
    }
}

/// A running app.
pub struct App {
    shared: Arc<Shared>,
    options: AppOptions,
    stop: watch::Sender<bool>,
    grace: watch::Sender<Duration>,
    dispatcher: tokio::task::JoinHandle<StopReport>,
    sweeper: tokio::task::JoinHandle<()>,
    sim: Option<SimHandle>,
    /// Held until the app is stopped (or dropped): one instance per data directory.
    _lock: DataDirLock,
}

impl App {
    /// Locks the data directory (one instance per directory: a second one fails here, naming
    /// it), opens it and the database, requeues jobs left queued or running by a previous
    /// run, starts the simulator (when no provider URL is set) and the workers.
    pub async fn start(cfg: ServeConfig, options: AppOptions) -> Result<App, StartError> {
        let l = &cfg.limits;
        if l.job_rate_limit > 0 && l.job_burst < cfg.max_batch_size {
            return Err(StartError::Config(format!(
                "IMAGE2MODEL_JOB_BURST ({}) is below IMAGE2MODEL_MAX_BATCH_SIZE ({}): a full batch \
                 could never be created",
                l.job_burst, cfg.max_batch_size
            )));
        }
        let lock = DataDirLock::acquire(&cfg.data_dir)?;
        let data = DataDir::open(&cfg.data_dir)?;
        let store = Store::open(&data.database())?;
        let metrics = options
            .meter
            .as_ref()
            .map(Metrics::new)
            .unwrap_or_else(Metrics::global);
        let (sim, base_url) = match &cfg.provider_url {
            Some(url) => (None, url.clone()),
            None => {
                let addr = cfg
                    .sim
                    .listen
                    .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Simulator { addr, source })?;
                let h = crate::sim::spawn(cfg.sim.clone(), listener, None)
                    .map_err(|source| StartError::Simulator { addr, source })?;
                tracing::info!(addr = %h.addr, "provider simulator started in-process");
                let url = h.url();
                (Some(h), url)
            }
        };
        let middleware = match &options.meter {
            Some(m) => otelbricks_http::HttpClientMiddleware::with_meter(m),
            None => otelbricks_http::HttpClientMiddleware::new(),
        };
        let provider = ProviderClient::new(
            ProviderConfig {
                base_url,
                model: cfg.provider_model.clone(),
                api_key: cfg.provider_key.clone(),
                poll_interval: cfg.poll_interval,
                request_timeout: cfg.provider_timeout,
                max_retries: cfg.provider_max_retries,
                backoff_base: cfg.retry_base,
                backoff_max: cfg.retry_max,
                ca_file: cfg.provider_ca_file.clone(),
                download_hosts: cfg.limits.download_hosts.clone(),
                download_allow_private: cfg.limits.download_allow_private,
                max_model_bytes: cfg.limits.max_model_bytes,
            },
            middleware,
            metrics.clone(),
        )?;
        let recovered = store.recover().await?;
        let limits = &cfg.limits;
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            cfg: cfg.clone(),
            store,
            data,
            metrics,
            provider,
            limiter: ClientLimiter::new(limits.rate_limit, limits.rate_burst),
            job_limiter: ClientLimiter::new(limits.job_rate_limit, limits.job_burst),
            queue: tx,
            queue_len: AtomicU64::new(0),
            workers_alive: AtomicBool::new(false),
            accepting: AtomicBool::new(true),
            inflight: Mutex::new(HashSet::new()),
            completed: Mutex::new(Vec::new()),
        });
        if !recovered.is_empty() {
            tracing::info!(jobs = recovered.len(), "requeued jobs from a previous run");
        }
        shared.enqueue(recovered);
        let (stop, stop_rx) = watch::channel(false);
        let (grace, grace_rx) = watch::channel(cfg.shutdown_grace);
        let sweeper = tokio::spawn(crate::retention::sweeper(shared.clone(), stop_rx.clone()));
        let dispatcher = tokio::spawn(crate::worker::dispatcher(
            shared.clone(),
            rx,
            stop_rx,
            grace_rx,
        ));
        Ok(App {
            shared,
            options,
            stop,
            grace,
            dispatcher,
            sweeper,
            sim,
            _lock: lock,
        })
    }

    /// The API router, instrumented with `otelbricks_http::HttpServerLayer`. Outside that
    /// layer: the whole-body deadline and the URI bound (an over-long URI is answered 414
    /// before any telemetry sees it); inside: the request id in error bodies.
    pub fn router(&self) -> Router {
        let mut layer = match &self.options.meter {
            Some(m) => otelbricks_http::HttpServerLayer::with_meter(m),
            None => otelbricks_http::HttpServerLayer::new(),
        };
        if let Some(provider) = &self.options.tracer_provider {
            layer = layer.tracer(opentelemetry::trace::TracerProvider::tracer(
                provider,
                "otelbricks-http",
            ));
        }
        layer = layer.exclude_paths(["/metrics", "/health", "/ready"]);
        if let Some(k) = &self.shared.cfg.user_id_key {
            layer = layer.user_id_key(k.as_bytes().to_vec());
        }
        crate::api::router(self.shared.clone())
            .layer(axum::middleware::from_fn_with_state(
                self.shared.metrics.clone(),
                crate::error::finish_errors,
            ))
            .layer(layer)
            .layer(tower_http::timeout::RequestBodyDeadlineLayer::new(
                self.shared.cfg.limits.body_timeout,
            ))
            .layer(axum::middleware::from_fn_with_state(
                self.shared.clone(),
                crate::server::bound_uri,
            ))
    }

    /// Serves [`App::router`] on `listener` with the configured timeouts and connection limit
    /// (see [`crate::server`]) until `shutdown` completes, then waits for open connections.
    /// The future owns what it needs: spawn it, or await it while the app lives.
    pub fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> impl std::future::Future<Output = std::io::Result<()>> + Send + 'static {
        let opts = crate::server::ServerOptions::from_limits(&self.shared.cfg.limits);
        crate::server::serve(
            listener,
            self.router(),
            opts,
            self.shared.metrics.clone(),
            shutdown,
        )
    }

    /// The address of the in-process simulator, if it runs.
    pub fn simulator_addr(&self) -> Option<SocketAddr> {
        self.sim.as_ref().map(|s| s.addr)
    }

    /// Ids of the jobs this instance finished (succeeded or failed), in order.
    pub fn completed_jobs(&self) -> Vec<String> {
        self.shared
            .completed
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    /// Stops taking jobs; gives running jobs `grace` to finish, requeues the rest; stops the
    /// simulator. Queued jobs stay queued in the database for the next start.
    pub async fn shutdown_with_grace(self, grace: Duration) -> StopReport {
        self.shared.accepting.store(false, Ordering::SeqCst);
        let _ = self.grace.send(grace);
        let _ = self.stop.send(true);
        self.sweeper.abort();
        let report = match self.dispatcher.await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "worker dispatcher failed");
                StopReport::default()
            }
        };
        if let Some(sim) = self.sim {
            sim.stop().await;
        }
        report
    }

    /// [`App::shutdown_with_grace`] with the configured grace period.
    pub async fn shutdown(self) -> StopReport {
        let grace = self.shared.cfg.shutdown_grace;
        self.shutdown_with_grace(grace).await
    }
}
