//! The HTTP API. Every error is `{"error": {"code", "message", "request_id"}}`.
//!
//! Limits (see [`crate::limits`]): API routes are rate limited per client address (429 +
//! `Retry-After`); creating jobs costs job-quota tokens (429) and queue room (503 +
//! `Retry-After`); `options` and file names are bounded (413); uploads stream to disk, bounded
//! by size (413) and, through the server, by time (408). `/health` and `/ready` are never
//! limited.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Extension, Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tokio::io::AsyncWriteExt as _;

use crate::app::Shared;
use crate::error::{ApiError, JOB_QUOTA, REQUEST_RATE};
use crate::files::ImageKind;
use crate::limits::{ECHO_MAX, bounded, client_of};
use crate::store::{FileRecord, JobStatus, NewJob};
use crate::worker::current_trace_context;

type S = State<Arc<Shared>>;

/// The API routes (without the HTTP layer; [`crate::App::router`] adds it).
pub fn router(shared: Arc<Shared>) -> Router {
    // Room for the multipart framing around the file.
    let upload_limit = shared.cfg.max_upload_bytes.saturating_add(16 * 1024);
    let json_limit = json_body_limit(&shared);
    Router::new()
        .route(
            "/api/v1/upload",
            post(upload).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route(
            "/api/v1/models",
            post(create_model).layer(DefaultBodyLimit::max(json_limit)),
        )
        .route(
            "/api/v1/batches",
            post(create_batch).layer(DefaultBodyLimit::max(json_limit)),
        )
        .route("/api/v1/jobs/{job_id}", get(get_job))
        .route("/api/v1/batches/{batch_id}", get(get_batch))
        .route("/api/v1/models/{job_id}/download", get(download))
        .route_layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            rate_limit,
        ))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(shared)
}

/// Middleware: one token of the client's request bucket per API request.
async fn rate_limit(State(s): S, req: Request, next: Next) -> Response {
    match s.limiter.check(client_of(&req), 1) {
        Ok(()) => next.run(req).await,
        Err(wait) => ApiError::TooManyRequests {
            what: REQUEST_RATE,
            retry_after: wait,
        }
        .into_response(),
    }
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

/// Whether the body failed because the client did not send it in time.
fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Removes the partial upload unless disarmed (every early return cleans up).
struct PartFile(Option<std::path::PathBuf>);

impl Drop for PartFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
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
    let body_timeout = s.cfg.limits.body_timeout;
    let multipart_err = |e: MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge { limit }
        } else if is_body_timeout(&e) {
            ApiError::BodyTimeout(body_timeout)
        } else {
            ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text()))
        }
    };
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_err)? {
        if field.name() != Some("file") {
            continue;
        }
        let filename = field.file_name().unwrap_or("upload").to_owned();
        let max_name = s.cfg.limits.max_filename_bytes as usize;
        if filename.len() > max_name {
            return Err(ApiError::TooLarge {
                what: "the file name",
                limit: max_name,
                unit: "bytes",
                reason: "filename_too_long",
            });
        }
        check_disk(&s)?;
        let id = uuid::Uuid::now_v7().to_string();
        let part_path = s.data.upload_part_path(&id);
        let mut file = tokio::fs::File::create(&part_path)
            .await
            .map_err(|e| ApiError::Internal(format!("create {}: {e}", part_path.display())))?;
        let mut part = PartFile(Some(part_path.clone()));
        let mut size = 0usize;
        let mut head: Vec<u8> = Vec::with_capacity(16);
        let mut kind = None;
        let not_an_image = || {
            ApiError::UnsupportedMediaType(format!(
                "{:?} is not a PNG, JPEG or WebP image",
                bounded(&filename, ECHO_MAX)
            ))
        };
        while let Some(chunk) = field.chunk().await.map_err(multipart_err)? {
            size = size.saturating_add(chunk.len());
            if size > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            if kind.is_none() {
                head.extend_from_slice(&chunk[..chunk.len().min(16 - head.len().min(16))]);
                kind = ImageKind::sniff(&head);
                if kind.is_none() && head.len() >= 12 {
                    return Err(not_an_image());
                }
            }
            file.write_all(&chunk)
                .await
                .map_err(|e| ApiError::Internal(format!("write {}: {e}", part_path.display())))?;
        }
        if size == 0 {
            return Err(ApiError::BadRequest("the file is empty".into()));
        }
        let kind = kind.ok_or_else(not_an_image)?;
        file.flush()
            .await
            .map_err(|e| ApiError::Internal(format!("write {}: {e}", part_path.display())))?;
        drop(file);
        let final_path = s.data.upload_path(&id, kind.extension());
        tokio::fs::rename(&part_path, &final_path)
            .await
            .map_err(|e| ApiError::Internal(format!("rename {}: {e}", final_path.display())))?;
        part.0 = Some(final_path);
        let rec = FileRecord {
            id: id.clone(),
            filename,
            content_type: kind.mime().into(),
            ext: kind.extension().into(),
            size: size as u64,
            created_at: crate::store::now(),
        };
        s.store.insert_file(rec.clone()).await?;
        part.0 = None;
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

/// Refuses uploads when the data directory's file system is almost full.
fn check_disk(s: &Shared) -> Result<(), ApiError> {
    match s.data.available_space() {
        Ok(free) if free < s.cfg.limits.min_free_disk_bytes => {
            tracing::warn!(
                free_bytes = free,
                min_free_bytes = s.cfg.limits.min_free_disk_bytes,
                "upload refused: the data directory is short of space"
            );
            Err(ApiError::InsufficientStorage)
        }
        _ => Ok(()),
    }
}

/// Largest job or batch request: the options and room for the file ids and the JSON framing.
fn json_body_limit(s: &Shared) -> usize {
    s.cfg.limits.max_options_bytes.saturating_add(64 * 1024)
}

fn json_error(s: &Shared, r: JsonRejection) -> ApiError {
    match r {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::UnsupportedMediaType("expected Content-Type: application/json".into())
        }
        JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::TooLarge {
                what: "the request body",
                limit: json_body_limit(s),
                unit: "bytes",
                reason: "payload_too_large",
            }
        }
        other if is_body_timeout(&other) => ApiError::BodyTimeout(s.cfg.limits.body_timeout),
        other => ApiError::BadRequest(other.body_text()),
    }
}

