//! The `X-Process-Time` response header: seconds the inner service took, with six decimals
//! (microseconds), as the Python design's middleware sent it.
//!
//! ```
//! use axum::{Router, routing::get};
//! use otelbricks_http::ProcessTimeLayer;
//!
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(ProcessTimeLayer::new());
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use http::{HeaderName, HeaderValue, Request, Response};
use tower::{Layer, Service};

/// The header name, `x-process-time`.
pub static X_PROCESS_TIME: HeaderName = HeaderName::from_static("x-process-time");

/// Adds `X-Process-Time`. See the [module docs](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessTimeLayer;

impl ProcessTimeLayer {
    /// The layer.
    pub fn new() -> Self {
        ProcessTimeLayer
    }
}

impl<S> Layer<S> for ProcessTimeLayer {
    type Service = ProcessTime<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ProcessTime { inner }
    }
}

/// The service of [`ProcessTimeLayer`].
#[derive(Debug, Clone)]
pub struct ProcessTime<S> {
    inner: S,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for ProcessTime<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let start = (!crate::exclude::is_excluded(&req)).then(Instant::now);
        ResponseFuture {
            inner: self.inner.call(req),
            start,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`ProcessTime`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        start: Option<Instant>,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = ready!(this.inner.poll(cx));
        if let (Ok(res), Some(start)) = (&mut res, this.start.take())
            && let Some(v) = process_time_header(start.elapsed())
        {
            res.headers_mut().insert(X_PROCESS_TIME.clone(), v);
        }
        Poll::Ready(res)
    }
}

/// `X-Process-Time`: seconds with 6 decimals (microseconds), formatted without `format!`.
fn process_time_header(elapsed: Duration) -> Option<HeaderValue> {
    let mut secs = itoa::Buffer::new();
    let secs = secs.format(elapsed.as_secs());
    let mut frac = itoa::Buffer::new();
    let frac = frac.format(elapsed.subsec_micros());
    let mut buf = [b'0'; 48];
    let n = secs.len();
    buf[..n].copy_from_slice(secs.as_bytes());
    buf[n] = b'.';
    // Zero-padded to 6 digits: the leading zeros are already in `buf`.
    let end = n + 1 + 6;
    buf[end - frac.len()..end].copy_from_slice(frac.as_bytes());
    HeaderValue::from_bytes(&buf[..end]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_time_is_seconds_with_six_decimals() {
        let v = |d| {
            process_time_header(d)
                .and_then(|h| h.to_str().ok().map(str::to_owned))
                .unwrap_or_default()
        };
        assert_eq!(v(Duration::from_nanos(1_500)), "0.000001");
        assert_eq!(v(Duration::from_micros(20_345)), "0.020345");
        assert_eq!(v(Duration::from_millis(12_500)), "12.500000");
        assert_eq!(v(Duration::ZERO), "0.000000");
    }
}
