//! Jobs, batches and uploads in an embedded SQLite database, so a restart loses nothing.
//!
//! Job states: `queued -> running -> succeeded | failed`; a running job whose worker stops
//! (shutdown, crash) goes back to `queued` ([`Store::requeue`], [`Store::recover`]). Every transition
//! is a conditional `UPDATE`, so a job is claimed and finished at most once.

use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// A database failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The connection mutex was poisoned by a panic.
    #[error("database connection poisoned")]
    Poisoned,
}

/// Seconds since the Unix epoch.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A stored upload.
#[derive(Debug, Clone, Serialize)]
pub struct FileRecord {
    /// Its id.
    pub id: String,
    /// The client's file name.
    pub filename: String,
    /// Sniffed MIME type.
    pub content_type: String,
    /// File extension on disk.
    pub ext: String,
    /// Size in bytes.
    pub size: u64,
    /// Creation time (Unix seconds).
    pub created_at: f64,
}

/// Job status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting for a worker.
    Queued,
    /// A worker runs it.
    Running,
    /// The model is ready.
    Succeeded,
    /// It failed; `error` says why.
    Failed,
}

impl JobStatus {
    fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> JobStatus {
        match s {
            "running" => JobStatus::Running,
            "succeeded" => JobStatus::Succeeded,
            "failed" => JobStatus::Failed,
            _ => JobStatus::Queued,
        }
    }

    /// Succeeded or failed.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed)
    }
}

/// A stored job.
#[derive(Debug, Clone, Serialize)]
pub struct JobRecord {
    /// Its id.
    pub job_id: String,
    /// The upload it turns into a model.
    pub file_id: String,
    /// Its batch, if any.
    pub batch_id: Option<String>,
    /// Status.
    pub status: JobStatus,
    /// Generation options (JSON object).
    pub options: serde_json::Value,
    /// Why it failed.
    pub error: Option<String>,
    /// How many times a worker claimed it.
    pub attempts: u32,
    /// Creation time (Unix seconds).
    pub created_at: f64,
    /// When the last attempt started.
    pub started_at: Option<f64>,
    /// When it finished.
    pub finished_at: Option<f64>,
    /// W3C trace context of the request that created it (not serialised to clients).
    #[serde(skip)]
    pub trace_context: Vec<(String, String)>,
    /// `X-Request-ID` of the request that created it.
    pub request_id: Option<String>,
}

/// A new job to insert.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Its id.
    pub job_id: String,
    /// The upload.
    pub file_id: String,
    /// Options.
    pub options: serde_json::Value,
    /// Carrier of the creating span's context.
    pub trace_context: Vec<(String, String)>,
    /// `X-Request-ID` of the creating request.
    pub request_id: Option<String>,
}

/// A stored batch.
#[derive(Debug, Clone, Serialize)]
pub struct BatchRecord {
    /// Its id.
    pub batch_id: String,
    /// Number of jobs.
    pub size: u32,
    /// Creation time.
    pub created_at: f64,
    /// When its last job finished.
    pub finished_at: Option<f64>,
    /// Its jobs, in creation order.
    pub jobs: Vec<JobRecord>,
}

/// The database.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY, filename TEXT NOT NULL, content_type TEXT NOT NULL, ext TEXT NOT NULL,
    size INTEGER NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY, size INTEGER NOT NULL, created_at REAL NOT NULL, finished_at REAL);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, file_id TEXT NOT NULL,
    batch_id TEXT, status TEXT NOT NULL, options TEXT NOT NULL, trace_context TEXT NOT NULL,
    error TEXT, attempts INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL,
    started_at REAL, finished_at REAL, request_id TEXT);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE INDEX IF NOT EXISTS jobs_batch ON jobs(batch_id);
";

const JOB_COLUMNS: &str = "id, file_id, batch_id, status, options, trace_context, error, attempts, \
                           created_at, started_at, finished_at, request_id";

