//! One log line per request, when it completes, whatever its status: the request log of the
//! Python design, with the fields the `logkit` analyser reads.
//!
//! | field | value |
//! |---|---|
//! | `message` | `Request completed`, or `Request failed` for a failure |
//! | `method` | `http.request.method` (`_OTHER` for unknown methods) |
//! | `path` | the route template (`/api/v1/jobs/{job_id}`), absent when no route matched |
//! | `status_code` | the response status (absent when the inner service returned an error) |
//! | `duration` | seconds, as a float |
//! | `error`, `error_type` | failures only: the panic message and `panic`, the status reason and the status code, or the error and its type name |
//!
//! `request_id`, `user_id`, `trace_id` and `span_id` come from the server span
//! ([`trace`](crate::trace)) when this layer runs inside it, as every log line of the request
//! does. The path is the template, never the raw path, so no client-controlled text reaches the
//! line.
//!
//! ```
//! use axum::{Router, routing::get};
//! use otelbricks_http::RequestLogLayer;
//!
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(RequestLogLayer::new());
//! ```
//!
//! Which level each line gets is a hook ([`LogLevel`]; any `Fn(Option<StatusCode>, bool) ->
//! Option<Level>`, `None` for no line). The default, [`DefaultLogLevels`], logs failures at
//! `ERROR` and the rest at `INFO`; here 4xx are warnings and successes debug lines:
//!
//! ```
//! use http::StatusCode;
//! use otelbricks_http::RequestLogLayer;
//! use tracing::Level;
//!
//! let layer = RequestLogLayer::new().level(|status: Option<StatusCode>, failed: bool| {
//!     Some(match status {
//!         _ if failed => Level::ERROR,
//!         Some(s) if s.is_client_error() => Level::WARN,
//!         _ => Level::DEBUG,
//!     })
//! });
//! ```

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::MatchedPath;
use http::{Request, Response, StatusCode};
use tower::{Layer, Service};
use tracing::Level;

use crate::classify::{ClassifyResponse, Outcome, ServerErrorsAsFailures};
use crate::{method_attribute, status_str};

/// The level of a request's line from its status (`None` when the inner service returned an
/// error) and whether it failed; `None` for no line.
pub trait LogLevel: Clone + Send + Sync + 'static {
    /// The level, or `None` for no line.
    fn level(&self, status: Option<StatusCode>, failed: bool) -> Option<Level>;
}

impl<F> LogLevel for F
where
    F: Fn(Option<StatusCode>, bool) -> Option<Level> + Clone + Send + Sync + 'static,
{
    fn level(&self, status: Option<StatusCode>, failed: bool) -> Option<Level> {
        self(status, failed)
    }
}

/// Failures at `ERROR`, everything else at `INFO`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultLogLevels;

impl LogLevel for DefaultLogLevels {
    fn level(&self, _status: Option<StatusCode>, failed: bool) -> Option<Level> {
        Some(if failed { Level::ERROR } else { Level::INFO })
    }
}

/// Logs one line per request. See the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct RequestLogLayer<C = ServerErrorsAsFailures, L = DefaultLogLevels> {
    classify: C,
    level: L,
}

impl RequestLogLayer {
    /// Failures by [`ServerErrorsAsFailures`], levels by [`DefaultLogLevels`].
    pub fn new() -> Self {
        Self::default()
    }
}

impl<C, L> RequestLogLayer<C, L> {
    /// Decides which statuses are failures (`Request failed`).
    pub fn classify<C2: ClassifyResponse>(self, classify: C2) -> RequestLogLayer<C2, L> {
        RequestLogLayer {
            classify,
            level: self.level,
        }
    }

    /// Decides each line's level.
    pub fn level<L2: LogLevel>(self, level: L2) -> RequestLogLayer<C, L2> {
        RequestLogLayer {
            classify: self.classify,
            level,
        }
    }
}

