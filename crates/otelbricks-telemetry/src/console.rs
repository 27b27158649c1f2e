//! The readable console format (`TELEMETRY_CONSOLE=pretty`, the default in development): one line an
//! event, every field value escaped so that no value can forge a line.
//!
//! `tracing-subscriber`'s formatter escapes ANSI sequences but writes newlines and carriage returns
//! as they are, so a client-controlled value such as `"x\n2026-12-02T10:00:00Z  INFO admin login"`
//! prints a second, fake line. [`EscapedFields`] writes every control character (C0, DEL, C1) as an
//! escape (`\n`, `\r`, `\t`, `\u{1b}`, …) in messages, event fields and span fields.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

/// Field formatter of the readable console: `message key=value …`, control characters escaped.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct EscapedFields;

impl<'w> FormatFields<'w> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = Visitor {
            out: Escaping { inner: writer },
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

/// Writes through to the console writer, escaping control characters on the way.
struct Escaping<'w> {
    inner: Writer<'w>,
}

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut start = 0;
        for (i, c) in s.char_indices() {
            if !c.is_control() {
                continue;
            }
            self.inner.write_str(&s[start..i])?;
            match c {
                '\n' => self.inner.write_str("\\n")?,
                '\r' => self.inner.write_str("\\r")?,
                '\t' => self.inner.write_str("\\t")?,
                c => write!(self.inner, "\\u{{{:x}}}", u32::from(c))?,
            }
            start = i + c.len_utf8();
        }
        self.inner.write_str(&s[start..])
    }
}

struct Visitor<'w> {
    out: Escaping<'w>,
    first: bool,
    result: fmt::Result,
}

impl Visitor<'_> {
    fn field(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if self.result.is_err() {
            return;
        }
        let sep = if self.first { "" } else { " " };
        self.first = false;
        self.result = if field.name() == "message" {
            self.out
                .inner
                .write_str(sep)
                .and_then(|()| self.out.write_fmt(value))
        } else {
            write!(self.out.inner, "{sep}{}=", field.name())
                .and_then(|()| self.out.write_fmt(value))
        };
    }
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, format_args!("{value}"));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, format_args!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::prelude::*;

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut v) = self.0.lock() {
                v.extend_from_slice(b);
            }
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn newlines_and_escape_sequences_cannot_forge_a_console_line() {
        let buf = Buf::default();
        let out = buf.clone();
        let layer = tracing_subscriber::fmt::layer()
            .compact()
            .with_ansi(false)
            .fmt_fields(EscapedFields)
            .with_writer(move || out.clone());
        let forged = "ok\n2026-12-02T10:00:00Z  INFO admin: login granted\r\u{1b}[2K\u{7}\u{9b}";
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            let span = tracing::info_span!("request", user = forged);
            let _e = span.enter();
            tracing::info!(name = forged, shown = %forged, "hello {forged}");
        });
        let text = String::from_utf8(buf.0.lock().map(|v| v.clone()).unwrap_or_default())
            .unwrap_or_default();
        assert_eq!(text.lines().count(), 1, "one event, one line: {text:?}");
        assert!(
            !text
                .trim_end_matches('\n')
                .contains(['\r', '\u{1b}', '\u{7}', '\u{9b}']),
            "{text:?}"
        );
        assert!(text.contains("hello ok\\n2026-12-02"), "{text:?}");
        assert!(text.contains("shown=ok\\n2026"), "{text:?}");
        assert!(text.contains("\\u{1b}[2K"), "{text:?}");
    }
}
