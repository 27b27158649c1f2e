//! The JSON log line layer: one object a line, in the schema of docs/log-files.md, written to several sinks
//! (console, `<app>.json`, `<app>_errors.json`) with one formatting pass per event.
//!
//! Context comes from the span, not from the caller: every line written inside a span carries
//! `trace_id` and `span_id` of that span and the plain (`snake_case`, dot-free) fields of the span
//! and its ancestors, such as `request_id` and `user_id`. Dotted fields (`http.request.method`, …)
//! are semantic-convention span attributes and stay on the span. Outside any `tracing` span, a
//! line carries the span of the current OpenTelemetry context and its
//! [`LogFields`](otelbricks_trace_context::LogFields) (a server span started with the
//! OpenTelemetry API, as `otelbricks-http` does), and a root `tracing` span inherits those fields.

use std::cell::{Cell, RefCell};
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::TraceContextExt;
use otelbricks_trace_context::LogFields;
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
        let len = self.inherited.len()
            + self
                .own
                .iter()
                .map(|(k, v)| k.len() + v.len() + 4)
                .sum::<usize>();
        let mut s = String::with_capacity(len);
        s.push_str(&self.inherited);
        for (k, v) in &self.own {
            s.push_str(",\"");
            s.push_str(k);
            s.push_str("\":");
            s.push_str(v);
        }
        // Exact capacity: `Arc::from` reuses nothing but copies once; no reallocation on the way.
        self.fragment = Arc::from(s);
    }
}

/// Collects a span's plain fields as `(name, json value)`, values cut at `max` bytes.
struct SpanVisitor<'a> {
    fields: &'a mut Vec<(&'static str, String)>,
    max: usize,
}

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
        if let Some(slot) = self.fields.iter_mut().find(|(k, _)| *k == name) {
            slot.1 = value;
        } else {
            self.fields.push((name, value));
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
        let max = self.max;
        self.put(field, || {
            json_string(crate::processors::truncate_str(value, max))
        });
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
        let max = self.max;
        self.put(field, || {
            let mut out = Vec::new();
            write_debug_str(&mut out, value, max);
            String::from_utf8(out).unwrap_or_default()
        });
    }
}

