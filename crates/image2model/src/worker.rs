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
use crate::store::{JobRecord, JobStatus};

/// What the pool did when it stopped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StopReport {
    /// Jobs that finished during the grace period.
    pub finished_in_grace: usize,
    /// Jobs aborted and put back in the queue.
    pub requeued: Vec<String>,
}

/// The W3C trace context of the current span, as a carrier to store with a job.
pub fn current_trace_context() -> Vec<(String, String)> {
    let cx = tracing::Span::current().context();
    let mut carrier = HashMap::new();
    W3CTraceContextPropagator::new().inject_context(&cx, &mut carrier);
    let mut v: Vec<(String, String)> = carrier.into_iter().collect();
    v.sort();
    v
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
        match shared.store.requeue(&id) {
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
    let job = match s.store.claim(id) {
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
        let outcome = execute(s, &job).await;
        let elapsed = start.elapsed().as_secs_f64();
        let span = tracing::Span::current();
        match &outcome {
            Ok(()) => {
                span.record("otel.status_code", "OK");
                tracing::info!(duration = elapsed, "job succeeded");
            }
            Err(reason) => {
                span.record("otel.status_code", "ERROR");
                span.record("error.type", "generation_failed");
                tracing::warn!(duration = elapsed, error = %reason, "job failed");
            }
        }
        match s
            .store
            .finish(id, outcome.as_ref().err().map(String::as_str))
        {
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
            finish_batch(s, b);
        }
    }
    .instrument(span)
    .await
}

fn finish_batch(s: &Shared, batch_id: &str) {
    match s.store.finish_batch_if_done(batch_id) {
        Ok(Some((size, duration))) => {
            s.metrics.batch_finished(size, duration);
            let failed = s
                .store
                .batch(batch_id)
                .ok()
                .flatten()
                .is_some_and(|b| b.jobs.iter().any(|j| j.status == JobStatus::Failed));
            let status = if failed { "failure" } else { "success" };
            s.metrics.task_finished(TASK_BATCH, status, duration);
            tracing::info!(batch.id = %batch_id, size, duration, status, "batch finished");
        }
        Ok(None) => {}
        Err(e) => tracing::error!(batch.id = %batch_id, error = %e, "cannot update batch"),
    }
}

async fn execute(s: &Shared, job: &JobRecord) -> Result<(), String> {
    let file = s
        .store
        .file(&job.file_id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("upload {} no longer exists", job.file_id))?;
    let image = s
        .data
        .read(&s.data.upload_path(&file.id, &file.ext))
        .map_err(|e| e.to_string())?;
    let deadline = s.cfg.job_deadline;
    let model = tokio::time::timeout(
        deadline,
        s.provider
            .generate(&image, &file.content_type, &job.options),
    )
    .await
    .map_err(|_| {
        format!(
            "deadline of {} exceeded",
            humantime::format_duration(deadline)
        )
    })?
    .map_err(|e| e.to_string())?;
    s.data
        .write_atomic(&s.data.result_path(&job.job_id), &model)
        .map_err(|e| e.to_string())
}
