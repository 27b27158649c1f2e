//! Jobs and their batches: creation, the `queued -> running -> succeeded | failed` transitions,
//! recovery at start, and a batch's view and completion.

use rusqlite::{OptionalExtension, params};

use super::schema::job_by_id;
use super::{BatchJob, BatchRecord, JobRecord, JobStatus, NewJob, Store, StoreError, now};

/// Attempts after which a job that keeps dying with its process (crash, kill) is failed
/// instead of requeued at start.
pub const MAX_ATTEMPTS: u32 = 3;

impl Store {
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
        self.read(move |c| job_by_id(c, &id)).await
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
            job_by_id(c, &id)
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
                    // A batch whose jobs have all ended (the condition `finish_batch_if_done`
                    // marks it under) has ended when its last job did, also before the worker
                    // has written that down: a reader never sees every job ended and no
                    // `finished_at`.
                    "SELECT size, created_at, COALESCE(finished_at, \
                       CASE WHEN NOT EXISTS (SELECT 1 FROM jobs WHERE batch_id = ?1 \
                                             AND status IN ('queued', 'running')) \
                       THEN (SELECT MAX(finished_at) FROM jobs WHERE batch_id = ?1) END) \
                     FROM batches WHERE id = ?1",
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

    /// Marks the batch finished, at the time its last job finished, if every job is terminal and
    /// it was not marked yet; returns its size, duration and whether a job failed, exactly once.
    pub async fn finish_batch_if_done(
        &self,
        id: &str,
    ) -> Result<Option<(usize, f64, bool)>, StoreError> {
        let t = now();
        let id = id.to_owned();
        self.write(move |c| {
            let n = c.execute(
                "UPDATE batches SET finished_at = \
                   COALESCE((SELECT MAX(finished_at) FROM jobs WHERE batch_id = ?1), ?2) \
                 WHERE id = ?1 AND finished_at IS NULL \
                 AND NOT EXISTS (SELECT 1 FROM jobs WHERE batch_id = ?1 \
                                 AND status IN ('queued', 'running'))",
                params![id, t],
            )?;
            if n == 0 {
                return Ok(None);
            }
            c.query_row(
                "SELECT size, finished_at - created_at, EXISTS (SELECT 1 FROM jobs \
                 WHERE batch_id = ?1 AND status = 'failed') FROM batches WHERE id = ?1",
                [&id],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)? as usize,
                        r.get::<_, f64>(1)?,
                        r.get::<_, bool>(2)?,
                    ))
                },
            )
            .map(Some)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::job;

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
    async fn a_batch_has_ended_when_its_last_job_ended_before_and_after_it_is_marked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(&dir.path().join("db")).expect("open");
        s.create_jobs(
            Some("b".into()),
            serde_json::json!({}),
            vec![job("x"), job("y")],
        )
        .await
        .expect("insert");
        let finished_at = |s: &Store| {
            let s = s.clone();
            async move {
                s.batch("b")
                    .await
                    .expect("batch")
                    .expect("exists")
                    .finished_at
            }
        };
        s.claim("x").await.expect("claim");
        s.finish("x", None).await.expect("finish");
        assert_eq!(finished_at(&s).await, None, "job y has not ended");
        s.claim("y").await.expect("claim");
        s.finish("y", Some(("e", "failed".into())))
            .await
            .expect("finish");
        let last = s.job("y").await.expect("get").expect("exists").finished_at;
        assert!(last.is_some());
        // Every job has ended, the worker has not marked the batch yet: it reads as ended anyway.
        assert_eq!(finished_at(&s).await, last);
        let (_, duration, failed) = s
            .finish_batch_if_done("b")
            .await
            .expect("batch")
            .expect("done");
        assert!(failed);
        assert_eq!(finished_at(&s).await, last, "marked at its last job's end");
        let created = s
            .batch("b")
            .await
            .expect("batch")
            .expect("exists")
            .created_at;
        assert_eq!(duration, last.expect("ended") - created);
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
}
