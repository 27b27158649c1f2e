//! Server middleware for axum 0.8: [`HttpServerLayer`] and [`HttpServerService`].
//!
//! Add it with `Router::layer` so it sees the matched route template (`MatchedPath`), nested routers
//! included:
//!
//! ```
//! use axum::{Router, routing::get};
//! use otelbricks_http::HttpServerLayer;
//!
//! let app: Router = Router::new()
//!     .route("/api/v1/jobs/{job_id}", get(|| async { "ok" }))
//!     .layer(HttpServerLayer::new());
//! ```
//!
//! Per request it:
//! - extracts `traceparent`/`tracestate`/`baggage` with the global propagator and opens a server span
//!   `{method} {route}` as its child (a malformed context starts a new trace);
//! - keeps a valid `X-Request-ID` or makes one, returns it, puts it on the span (so on every log line
//!   of the request) and in the request extensions ([`RequestId`]);
//! - hashes a bearer token into `user_id` ([`UserIdHasher`]);
//! - records `http.server.request.duration`, `http.server.active_requests`,
//!   `http.server.request.body.size` and `http.server.response.body.size` with `http.route` the
//!   template (all unmatched requests share [`UNMATCHED_ROUTE`]);
//! - logs `Request started` (debug), `Request completed` (info) or `Request failed` (error, for 5xx
//!   and panics), with `method`, `path` (the template), `status_code`, `duration` (seconds);
//! - turns a panic in the handler into a 500 and keeps serving;
//! - adds `X-Process-Time` (seconds) to the response.
//!
//! Excluded paths (default `/metrics` and `/health`) pass through with no span, metric or log line.

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::MatchedPath;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt as _;
use http::{HeaderValue, Request, StatusCode};
use http_body::Body as _;
use opentelemetry::metrics::{BoundUpDownCounter, Meter};
use tower::{Layer, Service};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::metrics::{Outcome, ServerMetrics, outcome_attributes};
use crate::propagation::HeaderExtractor;
use crate::request_id::{REQUEST_ID_HEADER, RequestId};
use crate::user_id::UserIdHasher;
use crate::{method_attribute, status_str};

/// `http.route` (and the `path` log field) of requests that match no route: one constant, so random
/// paths add no series.
pub const UNMATCHED_ROUTE: &str = "unmatched";

struct Config {
    metrics: ServerMetrics,
    excluded: Vec<String>,
    user_ids: UserIdHasher,
}

/// Layer that instruments every request of an axum router. See the [module docs](self).
#[derive(Clone)]
pub struct HttpServerLayer {
    config: Arc<Config>,
}

impl std::fmt::Debug for HttpServerLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServerLayer")
            .field("excluded", &self.config.excluded)
            .field("user_ids", &self.config.user_ids)
            .finish_non_exhaustive()
    }
}

impl Default for HttpServerLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpServerLayer {
    /// Instruments on the global meter `telemetry-http`; excludes `/metrics` and `/health`; hashes
    /// user ids without a key (see [`HttpServerLayer::user_id_key`]).
    pub fn new() -> Self {
        Self::with_meter(&opentelemetry::global::meter("telemetry-http"))
    }

    /// The same, with instruments on `meter`.
    pub fn with_meter(meter: &Meter) -> Self {
        HttpServerLayer {
            config: Arc::new(Config {
                metrics: ServerMetrics::new(meter),
                excluded: vec!["/metrics".into(), "/health".into()],
                user_ids: UserIdHasher::unkeyed(),
            }),
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        // Builders run before the layer is cloned into services; clone-on-write keeps it correct
        // if they run later.
        if Arc::get_mut(&mut self.config).is_none() {
            let c = &self.config;
            self.config = Arc::new(Config {
                metrics: c.metrics.clone(),
                excluded: c.excluded.clone(),
                user_ids: c.user_ids.clone(),
            });
        }
        Arc::get_mut(&mut self.config).unwrap_or_else(|| unreachable!("just made unique"))
    }

    /// Paths (exact match on the request path) that get no span, metric or log line.
    pub fn exclude_paths<I, P>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.config_mut().excluded = paths.into_iter().map(Into::into).collect();
        self
    }

