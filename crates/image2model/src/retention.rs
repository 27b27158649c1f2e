//! Retention: a periodic sweep deletes what is older than `IMAGE2MODEL_RETENTION` — finished
//! jobs and their model files, batches without jobs left, uploads no queued or running job
//! needs — and `*.part` files left by interrupted writes. Every minute it also forgets the rate
//! limiters' idle clients. A sweep deletes at most [`SWEEP_CHUNK`] rows per table and runs again
//! at once while there is more.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::app::Shared;
use crate::files::DataDir;
use crate::store::SWEEP_CHUNK;

/// Age of a `*.part` file after which it is an interrupted write, not one in progress.
const STALE_PART_AGE: Duration = Duration::from_secs(3600);

/// What one [`sweep`] removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Job rows.
    pub jobs: usize,
    /// Batch rows.
    pub batches: usize,
    /// Upload rows.
    pub uploads: usize,
    /// Files removed from disk (uploads, models, stale parts).
    pub files_removed: usize,
}

/// Deletes everything older than the retention, in chunks, and the files that go with it.
pub async fn sweep(s: &Shared) -> Result<SweepReport, crate::store::StoreError> {
    let cutoff = crate::store::now() - s.cfg.limits.retention.as_secs_f64();
    let mut report = SweepReport::default();
    loop {
        let swept = s.store.sweep(cutoff).await?;
        let more = swept.jobs.len() >= SWEEP_CHUNK || swept.files.len() >= SWEEP_CHUNK;
        report.jobs += swept.jobs.len();
        report.batches += swept.batches;
        report.uploads += swept.files.len();
        let data: DataDir = s.data.clone();
        let removed = tokio::task::spawn_blocking(move || {
            let paths = swept.jobs.iter().map(|j| data.result_path(j)).chain(
                swept
                    .files
                    .iter()
                    .map(|(id, ext)| data.upload_path(id, ext)),
            );
            DataDir::remove_all(paths.collect::<Vec<_>>())
        })
        .await
        .unwrap_or(0);
        report.files_removed += removed;
        if !more {
            break;
        }
    }
    let data = s.data.clone();
    report.files_removed +=
        tokio::task::spawn_blocking(move || data.remove_stale_parts(STALE_PART_AGE))
            .await
            .unwrap_or(0);
    Ok(report)
}

/// Runs [`sweep`] at start and every `IMAGE2MODEL_SWEEP_INTERVAL`, until `stop`.
pub(crate) async fn sweeper(s: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut sweeps = tokio::time::interval(s.cfg.limits.sweep_interval);
    let mut forget = tokio::time::interval(Duration::from_secs(60));
    sweeps.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    forget.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = sweeps.tick() => match sweep(&s).await {
                Ok(r) if r != SweepReport::default() => tracing::info!(
                    jobs = r.jobs, batches = r.batches, uploads = r.uploads,
                    files_removed = r.files_removed, "retention sweep deleted old data"
                ),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "retention sweep failed"),
            },
            _ = forget.tick() => {
                s.limiter.forget_idle();
                s.job_limiter.forget_idle();
            }
        }
    }
}
