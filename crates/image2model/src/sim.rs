//! A FAL.AI-style provider simulator: the queue API (`POST /{owner}/{model}` -> `request_id`,
//! `GET .../requests/{id}/status`, `GET .../requests/{id}` -> result with a model URL,
//! `GET /files/{id}.glb`), with configurable latency, processing time, failure and error rates, a
//! rate limit (429 with `Retry-After`) and faults (garbage answers, hangs, 500 forever).
//!
//! Memory is bounded: a finished request is forgotten `request_ttl` after it finished, and at
//! most `max_requests` are remembered (the oldest finished ones make room first).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;

use crate::rng::Rng;

/// What the simulator does wrong on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Fault {
    /// Behave (within the failure, error and rate limits).
    #[default]
    None,
    /// Answer 200 with a body that is not the expected JSON.
    Garbage,
    /// Never answer submits (the client's timeouts and the job deadline must act).
    Hang,
    /// Answer 500 to everything.
    #[value(name = "always-500")]
    Always500,
}

/// Simulator settings.
#[derive(Debug, Clone, clap::Args)]
pub struct SimConfig {
    /// Address of the simulator (provider-sim: default 127.0.0.1:8090; in-process: a free loopback port).
    #[arg(id = "sim_listen", long = "sim-listen", env = "IMAGE2MODEL_SIM_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Shortest simulated generation time.
    #[arg(long = "sim-processing-min", env = "IMAGE2MODEL_SIM_PROCESSING_MIN", default_value = "1s", value_parser = humantime::parse_duration)]
    pub processing_min: Duration,
    /// Longest simulated generation time (uniform between min and max, with a 5% tail up to 3x max).
    #[arg(long = "sim-processing-max", env = "IMAGE2MODEL_SIM_PROCESSING_MAX", default_value = "5s", value_parser = humantime::parse_duration)]
    pub processing_max: Duration,
    /// Shortest per-response latency.
    #[arg(long = "sim-latency-min", env = "IMAGE2MODEL_SIM_LATENCY_MIN", default_value = "5ms", value_parser = humantime::parse_duration)]
    pub latency_min: Duration,
    /// Longest per-response latency.
    #[arg(long = "sim-latency-max", env = "IMAGE2MODEL_SIM_LATENCY_MAX", default_value = "50ms", value_parser = humantime::parse_duration)]
    pub latency_max: Duration,
    /// Fraction of generations that fail (terminal; the job fails).
    #[arg(long = "sim-failure-rate", env = "IMAGE2MODEL_SIM_FAILURE_RATE", default_value_t = 0.05, value_parser = parse_rate)]
    pub failure_rate: f64,
    /// Fraction of calls answered with a transient 500 (the client retries).
    #[arg(long = "sim-error-rate", env = "IMAGE2MODEL_SIM_ERROR_RATE", default_value_t = 0.02, value_parser = parse_rate)]
    pub error_rate: f64,
    /// Calls per second before 429 with `Retry-After` (0: no limit).
    #[arg(
        long = "sim-rate-limit",
        env = "IMAGE2MODEL_SIM_RATE_LIMIT",
        default_value_t = 20.0
    )]
    pub rate_limit: f64,
    /// Deliberate misbehaviour.
    #[arg(long = "sim-fault", env = "IMAGE2MODEL_SIM_FAULT", value_enum, default_value_t = Fault::None)]
    pub fault: Fault,
    /// Key the simulator requires as `Authorization: Key ...` (none: any).
    #[arg(
        long = "sim-api-key",
        env = "IMAGE2MODEL_SIM_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// How long a finished request stays queryable (status, result, file) before it is forgotten.
    #[arg(long = "sim-request-ttl", env = "IMAGE2MODEL_SIM_REQUEST_TTL", default_value = "10m", value_parser = humantime::parse_duration)]
    pub request_ttl: Duration,
    /// Most requests remembered; when full, the oldest finished ones are forgotten first, and a
    /// submit with only unfinished ones left gets 429.
    #[arg(long = "sim-max-requests", env = "IMAGE2MODEL_SIM_MAX_REQUESTS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_requests: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: None,
            processing_min: Duration::from_secs(1),
            processing_max: Duration::from_secs(5),
            latency_min: Duration::from_millis(5),
            latency_max: Duration::from_millis(50),
            failure_rate: 0.05,
            error_rate: 0.02,
            rate_limit: 20.0,
            fault: Fault::None,
            api_key: None,
            request_ttl: Duration::from_secs(600),
            max_requests: 10_000,
        }
    }
}

impl SimConfig {
    /// A fast, well-behaved simulator for tests: processing `ms` milliseconds, no errors, no limit.
    pub fn fast(ms: u64) -> Self {
        SimConfig {
            processing_min: Duration::from_millis(ms),
            processing_max: Duration::from_millis(ms),
            latency_min: Duration::ZERO,
            latency_max: Duration::from_millis(2),
            failure_rate: 0.0,
            error_rate: 0.0,
            rate_limit: 0.0,
            ..SimConfig::default()
        }
    }
}

