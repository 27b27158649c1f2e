//! The tables, the columns added since the first release, and a job read from a row.

use rusqlite::{Connection, OptionalExtension};

use super::records::{JobRecord, JobStatus};

pub(super) const SCHEMA: &str = "
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

/// The job `id`, if there is one.
pub(super) fn job_by_id(c: &Connection, id: &str) -> rusqlite::Result<Option<JobRecord>> {
    c.query_row(
        &format!("SELECT {JOB_COLUMNS} WHERE j.id = ?1"),
        [id],
        job_from_row,
    )
    .optional()
}

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

pub(super) fn add_missing_columns(c: &Connection) -> rusqlite::Result<()> {
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
