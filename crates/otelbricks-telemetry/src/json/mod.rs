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
//!
//! The layer ([`JsonLayer`]) keeps each span's context ready to copy (module `span`), formats an
//! event into one line buffer (module `format`, values escaped and cut by module `value`) and hands
//! the line to each sink whose level it meets ([`LineSink`]).

mod format;
mod layer;
mod sink;
mod span;
mod value;

pub use layer::JsonLayer;
pub use sink::{LineSink, StdoutSink};