fn job_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<JobRecord> {
    let status: String = row.get(3)?;
    let options: String = row.get(4)?;
    let tc: String = row.get(5)?;
    Ok(JobRecord {
        job_id: row.get(0)?,
        file_id: row.get(1)?,
        batch_id: row.get(2)?,
        status: JobStatus::parse(&status),
        options: serde_json::from_str(&options).unwrap_or(serde_json::Value::Null),
        trace_context: serde_json::from_str(&tc).unwrap_or_default(),
        error: row.get(6)?,
        attempts: row.get(7)?,
        created_at: row.get(8)?,
        started_at: row.get(9)?,
        finished_at: row.get(10)?,
        request_id: row.get(11)?,
    })
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(f(&mut conn)?)
    }

    /// Stores an upload's metadata.
    pub fn insert_file(&self, f: &FileRecord) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO files (id, filename, content_type, ext, size, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    f.id,
                    f.filename,
                    f.content_type,
                    f.ext,
                    f.size,
                    f.created_at
                ],
            )
            .map(|_| ())
        })
    }

    /// An upload's metadata.
    pub fn file(&self, id: &str) -> Result<Option<FileRecord>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT id, filename, content_type, ext, size, created_at FROM files WHERE id = ?1",
                [id],
                |r| {
                    Ok(FileRecord {
                        id: r.get(0)?,
                        filename: r.get(1)?,
                        content_type: r.get(2)?,
                        ext: r.get(3)?,
                        size: r.get(4)?,
                        created_at: r.get(5)?,
                    })
                },
            )
            .optional()
        })
    }

    /// Inserts `jobs` (and their batch, if `batch_id`) in one transaction.
    pub fn create_jobs(&self, batch_id: Option<&str>, jobs: &[NewJob]) -> Result<(), StoreError> {
        let t = now();
        self.with(|c| {
            let tx = c.transaction()?;
            if let Some(b) = batch_id {
                tx.execute(
                    "INSERT INTO batches (id, size, created_at) VALUES (?1, ?2, ?3)",
                    params![b, jobs.len() as i64, t],
                )?;
            }
            for j in jobs {
                let tc = serde_json::to_string(&j.trace_context).unwrap_or_else(|_| "[]".into());
                tx.execute(
                    "INSERT INTO jobs (id, file_id, batch_id, status, options, trace_context, \
                     created_at, request_id) VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?7)",
                    params![
                        j.job_id,
                        j.file_id,
                        batch_id,
                        j.options.to_string(),
                        tc,
                        t,
                        j.request_id
                    ],
                )?;
            }
            tx.commit()
        })
    }

    /// A job.
    pub fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                [id],
                job_from_row,
            )
            .optional()
        })
    }

    /// Claims a queued job for a worker: `queued -> running`. `None` if it is not queued.
    pub fn claim(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let t = now();
        let changed = self.with(|c| {
            c.execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = ?2 \
                 WHERE id = ?1 AND status = 'queued'",
                params![id, t],
            )
        })?;
        if changed == 1 { self.job(id) } else { Ok(None) }
    }

    /// Finishes a running job; `error` `None` means success. False if it was not running.
    pub fn finish(&self, id: &str, error: Option<&str>) -> Result<bool, StoreError> {
        let status = if error.is_some() {
            JobStatus::Failed
        } else {
            JobStatus::Succeeded
        };
        let t = now();
        self.with(|c| {
            c.execute(
                "UPDATE jobs SET status = ?2, error = ?3, finished_at = ?4 \
                 WHERE id = ?1 AND status = 'running'",
                params![id, status.as_str(), error, t],
            )
            .map(|n| n == 1)
        })
    }

    /// Puts a running job back in the queue. False if it was not running.
    pub fn requeue(&self, id: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE jobs SET status = 'queued', started_at = NULL \
                 WHERE id = ?1 AND status = 'running'",
                [id],
            )
            .map(|n| n == 1)
        })
    }

    /// At start: running jobs (their worker is gone) go back to queued; returns every queued job
    /// id, oldest first.
    pub fn recover(&self) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE jobs SET status = 'queued', started_at = NULL WHERE status = 'running'",
                [],
            )?;
            let mut st = c.prepare("SELECT id FROM jobs WHERE status = 'queued' ORDER BY seq")?;
            let ids = st
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(ids)
        })
    }

    /// Number of jobs per status.
    pub fn count(&self, status: JobStatus) -> Result<u64, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM jobs WHERE status = ?1",
                [status.as_str()],
                |r| r.get(0),
            )
        })
    }

    /// A batch with its jobs.
    pub fn batch(&self, id: &str) -> Result<Option<BatchRecord>, StoreError> {
        self.with(|c| {
            let Some((size, created_at, finished_at)) = c
                .query_row(
                    "SELECT size, created_at, finished_at FROM batches WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?
            else {
                return Ok(None);
            };
            let mut st = c.prepare(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE batch_id = ?1 ORDER BY seq"
            ))?;
            let jobs = st
                .query_map([id], job_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Some(BatchRecord {
                batch_id: id.to_owned(),
                size,
                created_at,
                finished_at,
                jobs,
            }))
        })
    }

    /// Marks the batch finished if every job is terminal and it was not marked yet; returns its
    /// size and duration exactly once.
    pub fn finish_batch_if_done(&self, id: &str) -> Result<Option<(usize, f64)>, StoreError> {
        let t = now();
        self.with(|c| {
            let n = c.execute(
                "UPDATE batches SET finished_at = ?2 WHERE id = ?1 AND finished_at IS NULL \
                 AND NOT EXISTS (SELECT 1 FROM jobs WHERE batch_id = ?1 \
                                 AND status IN ('queued', 'running'))",
                params![id, t],
            )?;
            if n == 0 {
                return Ok(None);
            }
            c.query_row(
                "SELECT size, created_at FROM batches WHERE id = ?1",
                [id],
                |r| Ok((r.get::<_, i64>(0)? as usize, t - r.get::<_, f64>(1)?)),
            )
            .map(Some)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str) -> NewJob {
        NewJob {
            job_id: id.into(),
            file_id: "f".into(),
            options: serde_json::json!({}),
            trace_context: vec![("traceparent".into(), "00-x".into())],
            request_id: Some("r-1".into()),
        }
    }

    #[test]
    fn a_job_is_claimed_and_finished_at_most_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(&dir.path().join("db")).expect("open");
        s.create_jobs(None, &[job("a")]).expect("insert");
        assert!(s.claim("a").expect("claim").is_some());
        assert!(s.claim("a").expect("claim").is_none());
        assert!(s.finish("a", None).expect("finish"));
        assert!(!s.finish("a", Some("late")).expect("finish"));
        let j = s.job("a").expect("get").expect("exists");
        assert_eq!(j.status, JobStatus::Succeeded);
        assert_eq!(j.attempts, 1);
        assert_eq!(j.trace_context[0].0, "traceparent");
    }

    #[test]
    fn recovery_requeues_running_jobs_in_creation_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        {
            let s = Store::open(&path).expect("open");
            s.create_jobs(Some("b"), &[job("1"), job("2"), job("3")])
                .expect("insert");
            s.claim("1").expect("claim");
            s.claim("2").expect("claim");
            s.finish("2", Some("boom")).expect("finish");
        }
        let s = Store::open(&path).expect("reopen");
        assert_eq!(s.recover().expect("recover"), vec!["1", "3"]);
        assert!(s.finish_batch_if_done("b").expect("batch").is_none());
        for id in ["1", "3"] {
            s.claim(id).expect("claim");
            s.finish(id, None).expect("finish");
        }
        let (size, _) = s.finish_batch_if_done("b").expect("batch").expect("done");
        assert_eq!(size, 3);
        assert!(s.finish_batch_if_done("b").expect("batch").is_none());
    }
}
