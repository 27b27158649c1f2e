//! The worker pool: a dispatcher takes job ids from the queue and runs at most `workers` jobs at a
//! time. Each job runs in a `generate_model` span whose parent is the trace context stored with
//! the job (the span of the request that created it), so API -> job -> provider calls form one
//! trace. On shutdown, jobs still running after the grace period are aborted and requeued.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use opentelemetry::propagation::TextMapPropagator as _;
use otelbricks_trace_context::W3CTraceContextPropagator;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::app::Shared;
use crate::metrics::{TASK_BATCH, TASK_GENERATE};
use crate::store::JobRecord;

/// What the pool did when it stopped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StopReport {
    /// Jobs that finished during the grace period.
    pub finished_in_grace: usize,
    /// Jobs aborted and put back in the queue.
    pub requeued: Vec<String>,
}

/// The W3C `traceparent` of the current span (in a handler: the server span the HTTP layer
/// made, never the client's raw headers), as a carrier to store with a job. Only
/// `traceparent`: a client's `tracestate` is not carried on to the job and the provider.
///
/// The current span is the innermost `tracing` span if the handler opened one, else the span of
/// the current OpenTelemetry context (the HTTP layer starts its server span with the
/// OpenTelemetry API and makes it current while the handler runs).
pub fn current_trace_context() -> Vec<(String, String)> {
    let span = tracing::Span::current();
    let cx = if span.is_none() {
        opentelemetry::Context::current()
    } else {
        span.context()
    };
    let mut carrier = HashMap::new();
    W3CTraceContextPropagator::new().inject_context(&cx, &mut carrier);
    let mut v: Vec<(String, String)> = carrier
        .into_iter()
        .filter(|(k, _)| k == "traceparent")
        .collect();
    v.sort();
    v
}

/// Why a job failed: a stable `code` and public `message` stored with the job and shown to
/// clients, and the `detail` (provider bodies, paths, addresses) for the log line and the span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailure {
    /// Stable code, e.g. `provider_unavailable`, `deadline_exceeded`, `internal_error`.
    pub code: &'static str,
    /// Public message: fixed text and numbers, nothing the provider or the file system wrote.
    pub message: String,
    /// Everything known, for operators.
    pub detail: String,
}

impl JobFailure {
    fn internal(detail: impl Into<String>) -> Self {
        JobFailure {
            code: "internal_error",
            message: "internal error while running the job".into(),
            detail: detail.into(),
        }
    }
}

impl From<crate::provider::ProviderError> for JobFailure {
    fn from(e: crate::provider::ProviderError) -> Self {
        JobFailure {
            code: e.code(),
            message: e.public_message(),
            detail: e.to_string(),
        }
    }
}

/// Runs `fut`; a panic inside becomes an `internal_error` failure instead of unwinding through
/// the worker (which would leave the job `running`).
pub async fn guarded<F>(fut: F) -> Result<(), JobFailure>
where
    F: std::future::Future<Output = Result<(), JobFailure>>,
{
    use futures_util::FutureExt as _;
    match std::panic::AssertUnwindSafe(fut).catch_unwind().await {
        Ok(r) => r,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            Err(JobFailure::internal(format!("the job panicked: {what}")))
        }
    }
}

