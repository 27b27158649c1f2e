//! [`HttpServerLayer`]: every server middleware of this crate in one layer, in the order they
//! work together.
//!
//! ```
//! use axum::{Router, routing::get};
//! use otelbricks_http::HttpServerLayer;
//!
//! let app: Router = Router::new()
//!     .route("/api/v1/jobs/{job_id}", get(|| async { "ok" }))
//!     .layer(HttpServerLayer::new().user_id_key(b"secret".to_vec()));
//! ```
//!
//! Add it with `Router::layer` so it sees the matched route template (`MatchedPath`), nested
//! routers included. It is exactly this stack (outermost first), built from the public layers, so
//! an application that wants other hooks writes the same with its own:
//!
//! ```
//! use axum::{Router, routing::get};
//! use otelbricks_http::*;
//! use tower::ServiceBuilder;
//!
//! let app: Router = Router::new().route("/", get(|| async { "hello" })).layer(
//!     ServiceBuilder::new()
//!         .layer(ExcludeLayer::new(ExcludePaths::new().exact("/metrics").exact("/health")))
//!         .layer(RequestIdLayer::new())
//!         .layer(UserIdLayer::new(UserIdHasher::unkeyed()))
//!         .layer(ProcessTimeLayer::new())
//!         .layer(HttpTraceLayer::new())
//!         .layer(HttpMetricsLayer::new())
//!         .layer(RequestLogLayer::new())
//!         .layer(CatchPanicLayer::new()),
//! );
//! ```
//!
//! - [`ExcludeLayer`]: `/metrics` and `/health` pass through with no span, metric, log line or
//!   header ([`HttpServerLayer::exclude`], [`HttpServerLayer::exclude_paths`]);
//! - [`RequestIdLayer`]: keeps a safe `X-Request-ID` or makes one, and returns it;
//! - [`UserIdLayer`]: hashes a bearer token into `user_id` ([`HttpServerLayer::user_id_key`]);
//! - [`ProcessTimeLayer`]: `X-Process-Time` (seconds);
//! - [`HttpTraceLayer`]: the server span, continuing the caller's trace
//!   ([`HttpServerLayer::incoming`]);
//! - [`HttpMetricsLayer`]: `http.server.request.duration`, `http.server.active_requests`,
//!   `http.server.request.body.size`, `http.server.response.body.size`;
//! - [`RequestLogLayer`]: one `Request completed` (info) or `Request failed` (error) line;
//! - [`CatchPanicLayer`]: a panic in the handler becomes a 500 the layers above record as
//!   `error.type = panic`.
//!
//! It works with any tower HTTP service, not only axum (without axum's `MatchedPath` every
//! request is unmatched: no `http.route`, span named `{method}`).

use opentelemetry::metrics::Meter;
use opentelemetry::trace::Tracer;
use tower::Layer;

use crate::catch_panic::{CatchPanic, CatchPanicLayer};
use crate::classify::{ClassifyResponse, ServerErrorsAsFailures};
use crate::exclude::{Exclude, ExcludeLayer, ExcludePaths};
use crate::metrics::{HttpMetrics, HttpMetricsLayer};
use crate::process_time::{ProcessTime, ProcessTimeLayer};
use crate::request_id::{RequestIdLayer, SetRequestId};
use crate::request_log::{DefaultLogLevels, RequestLog, RequestLogLayer};
use crate::trace::{
    DefaultSpanName, HttpTrace, HttpTraceLayer, IncomingTraceContext, TracerSource,
};
use crate::user_id::{SetUserId, UserIdHasher, UserIdLayer};

/// Every server middleware of this crate in one layer. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct HttpServerLayer<C = ServerErrorsAsFailures> {
    exclude: ExcludePaths,
    user_ids: UserIdHasher,
    incoming: IncomingTraceContext,
    metrics: HttpMetricsLayer,
    tracer: TracerSource,
    classify: C,
}

