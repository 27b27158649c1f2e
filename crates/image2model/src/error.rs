//! Typed errors of the API, rendered as `{"error": {"code", "message"}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

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
    /// The id names nothing.
    #[error("{kind} {id} not found")]
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
    /// The service is shutting down or not ready.
    #[error("{0}")]
    Unavailable(String),
    /// Storage failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::NotFound { .. } => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unprocessable(_) => "validation_error",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }
}

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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, error_type = self.code(), "request failed");
        } else {
            tracing::info!(error = %self, error_type = self.code(), "request rejected");
        }
        (status, Json(error_body(self.code(), &self.to_string()))).into_response()
    }
}