pub(crate) async fn dispatcher(
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<String>,
    mut stop: watch::Receiver<bool>,
    grace_rx: watch::Receiver<Duration>,
) -> StopReport {
    let sem = Arc::new(Semaphore::new(shared.cfg.workers as usize));
    let mut set = JoinSet::new();
    shared.workers_alive.store(true, Ordering::SeqCst);
    loop {
        if *stop.borrow() {
            break;
        }
        let permit = tokio::select! {
            biased;
            _ = stop.changed() => break,
            p = sem.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let id = tokio::select! {
            biased;
            _ = stop.changed() => break,
            id = rx.recv() => match id { Some(id) => id, None => break },
        };
        shared.dequeued();
        if let Ok(mut f) = shared.inflight.lock() {
            f.insert(id.clone());
        }
        let s = shared.clone();
        set.spawn(async move {
            let _permit = permit;
            run_job(&s, &id).await;
            if let Ok(mut f) = s.inflight.lock() {
                f.remove(&id);
            }
        });
        while set.try_join_next().is_some() {}
    }
    shared.workers_alive.store(false, Ordering::SeqCst);
    let grace = *grace_rx.borrow();
    let inflight_now = || shared.inflight.lock().map(|f| f.len()).unwrap_or(0);
    let running = inflight_now();
    let _ = tokio::time::timeout(grace, async { while set.join_next().await.is_some() {} }).await;
    let still = inflight_now().min(running);
    set.abort_all();
    while set.join_next().await.is_some() {}
    let leftover: HashSet<String> = shared
        .inflight
        .lock()
        .map(|mut f| f.drain().collect())
        .unwrap_or_default();
    let mut requeued = Vec::new();
    for id in leftover {
        match shared.store.requeue(&id).await {
            Ok(true) => {
                shared.metrics.task_finished(TASK_GENERATE, "requeued", 0.0);
                requeued.push(id);
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(job.id = %id, error = %e, "cannot requeue job; it is requeued at next start")
            }
        }
    }
    tracing::info!(
        finished_in_grace = running - still,
        requeued = requeued.len(),
        "workers stopped"
    );
    StopReport {
        finished_in_grace: running - still,
        requeued,
    }
}

async fn run_job(s: &Shared, id: &str) {
    let job = match s.store.claim(id).await {
        Ok(Some(j)) => j,
        Ok(None) => return, // finished or claimed already: nothing to do
        Err(e) => {
            tracing::error!(job.id = %id, error = %e, "cannot claim job");
            return;
        }
    };
    let span = tracing::info_span!(
        "generate_model",
        otel.name = "generate_model",
        otel.kind = "consumer",
        otel.status_code = tracing::field::Empty,
        job.id = %id,
        batch.id = job.batch_id.as_deref().unwrap_or(""),
        job.attempt = job.attempts,
        request_id = job.request_id.as_deref().unwrap_or(""),
        error.type = tracing::field::Empty,
    );
    let carrier: HashMap<String, String> = job.trace_context.iter().cloned().collect();
    let parent = W3CTraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(parent);
    async {
        tracing::info!(attempt = job.attempts, "job started");
        let start = Instant::now();
        let outcome = guarded(execute(s, &job)).await;
        let elapsed = start.elapsed().as_secs_f64();
        let span = tracing::Span::current();
        match &outcome {
            Ok(()) => {
                span.record("otel.status_code", "OK");
                tracing::info!(duration = elapsed, "job succeeded");
            }
            Err(f) => {
                span.record("otel.status_code", "ERROR");
                span.record("error.type", f.code);
                let detail = crate::limits::bounded(&f.detail, crate::error::MESSAGE_MAX);
                tracing::warn!(duration = elapsed, error = %detail, error_code = f.code, "job failed");
            }
        }
        let error = outcome.as_ref().err().map(|f| (f.code, f.message.clone()));
        match s.store.finish(id, error).await {
            Ok(true) => {
                let status = if outcome.is_ok() {
                    "success"
                } else {
                    "failure"
                };
                s.metrics.model_finished(status, elapsed);
                s.metrics.task_finished(TASK_GENERATE, status, elapsed);
                if let Ok(mut c) = s.completed.lock() {
                    c.push(id.to_owned());
                }
            }
            Ok(false) => tracing::warn!("job was no longer running when it finished"),
            Err(e) => tracing::error!(error = %e, "cannot store the job's outcome"),
        }
        if let Some(b) = &job.batch_id {
            finish_batch(s, b).await;
        }
    }
    .instrument(span)
    .await
}

async fn finish_batch(s: &Shared, batch_id: &str) {
    match s.store.finish_batch_if_done(batch_id).await {
        Ok(Some((size, duration, failed))) => {
            s.metrics.batch_finished(size, duration);
            let status = if failed { "failure" } else { "success" };
            s.metrics.task_finished(TASK_BATCH, status, duration);
            tracing::info!(batch.id = %batch_id, size, duration, status, "batch finished");
        }
        Ok(None) => {}
        Err(e) => tracing::error!(batch.id = %batch_id, error = %e, "cannot update batch"),
    }
}

async fn execute(s: &Shared, job: &JobRecord) -> Result<(), JobFailure> {
    let file = s
        .store
        .file(&job.file_id)
        .await
        .map_err(|e| JobFailure::internal(e.to_string()))?
        .ok_or_else(|| JobFailure {
            code: "upload_missing",
            message: "the upload no longer exists".into(),
            detail: format!("upload {} no longer exists", job.file_id),
        })?;
    let image = s
        .data
        .read(&s.data.upload_path(&file.id, &file.ext))
        .await
        .map_err(|e| JobFailure::internal(e.to_string()))?;
    let deadline = s.cfg.job_deadline;
    let model = tokio::time::timeout(
        deadline,
        s.provider
            .generate(&image, &file.content_type, &job.options),
    )
    .await
    .map_err(|_| {
        let message = format!(
            "deadline of {} exceeded",
            humantime::format_duration(deadline)
        );
        JobFailure {
            code: "deadline_exceeded",
            detail: message.clone(),
            message,
        }
    })??;
    let data = s.data.clone();
    let path = s.data.result_path(&job.job_id);
    tokio::task::spawn_blocking(move || data.write_atomic(&path, &model))
        .await
        .map_err(|e| JobFailure::internal(e.to_string()))?
        .map_err(|e| JobFailure::internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_job_becomes_an_internal_error_failure() {
        let f = guarded(async { panic!("index out of bounds") })
            .await
            .expect_err("failure");
        assert_eq!(f.code, "internal_error");
        assert!(f.detail.contains("index out of bounds"), "{}", f.detail);
        assert!(!f.message.contains("index"), "the public message is fixed");
        assert_eq!(guarded(async { Ok(()) }).await, Ok(()));
    }
}
