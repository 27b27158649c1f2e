//! The admin listener: Prometheus text exposition of the OTel metrics at `/metrics`, on its own
//! address (default `127.0.0.1:9464`), never on the application's port, optionally behind a bearer
//! token. It runs on the telemetry runtime thread, so it answers even when the app's runtime is busy.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{Encoder, TextEncoder};
use tokio::sync::oneshot;

use crate::TelemetryError;

struct AdminState {
    registry: prometheus::Registry,
    token: Option<String>,
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from response times.
fn token_matches(given: &[u8], expected: &[u8]) -> bool {
    if given.len() != expected.len() {
        return false;
    }
    given
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

async fn metrics(State(state): State<Arc<AdminState>>, headers: HeaderMap) -> Response {
    if let Some(expected) = &state.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if !given.is_some_and(|g| token_matches(g.as_bytes(), expected.as_bytes())) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "missing or wrong bearer token\n",
            )
                .into_response();
        }
    }
    let families = state.registry.gather();
    let encoder = TextEncoder::new();
    let mut body = Vec::with_capacity(16 * 1024);
    match encoder.encode(&families, &mut body) {
        Ok(()) => (
            [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
            body,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding metrics failed: {e}\n"),
        )
            .into_response(),
    }
}

/// A running admin listener; stops when dropped.
pub(crate) struct AdminServer {
    pub local_addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

/// Binds `addr` now (so a taken port is an error at init) and serves on `rt`.
pub(crate) fn start(
    rt: &tokio::runtime::Handle,
    addr: SocketAddr,
    registry: prometheus::Registry,
    token: Option<String>,
) -> Result<AdminServer, TelemetryError> {
    let bind_err = |source| TelemetryError::AdminListener { addr, source };
    let std_listener = std::net::TcpListener::bind(addr).map_err(bind_err)?;
    std_listener.set_nonblocking(true).map_err(bind_err)?;
    let local_addr = std_listener.local_addr().map_err(bind_err)?;
    let listener = {
        let _enter = rt.enter();
        tokio::net::TcpListener::from_std(std_listener).map_err(bind_err)?
    };
    let app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(Arc::new(AdminState { registry, token }));
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    rt.spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stop_rx.await;
        });
        if let Err(e) = serve.await {
            tracing::warn!(target: "otelbricks_telemetry::admin", error = %e, "admin listener stopped");
        }
    });
    Ok(AdminServer {
        local_addr,
        _stop: stop_tx,
    })
}

#[cfg(test)]
mod tests {
    use super::token_matches;

    #[test]
    fn token_comparison_needs_every_byte_and_the_length() {
        assert!(token_matches(b"secret", b"secret"));
        assert!(!token_matches(b"secreT", b"secret"));
        assert!(!token_matches(b"secret1", b"secret"));
        assert!(!token_matches(b"", b"secret"));
    }
}
