//! The semantic-convention HTTP server metrics, alone or with the other layers:
//!
//! | instrument | unit | attributes |
//! |---|---|---|
//! | `http.server.request.duration` (histogram, buckets [`DURATION_BUCKETS`]) | `s` | `http.request.method`, `http.route`, `http.response.status_code`, `url.scheme`, `network.protocol.version`, `error.type` |
//! | `http.server.active_requests` (up-down counter) | `{request}` | `http.request.method`, `url.scheme` |
//! | `http.server.request.body.size` (histogram) | `By` | as the duration, when the body size is known |
//! | `http.server.response.body.size` (histogram) | `By` | as the duration, when the body size is known |
//!
//! ```
//! use axum::{Router, routing::get};
//! use otelbricks_http::HttpMetricsLayer;
//!
//! let app: Router = Router::new()
//!     .route("/api/v1/jobs/{job_id}", get(|| async { "ok" }))
//!     .layer(HttpMetricsLayer::new());
//! ```
//!
//! Cardinality stays bounded whatever clients send:
//! - `http.route` is the route template axum matched (`MatchedPath`), never the raw path; a
//!   request that matches no route has no `http.route` at all, as the semantic conventions say,
//!   so 10,000 random paths add one series per method and status, not 10,000;
//! - `http.request.method` is `_OTHER` for methods outside the standard nine.
//!
//! `error.type` is set for failures: the status code when the [classifier](crate::classify)
//! calls the status a failure (5xx by default; change it with [`HttpMetricsLayer::classify`]),
//! `panic` for a panic caught by [`CatchPanicLayer`](crate::CatchPanicLayer) inside this layer,
//! and the error's type name when the inner service returns an error.
//!
//! Each attribute set is recorded through a bound instrument (the SDK's
//! `experimental_metrics_bound_instruments`), which skips the SDK's per-record attribute sort and
//! hash lookup; at most 1,024 sets are bound, past which records take the ordinary path.

mod future;
mod instruments;
mod service;

use opentelemetry::metrics::Meter;

use crate::classify::{ClassifyResponse, ServerErrorsAsFailures};
pub(crate) use instruments::ClientMetrics;
pub use instruments::DURATION_BUCKETS;
use instruments::ServerMetrics;

pub use future::ResponseFuture;
pub use service::HttpMetrics;

/// The name of the meter [`HttpMetricsLayer::new`] and the client middleware use.
pub const METER_NAME: &str = "otelbricks-http";

/// Records the HTTP server metrics. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct HttpMetricsLayer<C = ServerErrorsAsFailures> {
    metrics: ServerMetrics,
    classify: C,
}

impl Default for HttpMetricsLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpMetricsLayer {
    /// Instruments on the global meter [`METER_NAME`].
    pub fn new() -> Self {
        Self::with_meter(&opentelemetry::global::meter(METER_NAME))
    }

    /// Instruments on `meter`.
    pub fn with_meter(meter: &Meter) -> Self {
        HttpMetricsLayer {
            metrics: ServerMetrics::new(meter),
            classify: ServerErrorsAsFailures,
        }
    }
}

impl<C> HttpMetricsLayer<C> {
    /// Decides which statuses are failures (`error.type`).
    pub fn classify<C2: ClassifyResponse>(self, classify: C2) -> HttpMetricsLayer<C2> {
        HttpMetricsLayer {
            metrics: self.metrics,
            classify,
        }
    }
}

impl<S, C: Clone> tower::Layer<S> for HttpMetricsLayer<C> {
    type Service = HttpMetrics<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpMetrics::new(inner, self.metrics.clone(), self.classify.clone())
    }
}