/// Parses a fraction in `[0, 1]`.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not between 0 and 1"))
    }
}

struct Request {
    submitted: Instant,
    processing: Duration,
    fails: bool,
}

impl Request {
    fn done_at(&self) -> Instant {
        self.submitted + self.processing
    }
}

/// The requests the simulator remembers, bounded in age (TTL after they finish) and count.
struct Table {
    map: HashMap<String, Request>,
    last_sweep: Instant,
}

impl Table {
    fn expired(r: &Request, now: Instant, ttl: Duration) -> bool {
        r.done_at().checked_add(ttl).is_some_and(|t| now >= t)
    }

    /// Makes room for one more request: drops expired ones (at most every `min(ttl, 1 s)`, or
    /// when full), then, if still full, the oldest finished ones. False: full of unfinished ones.
    fn make_room(&mut self, now: Instant, ttl: Duration, max: usize) -> bool {
        let full = self.map.len() >= max;
        if full || now.saturating_duration_since(self.last_sweep) >= ttl.min(Duration::from_secs(1))
        {
            self.map.retain(|_, r| !Self::expired(r, now, ttl));
            self.last_sweep = now;
        }
        if self.map.len() < max {
            return true;
        }
        let mut finished: Vec<(Instant, String)> = self
            .map
            .iter()
            .filter(|(_, r)| r.done_at() <= now)
            .map(|(id, r)| (r.done_at(), id.clone()))
            .collect();
        finished.sort_unstable();
        let excess = self.map.len() + 1 - max;
        for (_, id) in finished.into_iter().take(excess) {
            self.map.remove(&id);
        }
        self.map.len() < max
    }
}

struct SimState {
    cfg: SimConfig,
    rng: Rng,
    requests: Mutex<Table>,
    bucket: Mutex<(f64, Instant)>,
    calls: std::sync::atomic::AtomicU64,
}

/// Counters a test can read.
#[derive(Clone)]
pub struct SimStats(Arc<SimState>);

impl SimStats {
    /// Calls received so far.
    pub fn calls(&self) -> u64 {
        self.0.calls.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Requests the simulator remembers now (bounded by the TTL and `max_requests`).
    pub fn remembered(&self) -> usize {
        self.0.requests.lock().map(|t| t.map.len()).unwrap_or(0)
    }
}

/// A running simulator.
pub struct SimHandle {
    /// Its address.
    pub addr: SocketAddr,
    /// Its counters.
    pub stats: SimStats,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl SimHandle {
    /// Base URL (`http://addr`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits for it (bounded).
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.task).await;
        self.task.abort();
    }
}

/// The simulator's router (no instrumentation; `provider-sim` adds the HTTP layer).
pub fn router(cfg: SimConfig) -> (Router, SimStats) {
    let state = Arc::new(SimState {
        rng: Rng::from_entropy(),
        requests: Mutex::new(Table {
            map: HashMap::new(),
            last_sweep: Instant::now(),
        }),
        bucket: Mutex::new((cfg.rate_limit.max(1.0), Instant::now())),
        calls: Default::default(),
        cfg,
    });
    let r = Router::new()
        .route("/{owner}/{model}", post(submit))
        .route("/{owner}/{model}/requests/{id}/status", get(status))
        .route("/{owner}/{model}/requests/{id}", get(result))
        .route("/files/{file}", get(file))
        .with_state(state.clone());
    (r, SimStats(state))
}

/// Serves the simulator on `listener` until stopped.
pub fn spawn(
    cfg: SimConfig,
    listener: TcpListener,
    router_layer: Option<otelbricks_http::HttpServerLayer>,
) -> std::io::Result<SimHandle> {
    let addr = listener.local_addr()?;
    let (mut r, stats) = router(cfg);
    if let Some(l) = router_layer {
        r = r.layer(l);
    }
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, r)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Ok(SimHandle {
        addr,
        stats,
        stop: Some(tx),
        task,
    })
}

fn err(status: StatusCode, msg: &str) -> Response {
    (status, Json(serde_json::json!({"detail": msg}))).into_response()
}

impl SimState {
    /// Common gate of every call: counts it, waits the latency, checks key, limit and faults.
    async fn gate(&self, headers: &HeaderMap) -> Result<(), Response> {
        self.calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (lo, hi) = (
            self.cfg.latency_min,
            self.cfg.latency_max.max(self.cfg.latency_min),
        );
        let lat = lo + (hi - lo).mul_f64(self.rng.unit());
        if !lat.is_zero() {
            tokio::time::sleep(lat).await;
        }
        if let Some(key) = &self.cfg.api_key {
            let ok = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.strip_prefix("Key ") == Some(key.as_str()));
            if !ok {
                return Err(err(StatusCode::UNAUTHORIZED, "invalid or missing key"));
            }
        }
        if self.cfg.rate_limit > 0.0 {
            let limited = {
                let mut b = self
                    .bucket
                    .lock()
                    .map_err(|_| err(StatusCode::INTERNAL_SERVER_ERROR, "poisoned"))?;
                let now = Instant::now();
                let refill = now.duration_since(b.1).as_secs_f64() * self.cfg.rate_limit;
                b.0 = (b.0 + refill).min(self.cfg.rate_limit.max(1.0));
                b.1 = now;
                if b.0 >= 1.0 {
                    b.0 -= 1.0;
                    false
                } else {
                    true
                }
            };
            if limited {
                return Err((
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, "1")],
                    Json(serde_json::json!({"detail": "rate limit exceeded"})),
                )
                    .into_response());
            }
        }
        match self.cfg.fault {
            Fault::Always500 => {
                return Err(err(StatusCode::INTERNAL_SERVER_ERROR, "internal error"));
            }
            Fault::Garbage => {
                return Err((StatusCode::OK, "<html>definitely not json</html>").into_response());
            }
            Fault::Hang | Fault::None => {}
        }
        if self.rng.chance(self.cfg.error_rate) {
            return Err(err(StatusCode::INTERNAL_SERVER_ERROR, "transient error"));
        }
        Ok(())
    }
}

