//! What the store hands out and takes in: uploads, jobs, batches.

use serde::Serialize;

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
    pub(super) fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
        }
    }

    pub(super) fn parse(s: &str) -> JobStatus {
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