type Options = Option<serde_json::Map<String, serde_json::Value>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateModel {
    file_id: String,
    #[serde(default)]
    options: Options,
}

fn check_accepting(s: &Shared) -> Result<(), ApiError> {
    if s.accepting.load(Ordering::SeqCst) {
        Ok(())
    } else {
        Err(ApiError::Unavailable("the service is shutting down".into()))
    }
}

/// The options object, within its size and key limits.
fn check_options(s: &Shared, options: Options) -> Result<serde_json::Value, ApiError> {
    let options = options.unwrap_or_default();
    let l = &s.cfg.limits;
    if options.len() > l.max_options_keys {
        return Err(ApiError::TooLarge {
            what: "options",
            limit: l.max_options_keys,
            unit: "keys",
            reason: "options_too_large",
        });
    }
    let v = serde_json::Value::Object(options);
    if v.to_string().len() > l.max_options_bytes {
        return Err(ApiError::TooLarge {
            what: "options",
            limit: l.max_options_bytes,
            unit: "bytes",
            reason: "options_too_large",
        });
    }
    Ok(v)
}

/// Takes `n` job-quota tokens of the client and reserves room for `n` jobs in the queue.
fn admit_jobs(s: &Shared, client: IpAddr, n: usize) -> Result<(), ApiError> {
    let n32 = u32::try_from(n).unwrap_or(u32::MAX);
    s.job_limiter
        .check(client, n32)
        .map_err(|wait| ApiError::TooManyRequests {
            what: JOB_QUOTA,
            retry_after: wait,
        })?;
    if !s.reserve_queue(n as u64) {
        return Err(ApiError::QueueFull {
            limit: s.cfg.limits.max_queued_jobs,
            retry_after: Duration::from_secs(5),
        });
    }
    Ok(())
}

type ReqId = Option<Extension<otelbricks_http::RequestId>>;

/// The request id (a client may have chosen it): stored with the job and set on its span, so
/// bounded.
fn req_id(r: ReqId) -> Option<String> {
    r.map(|Extension(id)| bounded(id.as_str(), ECHO_MAX).into_owned())
}

type Peer = Option<Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>;

fn peer_key(p: Peer) -> IpAddr {
    p.map(|Extension(c)| crate::limits::client_key(c.0.ip()))
        .unwrap_or(crate::limits::UNKNOWN_CLIENT)
}