thread_local! {
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
    /// The fragment of a span without plain fields, shared instead of allocated per root span.
    static EMPTY: Arc<str> = Arc::from("");
    /// `YYYY-MM-DDTHH:MM:SS` of the last second a line was stamped with on this thread.
    static SECOND: Cell<(u64, [u8; 19])> = const { Cell::new((u64::MAX, [0; 19])) };
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

/// `,"request_id":"…","user_id":"…"`: the plain fields of a context, values cut at `max` bytes.
fn write_fields(buf: &mut Vec<u8>, fields: &LogFields, max: usize) {
    for (k, v) in fields.iter() {
        if !is_context_field(k) {
            continue;
        }
        buf.extend_from_slice(b",\"");
        write_escaped_inner(buf, k);
        buf.extend_from_slice(b"\":");
        write_json_str(buf, crate::processors::truncate_str(v, max));
    }
}

/// [`write_fields`] as a fragment a span keeps.
fn render_fields(fields: &LogFields, max: usize) -> Arc<str> {
    let mut buf = Vec::with_capacity(64);
    write_fields(&mut buf, fields, max);
    // Only UTF-8 was written: the keys and values are `str` and escapes are ASCII.
    Arc::from(String::from_utf8(buf).unwrap_or_default())
}

/// `,"trace_id":"…","span_id":"…"`.
fn write_ids(buf: &mut Vec<u8>, sc: &opentelemetry::trace::SpanContext) {
    // Hex by table: `{:032x}` through `fmt` cost ~2k instructions per line.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    buf.extend_from_slice(b",\"trace_id\":\"");
    for b in sc.trace_id().to_bytes() {
        buf.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
    }
    buf.extend_from_slice(b"\",\"span_id\":\"");
    for b in sc.span_id().to_bytes() {
        buf.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
    }
    buf.push(b'"');
}

fn ids_fragment(cx: &opentelemetry::Context) -> Option<Arc<str>> {
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return None;
    }
    let mut buf = Vec::with_capacity(14 + 32 + 13 + 16 + 1);
    write_ids(&mut buf, sc);
    // Only ASCII was written.
    String::from_utf8(buf).ok().map(Arc::from)
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

fn format_line(buf: &mut Vec<u8>, event: &Event<'_>, level: Level, span: &SpanPart, max: usize) {
    let meta = event.metadata();
    buf.extend_from_slice(b"{\"timestamp\":\"");
    write_timestamp(buf, SystemTime::now());
    buf.extend_from_slice(b"\",\"level\":\"");
    buf.extend_from_slice(level_str(level).as_bytes());
    buf.extend_from_slice(b"\",\"logger\":");
    write_json_str(buf, meta.target());

    // The message first (the schema's order), then the span context, then the other fields. The
    // macros put the message first, so one pass usually does; otherwise two passes.
    let mark = buf.len();
    let mut visitor = EventVisitor {
        buf,
        message_written: false,
        pass: Pass::Single,
        span,
        span_pending: false,
        max,
    };
    event.record(&mut visitor);
    if visitor.pass == Pass::Single && visitor.message_written {
        if visitor.span_pending {
            write_span_part(visitor.buf, span, max);
        }
    } else {
        visitor.buf.truncate(mark);
        visitor.message_written = false;
        visitor.pass = Pass::Message;
        event.record(&mut visitor);
        if !visitor.message_written {
            visitor.buf.extend_from_slice(b",\"message\":\"\"");
        }
        write_span_part(visitor.buf, span, max);
        visitor.pass = Pass::Fields;
        event.record(&mut visitor);
    }
    buf.extend_from_slice(b"}\n");
}

/// Where a line's span context comes from.
enum SpanPart {
    /// A `tracing` span: its ids and plain fields as pre-rendered by [`SpanFields`].
    Span {
        ids: Option<Arc<str>>,
        fragment: Arc<str>,
    },
    /// No `tracing` span: the current OpenTelemetry context's span and [`LogFields`].
    CurrentContext,
}

/// The span's ids and plain fields.
fn write_span_part(buf: &mut Vec<u8>, span: &SpanPart, max: usize) {
    match span {
        SpanPart::Span { ids, fragment } => {
            if let Some(ids) = ids {
                buf.extend_from_slice(ids.as_bytes());
            }
            buf.extend_from_slice(fragment.as_bytes());
        }
        SpanPart::CurrentContext => opentelemetry::Context::map_current(|cx| {
            let span = cx.span();
            let sc = span.span_context();
            if sc.is_valid() {
                write_ids(buf, sc);
                if let Some(fields) = cx.get::<LogFields>() {
                    write_fields(buf, fields, max);
                }
            }
        }),
    }
}

/// `2026-11-28T11:07:13.211272Z`, as `humantime::format_rfc3339_micros` writes it; the date and
/// time of day are formatted once per second per thread.
fn write_timestamp(buf: &mut Vec<u8>, now: SystemTime) {
    let Ok(since_epoch) = now.duration_since(UNIX_EPOCH) else {
        let _ = write!(buf, "{}", humantime::format_rfc3339_micros(now));
        return;
    };
    let secs = since_epoch.as_secs();
    let (cached_secs, mut prefix) = SECOND.with(Cell::get);
    if cached_secs != secs {
        let whole = UNIX_EPOCH + std::time::Duration::from_secs(secs);
        let mut text = Vec::with_capacity(20);
        let _ = write!(text, "{}", humantime::format_rfc3339_seconds(whole));
        // `YYYY-MM-DDTHH:MM:SSZ`; anything else (a year past 9999) takes the slow path.
        if text.len() != 20 {
            let _ = write!(buf, "{}", humantime::format_rfc3339_micros(now));
            return;
        }
        prefix.copy_from_slice(&text[..19]);
        SECOND.with(|c| c.set((secs, prefix)));
    }
    buf.extend_from_slice(&prefix);
    let mut micros = since_epoch.subsec_micros();
    let mut frac = *b".000000Z";
    for digit in frac[1..7].iter_mut().rev() {
        *digit = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    buf.extend_from_slice(&frac);
}

#[derive(PartialEq)]
enum Pass {
    /// Message expected first: write it, then the span part, then every other field.
    Single,
    Message,
    Fields,
}

struct EventVisitor<'a, 's> {
    buf: &'a mut Vec<u8>,
    message_written: bool,
    pass: Pass,
    span: &'s SpanPart,
    /// The message was written in a single pass; the span part goes before the next field.
    span_pending: bool,
    /// Longest value written, bytes.
    max: usize,
}

impl EventVisitor<'_, '_> {
    /// Writes `,"name":` for a field of this pass; false if the field belongs to the other pass.
    fn key(&mut self, field: &Field) -> bool {
        let name = field.name();
        let is_message = name == "message";
        if self.pass == Pass::Single {
            if !self.message_written {
                if !is_message {
                    // Not the macros' order: give up this pass, `format_line` does two.
                    self.pass = Pass::Message;
                    return false;
                }
                self.message_written = true;
                self.span_pending = true;
                self.buf.extend_from_slice(b",\"message\":");
                return true;
            }
            if self.span_pending {
                self.span_pending = false;
                write_span_part(self.buf, self.span, self.max);
            }
        }
        match self.pass {
            Pass::Message if is_message => {
                self.message_written = true;
                self.buf.extend_from_slice(b",\"message\":");
                true
            }
            Pass::Single | Pass::Fields if !is_message => {
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

impl Visit for EventVisitor<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.key(field) {
            write_json_str(self.buf, crate::processors::truncate_str(value, self.max));
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
            write_display_str(self.buf, value, self.max);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.key(field) {
            write_debug_str(self.buf, value, self.max);
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
    // Most strings need no escaping: skip 8 bytes at a time while none of them does.
    let clean = clean_prefix(bytes);
    if clean == bytes.len() {
        buf.extend_from_slice(bytes);
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate().skip(clean) {
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

/// Length of the longest prefix of `bytes`, rounded down to whole 8-byte words, in which no byte
/// needs escaping (control characters, `"` and `\\`); the rest is left to the byte loop.
fn clean_prefix(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut n = 0;
    for chunk in bytes.chunks_exact(8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // A high bit marks a byte < 0x20, equal to `"`, or equal to `\` (the classic "has zero
        // byte" test on x, x ^ '"' and x ^ '\\'; bytes >= 0x80 are masked out by `!x`).
        let control = x.wrapping_sub(ONES * 0x20) & !x;
        let quote =
            (x ^ (ONES * u64::from(b'"'))).wrapping_sub(ONES) & !(x ^ (ONES * u64::from(b'"')));
        let backslash =
            (x ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES) & !(x ^ (ONES * u64::from(b'\\')));
        if (control | quote | backslash) & HIGH != 0 {
            break;
        }
        n += 8;
    }
    n
}

/// A `fmt::Write` that escapes as it goes, so `Debug`/`Display` values need no temporary String,
/// and stops after `left` bytes (cut on a character boundary).
struct Escaper<'a> {
    buf: &'a mut Vec<u8>,
    left: usize,
}

impl fmt::Write for Escaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let part = crate::processors::truncate_str(s, self.left);
        write_escaped_inner(self.buf, part);
        self.left -= part.len();
        if part.len() < s.len() {
            // Stop formatting: the rest would be thrown away.
            self.left = 0;
            return Err(fmt::Error);
        }
        Ok(())
    }
}

fn write_debug_str(buf: &mut Vec<u8>, value: &dyn fmt::Debug, max: usize) {
    buf.push(b'"');
    let _ = write!(Escaper { buf, left: max }, "{value:?}");
    buf.push(b'"');
}

fn write_display_str(buf: &mut Vec<u8>, value: &dyn fmt::Display, max: usize) {
    buf.push(b'"');
    let _ = write!(Escaper { buf, left: max }, "{value}");
    buf.push(b'"');
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

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
    fn strings_are_escaped_exactly_as_serde_json_escapes_them() {
        // Every byte class at every position of the 8-byte words, plus non-ASCII text.
        let alphabet: Vec<char> = (0u8..0x80)
            .map(char::from)
            .chain(['é', '€', '😀', '\u{7f}', '\u{2028}'])
            .collect();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..40 {
            for _ in 0..200 {
                let s: String = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        // Mostly plain letters, so long clean runs occur.
                        if seed.is_multiple_of(4) {
                            alphabet[(seed >> 8) as usize % alphabet.len()]
                        } else {
                            char::from(b'a' + (seed >> 8) as u8 % 26)
                        }
                    })
                    .collect();
                let mut ours = Vec::new();
                write_json_str(&mut ours, &s);
                assert_eq!(
                    String::from_utf8(ours).expect("utf-8"),
                    serde_json::to_string(&s).expect("serde_json"),
                    "{s:?}"
                );
            }
        }
    }

    #[test]
    fn timestamps_match_humantime_across_seconds_and_the_per_second_cache() {
        let base = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let instants = [
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::from_micros(1),
            base,
            base + Duration::from_micros(999_999),
            base + Duration::from_micros(999_999),
            base + Duration::from_secs(1),
            base + Duration::from_nanos(1_500_999_999),
            base - Duration::from_secs(86_400 * 365),
            UNIX_EPOCH + Duration::from_secs(4_102_444_799) + Duration::from_micros(123_456),
        ];
        for t in instants {
            let mut buf = Vec::new();
            write_timestamp(&mut buf, t);
            assert_eq!(
                String::from_utf8(buf).expect("ascii"),
                humantime::format_rfc3339_micros(t).to_string(),
                "{t:?}"
            );
        }
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
