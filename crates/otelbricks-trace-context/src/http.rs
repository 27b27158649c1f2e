//! Carriers for [`http::HeaderMap`] (feature `http`, on by default).

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator},
};

use crate::propagator::{ExtractReport, W3CTraceContextPropagator};

/// Stands in for a header value that is not UTF-8, so that it still counts (a second
/// `traceparent` field stays a second field) and is rejected by the parsers.
const NOT_UTF8: &str = "\u{fffd}";

/// Reads an [`http::HeaderMap`]; header names are case-insensitive, and
/// [`Extractor::get_all`] returns every field of a name, in order.
///
/// Unlike `opentelemetry_http::HeaderExtractor` (whose `get_all` silently skips values that
/// are not visible ASCII, so a malformed second `traceparent` would go unseen), a value that
/// is not UTF-8 is passed on as `"\u{fffd}"`, which no rule accepts.
#[derive(Debug, Clone, Copy)]
pub struct HeaderMapExtractor<'a>(pub &'a HeaderMap);

impl Extractor for HeaderMapExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(|v| std::str::from_utf8(v.as_bytes()).unwrap_or(NOT_UTF8))
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let mut it = self.0.get_all(key).iter().peekable();
        it.peek()?;
        Some(
            it.map(|v| std::str::from_utf8(v.as_bytes()).unwrap_or(NOT_UTF8))
                .collect(),
        )
    }
}

/// Writes into an [`http::HeaderMap`], replacing every earlier field of the same name.
/// Names are written lowercase; a name or value `http` refuses is skipped.
#[derive(Debug)]
pub struct HeaderMapInjector<'a>(pub &'a mut HeaderMap);

impl Injector for HeaderMapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            // `from_bytes` normalizes the name to lowercase.
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::try_from(value),
        ) {
            self.0.insert(name, value);
        }
    }

    fn reserve(&mut self, additional: usize) {
        self.0.reserve(additional);
    }
}

impl W3CTraceContextPropagator {
    /// Extracts the upstream context from request headers, on top of `cx`.
    pub fn extract_from_headers(&self, cx: &Context, headers: &HeaderMap) -> Context {
        self.extract_with_context(cx, &HeaderMapExtractor(headers))
    }

    /// [`Self::extract_from_headers`] plus why anything was rejected.
    pub fn extract_from_headers_with_report(
        &self,
        cx: &Context,
        headers: &HeaderMap,
    ) -> (Context, ExtractReport) {
        self.extract_with_report(cx, &HeaderMapExtractor(headers))
    }

    /// Injects the span context of `cx` into outgoing request headers.
    pub fn inject_into_headers(&self, cx: &Context, headers: &mut HeaderMap) {
        self.inject_context(cx, &mut HeaderMapInjector(headers));
    }
}
