//! The JSON log line layer: one object a line, in the schema of DESIGN.md, written to several sinks
//! (console, `<app>.json`, `<app>_errors.json`) with one formatting pass per event.
//!
//! Context comes from the span, not from the caller: every line written inside a span carries
//! `trace_id` and `span_id` of that span and the plain (`snake_case`, dot-free) fields of the span
//! and its ancestors, such as `request_id` and `user_id`. Dotted fields (`http.request.method`, …)
//! are semantic-convention span attributes and stay on the span.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use opentelemetry::trace::TraceContextExt;
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Dispatch, Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Field names the line itself owns; an event or span field with one of these names is written
/// as `field.<name>` so that no key appears twice.
const RESERVED: &[&str] = &[
    "timestamp",
    "level",
    "logger",
    "message",
    "trace_id",
    "span_id",
];

/// Where formatted lines go. Each call gets one complete line, newline included.
pub trait LineSink: Send + Sync + 'static {
    /// Writes one line. Must not block for long and must not panic.
    fn write_line(&self, line: &[u8]);
}

/// Standard output, written synchronously: one `write_all` of a whole line under the stdout lock.
/// For tests and tools; `install` puts the console behind a [`crate::writer::BatchWriter`] so a slow
/// reader of stdout cannot slow the service.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdoutSink;

impl LineSink for StdoutSink {
    fn write_line(&self, line: &[u8]) {
        // A closed stdout (e.g. a pipe whose reader left) must not take the service down.
        let _ = std::io::stdout().lock().write_all(line);
    }
}

struct Sink {
    /// Least severe level this sink takes (INFO takes INFO, WARN, ERROR).
    min_level: Level,
    out: Box<dyn LineSink>,
}

/// A [`Layer`] that writes every event as one JSON line to its sinks.
///
/// ```
/// use telemetry::json::{JsonLayer, StdoutSink};
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
            dispatch: OnceLock::new(),
        }
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

/// Per-span state: the span's plain fields as a ready JSON fragment (`"k":v,…` with a leading
/// comma), its own and its ancestors' together, and the OTel ids once known.
struct SpanFields {
    /// Pre-rendered `,"request_id":"…","user_id":"…"` of this span and its ancestors.
    fragment: Arc<str>,
    /// This span's own plain fields, kept to re-render the fragment when one is recorded later.
    own: Vec<(&'static str, String)>,
    /// Fragment inherited from the parent at creation.
    inherited: Arc<str>,
    /// `"trace_id":"…","span_id":"…"`, resolved lazily on the first event.
    ids: Option<Option<Arc<str>>>,
}

impl SpanFields {
    fn render(&mut self) {
        let mut s = String::with_capacity(self.inherited.len() + 32 * self.own.len());
        s.push_str(&self.inherited);
        for (k, v) in &self.own {
            s.push_str(",\"");
            s.push_str(k);
            s.push_str("\":");
            s.push_str(v);
        }
        self.fragment = Arc::from(s);
    }
}

/// Collects a span's plain fields as `(name, json value)`.
struct SpanVisitor<'a>(&'a mut Vec<(&'static str, String)>);

fn is_context_field(name: &str) -> bool {
    !name.contains('.') && !RESERVED.contains(&name) && name != "message"
}

impl SpanVisitor<'_> {
    fn put(&mut self, field: &Field, value: impl FnOnce() -> String) {
        let name = field.name();
        // Checked before the value is rendered: most span fields are dotted attributes.
        if !is_context_field(name) {
            return;
        }
        let value = value();
        if let Some(slot) = self.0.iter_mut().find(|(k, _)| *k == name) {
            slot.1 = value;
        } else {
            self.0.push((name, value));
        }
    }
}

fn json_string(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    write_json_str(&mut out, s);
    // `write_json_str` writes valid UTF-8: the input is UTF-8 and escapes are ASCII.
    String::from_utf8(out).unwrap_or_default()
}

impl Visit for SpanVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, || json_string(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, || itoa::Buffer::new().format(value).to_owned());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, || itoa::Buffer::new().format(value).to_owned());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, || if value { "true" } else { "false" }.to_owned());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, || {
            let mut v = Vec::new();
            write_f64(&mut v, value);
            String::from_utf8(v).unwrap_or_default()
        });
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, || {
            let mut out = Vec::new();
            write_debug_str(&mut out, value);
            String::from_utf8(out).unwrap_or_default()
        });
    }
}

thread_local! {
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
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
            .unwrap_or_else(|| Arc::from(""));
        let mut own = Vec::new();
        attrs.record(&mut SpanVisitor(&mut own));
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
            values.record(&mut SpanVisitor(&mut changed));
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
        let mut span_part: Option<(Option<Arc<str>>, Arc<str>)> = None;
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
                span_part = Some((ids, fragment));
            }
        }

        let write = |buf: &mut Vec<u8>| {
            buf.clear();
            format_line(buf, event, level, span_part.as_ref());
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
    /// `,"trace_id":"…","span_id":"…"` of a span from the OpenTelemetry layer, if there is one.
    fn resolve_ids(&self, id: &Id) -> Option<Arc<str>> {
        let dispatch = self.dispatch.get()?.upgrade()?;
        ids_fragment(&tracing_opentelemetry::get_otel_context(id, &dispatch)?)
    }
}

