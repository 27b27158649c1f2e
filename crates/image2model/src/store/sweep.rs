//! Retention: deleting old finished work in short transactions.

use rusqlite::params;

use super::{Store, StoreError};

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

impl Store {
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
    use crate::store::{FileRecord, job, now};

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
