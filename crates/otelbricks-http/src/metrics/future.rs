//! The response future of [`HttpMetrics`](super::HttpMetrics).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::Response;
use http_body::Body;
use opentelemetry::metrics::BoundUpDownCounter;

use super::instruments::{ErrorType, Outcome, RouteEntry, ServerMetrics};
use crate::classify::{self, ClassifyResponse};

/// Decrements `http.server.active_requests` when the request ends, however it ends (also when the
/// client goes away and the future is dropped).
pub(super) struct ActiveGuard(pub(super) BoundUpDownCounter<i64>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.add(-1);
    }
}

/// What the future needs to record once the response is there.
pub(super) struct State<C> {
    pub start: Instant,
    pub method: &'static str,
    pub scheme: &'static str,
    pub version: &'static str,
    pub route: Arc<RouteEntry>,
    pub request_size: Option<u64>,
    pub metrics: ServerMetrics,
    pub classify: C,
    pub _active: ActiveGuard,
}

pin_project_lite::pin_project! {
    /// The response future of [`HttpMetrics`](super::HttpMetrics).
    pub struct ResponseFuture<F, C> {
        #[pin]
        inner: F,
        // `None` for excluded requests, and once recorded.
        state: Option<State<C>>,
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(super) fn new(inner: F, state: Option<State<C>>) -> Self {
        ResponseFuture { inner, state }
    }
}

impl<F, C, B, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<Response<B>, E>>,
    C: ClassifyResponse,
    B: Body,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let Some(state) = this.state.take() else {
            return Poll::Ready(result);
        };
        let duration = state.start.elapsed().as_secs_f64();
        let (status, error, response_size) = match &result {
            Ok(res) => {
                let error = match classify::Outcome::of(res, &state.classify) {
                    classify::Outcome::Ok => ErrorType::None,
                    classify::Outcome::FailedStatus => ErrorType::Status,
                    classify::Outcome::Panic => ErrorType::Panic,
                };
                (
                    Some(res.status().as_u16()),
                    error,
                    res.body().size_hint().exact(),
                )
            }
            Err(_) => (None, ErrorType::Error(std::any::type_name::<E>()), None),
        };
        let outcome = Outcome {
            method: state.method,
            status,
            scheme: state.scheme,
            version: state.version,
            error,
        };
        state.metrics.record(
            &state.route,
            outcome,
            duration,
            state.request_size,
            response_size,
        );
        Poll::Ready(result)
    }
}
