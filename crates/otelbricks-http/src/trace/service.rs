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
    /// The route template and the host of this service's first request, shared by the spans of
    /// the next ones with the same value (a service that `Router::layer` put on one route sees
    /// only that route, and a server is mostly called by one name).
    pub(super) route: FirstValue,
    pub(super) host: FirstValue,
}

/// The first value a service saw for one attribute, kept as a shared string.
#[derive(Debug, Clone, Default)]
pub(super) struct FirstValue(Arc<OnceLock<Arc<str>>>);

impl FirstValue {
    /// `value` as a shared string: the kept one when it is the same, so the span's attribute
    /// copies nothing.
    fn share(&self, value: &str) -> Arc<str> {
        let kept = self.0.get_or_init(|| Arc::from(value));
        if **kept == *value {
            kept.clone()
        } else {
            Arc::from(value)
        }
    }
}

/// `server.address` and `server.port` from the URI's authority or else the `Host` header.
fn server_address<B>(req: &Request<B>) -> Option<(&str, Option<u16>)> {
    match req.uri().authority() {
        // An absolute-form target may carry `user@`; the address is what follows.
        Some(a) => split_authority(a.as_str().rsplit_once('@').map_or(a.as_str(), |(_, h)| h)),
        None => split_authority(req.headers().get(http::header::HOST)?.to_str().ok()?),
    }
}

/// `host[:port]` into the host (an IPv6 literal without its brackets) and the port; `None` when
/// it is not a valid authority (RFC 3986: a registered name or an IP literal, digits for a port).
fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (ip, after) = rest.split_once(']')?;
            let valid = !ip.is_empty()
                && ip
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
            if !valid {
                return None;
            }
            match after {
                "" => (ip, None),
                _ => (ip, Some(after.strip_prefix(':')?)),
            }
        }
        None => {
            let (host, port) = match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            let valid = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(&b));
            if !valid {
                return None;
            }
            (host, port)
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse::<u16>().ok()?),
        Some(_) => return None,
    };
    Some((host, port))
}

/// The semantic-convention attributes known when the request arrives.
fn request_attributes<B>(
    req: &Request<B>,
    route: &FirstValue,
    host: &FirstValue,
    attributes: &mut Vec<KeyValue>,
) {
    attributes.push(KeyValue::new(
        "http.request.method",
        method_attribute(req.method()),
    ));
    if let Some(matched) = matched_route(req) {
        attributes.push(KeyValue::new(
            "http.route",
            StringValue::from(route.share(matched)),
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
    if let Some((address, port)) = server_address(req) {
        attributes.push(KeyValue::new(
            "server.address",
            StringValue::from(host.share(truncated(address))),
        ));
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
        request_attributes(&req, &self.route, &self.host, &mut attributes);
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

#[cfg(test)]
mod tests {
    use super::split_authority;

    #[test]
    fn authorities_split_into_host_and_port_and_malformed_ones_are_refused() {
        let cases = [
            ("example.com", Some(("example.com", None))),
            ("example.com:8080", Some(("example.com", Some(8080)))),
            ("127.0.0.1:80", Some(("127.0.0.1", Some(80)))),
            ("[::1]:3000", Some(("::1", Some(3000)))),
            ("[2001:db8::7]", Some(("2001:db8::7", None))),
            ("host:", Some(("host", None))),
            ("host:99999", None),
            ("host:8o", None),
            (":80", None),
            ("", None),
            ("bad host", None),
            ("quote\"host", None),
            ("[::1", None),
            ("[]:80", None),
            ("[::1]x", None),
            ("[fe80::1%eth0]", None),
        ];
        for (authority, expected) in cases {
            assert_eq!(split_authority(authority), expected, "{authority:?}");
        }
    }
}
