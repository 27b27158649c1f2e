//! The HTTP API. Every error is `{"error": {"code", "message"}}`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::Router;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Extension, Multipart, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::app::Shared;
use crate::error::ApiError;
use crate::files::ImageKind;
use crate::store::{FileRecord, JobStatus, NewJob};
use crate::worker::current_trace_context;

type S = State<Arc<Shared>>;

/// The API routes (without the HTTP layer; [`crate::App::router`] adds it).
pub fn router(shared: Arc<Shared>) -> Router {
    // Room for the multipart framing around the file.
    let upload_limit = shared.cfg.max_upload_bytes.saturating_add(16 * 1024);
    Router::new()
        .route(
            "/api/v1/upload",
            post(upload).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/api/v1/models", post(create_model))
        .route("/api/v1/batches", post(create_batch))
        .route("/api/v1/jobs/{job_id}", get(get_job))
        .route("/api/v1/batches/{batch_id}", get(get_batch))
        .route("/api/v1/models/{job_id}/download", get(download))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(shared)
}

async fn not_found() -> ApiError {
    ApiError::NotFound {
        kind: "route",
        id: "for this path".into(),
    }
}

async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(crate::error::error_body(
            "method_not_allowed",
            "method not allowed on this route",
        )),
    )
        .into_response()
}

async fn upload(
    State(s): S,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let mut multipart = multipart.map_err(|_| {
        ApiError::UnsupportedMediaType(
            "expected a multipart/form-data body with a `file` field".into(),
        )
    })?;
    let limit = s.cfg.max_upload_bytes;
    let multipart_err = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge { limit }
        } else {
            ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text()))
        }
    };
    while let Some(field) = multipart.next_field().await.map_err(multipart_err)? {
        if field.name() != Some("file") {
            continue;
        }
        let filename = field.file_name().unwrap_or("upload").to_owned();
        let bytes = field.bytes().await.map_err(multipart_err)?;
        if bytes.is_empty() {
            return Err(ApiError::BadRequest("the file is empty".into()));
        }
        if bytes.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        let kind = ImageKind::sniff(&bytes).ok_or_else(|| {
            ApiError::UnsupportedMediaType(format!("{filename:?} is not a PNG, JPEG or WebP image"))
        })?;
        let id = uuid::Uuid::now_v7().to_string();
        s.data
            .write_atomic(&s.data.upload_path(&id, kind.extension()), &bytes)?;
        let rec = FileRecord {
            id: id.clone(),
            filename,
            content_type: kind.mime().into(),
            ext: kind.extension().into(),
            size: bytes.len() as u64,
            created_at: crate::store::now(),
        };
        s.store.insert_file(&rec)?;
        tracing::info!(file.id = %id, size = rec.size, content_type = %rec.content_type, "image uploaded");
        return Ok((
            StatusCode::CREATED,
            Json(serde_json::json!({
                "file_id": id,
                "filename": rec.filename,
                "content_type": rec.content_type,
                "size": rec.size,
            })),
        )
            .into_response());
    }
    Err(ApiError::BadRequest("no `file` field in the form".into()))
}

fn json_error(r: JsonRejection) -> ApiError {
    match r {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::UnsupportedMediaType("expected Content-Type: application/json".into())
        }
        other => ApiError::BadRequest(other.body_text()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateModel {
    file_id: String,
    #[serde(default)]
    options: Option<serde_json::Map<String, serde_json::Value>>,
}

fn check_accepting(s: &Shared) -> Result<(), ApiError> {
    if s.accepting.load(Ordering::SeqCst) {
        Ok(())
    } else {
        Err(ApiError::Unavailable("the service is shutting down".into()))
    }
}

type ReqId = Option<Extension<otelbricks_http::RequestId>>;

fn req_id(r: ReqId) -> Option<String> {
    r.map(|Extension(id)| id.as_str().to_owned())
}

async fn create_model(
    State(s): S,
    rid: ReqId,
    body: Result<Json<CreateModel>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(json_error)?;
    check_accepting(&s)?;
    if s.store.file(&req.file_id)?.is_none() {
        return Err(ApiError::NotFound {
            kind: "file",
            id: req.file_id,
        });
    }
    let job_id = uuid::Uuid::now_v7().to_string();
    let job = NewJob {
        job_id: job_id.clone(),
        file_id: req.file_id,
        options: serde_json::Value::Object(req.options.unwrap_or_default()),
        trace_context: current_trace_context(),
        request_id: req_id(rid),
    };
    s.store.create_jobs(None, std::slice::from_ref(&job))?;
    s.enqueue([job_id.clone()]);
    tracing::info!(job.id = %job_id, "model generation queued");
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"job_id": job_id, "status": "queued"})),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBatch {
    file_ids: Vec<String>,
    #[serde(default)]
    options: Option<serde_json::Map<String, serde_json::Value>>,
}

