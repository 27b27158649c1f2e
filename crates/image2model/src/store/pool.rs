//! The connections: one writer and a few readers, every query on tokio's blocking pool.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use super::StoreError;
use super::schema::{SCHEMA, add_missing_columns};

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
    pub(super) async fn write<T: Send + 'static>(
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
    pub(super) async fn read<T: Send + 'static>(
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::JobStatus;

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
}
