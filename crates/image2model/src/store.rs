//! Jobs, batches and uploads in an embedded SQLite database, so a restart loses nothing.
//!
//! Job states: `queued -> running -> succeeded | failed`; a running job whose worker stops
//! (shutdown, crash) goes back to `queued` ([`Store::requeue`], [`Store::recover`]). Every transition
//! is a conditional `UPDATE`, so a job is claimed and finished at most once.

use std::path::Path;
use std::sync::{Arc, Mutex};
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
    /// Why it failed (a stable, public message).
    pub error: Option<String>,
    /// Stable code of the failure (`provider_unavailable`, `deadline_exceeded`, ...).
    pub error_code: Option<String>,
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
    /// Carrier of the creating span's context.
    pub trace_context: Vec<(String, String)>,
    /// `X-Request-ID` of the creating request.
    pub request_id: Option<String>,
}

/// A job as a batch view lists it (no options, no trace context).
#[derive(Debug, Clone, Serialize)]
pub struct BatchJob {
    /// Its id.
    pub job_id: String,
    /// The upload.
    pub file_id: String,
    /// Status.
    pub status: JobStatus,
    /// Stable code of the failure.
    pub error_code: Option<String>,
    /// Why it failed (a stable, public message).
    pub error: Option<String>,
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
    pub jobs: Vec<BatchJob>,
}

/// What a retention sweep deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    /// Finished jobs deleted (their model files are to be removed).
    pub jobs: Vec<String>,
    /// Batches deleted.
    pub batches: usize,
    /// Uploads deleted: `(id, ext)` (their files are to be removed).
    pub files: Vec<(String, String)>,
}

/// Rows one sweep deletes at most per table (keeps each write transaction short).
pub const SWEEP_CHUNK: usize = 5000;

/// Connections that serve reads concurrently with the writer (WAL).
const READERS: usize = 4;

/// The database: one writer connection and a few readers (WAL lets them read while it
/// writes), every call on tokio's blocking pool, never on an async worker thread.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Arc<tokio::sync::Mutex<Connection>>,
    readers: Mutex<Vec<Connection>>,
    reader_permits: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA journal_size_limit = 67108864;
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
CREATE INDEX IF NOT EXISTS jobs_file ON jobs(file_id);
CREATE INDEX IF NOT EXISTS files_created ON files(created_at);
";

/// Columns added after the first release: `(table, column, declaration)`.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    // A batch's options, stored once instead of in each of its jobs (their `options` is '').
    ("batches", "options", "TEXT"),
    ("jobs", "error_code", "TEXT"),
];

/// A job's columns; a batch job's options come from its batch.
const JOB_COLUMNS: &str = "j.id, j.file_id, j.batch_id, j.status, \
     CASE WHEN j.options = '' THEN COALESCE(b.options, '{}') ELSE j.options END, \
     j.trace_context, j.error, j.attempts, j.created_at, j.started_at, j.finished_at, \
     j.request_id, j.error_code \
     FROM jobs j LEFT JOIN batches b ON b.id = j.batch_id";

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
        error_code: row.get(12)?,
    })
}

fn add_missing_columns(c: &Connection) -> rusqlite::Result<()> {
    for (table, column, decl) in ADDED_COLUMNS {
        let mut st = c.prepare(&format!("PRAGMA table_info({table})"))?;
        let exists = st
            .query_map([], |r| r.get::<_, String>(1))?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .iter()
            .any(|n| n == column);
        if !exists {
            c.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))?;
        }
    }
    Ok(())
}

