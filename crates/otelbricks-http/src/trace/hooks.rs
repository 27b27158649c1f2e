//! The hooks of [`HttpTraceLayer`](super::HttpTraceLayer): the span name and extra attributes.

use std::borrow::Cow;

use http::{Request, Response};
use opentelemetry::KeyValue;

use crate::{matched_route, method_attribute};

/// Names the server span of a request.
pub trait MakeSpanName<B>: Clone + Send + Sync + 'static {
    /// The span name.
    fn span_name(&self, req: &Request<B>) -> Cow<'static, str>;
}

impl<B, F> MakeSpanName<B> for F
where
    F: Fn(&Request<B>) -> String + Clone + Send + Sync + 'static,
{
    fn span_name(&self, req: &Request<B>) -> Cow<'static, str> {
        Cow::Owned(self(req))
    }
}

/// The semantic conventions' name: `{method} {route}` (`GET /api/v1/jobs/{job_id}`), only
/// `{method}` when no route matched (so random paths add no span names), and `HTTP` for a method
/// outside the standard nine.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultSpanName;

impl<B> MakeSpanName<B> for DefaultSpanName {
    fn span_name(&self, req: &Request<B>) -> Cow<'static, str> {
        let method = match method_attribute(req.method()) {
            "_OTHER" => "HTTP",
            m => m,
        };
        match matched_route(req) {
            Some(route) => {
                let mut name = String::with_capacity(method.len() + 1 + route.len());
                name.push_str(method);
                name.push(' ');
                name.push_str(route);
                Cow::Owned(name)
            }
            None => Cow::Borrowed(method),
        }
    }
}

/// Adds attributes to the server span from the request, before the inner service runs.
pub trait OnRequest<B>: Clone + Send + Sync + 'static {
    /// Pushes attributes onto `attributes`.
    fn on_request(&self, req: &Request<B>, attributes: &mut Vec<KeyValue>);
}

impl<B> OnRequest<B> for () {
    fn on_request(&self, _: &Request<B>, _: &mut Vec<KeyValue>) {}
}

impl<B, F> OnRequest<B> for F
where
    F: Fn(&Request<B>, &mut Vec<KeyValue>) + Clone + Send + Sync + 'static,
{
    fn on_request(&self, req: &Request<B>, attributes: &mut Vec<KeyValue>) {
        self(req, attributes)
    }
}

/// Adds attributes to the server span from the response.
pub trait OnResponse<B>: Clone + Send + Sync + 'static {
    /// Pushes attributes onto `attributes`.
    fn on_response(&self, res: &Response<B>, attributes: &mut Vec<KeyValue>);
}

impl<B> OnResponse<B> for () {
    fn on_response(&self, _: &Response<B>, _: &mut Vec<KeyValue>) {}
}

impl<B, F> OnResponse<B> for F
where
    F: Fn(&Response<B>, &mut Vec<KeyValue>) + Clone + Send + Sync + 'static,
{
    fn on_response(&self, res: &Response<B>, attributes: &mut Vec<KeyValue>) {
        self(res, attributes)
    }
}
