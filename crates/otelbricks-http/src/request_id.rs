//! Request ids: a valid incoming `X-Request-ID` is kept, anything else is replaced by a new one
//! (UUID v4). [`RequestIdLayer`] puts the id in the request extensions ([`RequestId`]) for the
//! handler and the other layers (the server span carries it, so every log line of the request
//! does) and returns it in the response's `X-Request-ID`.
//!
//! ```
//! use axum::{Extension, Router, routing::get};
//! use otelbricks_http::{RequestId, RequestIdLayer};
//!
//! let app: Router = Router::new()
//!     .route("/", get(|Extension(id): Extension<RequestId>| async move { id.to_string() }))
//!     .layer(RequestIdLayer::new());
//! ```
//!
//! With tower-http's `SetRequestIdLayer` (and `PropagateRequestIdLayer`) outside it, the id they
//! set (their `tower_http::request_id::RequestId` extension) is the one used, if it passes the
//! same check as an incoming header:
//!
//! ```
//! use axum::{Router, routing::get};
//! use otelbricks_http::RequestIdLayer;
//! use tower::ServiceBuilder;
//! use tower_http::request_id::{MakeRequestUuid, SetRequestIdLayer};
//!
//! let app: Router = Router::new().route("/", get(|| async { "hello" })).layer(
//!     ServiceBuilder::new()
//!         .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
//!         .layer(RequestIdLayer::new()),
//! );
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{HeaderName, HeaderValue, Request, Response};
use tower::{Layer, Service};

/// The header that carries the request id, in and out.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// [`REQUEST_ID_HEADER`] as a header name, so no lookup parses the name again.
static X_REQUEST_ID: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);

/// Longest incoming request id kept.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The request's id, put in the request extensions by [`RequestIdLayer`] for handlers to use.
///
/// ```
/// use axum::Extension;
/// use otelbricks_http::RequestId;
///
/// async fn handler(Extension(id): Extension<RequestId>) -> String {
///     format!("your request was {}", id.as_str())
/// }
/// ```
///
/// Held as the header value it is sent back as: keeping a valid incoming id copies nothing, and
/// clones share the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// A fresh random id (UUID v4).
    pub fn generate() -> Self {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
        // Shared from the start: the clone in the request's extensions and the response header
        // then share one allocation (a copied `HeaderValue` allocates again on its first clone).
        RequestId(
            HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(buf)).unwrap_or_else(|_| {
                unreachable!("a hyphenated UUID is 36 ASCII characters, a valid header value")
            }),
        )
    }

    /// The incoming id if it is acceptable: 1 to [`MAX_REQUEST_ID_LEN`] characters out of
    /// `A-Z a-z 0-9 - _ . : / + =`. Anything else (control characters, quotes, spaces, non-ASCII,
    /// oversized) is refused, so a client cannot inject into log lines or headers.
    pub fn from_header(value: &HeaderValue) -> Option<Self> {
        let bytes = value.as_bytes();
        let ok = !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID_LEN
            && bytes.iter().all(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(b, b'-' | b'_' | b'.' | b':' | b'/' | b'+' | b'=')
            });
        ok.then(|| RequestId(value.clone()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Both constructors admit visible ASCII only, so this is valid UTF-8 (checked a word at a
        // time, where `HeaderValue::to_str` checks byte by byte).
        std::str::from_utf8(self.0.as_bytes()).unwrap_or_default()
    }

    /// The id as the header value it is returned as.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Sets the request id. See the [module docs](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl RequestIdLayer {
    /// The layer.
    pub fn new() -> Self {
        RequestIdLayer
    }
}

impl<S> Layer<S> for RequestIdLayer {
    type Service = SetRequestId<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SetRequestId { inner }
    }
}

/// The service of [`RequestIdLayer`].
#[derive(Debug, Clone)]
pub struct SetRequestId<S> {
    inner: S,
}

/// The id of a request: tower-http's extension, else the header, if acceptable; else a new one.
fn request_id_of<B>(req: &Request<B>) -> RequestId {
    req.extensions()
        .get::<tower_http::request_id::RequestId>()
        .and_then(|id| RequestId::from_header(id.header_value()))
        .or_else(|| {
            req.headers()
                .get(&X_REQUEST_ID)
                .and_then(RequestId::from_header)
        })
        .unwrap_or_else(RequestId::generate)
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for SetRequestId<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        if crate::exclude::is_excluded(&req) {
            return ResponseFuture {
                inner: self.inner.call(req),
                id: None,
            };
        }
        let id = request_id_of(&req);
        req.extensions_mut().insert(id.clone());
        ResponseFuture {
            inner: self.inner.call(req),
            id: Some(id),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`SetRequestId`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        id: Option<RequestId>,
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
        if let (Ok(res), Some(id)) = (&mut res, this.id.take()) {
            res.headers_mut().insert(X_REQUEST_ID.clone(), id.0);
        }
        Poll::Ready(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &[u8]) -> HeaderValue {
        HeaderValue::from_bytes(s).expect("header value")
    }

    #[test]
    fn safe_incoming_ids_are_kept() {
        for id in [
            "abc",
            "0f8c2a9e-5d1b-4e8a-9c1f-3b2a1d0e9f8a",
            "trace:1/2+3=4_x.y",
        ] {
            assert_eq!(
                RequestId::from_header(&hv(id.as_bytes())).map(|r| r.as_str().to_owned()),
                Some(id.to_owned())
            );
        }
    }

    #[test]
    fn hostile_incoming_ids_are_refused() {
        let long = [b'a'; MAX_REQUEST_ID_LEN + 1];
        for id in [
            &b""[..],
            b"has space",
            b"quote\"",
            b"back\\slash",
            b"tab\tx",
            b"{json}",
            &long[..],
            b"caf\xc3\xa9",
        ] {
            assert!(
                RequestId::from_header(&hv(id)).is_none(),
                "{:?} must be refused",
                String::from_utf8_lossy(id)
            );
        }
        let two_kb = vec![b'x'; 2048];
        assert!(RequestId::from_header(&hv(&two_kb)).is_none());
    }

    #[test]
    fn generated_ids_are_valid_incoming_ids() {
        let id = RequestId::generate();
        assert_eq!(
            RequestId::from_header(&hv(id.as_str().as_bytes())),
            Some(id)
        );
    }
}
