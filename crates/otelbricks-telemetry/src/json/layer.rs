//! [`JsonLayer`]: the `tracing` layer that keeps span context and writes each event to its sinks.

use std::cell::RefCell;
use std::fmt;
use std::sync::{Arc, OnceLock};

use otelbricks_trace_context::LogFields;
use tracing::dispatcher::WeakDispatch;
use tracing::span::{Attributes, Id, Record};
use tracing::{Dispatch, Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::format::{SpanPart, format_line};
use super::sink::{LineSink, Sink};
use super::span::{SpanFields, SpanVisitor, ids_fragment, render_fields};

/// A [`Layer`] that writes every event as one JSON line to its sinks.
///
/// ```
/// use otelbricks_telemetry::json::{JsonLayer, StdoutSink};
/// use tracing_subscriber::prelude::*;
///
/// let layer = JsonLayer::new().with_sink(tracing::Level::TRACE, StdoutSink);
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::with_default(subscriber, || {
///     let span = tracing::info_span!("request", request_id = "r-1");
///     let _enter = span.enter();
///     tracing::info!(status_code = 200, "Request completed");
/// });
/// ```
pub struct JsonLayer {
    sinks: Vec<Sink>,
    /// Longest value written, bytes (before escaping); longer ones are cut on a character boundary.
    max_value_bytes: usize,
    /// The dispatcher this layer is part of, to ask the OpenTelemetry layer for span ids (inside a
    /// callback, `tracing`'s current dispatcher is the no-op one).
    dispatch: OnceLock<WeakDispatch>,
}

impl fmt::Debug for JsonLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLayer")
            .field("sinks", &self.sinks.len())
            .finish()
    }
}

impl Default for JsonLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl JsonLayer {
    /// A layer with no sinks yet.
    pub fn new() -> Self {
        JsonLayer {
            sinks: Vec::new(),
            max_value_bytes: crate::config::DEFAULT_VALUE_LENGTH_LIMIT,
            dispatch: OnceLock::new(),
        }
    }

    /// Longest value a line holds, in bytes before escaping (default 4096): the message, each
    /// event field and each span field. Longer values are cut on a character boundary, so no
    /// client-controlled value can make a line arbitrarily long. `install` sets it from
    /// `OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT` (or `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`).
    pub fn max_value_bytes(mut self, max: usize) -> Self {
        self.max_value_bytes = max;
        self
    }

    /// Adds a sink that receives events at `min_level` and more severe.
    pub fn with_sink(mut self, min_level: Level, sink: impl LineSink) -> Self {
        self.sinks.push(Sink {
            min_level,
            out: Box::new(sink),
        });
        self
    }
}

thread_local! {
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
    /// The fragment of a span without plain fields, shared instead of allocated per root span.
    static EMPTY: Arc<str> = Arc::from("");
}

impl<S> Layer<S> for JsonLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let inherited: Arc<str> = span
            .parent()
            .and_then(|p| {
                p.extensions()
                    .get::<SpanFields>()
                    .map(|f| f.fragment.clone())
            })
            // A root `tracing` span inherits the fields of the current OpenTelemetry context
            // (a server span started with the OpenTelemetry API).
            .or_else(|| self.context_fields())
            .unwrap_or_else(|| EMPTY.with(Arc::clone));
        let mut own = Vec::new();
        attrs.record(&mut SpanVisitor {
            fields: &mut own,
            max: self.max_value_bytes,
        });
        let mut fields = SpanFields {
            fragment: inherited.clone(),
            own,
            inherited,
            ids: None,
        };
        if !fields.own.is_empty() {
            fields.render();
        }
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(fields) = ext.get_mut::<SpanFields>() {
            let mut changed = Vec::new();
            values.record(&mut SpanVisitor {
                fields: &mut changed,
                max: self.max_value_bytes,
            });
            if changed.is_empty() {
                return;
            }
            for (k, v) in changed {
                if let Some(slot) = fields.own.iter_mut().find(|(name, _)| *name == k) {
                    slot.1 = v;
                } else {
                    fields.own.push((k, v));
                }
            }
            fields.render();
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let level = *meta.level();
        if !self.sinks.iter().any(|s| level <= s.min_level) {
            return;
        }

        // Span context: ids (resolved once per span) and the pre-rendered fields.
        let mut span_part: Option<SpanPart> = None;
        if let Some(span) = ctx.event_span(event) {
            let cached = span
                .extensions()
                .get::<SpanFields>()
                .map(|f| (f.ids.clone(), f.fragment.clone()));
            if let Some((ids, fragment)) = cached {
                let ids = match ids {
                    Some(ids) => ids,
                    None => {
                        let resolved = self.resolve_ids(&span.id());
                        if let Some(f) = span.extensions_mut().get_mut::<SpanFields>() {
                            f.ids = Some(resolved.clone());
                        }
                        resolved
                    }
                };
                span_part = Some(SpanPart::Span { ids, fragment });
            }
        }

        let write = |buf: &mut Vec<u8>| {
            buf.clear();
            // No `tracing` span: the span and fields of the current OpenTelemetry context, written
            // straight into the line (no fragment is built for a context that logs once).
            let span = span_part.as_ref().unwrap_or(&SpanPart::CurrentContext);
            format_line(buf, event, level, span, self.max_value_bytes);
            for sink in &self.sinks {
                if level <= sink.min_level {
                    sink.out.write_line(buf);
                }
            }
        };
        LINE.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buf) => {
                write(&mut buf);
                if buf.capacity() > 64 * 1024 {
                    // One huge event must not pin a huge buffer for the thread's lifetime.
                    *buf = Vec::with_capacity(512);
                }
            }
            // Re-entered from inside a sink: use a fresh buffer.
            Err(_) => write(&mut Vec::with_capacity(256)),
        });
    }
}