fn ids_fragment(cx: &opentelemetry::Context) -> Option<Arc<str>> {
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return None;
    }
    // Hex by table into a stack buffer: `{:032x}` through `fmt` cost ~2k instructions per line.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    const HEAD: &[u8] = b",\"trace_id\":\"";
    const MID: &[u8] = b"\",\"span_id\":\"";
    let mut buf = [0u8; 14 + 32 + 13 + 16 + 1];
    let mut n = 0;
    let mut put = |bytes: &[u8]| {
        buf[n..n + bytes.len()].copy_from_slice(bytes);
        n += bytes.len();
    };
    put(HEAD);
    for b in sc.trace_id().to_bytes() {
        put(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
    }
    put(MID);
    for b in sc.span_id().to_bytes() {
        put(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
    }
    put(b"\"");
    // Only ASCII was written.
    std::str::from_utf8(&buf[..n]).ok().map(Arc::from)
}

fn level_str(level: Level) -> &'static str {
    match level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

fn format_line(
    buf: &mut Vec<u8>,
    event: &Event<'_>,
    level: Level,
    span: Option<&(Option<Arc<str>>, Arc<str>)>,
) {
    let meta = event.metadata();
    buf.extend_from_slice(b"{\"timestamp\":\"");
    let _ = write!(
        buf,
        "{}",
        humantime::format_rfc3339_micros(SystemTime::now())
    );
    buf.extend_from_slice(b"\",\"level\":\"");
    buf.extend_from_slice(level_str(level).as_bytes());
    buf.extend_from_slice(b"\",\"logger\":");
    write_json_str(buf, meta.target());

    // The message first (the schema's order), then the other fields.
    let mut visitor = EventVisitor {
        buf,
        message_written: false,
        pass: Pass::Message,
    };
    event.record(&mut visitor);
    if !visitor.message_written {
        visitor.buf.extend_from_slice(b",\"message\":\"\"");
    }
    if let Some((ids, fragment)) = span {
        if let Some(ids) = ids {
            visitor.buf.extend_from_slice(ids.as_bytes());
        }
        visitor.buf.extend_from_slice(fragment.as_bytes());
    }
    visitor.pass = Pass::Fields;
    event.record(&mut visitor);
    buf.extend_from_slice(b"}\n");
}

#[derive(PartialEq)]
enum Pass {
    Message,
    Fields,
}

struct EventVisitor<'a> {
    buf: &'a mut Vec<u8>,
    message_written: bool,
    pass: Pass,
}

impl EventVisitor<'_> {
    /// Writes `,"name":` for a field of this pass; false if the field belongs to the other pass.
    fn key(&mut self, field: &Field) -> bool {
        let name = field.name();
        let is_message = name == "message";
        match self.pass {
            Pass::Message if is_message => {
                self.message_written = true;
                self.buf.extend_from_slice(b",\"message\":");
                true
            }
            Pass::Fields if !is_message => {
                // `log` crate metadata bridged by tracing-log is not a field of ours.
                if name.starts_with("log.") {
                    return false;
                }
                self.buf.extend_from_slice(b",\"");
                if RESERVED.contains(&name) {
                    self.buf.extend_from_slice(b"field.");
                }
                write_escaped_inner(self.buf, name);
                self.buf.extend_from_slice(b"\":");
                true
            }
            _ => false,
        }
    }
}

impl Visit for EventVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.key(field) {
            write_json_str(self.buf, value);
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.key(field) {
            self.buf
                .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.key(field) {
            self.buf
                .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        }
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        if self.key(field) {
            self.buf
                .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        }
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        if self.key(field) {
            self.buf
                .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        }
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        if self.key(field) {
            write_f64(self.buf, value);
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.key(field) {
            self.buf
                .extend_from_slice(if value { b"true" } else { b"false" });
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.key(field) {
            write_display_str(self.buf, value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.key(field) {
            write_debug_str(self.buf, value);
        }
    }
}

/// Finite floats as JSON numbers (shortest round-trip form); NaN and infinities as strings,
/// since JSON has no literal for them.
fn write_f64(buf: &mut Vec<u8>, value: f64) {
    if value.is_finite() {
        buf.extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
    } else {
        write_json_str(buf, &value.to_string());
    }
}

/// Writes `s` as a JSON string literal, quotes included.
pub(crate) fn write_json_str(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    write_escaped_inner(buf, s);
    buf.push(b'"');
}

/// JSON string escaping (RFC 8259): quote, backslash and control characters; everything else,
/// including non-ASCII UTF-8, is copied as is. Unchanged runs are copied in one slice.
fn write_escaped_inner(buf: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => {
                buf.extend_from_slice(&bytes[start..i]);
                buf.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 0xf) as usize],
                ]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        buf.extend_from_slice(esc);
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
}

/// A `fmt::Write` that escapes as it goes, so `Debug`/`Display` values need no temporary String.
struct Escaper<'a>(&'a mut Vec<u8>);

impl fmt::Write for Escaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_escaped_inner(self.0, s);
        Ok(())
    }
}

fn write_debug_str(buf: &mut Vec<u8>, value: &dyn fmt::Debug) {
    buf.push(b'"');
    let _ = write!(Escaper(buf), "{value:?}");
    buf.push(b'"');
}

fn write_display_str(buf: &mut Vec<u8>, value: &dyn fmt::Display) {
    buf.push(b'"');
    let _ = write!(Escaper(buf), "{value}");
    buf.push(b'"');
}
