//! A panic in the inner service (while it is called or while its future runs) becomes a 500
//! response, and the server keeps serving.
//!
//! The response carries [`Panicked`] in its extensions, so the layers outside
//! ([`trace`](crate::trace), [`metrics`](crate::metrics), [`request_log`](crate::request_log))
//! record the request as a failure with `error.type = panic` and the log line carries the panic
//! message. Put this layer inside them.
//!
//! ```
//! use axum::{Router, routing::get};
//! use otelbricks_http::CatchPanicLayer;
//!
//! let app: Router = Router::new()
//!     .route("/boom", get(|| async { panic!("bug") as &'static str }))
//!     .layer(CatchPanicLayer::new());
//! ```
//!
//! The default body is `{"error":{"code":"internal_error","message":"internal server error"}}`
//! (`application/json`) for any body type that converts `From<&'static str>` (axum's `Body`,
//! `http_body_util::Full<Bytes>`, `String`, …); [`CatchPanicLayer::response_for_panic`] takes any
//! `Fn(&str) -> Response<B>` for other bodies or other answers:
//!
//! ```
//! use http::{Response, StatusCode};
//! use otelbricks_http::CatchPanicLayer;
//!
//! let layer = CatchPanicLayer::new().response_for_panic(|_message: &str| {
//!     let mut res = Response::new(String::from("sorry"));
//!     *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
//!     res
//! });
//! ```
//!
//! Why not tower-http's `CatchPanic`: it boxes every response body into an `UnsyncBoxBody` (one
//! allocation and a type change per response) and tells the layers outside nothing about the
//! panic, so the span, metrics and log line would see an ordinary 500.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response, StatusCode};
use tower::{Layer, Service};

/// In the extensions of the 500 response [`CatchPanicLayer`] answers a panic with: the panic
/// message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panicked(Arc<str>);

impl Panicked {
    /// The panic message (`"panic"` when the payload was not a string).
    pub fn message(&self) -> &str {
        &self.0
    }
}

/// Makes the response for a caught panic from its message.
pub trait ResponseForPanic<B>: Clone + Send + Sync + 'static {
    /// The response; [`Panicked`] is added to its extensions afterwards.
    fn response_for_panic(&self, message: &str) -> Response<B>;
}

impl<B, F> ResponseForPanic<B> for F
where
    F: Fn(&str) -> Response<B> + Clone + Send + Sync + 'static,
{
    fn response_for_panic(&self, message: &str) -> Response<B> {
        self(message)
    }
}

/// A 500 with a JSON error body that does not reveal the panic message to the client.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultResponseForPanic;

const INTERNAL_ERROR_BODY: &str =
    r#"{"error":{"code":"internal_error","message":"internal server error"}}"#;

impl<B: From<&'static str>> ResponseForPanic<B> for DefaultResponseForPanic {
    fn response_for_panic(&self, _message: &str) -> Response<B> {
        let mut res = Response::new(B::from(INTERNAL_ERROR_BODY));
        *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        res
    }
}

/// Turns panics into 500 responses. See the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct CatchPanicLayer<T = DefaultResponseForPanic> {
    response_for_panic: T,
}

impl CatchPanicLayer {
    /// Answers panics with [`DefaultResponseForPanic`].
    pub fn new() -> Self {
        Self::default()
    }
}

impl<T> CatchPanicLayer<T> {
    /// Answers panics with `f(message)` instead.
    pub fn response_for_panic<T2>(self, f: T2) -> CatchPanicLayer<T2> {
        CatchPanicLayer {
            response_for_panic: f,
        }
    }
}

impl<S, T: Clone> Layer<S> for CatchPanicLayer<T> {
    type Service = CatchPanic<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        CatchPanic {
            inner,
            response_for_panic: self.response_for_panic.clone(),
        }
    }
}

/// The service of [`CatchPanicLayer`].
#[derive(Debug, Clone)]
pub struct CatchPanic<S, T = DefaultResponseForPanic> {
    inner: S,
    response_for_panic: T,
}

fn panic_message(payload: &(dyn Any + Send)) -> Arc<str> {
    payload
        .downcast_ref::<&str>()
        .map(|s| Arc::from(*s))
        .or_else(|| {
            payload
                .downcast_ref::<String>()
                .map(|s| Arc::from(s.as_str()))
        })
        .unwrap_or_else(|| Arc::from("panic"))
}

fn panic_response<B, T: ResponseForPanic<B>>(t: &T, payload: &(dyn Any + Send)) -> Response<B> {
    let message = panic_message(payload);
    let mut res = t.response_for_panic(&message);
    res.extensions_mut().insert(Panicked(message));
    res
}

impl<S, T, ReqB, ResB> Service<Request<ReqB>> for CatchPanic<S, T>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    T: ResponseForPanic<ResB>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, T>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        if crate::exclude::is_excluded(&req) {
            return ResponseFuture {
                kind: Kind::Future {
                    future: self.inner.call(req),
                },
                response_for_panic: None,
            };
        }
        let kind = match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
            Ok(future) => Kind::Future { future },
            Err(payload) => Kind::Panicked {
                payload: Some(payload),
            },
        };
        ResponseFuture {
            kind,
            response_for_panic: Some(self.response_for_panic.clone()),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`CatchPanic`].
    pub struct ResponseFuture<F, T> {
        #[pin]
        kind: Kind<F>,
        // `None` for excluded requests (passed through) and once a panic was answered.
        response_for_panic: Option<T>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Future { #[pin] future: F },
        // The inner `call` panicked: answered on the first poll.
        Panicked { payload: Option<Box<dyn Any + Send + 'static>> },
    }
}

impl<F, T, B, E> Future for ResponseFuture<F, T>
where
    F: Future<Output = Result<Response<B>, E>>,
    T: ResponseForPanic<B>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let payload = match this.kind.project() {
            KindProj::Future { future } => {
                if this.response_for_panic.is_none() {
                    return future.poll(cx);
                }
                match std::panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
                    Ok(poll) => return poll,
                    Err(payload) => payload,
                }
            }
            KindProj::Panicked { payload } => match payload.take() {
                Some(payload) => payload,
                None => return Poll::Pending,
            },
        };
        match this.response_for_panic.take() {
            Some(t) => Poll::Ready(Ok(panic_response(&t, &*payload))),
            // Polled again after answering: a contract violation by the caller; stay pending.
            None => Poll::Pending,
        }
    }
}
