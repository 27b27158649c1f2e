//! Span and log processors wrapped around the SDK's batch processors: they count what enters the
//! queue (so shutdown can say what was dropped) and bound every attribute value, so that no client
//! can make one record, or one export, arbitrarily large.
//!
//! The SDK limits how many attributes a span keeps (`SpanLimits`) but not how long a value is, and
//! limits nothing on log records; the OTel specification's `*_ATTRIBUTE_VALUE_LENGTH_LIMIT` and
//! `OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT` are applied here. Strings are cut on a character
//! boundary; arrays of strings element by element.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogProcessor, SdkLogRecord, SdkLogger};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

use crate::export::ExportStats;

/// `s` cut to at most `max` bytes, on a character boundary.
pub(crate) fn truncate_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn bound_string(v: &StringValue, max: usize) -> Option<StringValue> {
    let s = v.as_str();
    (s.len() > max).then(|| StringValue::from(truncate_str(s, max).to_owned()))
}

fn bound_value(v: &mut Value, max: usize) {
    match v {
        Value::String(s) => {
            if let Some(cut) = bound_string(s, max) {
                *s = cut;
            }
        }
        Value::Array(Array::String(items)) => {
            for s in items.iter_mut() {
                if let Some(cut) = bound_string(s, max) {
                    *s = cut;
                }
            }
        }
        _ => {}
    }
}

fn bound_attributes(attrs: &mut [KeyValue], max: usize) {
    for kv in attrs {
        bound_value(&mut kv.value, max);
    }
}

/// Wraps the batch span processor: counts sampled spans and bounds attribute values.
#[derive(Debug)]
pub(crate) struct SpanGate<P> {
    inner: P,
    stats: Arc<ExportStats>,
    max_value_len: usize,
}

impl<P> SpanGate<P> {
    pub(crate) fn new(inner: P, stats: Arc<ExportStats>, max_value_len: usize) -> Self {
        SpanGate {
            inner,
            stats,
            max_value_len,
        }
    }
}

impl<P: SpanProcessor> SpanProcessor for SpanGate<P> {
    fn on_start(&self, span: &mut Span, cx: &opentelemetry::Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, mut span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        let max = self.max_value_len;
        if span.name.len() > max {
            span.name = truncate_str(&span.name, max).to_owned().into();
        }
        bound_attributes(&mut span.attributes, max);
        for event in span.events.events.iter_mut() {
            bound_attributes(&mut event.attributes, max);
            if event.name.len() > max {
                event.name = truncate_str(&event.name, max).to_owned().into();
            }
        }
        for link in span.links.links.iter_mut() {
            bound_attributes(&mut link.attributes, max);
        }
        if let opentelemetry::trace::Status::Error { description } = &mut span.status
            && description.len() > max
        {
            *description = truncate_str(description, max).to_owned().into();
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Wraps the batch log processor: counts records and bounds their body and attributes (value
/// length and count).
#[derive(Debug)]
pub(crate) struct LogGate<P> {
    inner: P,
    stats: Arc<ExportStats>,
    max_value_len: usize,
    max_count: usize,
    /// Makes fresh records: the SDK's record cannot drop attributes in place.
    minter: SdkLogger,
}

impl<P> LogGate<P> {
    pub(crate) fn new(
        inner: P,
        stats: Arc<ExportStats>,
        max_value_len: usize,
        max_count: usize,
    ) -> Self {
        let minter = opentelemetry_sdk::logs::SdkLoggerProvider::builder()
            .build()
            .logger("otelbricks-telemetry");
        LogGate {
            inner,
            stats,
            max_value_len,
            max_count,
            minter,
        }
    }

    fn too_long(&self, v: &AnyValue) -> bool {
        match v {
            AnyValue::String(s) => s.as_str().len() > self.max_value_len,
            AnyValue::Bytes(b) => b.len() > self.max_value_len,
            AnyValue::ListAny(items) => items.iter().any(|i| self.too_long(i)),
            AnyValue::Map(m) => m.values().any(|i| self.too_long(i)),
            _ => false,
        }
    }

    fn bound(&self, v: &AnyValue) -> AnyValue {
        let max = self.max_value_len;
        match v {
            AnyValue::String(s) => match bound_string(s, max) {
                Some(cut) => AnyValue::String(cut),
                None => v.clone(),
            },
            AnyValue::Bytes(b) if b.len() > max => AnyValue::Bytes(Box::new(b[..max].to_vec())),
            AnyValue::ListAny(items) => {
                AnyValue::ListAny(Box::new(items.iter().map(|i| self.bound(i)).collect()))
            }
            AnyValue::Map(m) => AnyValue::Map(Box::new(
                m.iter().map(|(k, i)| (k.clone(), self.bound(i))).collect(),
            )),
            _ => v.clone(),
        }
    }

    /// A copy of `record` within the limits.
    fn rebuilt(&self, record: &SdkLogRecord) -> SdkLogRecord {
        let mut out = self.minter.create_log_record();
        if let Some(name) = record.event_name() {
            out.set_event_name(name);
        }
        if let Some(target) = record.target() {
            out.set_target(target.clone());
        }
        if let Some(t) = record.timestamp() {
            out.set_timestamp(t);
        }
        if let Some(t) = record.observed_timestamp() {
            out.set_observed_timestamp(t);
        }
        if let Some(s) = record.severity_text() {
            out.set_severity_text(s);
        }
        if let Some(s) = record.severity_number() {
            out.set_severity_number(s);
        }
        if let Some(tc) = record.trace_context() {
            out.set_trace_context(tc.trace_id, tc.span_id, tc.trace_flags);
        }
        if let Some(body) = record.body() {
            out.set_body(self.bound(body));
        }
        for (k, v) in record.attributes_iter().take(self.max_count) {
            out.add_attribute(k.clone(), self.bound(v));
        }
        out
    }
}

impl<P: LogProcessor> LogProcessor for LogGate<P> {
    fn emit(&self, data: &mut SdkLogRecord, instrumentation: &InstrumentationScope) {
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        let mut count = 0;
        let mut over = data.body().is_some_and(|b| self.too_long(b));
        for (_, v) in data.attributes_iter() {
            count += 1;
            over = over || count > self.max_count || self.too_long(v);
        }
        if over {
            *data = self.rebuilt(data);
        }
        self.inner.emit(data, instrumentation);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::truncate_str;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate_str("héllo", 2), "h");
        assert_eq!(truncate_str("héllo", 3), "hé");
        assert_eq!(truncate_str("héllo", 100), "héllo");
        assert_eq!(truncate_str("😀😀", 5), "😀");
        assert_eq!(truncate_str("abc", 0), "");
    }
}
