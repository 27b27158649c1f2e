//! The HTTP/1 server of the API: hyper with a timer, so that a client that dribbles its headers
//! or keeps an idle connection open is cut off after `IMAGE2MODEL_HEADER_TIMEOUT`; a bound on
//! the request head (`MAX_HEAD_BYTES`); a connection limit (`IMAGE2MODEL_MAX_CONNECTIONS`,
//! capped to leave file descriptors for the database, the files, the provider client and the
//! admin listener); the client's address for the rate limits; and a graceful shutdown. The
//! whole-body deadline is a layer of [`crate::App::router`] (tower-http's
//! `RequestBodyDeadlineLayer`).
//!
//! Why not `axum::serve`: it sets no timer on hyper (so no header-read or idle timeout) and has
//! no connection limit.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

use crate::app::Shared;
use crate::limits::{LimitsConfig, effective_max_connections, open_files_limit};
use crate::metrics::Metrics;

/// Largest request head (request line and headers) hyper buffers.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Longest request target (path and query) the API serves; longer gets 414.
pub const MAX_URI_BYTES: usize = 2048;

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Time to receive a request head; also the idle timeout of a keep-alive connection.
    pub header_timeout: Duration,
    /// Most open connections.
    pub max_connections: u32,
}

impl ServerOptions {
    /// From the limits, the connection limit capped under this process's file limit.
    pub fn from_limits(l: &LimitsConfig) -> Self {
        let fds = open_files_limit();
        let max = effective_max_connections(l.max_connections, fds);
        if max < l.max_connections {
            tracing::warn!(
                configured = l.max_connections,
                effective = max,
                open_files_limit = fds,
                "IMAGE2MODEL_MAX_CONNECTIONS lowered to leave file descriptors free"
            );
        }
        ServerOptions {
            header_timeout: l.header_timeout,
            max_connections: max,
        }
    }
}

/// The answer to a connection over the limit, written before closing it.
const OVER_LIMIT: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 80\r\n\r\n\
{\"error\":{\"code\":\"unavailable\",\"message\":\"too many connections; retry in 1 s\"}}\n";

/// Serves `router` on `listener` until `shutdown` completes, then waits for the open
/// connections to finish their requests (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    opts: ServerOptions,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(opts.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    let slots = Arc::new(Semaphore::new(opts.max_connections as usize));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept: back off a
                    // little instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.rejected("connection_limit");
            let _ = stream.try_write(OVER_LIMIT);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let svc = router
            .clone()
            .map_request(move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Middleware (outside the HTTP server layer): a request target longer than
/// [`MAX_URI_BYTES`] is answered 414 before any span, log line or metric records it.
pub(crate) async fn bound_uri(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if len > MAX_URI_BYTES {
        s.metrics.rejected("uri_too_long");
        return (
            axum::http::StatusCode::URI_TOO_LONG,
            axum::Json(crate::error::error_body(
                "uri_too_long",
                &format!("the request target exceeds {MAX_URI_BYTES} bytes"),
            )),
        )
            .into_response();
    }
    next.run(req).await
}
