//! The response future of [`HttpTrace`](super::HttpTrace).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use opentelemetry::trace::Status;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::hooks::OnResponse;
use crate::classify::{ClassifyResponse, Outcome};
use crate::status_str;

pub(super) struct State<Res, C> {
    pub on_response: Res,
    pub classify: C,
}

pin_project_lite::pin_project! {
    /// The response future of [`HttpTrace`](super::HttpTrace): polls the inner future inside the
    /// server span and records the response on it.
    pub struct ResponseFuture<F, Res, C> {
        #[pin]
        inner: F,
        span: tracing::Span,
        state: Option<State<Res, C>>,
    }
}

impl<F, Res, C> ResponseFuture<F, Res, C> {
    pub(super) fn new(inner: F, span: tracing::Span, state: Option<State<Res, C>>) -> Self {
        ResponseFuture { inner, span, state }
    }
}

impl<F, Res, C, B, E> Future for ResponseFuture<F, Res, C>
where
    F: Future<Output = Result<Response<B>, E>>,
    Res: OnResponse<B>,
    C: ClassifyResponse,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _enter = this.span.enter();
        let result = ready!(this.inner.poll(cx));
        if let Some(state) = this.state.take()
            && !this.span.is_disabled()
        {
            record_result(this.span, &state, &result);
        }
        Poll::Ready(result)
    }
}

fn record_result<Res: OnResponse<B>, C: ClassifyResponse, B, E>(
    span: &tracing::Span,
    state: &State<Res, C>,
    result: &Result<Response<B>, E>,
) {
    let error_type = match result {
        Ok(res) => {
            let status = res.status();
            span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
            let mut extra = Vec::new();
            state.on_response.on_response(res, &mut extra);
            for kv in extra {
                span.set_attribute(kv.key, kv.value);
            }
            match Outcome::of(res, &state.classify) {
                Outcome::Ok => None,
                Outcome::FailedStatus => Some(opentelemetry::Value::from(status_str(status))),
                Outcome::Panic => Some("panic".into()),
            }
        }
        Err(_) => Some(std::any::type_name::<E>().into()),
    };
    if let Some(et) = error_type {
        span.set_attribute("error.type", et);
        span.set_status(Status::error(""));
    }
}