impl<S, C: Clone, L: Clone> Layer<S> for RequestLogLayer<C, L> {
    type Service = RequestLog<S, C, L>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestLog {
            inner,
            classify: self.classify.clone(),
            level: self.level.clone(),
        }
    }
}

/// The service of [`RequestLogLayer`].
#[derive(Debug, Clone)]
pub struct RequestLog<S, C, L> {
    inner: S,
    classify: C,
    level: L,
}

struct State<C, L> {
    start: Instant,
    method: &'static str,
    // Shares the router's `Arc<str>`: no copy of the template per request.
    route: Option<MatchedPath>,
    classify: C,
    level: L,
}

impl<S, C, L, ReqB, ResB> Service<Request<ReqB>> for RequestLog<S, C, L>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Error: Display,
    C: ClassifyResponse,
    L: LogLevel,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, C, L>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let state = (!crate::exclude::is_excluded(&req)).then(|| State {
            start: Instant::now(),
            method: method_attribute(req.method()),
            route: req.extensions().get::<MatchedPath>().cloned(),
            classify: self.classify.clone(),
            level: self.level.clone(),
        });
        ResponseFuture {
            inner: self.inner.call(req),
            state,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`RequestLog`].
    pub struct ResponseFuture<F, C, L> {
        #[pin]
        inner: F,
        state: Option<State<C, L>>,
    }
}

/// One `tracing` event at a level known only at run time (the macros need a constant).
macro_rules! at_level {
    ($level:expr, $($rest:tt)*) => {
        match $level {
            Level::ERROR => tracing::event!(Level::ERROR, $($rest)*),
            Level::WARN => tracing::event!(Level::WARN, $($rest)*),
            Level::INFO => tracing::event!(Level::INFO, $($rest)*),
            Level::DEBUG => tracing::event!(Level::DEBUG, $($rest)*),
            Level::TRACE => tracing::event!(Level::TRACE, $($rest)*),
        }
    };
}

impl<F, C, L, B, E> Future for ResponseFuture<F, C, L>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Display,
    C: ClassifyResponse,
    L: LogLevel,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let Some(state) = this.state.take() {
            log_line(&state, &result);
        }
        Poll::Ready(result)
    }
}

fn log_line<C: ClassifyResponse, L: LogLevel, B, E: Display>(
    state: &State<C, L>,
    result: &Result<Response<B>, E>,
) {
    let duration = state.start.elapsed().as_secs_f64();
    let method = state.method;
    let path = state.route.as_ref().map(MatchedPath::as_str);
    match result {
        Ok(res) => {
            let status = res.status();
            let status_code = u64::from(status.as_u16());
            let outcome = Outcome::of(res, &state.classify);
            let failed = outcome != Outcome::Ok;
            let Some(level) = state.level.level(Some(status), failed) else {
                return;
            };
            // `message` is a `str` field, first (the order of the line): the JSON layer copies it
            // and the OTel log bridge takes it as the body, where a trailing literal would be a
            // `fmt::Arguments` both run through the formatter (~0.5k instructions a line).
            match outcome {
                Outcome::Ok => at_level!(
                    level,
                    message = "Request completed",
                    method,
                    path,
                    status_code,
                    duration,
                ),
                Outcome::Panic => {
                    let error = res
                        .extensions()
                        .get::<crate::Panicked>()
                        .map_or("panic", |p| p.message());
                    at_level!(
                        level,
                        message = "Request failed",
                        method,
                        path,
                        status_code,
                        duration,
                        error,
                        error_type = "panic",
                    )
                }
                Outcome::FailedStatus => at_level!(
                    level,
                    message = "Request failed",
                    method,
                    path,
                    status_code,
                    duration,
                    error = status.canonical_reason().unwrap_or("failed status"),
                    error_type = &*status_str(status),
                ),
            }
        }
        Err(e) => {
            let Some(level) = state.level.level(None, true) else {
                return;
            };
            at_level!(
                level,
                message = "Request failed",
                method,
                path,
                duration,
                error = %e,
                error_type = std::any::type_name::<E>(),
            )
        }
    }
}