async fn create_batch(
    State(s): S,
    rid: ReqId,
    body: Result<Json<CreateBatch>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(json_error)?;
    check_accepting(&s)?;
    let max = s.cfg.max_batch_size as usize;
    if req.file_ids.is_empty() || req.file_ids.len() > max {
        return Err(ApiError::Unprocessable(format!(
            "a batch holds 1 to {max} files, got {}",
            req.file_ids.len()
        )));
    }
    for f in &req.file_ids {
        if s.store.file(f)?.is_none() {
            return Err(ApiError::NotFound {
                kind: "file",
                id: f.clone(),
            });
        }
    }
    let batch_id = uuid::Uuid::now_v7().to_string();
    let options = serde_json::Value::Object(req.options.unwrap_or_default());
    let tc = current_trace_context();
    let rid = req_id(rid);
    let jobs: Vec<NewJob> = req
        .file_ids
        .into_iter()
        .map(|file_id| NewJob {
            job_id: uuid::Uuid::now_v7().to_string(),
            file_id,
            options: options.clone(),
            trace_context: tc.clone(),
            request_id: rid.clone(),
        })
        .collect();
    s.store.create_jobs(Some(&batch_id), &jobs)?;
    let job_ids: Vec<String> = jobs.into_iter().map(|j| j.job_id).collect();
    s.enqueue(job_ids.iter().cloned());
    tracing::info!(batch.id = %batch_id, size = job_ids.len(), "batch queued");
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"batch_id": batch_id, "job_ids": job_ids})),
    )
        .into_response())
}

fn job_json(j: &crate::store::JobRecord) -> serde_json::Value {
    let mut v = serde_json::to_value(j).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        let run = match (j.started_at, j.finished_at) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        o.insert("run_seconds".into(), serde_json::json!(run));
        if j.status == JobStatus::Succeeded {
            o.insert(
                "download_url".into(),
                serde_json::json!(format!("/api/v1/models/{}/download", j.job_id)),
            );
        }
    }
    v
}

async fn get_job(
    State(s): S,
    Path(job_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let job = s.store.job(&job_id)?.ok_or(ApiError::NotFound {
        kind: "job",
        id: job_id,
    })?;
    Ok(Json(job_json(&job)))
}

async fn get_batch(
    State(s): S,
    Path(batch_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let b = s.store.batch(&batch_id)?.ok_or(ApiError::NotFound {
        kind: "batch",
        id: batch_id,
    })?;
    let count = |st: JobStatus| b.jobs.iter().filter(|j| j.status == st).count();
    let done = b.jobs.iter().all(|j| j.status.is_terminal());
    Ok(Json(serde_json::json!({
        "batch_id": b.batch_id,
        "size": b.size,
        "status": if done { "completed" } else { "running" },
        "created_at": b.created_at,
        "finished_at": b.finished_at,
        "counts": {
            "queued": count(JobStatus::Queued),
            "running": count(JobStatus::Running),
            "succeeded": count(JobStatus::Succeeded),
            "failed": count(JobStatus::Failed),
        },
        "jobs": b.jobs.iter().map(|j| serde_json::json!({
            "job_id": j.job_id, "file_id": j.file_id, "status": j.status, "error": j.error,
        })).collect::<Vec<_>>(),
    })))
}

async fn download(State(s): S, Path(job_id): Path<String>) -> Result<Response, ApiError> {
    let job = s.store.job(&job_id)?.ok_or_else(|| ApiError::NotFound {
        kind: "job",
        id: job_id.clone(),
    })?;
    if job.status != JobStatus::Succeeded {
        return Err(ApiError::Conflict(format!(
            "the model of job {job_id} is not available (status {})",
            serde_json::to_value(job.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        )));
    }
    let bytes = s.data.read(&s.data.result_path(&job_id))?;
    Ok((
        [
            (header::CONTENT_TYPE, "model/gltf-binary".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{job_id}.glb\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

async fn ready(State(s): S) -> Response {
    let storage = s.data.probe_writable().is_ok() && s.store.count(JobStatus::Queued).is_ok();
    let workers = s.workers_alive.load(Ordering::SeqCst);
    let accepting = s.accepting.load(Ordering::SeqCst);
    let ok = storage && workers && accepting;
    let body = serde_json::json!({
        "status": if ok { "ready" } else { "not_ready" },
        "checks": {"storage": storage, "workers": workers, "accepting": accepting},
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