/// The service [`HttpServerLayer`] wraps around `S`: the stack in the [module docs](self).
pub type HttpServerService<S, C = ServerErrorsAsFailures> = Exclude<
    SetRequestId<
        SetUserId<
            ProcessTime<
                HttpTrace<
                    HttpMetrics<RequestLog<CatchPanic<S>, C, DefaultLogLevels>, C>,
                    DefaultSpanName,
                    (),
                    (),
                    C,
                >,
            >,
        >,
    >,
>;

impl Default for HttpServerLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpServerLayer {
    /// Metrics on the global meter `otelbricks-http`; excludes `/metrics` and `/health`; hashes
    /// user ids without a key (see [`HttpServerLayer::user_id_key`]).
    pub fn new() -> Self {
        Self::with_meter(&opentelemetry::global::meter(crate::metrics::METER_NAME))
    }

    /// The same, with instruments on `meter`.
    pub fn with_meter(meter: &Meter) -> Self {
        HttpServerLayer {
            exclude: ExcludePaths::new().exact("/metrics").exact("/health"),
            user_ids: UserIdHasher::unkeyed(),
            incoming: IncomingTraceContext::default(),
            metrics: HttpMetricsLayer::with_meter(meter),
            tracer: TracerSource::default(),
            classify: ServerErrorsAsFailures,
        }
    }
}

impl<C> HttpServerLayer<C> {
    /// Decides which statuses are failures, for the span, the metrics and the log line alike
    /// (default [`ServerErrorsAsFailures`]: 5xx).
    pub fn classify<C2: ClassifyResponse>(self, classify: C2) -> HttpServerLayer<C2> {
        HttpServerLayer {
            exclude: self.exclude,
            user_ids: self.user_ids,
            incoming: self.incoming,
            metrics: self.metrics,
            tracer: self.tracer,
            classify,
        }
    }

    /// Paths (exact match on the request path) that get no span, metric or log line, instead of
    /// `/metrics` and `/health`.
    pub fn exclude_paths<I, P>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.exclude = paths
            .into_iter()
            .fold(ExcludePaths::new(), |e, p| e.exact(p));
        self
    }

    /// Excluded paths, exact and by prefix, instead of `/metrics` and `/health`.
    pub fn exclude(mut self, exclude: ExcludePaths) -> Self {
        self.exclude = exclude;
        self
    }

    /// Key of the HMAC that turns bearer tokens into `user_id`s.
    pub fn user_id_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.user_ids = UserIdHasher::with_key(key);
        self
    }

    /// What the server span does with the caller's trace context (default
    /// [`IncomingTraceContext::Continue`]).
    pub fn incoming(mut self, incoming: IncomingTraceContext) -> Self {
        self.incoming = incoming;
        self
    }

    /// Starts server spans with `tracer` instead of the global tracer provider's
    /// ([`HttpTraceLayer::tracer`]).
    pub fn tracer<T: Tracer + Send + Sync + 'static>(mut self, tracer: T) -> Self
    where
        T::Span: Send + Sync + 'static,
    {
        self.tracer = TracerSource::Given(crate::trace::shared(tracer));
        self
    }
}

impl<S, C: ClassifyResponse> Layer<S> for HttpServerLayer<C> {
    type Service = HttpServerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        let c = &self.classify;
        let inner = CatchPanicLayer::new().layer(inner);
        let inner = RequestLogLayer::new().classify(c.clone()).layer(inner);
        let inner = self.metrics.clone().classify(c.clone()).layer(inner);
        let inner = HttpTraceLayer::new()
            .classify(c.clone())
            .incoming(self.incoming)
            .tracer_source(self.tracer.clone())
            .layer(inner);
        let inner = ProcessTimeLayer::new().layer(inner);
        let inner = UserIdLayer::new(self.user_ids.clone()).layer(inner);
        let inner = RequestIdLayer::new().layer(inner);
        ExcludeLayer::new(self.exclude.clone()).layer(inner)
    }
}
