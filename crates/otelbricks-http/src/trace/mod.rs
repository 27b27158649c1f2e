//! The server span: one span of kind server per request, continuing the caller's trace.
//!
//! ```
//! use axum::{Router, routing::get};
//! use otelbricks_http::HttpTraceLayer;
//!
//! let app: Router = Router::new()
//!     .route("/api/v1/jobs/{job_id}", get(|| async { "ok" }))
//!     .layer(HttpTraceLayer::new());
//! ```
//!
//! Per request it
//! - extracts `traceparent`/`tracestate`/`baggage` with the global propagator and applies the
//!   [edge policy](IncomingTraceContext) (default: continue the caller's trace, ignoring an
//!   unsampled flag);
//! - starts the server span with the OpenTelemetry API (the global tracer provider's tracer
//!   `otelbricks-http`, taken at the layer's first request, or the one given to
//!   [`HttpTraceLayer::tracer`]) and makes its context current while the inner service runs:
//!   spans the handler opens, with `tracing` or with the OpenTelemetry API, are its children,
//!   and every log line of the request carries its trace and span ids, both the JSON lines of
//!   `otelbricks-telemetry` and the OpenTelemetry log records of the log bridge.
//!   [`RequestIdLayer`] and [`UserIdLayer`], when they ran before it, put `request_id` and
//!   `user_id` in that context as [`LogFields`](otelbricks_trace_context::LogFields), which the
//!   JSON lines carry too. There is
//!   no `tracing` span for the request (it would cost as much again as the span itself): in a
//!   handler, the server span is `opentelemetry::Context::current()`, not
//!   `tracing::Span::current()`;
//! - names it `{method} {route}`, or `{method}` when no route matched ([`DefaultSpanName`]);
//! - sets the semantic-convention attributes `http.request.method`, `http.route` (absent when no
//!   route matched), `url.scheme`, `url.path`, `network.protocol.version`,
//!   `user_agent.original`, `server.address`, `server.port`, `client.address` and `client.port`
//!   (when axum's `ConnectInfo<SocketAddr>` is there: serve with
//!   `app.into_make_service_with_connect_info::<SocketAddr>()`), then `http.response.status_code`;
//!   client-controlled values are cut to [`MAX_ATTRIBUTE_LEN`](crate::MAX_ATTRIBUTE_LEN) bytes;
//! - marks failures (status error, `error.type`): statuses the [classifier](crate::classify)
//!   calls failures (5xx by default), panics caught by
//!   [`CatchPanicLayer`](crate::CatchPanicLayer) inside it (`error.type = panic`), errors of the
//!   inner service (their type name).
//!
//! # Hooks
//!
//! As with tower-http's `TraceLayer`, each builder method returns a layer whose type parameter is
//! the new hook: no boxing, no options bag.
//!
//! ```
//! use std::net::SocketAddr;
//! use http::{Request, Response, StatusCode};
//! use opentelemetry::KeyValue;
//! use otelbricks_http::{HttpTraceLayer, IncomingTraceContext, StatusInRangeAsFailures};
//!
//! let layer = HttpTraceLayer::new()
//!     // The span name:
//!     .make_span_name_with(|req: &Request<axum::body::Body>| format!("api {}", req.method()))
//!     // Extra attributes from the request and the response:
//!     .on_request(|req: &Request<axum::body::Body>, attrs: &mut Vec<KeyValue>| {
//!         if let Some(tenant) = req.headers().get("x-tenant").and_then(|v| v.to_str().ok()) {
//!             attrs.push(KeyValue::new("tenant", tenant.to_owned()));
//!         }
//!     })
//!     .on_response(|res: &Response<axum::body::Body>, attrs: &mut Vec<KeyValue>| {
//!         attrs.push(KeyValue::new("cached", res.headers().contains_key("x-cache-hit")));
//!     })
//!     // 4xx are failures too:
//!     .classify(StatusInRangeAsFailures::new(400..=599))
//!     // A public edge: new trace, the caller's context as a link.
//!     .incoming(IncomingTraceContext::Restart);
//! ```
//!
//! [`RequestIdLayer`]: crate::RequestIdLayer
//! [`UserIdLayer`]: crate::UserIdLayer

mod future;
mod hooks;
mod incoming;
mod service;

pub use future::ResponseFuture;
pub use hooks::{DefaultSpanName, MakeSpanName, OnRequest, OnResponse};
pub use incoming::IncomingTraceContext;
pub use service::HttpTrace;

use std::sync::{Arc, OnceLock};

use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::Tracer;

use crate::classify::{ClassifyResponse, ServerErrorsAsFailures};

