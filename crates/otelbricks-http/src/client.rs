//! Client middleware for reqwest (through reqwest-middleware): [`HttpClientMiddleware`].
//!
//! ```
//! use otelbricks_http::HttpClientMiddleware;
//!
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(HttpClientMiddleware::new())
//!     .build();
//! ```
//!
//! Each request that passes through it is one attempt: a client span named after the method,
//! child of the current span, whose context is injected into the outgoing headers with the global
//! propagator, and one `http.client.request.duration` measurement with `server.address`,
//! `server.port`, `http.request.method`, `http.response.status_code` and `error.type`. Put it after
//! a retry middleware (or retry around `send`) and every retry shows as its own attempt. Behind a
//! retry middleware such as reqwest-retry, which hands every attempt of one `send` the same
//! extensions, the second and later attempts carry `http.request.resend_count` (1, 2, …).
//! `http.client.active_requests` counts the attempts in flight (by `http.request.method`,
//! `server.address`, `server.port`, `url.scheme`), back down however an attempt ends.
//! `url.full` is recorded without its query string and credentials.
//!
//! ```
//! use reqwest_retry::{RetryTransientMiddleware, policies::ExponentialBackoff};
//! use otelbricks_http::HttpClientMiddleware;
//!
//! let retries = ExponentialBackoff::builder().build_with_max_retries(3);
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(RetryTransientMiddleware::new_with_policy(retries))
//!     .with(HttpClientMiddleware::new())
//!     .build();
//! ```

use std::time::Instant;

use http::Extensions;
use opentelemetry::KeyValue;
use opentelemetry::metrics::Meter;
use reqwest_middleware::{Middleware, Next, Result};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::metrics::ClientMetrics;
use crate::propagation::HeaderInjector;
use crate::{method_attribute, status_str};

/// reqwest middleware that traces and measures each request attempt. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct HttpClientMiddleware {
    metrics: ClientMetrics,
}

impl Default for HttpClientMiddleware {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClientMiddleware {
    /// Instruments on the global meter `otelbricks-http`.
    pub fn new() -> Self {
        Self::with_meter(&opentelemetry::global::meter(crate::metrics::METER_NAME))
    }

    /// Instruments on `meter`.
    pub fn with_meter(meter: &Meter) -> Self {
        HttpClientMiddleware {
            metrics: ClientMetrics::new(meter),
        }
    }
}

/// Counts one attempt in `http.client.active_requests` until dropped (also when the caller drops
/// the request future).
struct ActiveGuard<'a> {
    counter: &'a opentelemetry::metrics::UpDownCounter<i64>,
    attrs: Vec<KeyValue>,
}

impl<'a> ActiveGuard<'a> {
    fn new(counter: &'a opentelemetry::metrics::UpDownCounter<i64>, attrs: Vec<KeyValue>) -> Self {
        counter.add(1, &attrs);
        ActiveGuard { counter, attrs }
    }
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.counter.add(-1, &self.attrs);
    }
}

/// Attempts of one `send` seen so far, kept in its reqwest-middleware extensions.
#[derive(Debug, Clone, Copy)]
struct Attempts(u32);

/// Counts this attempt; the resend count (attempts before this one) from the second attempt on.
fn resend_count(extensions: &mut Extensions) -> Option<u32> {
    match extensions.get_mut::<Attempts>() {
        Some(seen) => {
            let resends = seen.0;
            seen.0 += 1;
            Some(resends)
        }
        None => {
            extensions.insert(Attempts(1));
            None
        }
    }
}

/// `scheme://host[:port]/path`: no credentials, no query, no fragment.
fn redacted_url(url: &reqwest::Url) -> String {
    let mut s = String::with_capacity(url.as_str().len());
    s.push_str(url.scheme());
    s.push_str("://");
    s.push_str(url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        s.push(':');
        s.push_str(itoa::Buffer::new().format(port));
    }
    s.push_str(url.path());
    s
}

fn transport_error_type(err: &reqwest_middleware::Error) -> &'static str {
    match err {
        reqwest_middleware::Error::Reqwest(e) if e.is_timeout() => "timeout",
        reqwest_middleware::Error::Reqwest(e) if e.is_connect() => "connect",
        reqwest_middleware::Error::Reqwest(e) if e.is_body() || e.is_decode() => "body",
        reqwest_middleware::Error::Reqwest(_) => "request",
        reqwest_middleware::Error::Middleware(_) => "middleware",
    }
}

#[async_trait::async_trait]
impl Middleware for HttpClientMiddleware {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<reqwest::Response> {
        let method = method_attribute(req.method());
        let host = crate::truncated(req.url().host_str().unwrap_or_default()).to_owned();
        let port = req.url().port_or_known_default().map(i64::from);
        let span = tracing::info_span!(
            target: "otelbricks_http",
            "HTTP client request",
            otel.name = method,
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            http.request.method = method,
            server.address = %host,
            server.port = port,
            url.full = %redacted_url(req.url()),
            http.request.resend_count = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
        );
        if let Some(resends) = resend_count(extensions) {
            span.record("http.request.resend_count", resends);
        }
        let cx = span.context();
        opentelemetry::global::get_text_map_propagator(|p| {
            p.inject_context(&cx, &mut HeaderInjector(req.headers_mut()))
        });

        let scheme = if req.url().scheme() == "https" {
            "https"
        } else {
            "http"
        };
        let mut active_attrs = vec![
            KeyValue::new("http.request.method", method),
            KeyValue::new("server.address", host.clone()),
            KeyValue::new("url.scheme", scheme),
        ];
        if let Some(p) = port {
            active_attrs.push(KeyValue::new("server.port", p));
        }
        let active = ActiveGuard::new(&self.metrics.active, active_attrs);

        let start = Instant::now();
        let result = next.run(req, extensions).instrument(span.clone()).await;
        drop(active);
        let duration = start.elapsed().as_secs_f64();

        let mut attrs = vec![
            KeyValue::new("http.request.method", method),
            KeyValue::new("server.address", host),
        ];
        if let Some(p) = port {
            attrs.push(KeyValue::new("server.port", p));
        }
        let error_type = match &result {
            Ok(resp) => {
                let status = resp.status();
                span.record("http.response.status_code", status.as_u16());
                attrs.push(KeyValue::new(
                    "http.response.status_code",
                    i64::from(status.as_u16()),
                ));
                (status.is_client_error() || status.is_server_error())
                    .then(|| status_str(status).into_owned())
            }
            Err(e) => Some(transport_error_type(e).to_owned()),
        };
        if let Some(et) = error_type {
            span.record("error.type", et.as_str());
            span.record("otel.status_code", "ERROR");
            attrs.push(KeyValue::new("error.type", et));
        }
        self.metrics.duration.record(duration, &attrs);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_credentials_query_and_fragment() {
        let url =
            reqwest::Url::parse("https://user:pw@api.example.com:8443/v1/jobs?token=s3cret#frag")
                .expect("url");
        assert_eq!(redacted_url(&url), "https://api.example.com:8443/v1/jobs");
    }
}