impl JsonLayer {
    /// The [`LogFields`] of the current OpenTelemetry context, rendered, if there are any.
    fn context_fields(&self) -> Option<Arc<str>> {
        opentelemetry::Context::map_current(|cx| {
            cx.get::<LogFields>()
                .map(|f| render_fields(f, self.max_value_bytes))
        })
    }

    /// `,"trace_id":"…","span_id":"…"` of a span from the OpenTelemetry layer, if there is one.
    fn resolve_ids(&self, id: &Id) -> Option<Arc<str>> {
        let dispatch = self.dispatch.get()?.upgrade()?;
        ids_fragment(&tracing_opentelemetry::get_otel_context(id, &dispatch)?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tracing_subscriber::prelude::*;

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<String>>>);

    impl LineSink for Lines {
        fn write_line(&self, line: &[u8]) {
            if let Ok(mut lines) = self.0.lock() {
                lines.push(String::from_utf8_lossy(line).into_owned());
            }
        }
    }

    fn capture(f: impl FnOnce()) -> Vec<String> {
        let lines = Lines::default();
        let subscriber = tracing_subscriber::registry()
            .with(JsonLayer::new().with_sink(Level::TRACE, lines.clone()));
        tracing::subscriber::with_default(subscriber, f);
        lines.0.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The keys of a line in the order they were written (serde_json's map would sort them).
    fn key_order(line: &str) -> Vec<String> {
        let value: serde_json::Value = serde_json::from_str(line).expect("valid JSON");
        let keys: Vec<String> = value.as_object().expect("object").keys().cloned().collect();
        let mut positions: Vec<(usize, String)> = keys
            .into_iter()
            .map(|k| (line.find(&format!("\"{k}\":")).expect("key in line"), k))
            .collect();
        positions.sort();
        positions.into_iter().map(|(_, k)| k).collect()
    }

    #[test]
    fn message_then_span_context_then_fields_whatever_order_the_event_gives() {
        let lines = capture(|| {
            let span = tracing::info_span!("request", request_id = "r-1");
            let _enter = span.enter();
            tracing::info!(status_code = 200, "macro order");
            tracing::info!(status_code = 201, message = "message last");
            tracing::info!(status_code = 202);
        });
        assert_eq!(lines.len(), 3, "{lines:?}");
        let expected = [
            "timestamp",
            "level",
            "logger",
            "message",
            "request_id",
            "status_code",
        ];
        for line in &lines {
            assert_eq!(key_order(line), expected, "{line}");
        }
        let messages: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json")["message"].clone())
            .collect();
        assert_eq!(messages, ["macro order", "message last", ""]);
    }

    #[test]
    fn long_values_are_cut_on_a_character_boundary() {
        let lines = Lines::default();
        let layer = JsonLayer::new()
            .max_value_bytes(5)
            .with_sink(Level::TRACE, lines.clone());
        let long = "abcdé€xyz";
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            let span = tracing::info_span!("r", request_id = long);
            let _e = span.enter();
            tracing::info!(s = long, d = ?long, e = %long, "{long}");
        });
        let line = lines.0.lock().map(|l| l[0].clone()).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(v["message"], "abcd", "{line}");
        assert_eq!(v["s"], "abcd");
        assert_eq!(v["e"], "abcd");
        assert_eq!(v["d"], "\"abcd", "Debug output is cut too");
        assert_eq!(v["request_id"], "abcd");
    }

    #[test]
    fn a_line_outside_any_span_has_no_context_keys() {
        let lines = capture(|| tracing::warn!(error_type = "E", "plain"));
        assert_eq!(
            key_order(&lines[0]),
            ["timestamp", "level", "logger", "message", "error_type"]
        );
    }
}