/// Attempts after which a job that keeps dying with its process (crash, kill) is failed
/// instead of requeued at start.
pub const MAX_ATTEMPTS: u32 = 3;

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        add_missing_columns(&conn)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let r = Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            r.busy_timeout(std::time::Duration::from_secs(5))?;
            readers.push(r);
        }
        Ok(Store {
            inner: Arc::new(Inner {
                writer: Arc::new(tokio::sync::Mutex::new(conn)),
                readers: Mutex::new(readers),
                reader_permits: tokio::sync::Semaphore::new(READERS),
            }),
        })
    }

    /// Runs `f` on the writer connection, on the blocking pool.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let mut conn = self.inner.writer.clone().lock_owned().await;
        tokio::task::spawn_blocking(move || f(&mut conn))
            .await
            .map_err(|_| StoreError::Task)?
            .map_err(StoreError::from)
    }

    /// Runs `f` on a reader connection, on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let permit = self
            .inner
            .reader_permits
            .acquire()
            .await
            .map_err(|_| StoreError::Task)?;
        let conn = self
            .inner
            .readers
            .lock()
            .map_err(|_| StoreError::Poisoned)?
            .pop()
            .ok_or(StoreError::Task)?;
        let inner = self.inner.clone();
        let out = tokio::task::spawn_blocking(move || {
            let r = f(&conn);
            if let Ok(mut v) = inner.readers.lock() {
                v.push(conn);
            }
            r
        })
        .await;
        match out {
            Ok(r) => {
                drop(permit);
                r.map_err(StoreError::from)
            }
            // The connection went down with the task: the pool is one smaller for good.
            Err(_) => {
                permit.forget();
                Err(StoreError::Task)
            }
        }
    }

    /// Stores an upload's metadata.
    pub async fn insert_file(&self, f: FileRecord) -> Result<(), StoreError> {
        self.write(move |c| {
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
        .await
    }

    /// An upload's metadata.
    pub async fn file(&self, id: &str) -> Result<Option<FileRecord>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| {
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
        .await
    }

    /// Which of `ids` name no upload (in the order given).
    pub async fn missing_files(&self, ids: Vec<String>) -> Result<Vec<String>, StoreError> {
        self.read(move |c| {
            let mut st = c.prepare_cached("SELECT 1 FROM files WHERE id = ?1")?;
            let mut missing = Vec::new();
            for id in ids {
                if !st.exists([&id])? {
                    missing.push(id);
                }
            }
            Ok(missing)
        })
        .await
    }

    /// Inserts `jobs` (and their batch, if `batch_id`) in one transaction. A batch's `options`
    /// are stored once, with the batch.
    pub async fn create_jobs(
        &self,
        batch_id: Option<String>,
        options: serde_json::Value,
        jobs: Vec<NewJob>,
    ) -> Result<(), StoreError> {
        let t = now();
        self.write(move |c| {
            let tx = c.transaction()?;
            let options = options.to_string();
            if let Some(b) = &batch_id {
                tx.execute(
                    "INSERT INTO batches (id, size, created_at, options) VALUES (?1, ?2, ?3, ?4)",
                    params![b, jobs.len() as i64, t, options],
                )?;
            }
            let job_options = if batch_id.is_some() { "" } else { &options };
            for j in &jobs {
                let tc = serde_json::to_string(&j.trace_context).unwrap_or_else(|_| "[]".into());
                tx.execute(
                    "INSERT INTO jobs (id, file_id, batch_id, status, options, trace_context, \
                     created_at, request_id) VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?7)",
                    params![
                        j.job_id,
                        j.file_id,
                        batch_id,
                        job_options,
                        tc,
                        t,
                        j.request_id
                    ],
                )?;
            }
            tx.commit()
        })
        .await
    }

    /// A job.
    pub async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| {
            c.query_row(
                &format!("SELECT {JOB_COLUMNS} WHERE j.id = ?1"),
                [id],
                job_from_row,
            )
            .optional()
        })
        .await
    }

    /// Claims a queued job for a worker: `queued -> running`. `None` if it is not queued.
    pub async fn claim(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let t = now();
        let id = id.to_owned();
        self.write(move |c| {
            let changed = c.execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = ?2 \
                 WHERE id = ?1 AND status = 'queued'",
                params![id, t],
            )?;
            if changed != 1 {
                return Ok(None);
            }
            c.query_row(
                &format!("SELECT {JOB_COLUMNS} WHERE j.id = ?1"),
                [id],
                job_from_row,
            )
            .optional()
        })
        .await
    }

    /// Finishes a running job; `error` `None` means success, else `(code, public message)`.
    /// False if it was not running.
    pub async fn finish(
        &self,
        id: &str,
        error: Option<(&'static str, String)>,
    ) -> Result<bool, StoreError> {
        let status = if error.is_some() {
            JobStatus::Failed
        } else {
            JobStatus::Succeeded
        };
        let t = now();
        let id = id.to_owned();
        let (code, message) = error.unzip();
        self.write(move |c| {
            c.execute(
                "UPDATE jobs SET status = ?2, error = ?3, error_code = ?4, finished_at = ?5 \
                 WHERE id = ?1 AND status = 'running'",
                params![id, status.as_str(), message, code, t],
            )
            .map(|n| n == 1)
        })
        .await
    }

    /// Puts a running job back in the queue. False if it was not running.
    pub async fn requeue(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.write(move |c| {
            c.execute(
                "UPDATE jobs SET status = 'queued', started_at = NULL \
                 WHERE id = ?1 AND status = 'running'",
                [id],
            )
            .map(|n| n == 1)
        })
        .await
    }

    /// At start: running jobs (their worker is gone) go back to queued, unless they already
    /// had [`MAX_ATTEMPTS`] (a job that kills its process must not do it forever): those fail
    /// with `interrupted`. Returns every queued job id, oldest first.
    pub async fn recover(&self) -> Result<Vec<String>, StoreError> {
        let t = now();
        self.write(move |c| {
            c.execute(
                "UPDATE jobs SET status = 'failed', error_code = 'interrupted', \
                 error = 'the job was interrupted too many times', finished_at = ?2 \
                 WHERE status = 'running' AND attempts >= ?1",
                params![MAX_ATTEMPTS, t],
            )?;
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
        .await
    }

    /// Number of jobs per status.
    pub async fn count(&self, status: JobStatus) -> Result<u64, StoreError> {
        self.read(move |c| {
            c.query_row(
                "SELECT COUNT(*) FROM jobs WHERE status = ?1",
                [status.as_str()],
                |r| r.get(0),
            )
        })
        .await
    }

    /// A batch with its jobs (without their options).
    pub async fn batch(&self, id: &str) -> Result<Option<BatchRecord>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| {
            let Some((size, created_at, finished_at)) = c
                .query_row(
                    "SELECT size, created_at, finished_at FROM batches WHERE id = ?1",
                    [&id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?
            else {
                return Ok(None);
            };
            let mut st = c.prepare(
                "SELECT id, file_id, status, error_code, error FROM jobs WHERE batch_id = ?1 \
                 ORDER BY seq",
            )?;
            let jobs = st
                .query_map([&id], |r| {
                    Ok(BatchJob {
                        job_id: r.get(0)?,
                        file_id: r.get(1)?,
                        status: JobStatus::parse(&r.get::<_, String>(2)?),
                        error_code: r.get(3)?,
                        error: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Some(BatchRecord {
                batch_id: id,
                size,
                created_at,
                finished_at,
                jobs,
            }))
        })
        .await
    }

    /// Marks the batch finished if every job is terminal and it was not marked yet; returns its
    /// size, duration and whether a job failed, exactly once.
    pub async fn finish_batch_if_done(
        &self,
        id: &str,
    ) -> Result<Option<(usize, f64, bool)>, StoreError> {
        let t = now();
        let id = id.to_owned();
        self.write(move |c| {
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
                "SELECT size, created_at, EXISTS (SELECT 1 FROM jobs WHERE batch_id = ?1 \
                 AND status = 'failed') FROM batches WHERE id = ?1",
                [&id],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)? as usize,
                        t - r.get::<_, f64>(1)?,
                        r.get::<_, bool>(2)?,
                    ))
                },
            )
            .map(Some)
        })
        .await
    }

    /// Deletes what is older than `cutoff` (Unix seconds), at most [`SWEEP_CHUNK`] rows per
    /// table: finished jobs, then batches without jobs left, then uploads no queued or running
    /// job needs. Returns what it deleted, so that the caller removes the files.
    pub async fn sweep(&self, cutoff: f64) -> Result<Swept, StoreError> {
        self.write(move |c| {
            let tx = c.transaction()?;
            let jobs = {
                let mut st = tx.prepare(
                    "DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs \
                     WHERE status IN ('succeeded', 'failed') AND finished_at < ?1 LIMIT ?2) \
                     RETURNING id, status",
                )?;
                st.query_map(params![cutoff, SWEEP_CHUNK as i64], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .filter(|(_, s)| s == "succeeded")
                .map(|(id, _)| id)
                .collect()
            };
            let batches = tx.execute(
                "DELETE FROM batches WHERE id IN (SELECT id FROM batches b WHERE created_at < ?1 \
                 AND NOT EXISTS (SELECT 1 FROM jobs WHERE batch_id = b.id) LIMIT ?2)",
                params![cutoff, SWEEP_CHUNK as i64],
            )?;
            let files = {
                let mut st = tx.prepare(
                    "DELETE FROM files WHERE id IN (SELECT id FROM files f WHERE created_at < ?1 \
                     AND NOT EXISTS (SELECT 1 FROM jobs WHERE file_id = f.id \
                                     AND status IN ('queued', 'running')) LIMIT ?2) \
                     RETURNING id, ext",
                )?;
                st.query_map(params![cutoff, SWEEP_CHUNK as i64], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?
            };
            tx.commit()?;
            Ok(Swept {
                jobs,
                batches,
                files,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str) -> NewJob {
        NewJob {
            job_id: id.into(),
            file_id: "f".into(),
            trace_context: vec![("traceparent".into(), "00-x".into())],
            request_id: Some("r-1".into()),
        }
    }

    #[tokio::test]
    async fn a_job_is_claimed_and_finished_at_most_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(&dir.path().join("db")).expect("open");
        s.create_jobs(None, serde_json::json!({"seed": 1}), vec![job("a")])
            .await
            .expect("insert");
        assert!(s.claim("a").await.expect("claim").is_some());
        assert!(s.claim("a").await.expect("claim").is_none());
        assert!(s.finish("a", None).await.expect("finish"));
        assert!(
            !s.finish("a", Some(("late", "late".into())))
                .await
                .expect("finish")
        );
        let j = s.job("a").await.expect("get").expect("exists");
        assert_eq!(j.status, JobStatus::Succeeded);
        assert_eq!(j.attempts, 1);
        assert_eq!(j.trace_context[0].0, "traceparent");
        assert_eq!(j.options, serde_json::json!({"seed": 1}));
    }

    #[tokio::test]
    async fn recovery_requeues_running_jobs_in_creation_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        {
            let s = Store::open(&path).expect("open");
            let jobs = vec![job("1"), job("2"), job("3")];
            s.create_jobs(Some("b".into()), serde_json::json!({}), jobs)
                .await
                .expect("insert");
            s.claim("1").await.expect("claim");
            s.claim("2").await.expect("claim");
            s.finish("2", Some(("x", "boom".into())))
                .await
                .expect("finish");
        }
        let s = Store::open(&path).expect("reopen");
        assert_eq!(s.recover().await.expect("recover"), vec!["1", "3"]);
        assert!(s.finish_batch_if_done("b").await.expect("batch").is_none());
        for id in ["1", "3"] {
            s.claim(id).await.expect("claim");
            s.finish(id, None).await.expect("finish");
        }
        let (size, _, failed) = s
            .finish_batch_if_done("b")
            .await
            .expect("batch")
            .expect("done");
        assert_eq!(size, 3);
        assert!(failed, "job 2 failed");
        assert!(s.finish_batch_if_done("b").await.expect("batch").is_none());
    }

    #[tokio::test]
    async fn a_job_that_keeps_dying_with_its_process_fails_instead_of_running_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let s = Store::open(&path).expect("open");
        s.create_jobs(None, serde_json::json!({}), vec![job("p")])
            .await
            .expect("insert");
        for round in 1..=MAX_ATTEMPTS {
            assert!(
                s.claim("p").await.expect("claim").is_some(),
                "round {round}"
            );
            // The process dies here: the job stays `running`; the next start recovers it.
            let queued = s.recover().await.expect("recover");
            if round < MAX_ATTEMPTS {
                assert_eq!(queued, vec!["p"], "round {round}");
            } else {
                assert!(queued.is_empty(), "round {round}: {queued:?}");
            }
        }
        let j = s.job("p").await.expect("get").expect("exists");
        assert_eq!(j.status, JobStatus::Failed);
        assert_eq!(j.error_code.as_deref(), Some("interrupted"));
    }

    #[tokio::test]
    async fn a_batch_stores_its_options_once_and_its_view_leaves_them_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let s = Store::open(&path).expect("open");
        let big = "x".repeat(100_000);
        let jobs: Vec<NewJob> = (0..20).map(|i| job(&format!("j{i}"))).collect();
        s.create_jobs(Some("b".into()), serde_json::json!({"big": big}), jobs)
            .await
            .expect("insert");
        let stored: i64 = s
            .read(|c| {
                c.query_row(
                    "SELECT SUM(LENGTH(options)) FROM jobs WHERE batch_id = 'b'",
                    [],
                    |r| r.get(0),
                )
            })
            .await
            .expect("sum");
        assert_eq!(stored, 0, "jobs of a batch hold no copy of its options");
        let j = s.job("j7").await.expect("get").expect("exists");
        assert_eq!(j.options["big"].as_str().map(str::len), Some(100_000));
        let b = s.batch("b").await.expect("batch").expect("exists");
        assert_eq!(b.jobs.len(), 20);
        let view = serde_json::to_string(&b).expect("json");
        assert!(
            view.len() < 10_000,
            "the batch view is small: {}",
            view.len()
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_slow_write_blocks_neither_the_runtime_nor_readers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(&dir.path().join("db")).expect("open");
        let w = s.clone();
        let slow = tokio::spawn(async move {
            w.write(|_| {
                std::thread::sleep(std::time::Duration::from_millis(800));
                Ok(())
            })
            .await
        });
        // Let the write start (on the blocking pool), then read on the only runtime thread.
        tokio::task::yield_now().await;
        let start = std::time::Instant::now();
        assert_eq!(s.count(JobStatus::Queued).await.expect("count"), 0);
        let ticked = tokio::time::timeout(
            std::time::Duration::from_millis(400),
            tokio::time::sleep(std::time::Duration::from_millis(10)),
        )
        .await;
        assert!(ticked.is_ok(), "the runtime thread kept running");
        assert!(
            start.elapsed() < std::time::Duration::from_millis(400),
            "the read did not wait for the write: {:?}",
            start.elapsed()
        );
        slow.await.expect("join").expect("write");
    }

    #[tokio::test]
    async fn a_sweep_deletes_old_finished_work_but_keeps_what_queued_jobs_need() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(&dir.path().join("db")).expect("open");
        for (id, ext) in [("f-old", "png"), ("f-busy", "png")] {
            s.insert_file(FileRecord {
                id: id.into(),
                filename: "a.png".into(),
                content_type: "image/png".into(),
                ext: ext.into(),
                size: 1,
                created_at: 0.0,
            })
            .await
            .expect("file");
        }
        let mut done = job("done");
        done.file_id = "f-old".into();
        let mut waiting = job("waiting");
        waiting.file_id = "f-busy".into();
        s.create_jobs(Some("b".into()), serde_json::json!({}), vec![done])
            .await
            .expect("insert");
        s.create_jobs(None, serde_json::json!({}), vec![waiting])
            .await
            .expect("insert");
        s.claim("done").await.expect("claim");
        s.finish("done", None).await.expect("finish");
        // Nothing is old enough yet.
        assert_eq!(s.sweep(0.0).await.expect("sweep"), Swept::default());
        let swept = s.sweep(now() + 10.0).await.expect("sweep");
        assert_eq!(swept.jobs, vec!["done"]);
        assert_eq!(swept.batches, 1);
        assert_eq!(swept.files, vec![("f-old".to_owned(), "png".to_owned())]);
        assert!(s.job("done").await.expect("get").is_none());
        assert!(s.job("waiting").await.expect("get").is_some());
        assert!(
            s.file("f-busy").await.expect("get").is_some(),
            "a queued job needs it"
        );
    }
}
