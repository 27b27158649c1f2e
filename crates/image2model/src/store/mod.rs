//! Jobs, batches and uploads in an embedded SQLite database, so a restart loses nothing.
//!
//! Job states: `queued -> running -> succeeded | failed`; a running job whose worker stops
//! (shutdown, crash) goes back to `queued` ([`Store::requeue`], [`Store::recover`]). Every transition
//! is a conditional `UPDATE`, so a job is claimed and finished at most once.
//!
//! The records a query returns are in `records`, the tables and their migration in `schema`, the
//! connections (one writer, a few readers, all on the blocking pool) in `pool`; the queries are
//! grouped by what they touch: `files` (uploads), `jobs` (jobs and batches), `sweep` (retention).

use std::time::{SystemTime, UNIX_EPOCH};

mod files;
mod jobs;
mod pool;
mod records;
mod schema;
mod sweep;

pub use jobs::MAX_ATTEMPTS;
pub use pool::Store;
pub use records::{BatchJob, BatchRecord, FileRecord, JobRecord, JobStatus, NewJob};
pub use sweep::{SWEEP_CHUNK, Swept};

/// A database failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The connection mutex was poisoned by a panic.
    #[error("database connection poisoned")]
    Poisoned,
    /// The blocking task running the query failed or the pool is closed.
    #[error("database task failed")]
    Task,
}

/// Seconds since the Unix epoch.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A job for the tests, created by a request with a trace context.
#[cfg(test)]
fn job(id: &str) -> NewJob {
    NewJob {
        job_id: id.into(),
        file_id: "f".into(),
        trace_context: vec![("traceparent".into(), "00-x".into())],
        request_id: Some("r-1".into()),
    }
}