    /// Key of the HMAC that turns bearer tokens into `user_id`s.
    pub fn user_id_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.config_mut().user_ids = UserIdHasher::with_key(key);
        self
    }
}

impl<S> Layer<S> for HttpServerLayer {
    type Service = HttpServerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpServerService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service [`HttpServerLayer`] wraps around each route.
#[derive(Clone)]
pub struct HttpServerService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> std::fmt::Debug for HttpServerService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServerService").finish_non_exhaustive()
    }
}

/// Decrements `http.server.active_requests` when the request ends, however it ends (also when the
/// client goes away and the future is dropped).
struct ActiveGuard(BoundUpDownCounter<i64>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.add(-1);
    }
}

fn internal_error_response() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(http::header::CONTENT_TYPE, "application/json")],
        r#"{"error":{"code":"internal_error","message":"internal server error"}}"#,
    )
        .into_response()
}

static X_PROCESS_TIME: http::HeaderName = http::HeaderName::from_static("x-process-time");

/// `X-Process-Time`: seconds with 6 decimals (microseconds), formatted without `format!`.
fn process_time_header(elapsed: std::time::Duration) -> Option<HeaderValue> {
    let micros = elapsed.as_micros();
    let mut secs = itoa::Buffer::new();
    let secs = secs.format(micros / 1_000_000);
    let mut frac = itoa::Buffer::new();
    let frac = frac.format(micros % 1_000_000);
    let mut buf = [b'0'; 48];
    let n = secs.len();
    buf[..n].copy_from_slice(secs.as_bytes());
    buf[n] = b'.';
    // Zero-padded to 6 digits: the leading zeros are already in `buf`.
    let end = n + 1 + 6;
    buf[end - frac.len()..end].copy_from_slice(frac.as_bytes());
    HeaderValue::from_bytes(&buf[..end]).ok()
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned())
}

