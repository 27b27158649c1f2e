//! Typed errors of the API, rendered as `{"error": {"code", "message", "request_id"}}`.
//!
//! A 5xx answer never shows internals: its message is fixed per code, and the detail (a path,
//! a database error) goes to the log line and the request's span, found by the `request_id`
//! of the body. Client-controlled text echoed in a message (an id, a file name) is cut to
//! [`ECHO_MAX`] bytes, and every message to [`MESSAGE_MAX`].

use std::time::Duration;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::limits::{ECHO_MAX, bounded, retry_after_secs};

/// Longest error message in a response or a log field.
pub const MESSAGE_MAX: usize = 512;

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (bad JSON, missing field, bad multipart).
    #[error("{0}")]
    BadRequest(String),
    /// The body is not what the route accepts (content type, non-image bytes).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The upload is larger than the limit.
    #[error("file exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A part of the request is larger than its limit (`options`, the file name).
    #[error("{what} exceeds the limit of {limit} {unit}")]
    TooLarge {
        /// What: `options`, `the file name`.
        what: &'static str,
        /// The limit.
        limit: usize,
        /// `bytes`, `keys`.
        unit: &'static str,
        /// The `reason` counted in `requests_rejected_total`.
        reason: &'static str,
    },
    /// The id names nothing.
    #[error("{kind} {} not found", bounded(id, ECHO_MAX))]
    NotFound {
        /// `file`, `job`, `batch`, `model`.
        kind: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The request is valid but cannot be done now (e.g. the model is not ready yet).
    #[error("{0}")]
    Conflict(String),
    /// A semantic validation failure (empty or oversized batch).
    #[error("{0}")]
    Unprocessable(String),
    /// The client sent its body too slowly.
    #[error("the request body was not received within {}", humantime::format_duration(*.0))]
    BodyTimeout(Duration),
    /// The client exceeded its request rate or job quota.
    #[error("{what}; retry in {} s", retry_after_secs(*retry_after))]
    TooManyRequests {
        /// What was exceeded.
        what: &'static str,
        /// When to retry.
        retry_after: Duration,
    },
    /// The job queue is full.
    #[error("the job queue is full ({limit} jobs); retry in {} s", retry_after_secs(*retry_after))]
    QueueFull {
        /// The queue bound.
        limit: u32,
        /// When to retry.
        retry_after: Duration,
    },
    /// The service is shutting down or not ready.
    #[error("{0}")]
    Unavailable(String),
    /// The data directory's file system is almost full.
    #[error("the service is short of disk space")]
    InsufficientStorage,
    /// Storage failed; the detail is logged, never answered.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } | ApiError::TooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::QueueFull { .. }
            | ApiError::Unavailable(_)
            | ApiError::InsufficientStorage => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::PayloadTooLarge { .. } | ApiError::TooLarge { .. } => "payload_too_large",
            ApiError::NotFound { .. } => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unprocessable(_) => "validation_error",
            ApiError::BodyTimeout(_) => "request_timeout",
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::QueueFull { .. } => "queue_full",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::InsufficientStorage => "insufficient_storage",
            ApiError::Internal(_) => "internal_error",
        }
    }

    /// The `reason` of `requests_rejected_total` when a limit refused the request.
    pub fn limit_reason(&self) -> Option<&'static str> {
        match self {
            ApiError::PayloadTooLarge { .. } => Some("payload_too_large"),
            ApiError::TooLarge { reason, .. } => Some(reason),
            ApiError::BodyTimeout(_) => Some("body_timeout"),
            ApiError::TooManyRequests { what, .. } if *what == JOB_QUOTA => Some("job_quota"),
            ApiError::TooManyRequests { .. } => Some("rate_limited"),
            ApiError::QueueFull { .. } => Some("queue_full"),
            ApiError::InsufficientStorage => Some("disk_full"),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::TooManyRequests { retry_after, .. }
            | ApiError::QueueFull { retry_after, .. } => Some(*retry_after),
            ApiError::InsufficientStorage => Some(Duration::from_secs(60)),
            _ => None,
        }
    }

    /// The message a client sees: fixed for 5xx (but the rate and queue answers), bounded.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Internal(_) => "internal error; quote the request_id to the operator".into(),
            other => bounded(&other.to_string(), MESSAGE_MAX).into_owned(),
        }
    }
}

/// `what` of the job-quota [`ApiError::TooManyRequests`].
pub const JOB_QUOTA: &str = "job quota exceeded";
/// `what` of the request-rate [`ApiError::TooManyRequests`].
pub const REQUEST_RATE: &str = "request rate exceeded";

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<crate::files::FileError> for ApiError {
    fn from(e: crate::files::FileError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// The JSON error body.
pub fn error_body(code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({"error": {"code": code, "message": message}})
}

/// Marks an error response so that [`with_request_id`] adds the request id to its body.
#[derive(Debug, Clone)]
struct ErrorInfo {
    code: &'static str,
    message: String,
    reason: Option<&'static str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = bounded(&self.to_string(), MESSAGE_MAX).into_owned();
        if status.is_server_error() {
            tracing::error!(error = %detail, error_type = self.code(), "request failed");
        } else {
            tracing::info!(error = %detail, error_type = self.code(), "request rejected");
        }
        let info = ErrorInfo {
            code: self.code(),
            message: self.public_message(),
            reason: self.limit_reason(),
        };
        let mut resp = (status, Json(error_body(info.code, &info.message))).into_response();
        if let Some(wait) = self.retry_after()
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs(wait).to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp.extensions_mut().insert(info);
        resp
    }
}

/// Middleware (inside the HTTP server layer) finishing every [`ApiError`] answer: counts a
/// refusal by a limit in `requests_rejected_total{reason}`, and adds the request's id (set by
/// the server layer) to the body as `error.request_id`, so that a client can quote it and an
/// operator find the log line.
pub async fn finish_errors(
    State(metrics): State<crate::metrics::Metrics>,
    req: Request,
    next: Next,
) -> Response {
    let rid = req
        .extensions()
        .get::<otelbricks_http::RequestId>()
        .map(|r| bounded(r.as_str(), ECHO_MAX).into_owned());
    let resp = next.run(req).await;
    let Some(info) = resp.extensions().get::<ErrorInfo>().cloned() else {
        return resp;
    };
    if let Some(reason) = info.reason {
        metrics.rejected(reason);
    }
    let Some(rid) = rid else {
        return resp;
    };
    let (mut parts, _) = resp.into_parts();
    let body = serde_json::json!({"error": {
        "code": info.code, "message": info.message, "request_id": rid,
    }});
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_answers_a_fixed_message_and_keeps_the_detail_out() {
        let e = ApiError::Internal("write /srv/data/uploads/x.part: Not a directory".into());
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            !e.public_message().contains("/srv"),
            "{}",
            e.public_message()
        );
        assert!(e.to_string().contains("/srv"), "the log keeps the detail");
    }

    #[test]
    fn echoed_ids_and_messages_are_bounded() {
        let e = ApiError::NotFound {
            kind: "job",
            id: "x".repeat(5_000_000),
        };
        assert!(
            e.public_message().len() < 300,
            "{}",
            e.public_message().len()
        );
        let e = ApiError::BadRequest("y".repeat(100_000));
        assert!(e.public_message().len() <= MESSAGE_MAX + 32);
    }
}
