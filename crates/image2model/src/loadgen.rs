//! `image2model loadgen`: drives a realistic mix against a running instance — uploads, single
//! jobs, batches, status polling, downloads and some bad requests — at a fixed rate, then prints a
//! summary (requests, errors, latency percentiles).

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::files::TINY_PNG;
use crate::rng::Rng;

/// Load generator settings.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadgenConfig {
    /// Base URL of the instance.
    #[arg(
        long,
        env = "IMAGE2MODEL_LOADGEN_TARGET",
        default_value = "http://127.0.0.1:8080"
    )]
    pub target: String,
    /// Requests per second.
    #[arg(long, env = "IMAGE2MODEL_LOADGEN_RPS", default_value_t = 10.0, value_parser = parse_rps)]
    pub rps: f64,
    /// How long to run.
    #[arg(long, env = "IMAGE2MODEL_LOADGEN_DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Most requests in flight (beyond it, ticks are skipped and counted).
    #[arg(long, env = "IMAGE2MODEL_LOADGEN_CONCURRENCY", default_value_t = 64)]
    pub concurrency: usize,
    /// Timeout of one request.
    #[arg(long, env = "IMAGE2MODEL_LOADGEN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

fn parse_rps(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if v > 0.0 && v <= 100_000.0 {
        Ok(v)
    } else {
        Err(format!("{v} is not in (0, 100000]"))
    }
}

/// Why the load generator cannot run.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    /// The HTTP client cannot be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Requests sent.
    pub requests: u64,
    /// Transport errors and 5xx answers.
    pub errors: u64,
    /// 4xx answers (most are the deliberate bad requests).
    pub client_errors: u64,
    /// 429 and 503 answers: the server's limits and backpressure (also in `client_errors` and
    /// `errors`).
    pub throttled: u64,
    /// Ticks skipped because `concurrency` requests were in flight.
    pub skipped: u64,
    /// Requests per operation.
    pub by_operation: BTreeMap<&'static str, u64>,
    /// Answers per status (`error` for transport failures).
    pub by_status: BTreeMap<String, u64>,
    /// Latency percentiles in seconds.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Wall time.
    pub elapsed: Duration,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "requests: {} in {:.1}s ({:.1}/s)",
            self.requests,
            self.elapsed.as_secs_f64(),
            self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
        )?;
        writeln!(f, "errors (5xx + transport): {}", self.errors)?;
        writeln!(
            f,
            "client errors (4xx, mostly deliberate): {}",
            self.client_errors
        )?;
        writeln!(
            f,
            "throttled (429 + 503: the server's limits and backpressure): {}",
            self.throttled
        )?;
        writeln!(f, "skipped (concurrency limit): {}", self.skipped)?;
        writeln!(
            f,
            "latency: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms",
            self.p50 * 1e3,
            self.p95 * 1e3,
            self.p99 * 1e3
        )?;
        let ops: Vec<String> = self
            .by_operation
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        writeln!(f, "operations: {}", ops.join(" "))?;
        let st: Vec<String> = self
            .by_status
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        write!(f, "statuses: {}", st.join(" "))
    }
}

#[derive(Default)]
struct Shared {
    files: Vec<String>,
    jobs: Vec<String>,
    latencies: Vec<f64>,
    summary: Summary,
}

/// Percentile `p` (0..=1) of sorted `v`.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn multipart(filename: &str, content: &[u8]) -> (String, Vec<u8>) {
    let boundary = format!("loadgen{}", uuid::Uuid::new_v4().simple());
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn pick(rng: &Rng, v: &[String]) -> Option<String> {
    if v.is_empty() {
        None
    } else {
        Some(v[rng.below(v.len() as u64) as usize].clone())
    }
}

