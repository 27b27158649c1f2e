//! One event as one line: the fixed keys, the message, the span context, then the event's fields.

use std::cell::Cell;
use std::fmt;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::TraceContextExt;
use otelbricks_trace_context::LogFields;
use tracing::field::{Field, Visit};
use tracing::{Event, Level};

use super::span::{write_fields, write_ids};
use super::value::{
    write_debug_str, write_display_str, write_escaped_inner, write_f64, write_json_str,
};

/// Field names the line itself owns; an event or span field with one of these names is written
/// as `field.<name>` so that no key appears twice.
pub(super) const RESERVED: &[&str] = &[
    "timestamp",
    "level",
    "logger",
    "message",
    "trace_id",
    "span_id",
];

thread_local! {
    /// `YYYY-MM-DDTHH:MM:SS` of the last second a line was stamped with on this thread.
    static SECOND: Cell<(u64, [u8; 19])> = const { Cell::new((u64::MAX, [0; 19])) };
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

pub(super) fn format_line(
    buf: &mut Vec<u8>,
    event: &Event<'_>,
    level: Level,
    span: &SpanPart,
    max: usize,
) {
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
pub(super) enum SpanPart {
    /// A `tracing` span: its ids and plain fields as pre-rendered by
    /// [`SpanFields`](super::span::SpanFields).
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

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
}