/// Wraps each request in a server span. See the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct HttpTraceLayer<N = DefaultSpanName, Req = (), Res = (), C = ServerErrorsAsFailures> {
    make_span_name: N,
    on_request: Req,
    on_response: Res,
    classify: C,
    incoming: IncomingTraceContext,
    tracer: TracerSource,
}

/// Where a layer's spans come from: the tracer it was given, or the global tracer provider's,
/// taken once at the first request and shared by every service the layer made.
#[derive(Debug, Clone)]
pub(crate) enum TracerSource {
    Given(Arc<BoxedTracer>),
    Global(Arc<OnceLock<BoxedTracer>>),
}

impl Default for TracerSource {
    fn default() -> Self {
        TracerSource::Global(Arc::default())
    }
}

impl TracerSource {
    pub(crate) fn tracer(&self) -> &BoxedTracer {
        match self {
            TracerSource::Given(tracer) => tracer,
            TracerSource::Global(cell) => cell.get_or_init(service::global_tracer),
        }
    }
}

impl HttpTraceLayer {
    /// The semantic-convention defaults.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<N, Req, Res, C> HttpTraceLayer<N, Req, Res, C> {
    /// Names spans with `make_span_name` ([`MakeSpanName`]; any `Fn(&Request<B>) -> String`).
    pub fn make_span_name_with<N2>(self, make_span_name: N2) -> HttpTraceLayer<N2, Req, Res, C> {
        HttpTraceLayer {
            make_span_name,
            on_request: self.on_request,
            on_response: self.on_response,
            classify: self.classify,
            incoming: self.incoming,
            tracer: self.tracer,
        }
    }

    /// Adds attributes from the request ([`OnRequest`]; any `Fn(&Request<B>, &mut Vec<KeyValue>)`).
    pub fn on_request<Req2>(self, on_request: Req2) -> HttpTraceLayer<N, Req2, Res, C> {
        HttpTraceLayer {
            make_span_name: self.make_span_name,
            on_request,
            on_response: self.on_response,
            classify: self.classify,
            incoming: self.incoming,
            tracer: self.tracer,
        }
    }

    /// Adds attributes from the response ([`OnResponse`]; any
    /// `Fn(&Response<B>, &mut Vec<KeyValue>)`).
    pub fn on_response<Res2>(self, on_response: Res2) -> HttpTraceLayer<N, Req, Res2, C> {
        HttpTraceLayer {
            make_span_name: self.make_span_name,
            on_request: self.on_request,
            on_response,
            classify: self.classify,
            incoming: self.incoming,
            tracer: self.tracer,
        }
    }

    /// Decides which statuses are failures.
    pub fn classify<C2: ClassifyResponse>(self, classify: C2) -> HttpTraceLayer<N, Req, Res, C2> {
        HttpTraceLayer {
            make_span_name: self.make_span_name,
            on_request: self.on_request,
            on_response: self.on_response,
            classify,
            incoming: self.incoming,
            tracer: self.tracer,
        }
    }

    /// What to do with the caller's trace context (default [`IncomingTraceContext::Continue`]).
    pub fn incoming(mut self, incoming: IncomingTraceContext) -> Self {
        self.incoming = incoming;
        self
    }

    /// Starts spans with `tracer` instead of the global tracer provider's tracer
    /// `otelbricks-http`. That one is taken at the layer's first request (not per request: the
    /// lookup allocates), so install the global provider before serving, as
    /// `otelbricks_telemetry::install` does, or give the tracer here.
    pub fn tracer<T>(mut self, tracer: T) -> Self
    where
        T: Tracer + Send + Sync + 'static,
        T::Span: Send + Sync + 'static,
    {
        self.tracer = TracerSource::Given(shared(tracer));
        self
    }

    /// The tracer as [`HttpServerLayer`](crate::HttpServerLayer) keeps it.
    pub(crate) fn tracer_source(mut self, tracer: TracerSource) -> Self {
        self.tracer = tracer;
        self
    }
}

/// A tracer as the layers keep it: boxed once, shared by every clone of the service.
pub(crate) fn shared<T>(tracer: T) -> Arc<BoxedTracer>
where
    T: Tracer + Send + Sync + 'static,
    T::Span: Send + Sync + 'static,
{
    Arc::new(BoxedTracer::new(Box::new(tracer)))
}

impl<S, N: Clone, Req: Clone, Res: Clone, C: Clone> tower::Layer<S>
    for HttpTraceLayer<N, Req, Res, C>
{
    type Service = HttpTrace<S, N, Req, Res, C>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpTrace {
            inner,
            make_span_name: self.make_span_name.clone(),
            on_request: self.on_request.clone(),
            on_response: self.on_response.clone(),
            classify: self.classify.clone(),
            incoming: self.incoming,
            tracer: self.tracer.clone(),
            route: Default::default(),
            host: Default::default(),
        }
    }
}
