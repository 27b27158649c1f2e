//! Span context: a span's plain fields rendered once as a JSON fragment, and its OTel ids.

use std::fmt;
use std::sync::Arc;

use opentelemetry::trace::TraceContextExt;
use otelbricks_trace_context::LogFields;
use tracing::field::{Field, Visit};

use super::format::RESERVED;
use super::value::{json_string, write_debug_str, write_escaped_inner, write_f64, write_json_str};

/// Per-span state: the span's plain fields as a ready JSON fragment (`"k":v,…` with a leading
/// comma), its own and its ancestors' together, and the OTel ids once known.
pub(super) struct SpanFields {
    /// Pre-rendered `,"request_id":"…","user_id":"…"` of this span and its ancestors.
    pub(super) fragment: Arc<str>,
    /// This span's own plain fields, kept to re-render the fragment when one is recorded later.
    pub(super) own: Vec<(&'static str, String)>,
    /// Fragment inherited from the parent at creation.
    pub(super) inherited: Arc<str>,
    /// `"trace_id":"…","span_id":"…"`, resolved lazily on the first event.
    pub(super) ids: Option<Option<Arc<str>>>,
}

impl SpanFields {
    pub(super) fn render(&mut self) {
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
pub(super) struct SpanVisitor<'a> {
    pub(super) fields: &'a mut Vec<(&'static str, String)>,
    pub(super) max: usize,
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

/// `,"request_id":"…","user_id":"…"`: the plain fields of a context, values cut at `max` bytes.
pub(super) fn write_fields(buf: &mut Vec<u8>, fields: &LogFields, max: usize) {
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
pub(super) fn render_fields(fields: &LogFields, max: usize) -> Arc<str> {
    let mut buf = Vec::with_capacity(64);
    write_fields(&mut buf, fields, max);
    // Only UTF-8 was written: the keys and values are `str` and escapes are ASCII.
    Arc::from(String::from_utf8(buf).unwrap_or_default())
}

/// `,"trace_id":"…","span_id":"…"`.
pub(super) fn write_ids(buf: &mut Vec<u8>, sc: &opentelemetry::trace::SpanContext) {
    // Hex by table into one stack buffer, copied once (`{:032x}` through `fmt` cost ~2k
    // instructions per line).
    const TRACE: &[u8] = b",\"trace_id\":\"";
    const SPAN: &[u8] = b"\",\"span_id\":\"";
    const SPAN_AT: usize = TRACE.len() + 32;
    const END: usize = SPAN_AT + SPAN.len() + 16;
    // Filled with quotes: the last byte, after the span id, is the closing one.
    let mut out = [b'"'; END + 1];
    out[..TRACE.len()].copy_from_slice(TRACE);
    hex(&mut out[TRACE.len()..SPAN_AT], &sc.trace_id().to_bytes());
    out[SPAN_AT..SPAN_AT + SPAN.len()].copy_from_slice(SPAN);
    hex(
        &mut out[SPAN_AT + SPAN.len()..END],
        &sc.span_id().to_bytes(),
    );
    buf.extend_from_slice(&out);
}

/// Lowercase hex of `bytes` into `out`, two characters a byte.
fn hex(out: &mut [u8], bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0xf)];
    }
}

pub(super) fn ids_fragment(cx: &opentelemetry::Context) -> Option<Arc<str>> {
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
