//! The service of [`HttpTraceLayer`](super::HttpTraceLayer).

use std::task::{Context, Poll};

use http::{Request, Response};
use std::sync::{Arc, OnceLock};

use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{Link, SpanBuilder, SpanKind, TraceContextExt as _, Tracer as _};
use opentelemetry::{InstrumentationScope, KeyValue, StringValue};
use otelbricks_trace_context::LogFields;
use tower::Service;

use super::future::{ResponseFuture, State};
use super::hooks::{MakeSpanName, OnRequest};
use super::incoming::{IncomingTraceContext, resolve};
use crate::classify::ClassifyResponse;
use crate::propagation::HeaderExtractor;
use crate::request_id::RequestId;
use crate::user_id::UserId;
use crate::{matched_route, method_attribute, protocol_version, truncated};

/// Wraps each request in a server span. See the [module docs](super).
#[derive(Debug, Clone)]
pub struct HttpTrace<S, N, Req, Res, C> {
    pub(super) inner: S,
    pub(super) make_span_name: N,
    pub(super) on_request: Req,
    pub(super) on_response: Res,
    pub(super) classify: C,
    pub(super) incoming: IncomingTraceContext,
    pub(super) tracer: super::TracerSource,
    /// The route template of this service's first request, shared by the spans of the next ones
    /// with the same route (a service that `Router::layer` put on one route sees only that one).
    pub(super) route: Arc<OnceLock<Arc<str>>>,
}

/// `route` as a shared string: the cached one when it is the same, so a span's `http.route`
/// copies nothing.
fn shared_route(cache: &OnceLock<Arc<str>>, route: &str) -> Arc<str> {
    let cached = cache.get_or_init(|| Arc::from(route));
    if **cached == *route {
        cached.clone()
    } else {
        Arc::from(route)
    }
}

/// `server.address` and `server.port` from the `Host` header (or the URI's authority).
fn server_address<B>(req: &Request<B>) -> Option<(String, Option<u16>)> {
    let authority = match req.uri().authority() {
        Some(a) => a.clone(),
        None => req
            .headers()
            .get(http::header::HOST)?
            .to_str()
            .ok()?
            .parse::<http::uri::Authority>()
            .ok()?,
    };
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some((truncated(host).to_owned(), authority.port_u16()))
}

/// The semantic-convention attributes known when the request arrives.
pub(super) fn request_attributes<B>(
    req: &Request<B>,
    route: &OnceLock<Arc<str>>,
    attributes: &mut Vec<KeyValue>,
) {
    attributes.push(KeyValue::new(
        "http.request.method",
        method_attribute(req.method()),
    ));
    if let Some(matched) = matched_route(req) {
        attributes.push(KeyValue::new(
            "http.route",
            StringValue::from(shared_route(route, matched)),
        ));
    }
    let scheme = if req.uri().scheme_str() == Some("https") {
        "https"
    } else {
        "http"
    };
    attributes.push(KeyValue::new("url.scheme", scheme));
    attributes.push(KeyValue::new(
        "url.path",
        truncated(req.uri().path()).to_owned(),
    ));
    attributes.push(KeyValue::new(
        "network.protocol.version",
        protocol_version(req.version()),
    ));
    if let Some(ua) = req
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        attributes.push(KeyValue::new(
            "user_agent.original",
            StringValue::from(truncated(ua).to_owned()),
        ));
    }
    if let Some((host, port)) = server_address(req) {
        attributes.push(KeyValue::new("server.address", host));
        if let Some(port) = port {
            attributes.push(KeyValue::new("server.port", i64::from(port)));
        }
    }
    if let Some(peer) = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        attributes.push(KeyValue::new("client.address", peer.0.ip().to_string()));
        attributes.push(KeyValue::new("client.port", i64::from(peer.0.port())));
    }
}

impl<S, N, Req, Res, C, ReqB, ResB> Service<Request<ReqB>> for HttpTrace<S, N, Req, Res, C>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    N: MakeSpanName<ReqB>,
    Req: OnRequest<ReqB>,
    Res: super::hooks::OnResponse<ResB>,
    C: ClassifyResponse,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, Res, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        if crate::exclude::is_excluded(&req) {
            return ResponseFuture::new(self.inner.call(req), None);
        }
        let extracted = opentelemetry::global::get_text_map_propagator(|p| {
            p.extract(&HeaderExtractor(req.headers()))
        });
        // A context without a valid remote span (absent or malformed) leaves the span a root.
        let (parent, link) = resolve(self.incoming, extracted);
        let mut attributes = Vec::with_capacity(14);
        request_attributes(&req, &self.route, &mut attributes);
        // `request_id` and `user_id` are span attributes (a trace can be found by either) and
        // the fields of every log line of the request; both share one copy of each value.
        let mut fields = LogFields::new();
        let ids = [
            (
                "request_id",
                req.extensions().get::<RequestId>().map(RequestId::as_str),
            ),
            (
                "user_id",
                req.extensions().get::<UserId>().map(UserId::as_str),
            ),
        ];
        for (name, value) in ids {
            if let Some(value) = value {
                let value: Arc<str> = Arc::from(value);
                attributes.push(KeyValue::new(name, StringValue::from(value.clone())));
                fields = fields.with(name, value);
            }
        }
        self.on_request.on_request(&req, &mut attributes);
        let mut builder = SpanBuilder::from_name(self.make_span_name.span_name(&req))
            .with_kind(SpanKind::Server)
            .with_attributes(attributes);
        if let Some(link) = link {
            builder = builder.with_links(vec![Link::with_context(link)]);
        }
        let span = self.tracer.tracer().build_with_context(builder, &parent);
        let mut otel_cx = parent.with_span(span);
        if !fields.is_empty() {
            otel_cx = otel_cx.with_value(fields);
        }
        let state = State {
            otel_cx,
            on_response: self.on_response.clone(),
            classify: self.classify.clone(),
        };
        // Not attached for `call`: services do their work when polled (tower's contract), and
        // every poll runs with the span's context current.
        ResponseFuture::new(self.inner.call(req), Some(state))
    }
}

/// The global tracer provider's tracer for this crate.
pub(super) fn global_tracer() -> BoxedTracer {
    static SCOPE: OnceLock<InstrumentationScope> = OnceLock::new();
    let scope = SCOPE.get_or_init(|| {
        InstrumentationScope::builder(crate::metrics::METER_NAME)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build()
    });
    opentelemetry::global::tracer_with_scope(scope.clone())
}