async fn create_model(
    State(s): S,
    rid: ReqId,
    peer: Peer,
    body: Result<Json<CreateModel>, JsonRejection>,
) -> Result<Response, ApiError> {
    let client = peer_key(peer);
    let Json(req) = body.map_err(|r| json_error(&s, r))?;
    check_accepting(&s)?;
    let options = check_options(&s, req.options)?;
    if s.store.file(&req.file_id).await?.is_none() {
        return Err(ApiError::NotFound {
            kind: "file",
            id: req.file_id,
        });
    }
    admit_jobs(&s, client, 1)?;
    let job_id = uuid::Uuid::now_v7().to_string();
    let job = NewJob {
        job_id: job_id.clone(),
        file_id: req.file_id,
        trace_context: current_trace_context(),
        request_id: req_id(rid),
    };
    if let Err(e) = s.store.create_jobs(None, options, vec![job]).await {
        s.release_queue(1);
        return Err(e.into());
    }
    s.enqueue_reserved([job_id.clone()]);
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
    options: Options,
}

async fn create_batch(
    State(s): S,
    rid: ReqId,
    peer: Peer,
    body: Result<Json<CreateBatch>, JsonRejection>,
) -> Result<Response, ApiError> {
    let client = peer_key(peer);
    let Json(req) = body.map_err(|r| json_error(&s, r))?;
    check_accepting(&s)?;
    let max = s.cfg.max_batch_size as usize;
    if req.file_ids.is_empty() || req.file_ids.len() > max {
        return Err(ApiError::Unprocessable(format!(
            "a batch holds 1 to {max} files, got {}",
            req.file_ids.len()
        )));
    }
    let options = check_options(&s, req.options)?;
    if let Some(f) = s
        .store
        .missing_files(req.file_ids.clone())
        .await?
        .into_iter()
        .next()
    {
        return Err(ApiError::NotFound {
            kind: "file",
            id: f,
        });
    }
    let n = req.file_ids.len();
    admit_jobs(&s, client, n)?;
    let batch_id = uuid::Uuid::now_v7().to_string();
    let tc = current_trace_context();
    let rid = req_id(rid);
    let jobs: Vec<NewJob> = req
        .file_ids
        .into_iter()
        .map(|file_id| NewJob {
            job_id: uuid::Uuid::now_v7().to_string(),
            file_id,
            trace_context: tc.clone(),
            request_id: rid.clone(),
        })
        .collect();
    let job_ids: Vec<String> = jobs.iter().map(|j| j.job_id.clone()).collect();
    if let Err(e) = s
        .store
        .create_jobs(Some(batch_id.clone()), options, jobs)
        .await
    {
        s.release_queue(n as u64);
        return Err(e.into());
    }
    s.enqueue_reserved(job_ids.iter().cloned());
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

/// Ids are UUIDs: anything else names nothing, without a database query.
fn looks_like_id(id: &str) -> bool {
    id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

async fn get_job(
    State(s): S,
    Path(job_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let job = if looks_like_id(&job_id) {
        s.store.job(&job_id).await?
    } else {
        None
    };
    let job = job.ok_or(ApiError::NotFound {
        kind: "job",
        id: job_id,
    })?;
    Ok(Json(job_json(&job)))
}

async fn get_batch(
    State(s): S,
    Path(batch_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let b = if looks_like_id(&batch_id) {
        s.store.batch(&batch_id).await?
    } else {
        None
    };
    let b = b.ok_or(ApiError::NotFound {
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
        "jobs": b.jobs,
    })))
}

async fn download(State(s): S, Path(job_id): Path<String>) -> Result<Response, ApiError> {
    let job = if looks_like_id(&job_id) {
        s.store.job(&job_id).await?
    } else {
        None
    };
    let job = job.ok_or_else(|| ApiError::NotFound {
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
    let bytes = s.data.read(&s.data.result_path(&job_id)).await?;
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
    let data = s.data.clone();
    let writable = tokio::task::spawn_blocking(move || data.probe_writable().is_ok())
        .await
        .unwrap_or(false);
    let storage = writable && s.store.count(JobStatus::Queued).await.is_ok();
    let free = s.data.available_space().ok();
    let disk = free.is_some_and(|f| f >= s.cfg.limits.min_free_disk_bytes);
    let workers = s.workers_alive.load(Ordering::SeqCst);
    let accepting = s.accepting.load(Ordering::SeqCst);
    let ok = storage && disk && workers && accepting;
    let body = serde_json::json!({
        "status": if ok { "ready" } else { "not_ready" },
        "checks": {
            "storage": storage, "disk": disk, "workers": workers, "accepting": accepting,
        },
        "free_disk_bytes": free,
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
