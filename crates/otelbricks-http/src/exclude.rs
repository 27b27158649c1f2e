//! Requests no layer of this crate should see (health checks, the metrics endpoint): an
//! [`ExcludeLayer`] marks them with [`Excluded`] in the request extensions, and every middleware
//! of this crate passes a marked request straight to the inner service, with no span, metric,
//! log line or header.
//!
//! Put it outside the layers it should silence:
//!
//! ```
//! use axum::{Router, routing::get};
//! use otelbricks_http::{ExcludeLayer, ExcludePaths, HttpMetricsLayer};
//! use tower::ServiceBuilder;
//!
//! let app: Router = Router::new()
//!     .route("/health", get(|| async { "ok" }))
//!     .route("/internal/debug/vars", get(|| async { "{}" }))
//!     .layer(
//!         ServiceBuilder::new()
//!             .layer(ExcludeLayer::new(
//!                 ExcludePaths::new().exact("/health").prefix("/internal/"),
//!             ))
//!             .layer(HttpMetricsLayer::new()),
//!     );
//! ```
//!
//! Any `Fn(&str) -> bool + Clone` on the request path works as well:
//!
//! ```
//! use otelbricks_http::ExcludeLayer;
//!
//! let layer = ExcludeLayer::new(|path: &str| path.ends_with(".ico"));
//! ```
//!
//! [`HttpServerLayer`](crate::HttpServerLayer) excludes `/metrics` and `/health` by default.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::Request;
use tower::{Layer, Service};

/// Marker in the request extensions: every layer of this crate passes the request through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Excluded;

/// `true` when `req` was marked by an [`ExcludeLayer`].
pub(crate) fn is_excluded<B>(req: &Request<B>) -> bool {
    req.extensions().get::<Excluded>().is_some()
}

/// Decides from the request path whether a request is excluded.
pub trait ExcludeRequest: Clone + Send + Sync + 'static {
    /// `true` when the request with this path is excluded.
    fn is_excluded(&self, path: &str) -> bool;
}

impl<F> ExcludeRequest for F
where
    F: Fn(&str) -> bool + Clone + Send + Sync + 'static,
{
    fn is_excluded(&self, path: &str) -> bool {
        self(path)
    }
}

/// Paths excluded by exact match or by prefix.
#[derive(Debug, Clone, Default)]
pub struct ExcludePaths {
    exact: Arc<[String]>,
    prefixes: Arc<[String]>,
}

impl ExcludePaths {
    /// Excludes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also excludes the request path `path` exactly (no query string).
    pub fn exact(mut self, path: impl Into<String>) -> Self {
        let mut v = self.exact.to_vec();
        v.push(path.into());
        self.exact = v.into();
        self
    }

    /// Also excludes every path that starts with `prefix`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        let mut v = self.prefixes.to_vec();
        v.push(prefix.into());
        self.prefixes = v.into();
        self
    }
}

impl ExcludeRequest for ExcludePaths {
    fn is_excluded(&self, path: &str) -> bool {
        self.exact.iter().any(|p| p == path) || self.prefixes.iter().any(|p| path.starts_with(&**p))
    }
}

/// Marks excluded requests with [`Excluded`]. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct ExcludeLayer<E = ExcludePaths> {
    exclude: E,
}

impl<E: ExcludeRequest> ExcludeLayer<E> {
    /// Excludes the requests `exclude` picks.
    pub fn new(exclude: E) -> Self {
        ExcludeLayer { exclude }
    }
}

impl<S, E: Clone> Layer<S> for ExcludeLayer<E> {
    type Service = Exclude<S, E>;

    fn layer(&self, inner: S) -> Self::Service {
        Exclude {
            inner,
            exclude: self.exclude.clone(),
        }
    }
}

/// The service of [`ExcludeLayer`].
#[derive(Debug, Clone)]
pub struct Exclude<S, E = ExcludePaths> {
    inner: S,
    exclude: E,
}

impl<S, E, B> Service<Request<B>> for Exclude<S, E>
where
    S: Service<Request<B>>,
    E: ExcludeRequest,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if self.exclude.is_excluded(req.uri().path()) {
            req.extensions_mut().insert(Excluded);
        }
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_prefix_matches() {
        let e = ExcludePaths::new().exact("/health").prefix("/internal/");
        assert!(e.is_excluded("/health"));
        assert!(!e.is_excluded("/health/deep"));
        assert!(e.is_excluded("/internal/x"));
        assert!(!e.is_excluded("/internals"));
    }
}
