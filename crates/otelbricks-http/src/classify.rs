//! Which responses are failures: one concept shared by the span status ([`trace`](crate::trace)),
//! the metrics' `error.type` ([`metrics`](crate::metrics)) and the log line
//! ([`request_log`](crate::request_log)), as tower-http's `classify` is shared by its middleware.
//!
//! The semantic conventions say a server marks its span as an error for 5xx only (a 4xx is the
//! client's mistake, not the server's): that is [`ServerErrorsAsFailures`], the default. A panic
//! caught by [`CatchPanicLayer`](crate::CatchPanicLayer) and an error returned by the inner
//! service are always failures, whatever the classifier says.
//!
//! ```
//! use http::StatusCode;
//! use otelbricks_http::{ClassifyResponse, HttpServerLayer, StatusInRangeAsFailures};
//!
//! // Count 4xx as failures too (a service whose clients are all internal):
//! let layer = HttpServerLayer::new().classify(StatusInRangeAsFailures::new(400..=599));
//!
//! // Or any closure: here 5xx except 503 (planned maintenance answers 503).
//! let classify = |s: StatusCode| s.is_server_error() && s != StatusCode::SERVICE_UNAVAILABLE;
//! assert!(!classify.is_failure(StatusCode::SERVICE_UNAVAILABLE));
//! let layer = HttpServerLayer::new().classify(classify);
//! ```

use std::ops::RangeInclusive;

use http::StatusCode;

/// Decides whether a response status is a failure (`error.type` = the status code, span status
/// error, `Request failed` log line).
pub trait ClassifyResponse: Clone + Send + Sync + 'static {
    /// `true` when `status` is a failure.
    fn is_failure(&self, status: StatusCode) -> bool;
}

impl<F> ClassifyResponse for F
where
    F: Fn(StatusCode) -> bool + Clone + Send + Sync + 'static,
{
    fn is_failure(&self, status: StatusCode) -> bool {
        self(status)
    }
}

/// 5xx are failures: the semantic conventions' rule for servers. The default.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerErrorsAsFailures;

impl ServerErrorsAsFailures {
    /// The classifier.
    pub fn new() -> Self {
        ServerErrorsAsFailures
    }
}

impl ClassifyResponse for ServerErrorsAsFailures {
    fn is_failure(&self, status: StatusCode) -> bool {
        status.is_server_error()
    }
}

/// Statuses in a range are failures (for example `400..=599`).
#[derive(Debug, Clone)]
pub struct StatusInRangeAsFailures {
    range: RangeInclusive<u16>,
}

impl StatusInRangeAsFailures {
    /// Statuses in `range` are failures.
    pub fn new(range: RangeInclusive<u16>) -> Self {
        StatusInRangeAsFailures { range }
    }
}

impl ClassifyResponse for StatusInRangeAsFailures {
    fn is_failure(&self, status: StatusCode) -> bool {
        self.range.contains(&status.as_u16())
    }
}

/// What a finished request was, as every layer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A response the classifier accepts.
    Ok,
    /// A response the classifier calls a failure (`error.type` = the status code).
    FailedStatus,
    /// A panic caught by `CatchPanicLayer` (`error.type` = `panic`).
    Panic,
}

impl Outcome {
    pub(crate) fn of<B>(res: &http::Response<B>, classify: &impl ClassifyResponse) -> Self {
        if res.extensions().get::<crate::Panicked>().is_some() {
            Outcome::Panic
        } else if classify.is_failure(res.status()) {
            Outcome::FailedStatus
        } else {
            Outcome::Ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_fail_on_5xx_only() {
        let c = ServerErrorsAsFailures;
        assert!(!c.is_failure(StatusCode::NOT_FOUND));
        assert!(c.is_failure(StatusCode::BAD_GATEWAY));
        let r = StatusInRangeAsFailures::new(400..=599);
        assert!(r.is_failure(StatusCode::NOT_FOUND));
        assert!(!r.is_failure(StatusCode::OK));
    }
}