impl<S, B> Service<Request<B>> for HttpServerService<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // The ready service handles this request; a fresh clone takes its place (tower's idiom).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();

        if config.excluded.iter().any(|p| p == req.uri().path()) {
            return Box::pin(inner.call(req));
        }

        let start = Instant::now();
        let method = method_attribute(req.method());
        // One shared `Arc<str>` per route template, not one allocation per request.
        let route_entry = config.metrics.route(
            req.extensions()
                .get::<MatchedPath>()
                .map_or(UNMATCHED_ROUTE, |m| m.as_str()),
        );
        let route: Arc<str> = route_entry.route.clone();
        let scheme = req.uri().scheme_str().unwrap_or("http");
        let scheme: &'static str = if scheme == "https" { "https" } else { "http" };

        let request_id = req
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(RequestId::from_header)
            .unwrap_or_else(RequestId::generate);
        let user_id = config.user_ids.user_id(req.headers());
        let request_size = req.body().size_hint().exact();

        let parent = opentelemetry::global::get_text_map_propagator(|p| {
            p.extract(&HeaderExtractor(req.headers()))
        });
        // Only what log lines need (and the OTel name and kind) goes through tracing's field visitor,
        // which copies every `&str` into a new `String`; the semantic-convention attributes go
        // straight onto the span builder as `&'static str` / shared values.
        let span = tracing::info_span!(
            target: "telemetry_http",
            "HTTP request",
            otel.name = format_args!("{method} {route}"),
            otel.kind = "server",
            request_id = request_id.as_str(),
            user_id = user_id.as_ref().map(|u| u.as_str()),
        );
        if !span.is_disabled() {
            // A context without a valid remote span (absent or malformed) leaves the span a root.
            let _ = span.set_parent(parent);
            span.set_attribute("http.request.method", method);
            span.set_attribute(
                "http.route",
                opentelemetry::StringValue::from(route.clone()),
            );
            span.set_attribute("url.scheme", scheme);
            span.set_attribute("url.path", req.uri().path().to_owned());
        }
        let request_span = span.clone();

        req.extensions_mut().insert(request_id.clone());
        if let Some(u) = &user_id {
            req.extensions_mut().insert(u.clone());
        }

        let metrics = config.metrics.clone();
        let active = metrics.active(method, scheme).clone();
        active.add(1);
        let active = ActiveGuard(active);

        let fut = async move {
            tracing::debug!(method, path = &*route, "Request started");
            let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| inner.call(req))) {
                Ok(fut) => AssertUnwindSafe(fut).catch_unwind().await,
                Err(payload) => Err(payload),
            };
            let (mut response, panic) = match outcome {
                Ok(Ok(response)) => (response, None),
                Ok(Err(never)) => match never {},
                Err(payload) => (internal_error_response(), Some(panic_message(&*payload))),
            };
            let status = response.status();
            let elapsed = start.elapsed();
            let duration = elapsed.as_secs_f64();
            let status_code = status_str(status);

            let error_type: Option<Cow<'static, str>> = if panic.is_some() {
                Some("panic".into())
            } else if status.is_server_error() {
                Some(status_code.clone())
            } else {
                None
            };
            if !request_span.is_disabled() {
                request_span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
                if let Some(et) = &error_type {
                    request_span.set_attribute("error.type", et.clone());
                    request_span.set_status(opentelemetry::trace::Status::error(""));
                }
            }

            let response_size = response.body().size_hint().exact();
            let outcome = Outcome {
                method,
                status: status.as_u16(),
                scheme,
                panic: panic.is_some(),
            };
            if let Some(r) = metrics.recorders(&route_entry, outcome) {
                r.duration.record(duration);
                if let Some(n) = request_size {
                    r.request_size.record(n);
                }
                if let Some(n) = response_size {
                    r.response_size.record(n);
                }
            } else {
                let attrs = outcome_attributes(&route, outcome);
                metrics.duration.record(duration, &attrs);
                if let Some(n) = request_size {
                    metrics.request_size.record(n, &attrs);
                }
                if let Some(n) = response_size {
                    metrics.response_size.record(n, &attrs);
                }
            }
            drop(active);

            let status_u64 = u64::from(status.as_u16());
            match (&panic, &error_type) {
                (Some(msg), _) => tracing::error!(
                    method,
                    path = &*route,
                    status_code = status_u64,
                    duration,
                    error = %msg,
                    error_type = "panic",
                    "Request failed"
                ),
                (None, Some(et)) => tracing::error!(
                    method,
                    path = &*route,
                    status_code = status_u64,
                    duration,
                    error = status.canonical_reason().unwrap_or("server error"),
                    error_type = &**et,
                    "Request failed"
                ),
                (None, None) => tracing::info!(
                    method,
                    path = &*route,
                    status_code = status_u64,
                    duration,
                    "Request completed"
                ),
            }

            let headers = response.headers_mut();
            if let Some(v) = process_time_header(elapsed) {
                headers.insert(X_PROCESS_TIME.clone(), v);
            }
            headers.insert(REQUEST_ID_HEADER, request_id.header_value().clone());
            Ok(response)
        };
        Box::pin(fut.instrument(span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn process_time_is_seconds_with_six_decimals() {
        let v = |d| {
            process_time_header(d)
                .and_then(|h| h.to_str().ok().map(str::to_owned))
                .unwrap_or_default()
        };
        assert_eq!(v(Duration::from_nanos(1_500)), "0.000001");
        assert_eq!(v(Duration::from_micros(20_345)), "0.020345");
        assert_eq!(v(Duration::from_millis(12_500)), "12.500000");
        assert_eq!(v(Duration::ZERO), "0.000000");
    }
}
