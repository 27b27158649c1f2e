//! Tower layers that instrument HTTP with OpenTelemetry, in the style of tower-http: one middleware
//! per module, each a `Layer` + `Service` pair.
//!
//! - [`server::HttpServerLayer`] for axum 0.8: a server span per request named `{method} {route}`
//!   continuing the caller's trace, the semantic-convention HTTP server metrics, a request id, a
//!   hashed user id, the seed's request log lines, panics turned into 500s, `X-Process-Time`.
//! - [`client::HttpClientMiddleware`] for reqwest (through reqwest-middleware): a client span per
//!   attempt, trace context injected into the outgoing headers, `http.client.request.duration`.
//!
//! Nothing from `Authorization`, `Cookie`, `Set-Cookie`, `Proxy-Authorization`, `X-Api-Key` or the
//! query string is ever recorded: the layers record an allow-list of fields, never headers or queries.

#![warn(missing_docs)]

pub mod client;
mod metrics;
pub mod propagation;
pub mod request_id;
pub mod server;
pub mod user_id;

pub use client::HttpClientMiddleware;
pub use metrics::DURATION_BUCKETS;
pub use request_id::RequestId;
pub use server::{HttpServerLayer, UNMATCHED_ROUTE};
pub use user_id::{UserId, UserIdHasher};

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
}