async fn one(
    client: &reqwest::Client,
    base: &str,
    rng: &Rng,
    state: &Mutex<Shared>,
) -> (
    &'static str,
    Result<(u16, Option<serde_json::Value>), String>,
) {
    let (files, jobs) = state
        .lock()
        .map(|s| (s.files.clone(), s.jobs.clone()))
        .unwrap_or_default();
    let roll = rng.below(100);
    let op: &'static str = match roll {
        _ if files.is_empty() => "upload",
        0..=29 => "upload",
        30..=49 => "create_job",
        50..=56 => "create_batch",
        57..=84 if !jobs.is_empty() => "poll_job",
        85..=89 if !jobs.is_empty() => "download",
        57..=89 => "create_job",
        _ => "bad_request",
    };
    let req = match op {
        "upload" => {
            let (ct, body) = multipart("image.png", TINY_PNG);
            client
                .post(format!("{base}/api/v1/upload"))
                .header("content-type", ct)
                .body(body)
        }
        "create_job" => client
            .post(format!("{base}/api/v1/models"))
            .header("content-type", "application/json")
            .body(serde_json::json!({"file_id": pick(rng, &files)}).to_string()),
        "create_batch" => {
            let n = 2 + rng.below(4);
            let ids: Vec<String> = (0..n).filter_map(|_| pick(rng, &files)).collect();
            client
                .post(format!("{base}/api/v1/batches"))
                .header("content-type", "application/json")
                .body(serde_json::json!({"file_ids": ids}).to_string())
        }
        "poll_job" => client.get(format!(
            "{base}/api/v1/jobs/{}",
            pick(rng, &jobs).unwrap_or_default()
        )),
        "download" => client.get(format!(
            "{base}/api/v1/models/{}/download",
            pick(rng, &jobs).unwrap_or_default()
        )),
        _ => match rng.below(4) {
            0 => {
                let (ct, body) = multipart("photo.png", b"this is not an image at all");
                client
                    .post(format!("{base}/api/v1/upload"))
                    .header("content-type", ct)
                    .body(body)
            }
            1 => client
                .post(format!("{base}/api/v1/models"))
                .header("content-type", "application/json")
                .body("{\"file_id\": "),
            2 => client.get(format!("{base}/api/v1/jobs/{}", uuid::Uuid::new_v4())),
            _ => client
                .post(format!("{base}/api/v1/batches"))
                .header("content-type", "application/json")
                .body("{\"file_ids\": []}"),
        },
    };
    let res = match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let json = if op == "download" {
                None
            } else {
                resp.json::<serde_json::Value>().await.ok()
            };
            Ok((status, json))
        }
        Err(e) => Err(e.to_string()),
    };
    (op, res)
}

/// Runs the load; `progress` draws a bar on stderr when it is a terminal.
pub async fn run(cfg: &LoadgenConfig, progress: bool) -> Result<Summary, LoadgenError> {
    // Idle connections are dropped before the server's idle timeout (`IMAGE2MODEL_HEADER_TIMEOUT`,
    // 10 s by default) would close them under a request about to reuse them.
    let client = reqwest::Client::builder()
        .timeout(cfg.timeout)
        .pool_idle_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| LoadgenError::Client(e.to_string()))?;
    let base = cfg.target.trim_end_matches('/').to_owned();
    let total = (cfg.rps * cfg.duration.as_secs_f64()).ceil().max(1.0) as u64;
    let bar = if progress && std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} {msg}",
        ) {
            b.set_style(style);
        }
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let state = Arc::new(Mutex::new(Shared::default()));
    let rng = Arc::new(Rng::from_entropy());
    let sem = Arc::new(tokio::sync::Semaphore::new(cfg.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now();
    let period = Duration::from_secs_f64(1.0 / cfg.rps);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for _ in 0..total {
        tick.tick().await;
        let Ok(permit) = sem.clone().try_acquire_owned() else {
            if let Ok(mut s) = state.lock() {
                s.summary.skipped += 1;
            }
            bar.inc(1);
            continue;
        };
        let (client, base, rng, state, bar) = (
            client.clone(),
            base.clone(),
            rng.clone(),
            state.clone(),
            bar.clone(),
        );
        tasks.spawn(async move {
            let _permit = permit;
            let t = Instant::now();
            let (op, res) = one(&client, &base, &rng, &state).await;
            let dt = t.elapsed().as_secs_f64();
            if let Ok(mut s) = state.lock() {
                s.latencies.push(dt);
                s.summary.requests += 1;
                *s.summary.by_operation.entry(op).or_default() += 1;
                match res {
                    Ok((status, json)) => {
                        *s.summary.by_status.entry(status.to_string()).or_default() += 1;
                        if status == 429 || status == 503 {
                            s.summary.throttled += 1;
                        }
                        if status >= 500 {
                            s.summary.errors += 1;
                        } else if status >= 400 {
                            s.summary.client_errors += 1;
                        }
                        if let Some(j) = json {
                            if let Some(f) = j.get("file_id").and_then(|v| v.as_str()) {
                                s.files.push(f.to_owned());
                            }
                            if let Some(id) = j.get("job_id").and_then(|v| v.as_str()) {
                                s.jobs.push(id.to_owned());
                            }
                            if let Some(ids) = j.get("job_ids").and_then(|v| v.as_array()) {
                                s.jobs.extend(
                                    ids.iter().filter_map(|v| v.as_str().map(str::to_owned)),
                                );
                            }
                        }
                    }
                    Err(_) => {
                        *s.summary.by_status.entry("error".into()).or_default() += 1;
                        s.summary.errors += 1;
                    }
                }
                bar.set_message(format!("errors {}", s.summary.errors));
            }
            bar.inc(1);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    bar.finish_and_clear();
    let mut s = state
        .lock()
        .map(|mut s| std::mem::take(&mut *s))
        .unwrap_or_default();
    s.latencies.sort_by(f64::total_cmp);
    let mut summary = s.summary;
    summary.p50 = percentile(&s.latencies, 0.50);
    summary.p95 = percentile(&s.latencies, 0.95);
    summary.p99 = percentile(&s.latencies, 0.99);
    summary.elapsed = start.elapsed();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_series() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