async fn submit(
    State(s): State<Arc<SimState>>,
    Path((owner, model)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = s.gate(&headers).await {
        return r;
    }
    if s.cfg.fault == Fault::Hang {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return err(StatusCode::UNPROCESSABLE_ENTITY, "body is not JSON");
    };
    if !v.get("image_url").is_some_and(|u| u.is_string()) {
        return err(StatusCode::UNPROCESSABLE_ENTITY, "image_url is required");
    }
    let (lo, hi) = (
        s.cfg.processing_min,
        s.cfg.processing_max.max(s.cfg.processing_min),
    );
    let mut processing = lo + (hi - lo).mul_f64(s.rng.unit());
    if s.rng.chance(0.05) {
        processing = hi.mul_f64(1.0 + 2.0 * s.rng.unit());
    }
    let id = uuid::Uuid::new_v4().to_string();
    let fails = s.rng.chance(s.cfg.failure_rate);
    {
        let Ok(mut t) = s.requests.lock() else {
            return err(StatusCode::INTERNAL_SERVER_ERROR, "poisoned");
        };
        let now = Instant::now();
        if !t.make_room(now, s.cfg.request_ttl, s.cfg.max_requests as usize) {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "1")],
                Json(serde_json::json!({"detail": "too many requests in progress"})),
            )
                .into_response();
        }
        t.map.insert(
            id.clone(),
            Request {
                submitted: now,
                processing,
                fails,
            },
        );
    }
    let base = format!("/{owner}/{model}/requests/{id}");
    Json(serde_json::json!({
        "request_id": id,
        "status_url": format!("{base}/status"),
        "response_url": base,
    }))
    .into_response()
}

enum Phase {
    Unknown,
    InQueue,
    InProgress,
    Done { fails: bool },
}

fn phase(s: &SimState, id: &str) -> Phase {
    let Ok(t) = s.requests.lock() else {
        return Phase::Unknown;
    };
    let Some(r) = t.map.get(id) else {
        return Phase::Unknown;
    };
    let now = Instant::now();
    if Table::expired(r, now, s.cfg.request_ttl) {
        return Phase::Unknown;
    }
    let age = now.saturating_duration_since(r.submitted);
    if age >= r.processing {
        Phase::Done { fails: r.fails }
    } else if age < r.processing / 5 {
        Phase::InQueue
    } else {
        Phase::InProgress
    }
}

async fn status(
    State(s): State<Arc<SimState>>,
    Path((_o, _m, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = s.gate(&headers).await {
        return r;
    }
    let status = match phase(&s, &id) {
        Phase::Unknown => return err(StatusCode::NOT_FOUND, "unknown request"),
        Phase::InQueue => "IN_QUEUE",
        Phase::InProgress => "IN_PROGRESS",
        Phase::Done { .. } => "COMPLETED",
    };
    Json(serde_json::json!({"status": status})).into_response()
}

async fn result(
    State(s): State<Arc<SimState>>,
    Path((_o, _m, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = s.gate(&headers).await {
        return r;
    }
    match phase(&s, &id) {
        Phase::Unknown => err(StatusCode::NOT_FOUND, "unknown request"),
        Phase::InQueue | Phase::InProgress => {
            err(StatusCode::BAD_REQUEST, "request is still in progress")
        }
        Phase::Done { fails: true } => err(
            StatusCode::UNPROCESSABLE_ENTITY,
            "generation failed: the model could not reconstruct a mesh from this image",
        ),
        Phase::Done { fails: false } => Json(serde_json::json!({
            "model_mesh": {
                "url": format!("/files/{id}.glb"),
                "content_type": "model/gltf-binary",
            }
        }))
        .into_response(),
    }
}

async fn file(
    State(s): State<Arc<SimState>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = s.gate(&headers).await {
        return r;
    }
    let id = file.strip_suffix(".glb").unwrap_or(&file);
    match phase(&s, id) {
        Phase::Done { fails: false } => (
            [(header::CONTENT_TYPE, "model/gltf-binary")],
            crate::files::triangle_glb(id),
        )
            .into_response(),
        _ => err(StatusCode::NOT_FOUND, "no such file"),
    }
}
