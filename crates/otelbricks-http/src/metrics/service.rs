//! The service of [`HttpMetricsLayer`](super::HttpMetricsLayer).

use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};
use http_body::Body;
use tower::Service;

use super::future::{ActiveGuard, ResponseFuture, State};
use super::instruments::ServerMetrics;
use crate::classify::ClassifyResponse;
use crate::{matched_route, method_attribute, protocol_version};

/// Records the HTTP server metrics of each request. See the [module docs](super).
#[derive(Debug, Clone)]
pub struct HttpMetrics<S, C> {
    inner: S,
    metrics: ServerMetrics,
    classify: C,
}

impl<S, C> HttpMetrics<S, C> {
    pub(super) fn new(inner: S, metrics: ServerMetrics, classify: C) -> Self {
        HttpMetrics {
            inner,
            metrics,
            classify,
        }
    }
}

impl<S, C, ReqB, ResB> Service<Request<ReqB>> for HttpMetrics<S, C>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    C: ClassifyResponse,
    ReqB: Body,
    ResB: Body,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        if crate::exclude::is_excluded(&req) {
            return ResponseFuture::new(self.inner.call(req), None);
        }
        let start = Instant::now();
        let method = method_attribute(req.method());
        let scheme = if req.uri().scheme_str() == Some("https") {
            "https"
        } else {
            "http"
        };
        let route = self.metrics.route(matched_route(&req));
        let request_size = req.body().size_hint().exact();
        let version = protocol_version(req.version());
        let active = self.metrics.active(method, scheme).clone();
        active.add(1);
        let state = State {
            start,
            method,
            scheme,
            version,
            route,
            request_size,
            metrics: self.metrics.clone(),
            classify: self.classify.clone(),
            _active: ActiveGuard(active),
        };
        ResponseFuture::new(self.inner.call(req), Some(state))
    }
}
