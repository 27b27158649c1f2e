//! Tower middleware that instruments HTTP with OpenTelemetry, in the style of tower-http: one
//! middleware per module, each a [`Layer`](tower::Layer) + [`Service`](tower::Service) with a
//! named response future, generic over request and response bodies, usable alone or together.
//!
//! | module | layer | what it does per request |
//! |---|---|---|
//! | [`exclude`] | [`ExcludeLayer`] | marks requests (by path, exact or prefix) that every layer of this crate lets through untouched |
//! | [`request_id`] | [`RequestIdLayer`] | keeps a safe `X-Request-ID` (or tower-http's `RequestId`) or makes one; returns it |
//! | [`user_id`] | [`UserIdLayer`] | hashes a bearer token into a [`UserId`] |
//! | [`trace`] | [`HttpTraceLayer`] | the server span, continuing (or restarting) the caller's trace |
//! | [`metrics`] | [`HttpMetricsLayer`] | the four semantic-convention HTTP server metrics |
//! | [`request_log`] | [`RequestLogLayer`] | one `Request completed` / `Request failed` log line |
//! | [`catch_panic`] | [`CatchPanicLayer`] | a panic in the handler becomes a 500 the other layers see |
//! | [`process_time`] | [`ProcessTimeLayer`] | the `X-Process-Time` response header |
//!
//! [`HttpServerLayer`] stacks all of them in the right order, for axum routers and any other
//! tower HTTP service; [`HttpClientMiddleware`] instruments reqwest clients.
//!
//! ```
//! use axum::{Router, routing::get};
//! use otelbricks_http::HttpServerLayer;
//!
//! let app: Router = Router::new()
//!     .route("/api/v1/jobs/{job_id}", get(|| async { "ok" }))
//!     .layer(HttpServerLayer::new());
//! ```
//!
//! Which outcomes are failures is one shared concept, [`classify`]: the span status, the
//! metrics' `error.type` and the log line's level all ask the same classifier.
//!
//! Nothing from `Authorization`, `Cookie`, `Set-Cookie`, `Proxy-Authorization`, `X-Api-Key` or the
//! query string is ever recorded: the layers record an allow-list of fields, never headers or
//! queries. Client-controlled values that are recorded (`url.path`, `user_agent.original`,
//! `server.address`) are cut to [`MAX_ATTRIBUTE_LEN`] bytes at a character boundary.

#![warn(missing_docs)]

pub mod catch_panic;
pub mod classify;
pub mod client;
pub mod exclude;
pub mod metrics;
pub mod process_time;
pub mod propagation;
pub mod request_id;
pub mod request_log;
pub mod server;
pub mod trace;
pub mod user_id;

pub use catch_panic::{CatchPanicLayer, Panicked};
pub use classify::{ClassifyResponse, ServerErrorsAsFailures, StatusInRangeAsFailures};
pub use client::HttpClientMiddleware;
pub use exclude::{ExcludeLayer, ExcludePaths, Excluded};
pub use metrics::{DURATION_BUCKETS, HttpMetricsLayer};
pub use process_time::ProcessTimeLayer;
pub use request_id::{RequestId, RequestIdLayer};
pub use request_log::RequestLogLayer;
pub use server::HttpServerLayer;
pub use trace::{HttpTraceLayer, IncomingTraceContext};
pub use user_id::{UserId, UserIdHasher, UserIdLayer};

/// The longest value, in bytes, recorded for a client-controlled attribute or field
/// (`url.path`, `user_agent.original`, `server.address`): longer values are cut at the last
/// character boundary at or below it, so a client cannot make spans or log lines arbitrarily
/// large.
pub const MAX_ATTRIBUTE_LEN: usize = 2048;

/// `s` cut to [`MAX_ATTRIBUTE_LEN`] bytes at a character boundary.
pub(crate) fn truncated(s: &str) -> &str {
    if s.len() <= MAX_ATTRIBUTE_LEN {
        return s;
    }
    let mut end = MAX_ATTRIBUTE_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The semantic-convention value of `http.request.method`: the method if it is one of the known
/// ones, `_OTHER` otherwise (so a client inventing methods adds no series).
pub fn method_attribute(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::PATCH => "PATCH",
        http::Method::TRACE => "TRACE",
        http::Method::CONNECT => "CONNECT",
        _ => "_OTHER",
    }
}

/// The semantic-convention value of `network.protocol.version`.
pub(crate) fn protocol_version(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// The route template axum matched (`MatchedPath`), if any.
pub(crate) fn matched_route<B>(req: &http::Request<B>) -> Option<&str> {
    req.extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str())
}

/// `status.as_u16()` as a static string for the common codes, without allocating.
pub(crate) fn status_str(status: http::StatusCode) -> std::borrow::Cow<'static, str> {
    let s = match status.as_u16() {
        200 => "200",
        201 => "201",
        202 => "202",
        204 => "204",
        301 => "301",
        302 => "302",
        304 => "304",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        413 => "413",
        415 => "415",
        422 => "422",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        other => return std::borrow::Cow::Owned(other.to_string()),
    };
    std::borrow::Cow::Borrowed(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_become_other() {
        assert_eq!(method_attribute(&http::Method::GET), "GET");
        let weird = http::Method::from_bytes(b"BREW").expect("valid token");
        assert_eq!(method_attribute(&weird), "_OTHER");
    }

    #[test]
    fn status_strings_match_the_code() {
        for code in [200u16, 201, 299, 404, 418, 500, 599] {
            let s = http::StatusCode::from_u16(code).expect("valid");
            assert_eq!(status_str(s), code.to_string());
        }
    }

    #[test]
    fn long_values_are_cut_at_a_char_boundary() {
        let short = "/a/b";
        assert_eq!(truncated(short), short);
        let long = "é".repeat(MAX_ATTRIBUTE_LEN); // 2 bytes each
        let cut = truncated(&long);
        assert_eq!(cut.len(), MAX_ATTRIBUTE_LEN);
        let odd = format!("a{long}");
        let cut = truncated(&odd);
        assert_eq!(cut.len(), MAX_ATTRIBUTE_LEN - 1);
        assert!(cut.ends_with('é'));
    }
}
