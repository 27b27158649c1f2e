//! The response future of [`HttpTrace`](super::HttpTrace).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use opentelemetry::KeyValue;
use opentelemetry::trace::{Status, TraceContextExt as _};

use super::hooks::OnResponse;
use crate::classify::{ClassifyResponse, Outcome};
use crate::status_str;

pub(super) struct State<Res, C> {
    /// The context of the started server span: current while the inner future is polled.
    pub otel_cx: opentelemetry::Context,
    pub on_response: Res,
    pub classify: C,
}

pin_project_lite::pin_project! {
    /// The response future of [`HttpTrace`](super::HttpTrace): polls the inner future with the
    /// server span's context current, then records the response on the span and ends it.
    pub struct ResponseFuture<F, Res, C> {
        #[pin]
        inner: F,
        state: Option<State<Res, C>>,
    }
}

impl<F, Res, C> ResponseFuture<F, Res, C> {
    pub(super) fn new(inner: F, state: Option<State<Res, C>>) -> Self {
        ResponseFuture { inner, state }
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
        let Some(state) = this.state.as_ref() else {
            // Excluded, or already complete.
            return this.inner.poll(cx);
        };
        let attached = state.otel_cx.clone().attach();
        let result = ready!(this.inner.poll(cx));
        drop(attached);
        if let Some(state) = this.state.take() {
            let span = state.otel_cx.span();
            record_result(&span, &state, &result);
            span.end();
        }
        Poll::Ready(result)
    }
}

fn record_result<Res: OnResponse<B>, C: ClassifyResponse, B, E>(
    span: &opentelemetry::trace::SpanRef<'_>,
    state: &State<Res, C>,
    result: &Result<Response<B>, E>,
) {
    let error_type = match result {
        Ok(res) => {
            let status = res.status();
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status.as_u16()),
            ));
            // Allocates only if the hook adds attributes.
            let mut extra = Vec::new();
            state.on_response.on_response(res, &mut extra);
            if !extra.is_empty() {
                span.set_attributes(extra);
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
        span.set_attribute(KeyValue::new("error.type", et));
        span.set_status(Status::error(""));
    }
}
