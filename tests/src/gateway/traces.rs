//! OTLP trace traffic whose every trace the sender knows: [`TraceMix`] builds export requests of traces with
//! known ids, spans, durations and status (error, slow or ordinary), so a test can tell exactly which traces
//! the tier had to keep; [`post_traces`] sends one.

use std::time::{Duration, SystemTime};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::{AnyValue as Any, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;

use crate::error::StackError;

/// What a trace is, as far as the sampler goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TraceKind {
    /// A span with status ERROR (and an HTTP 500 root): always kept.
    Error,
    /// Lasts `slow` (longer than the sampler's threshold), no error: always kept.
    Slow,
    /// 20 ms, no error: kept with the configured probability.
    Normal,
}

/// A trace that was sent: its hex trace id, kind and hex span ids.
#[derive(Debug, Clone)]
pub struct SentTrace {
    /// Lowercase hex trace id.
    pub trace_id: String,
    /// Its kind.
    pub kind: TraceKind,
    /// Lowercase hex span ids (root first).
    pub span_ids: Vec<String>,
}

/// Builds traces of three spans each (server root `GET /items`, client `SELECT items`, internal `render`)
/// with random ids, under the resource `service.name = <service>`.
#[derive(Debug)]
pub struct TraceMix {
    service: String,
    slow: Duration,
    state: u64,
}

/// Spans per trace built by [`TraceMix`].
pub const SPANS_PER_TRACE: usize = 3;

/// The traffic mix of the tests and the benchmark: one trace in eight has an error, one in eight is slow,
/// the rest are ordinary.
pub const MIX: [TraceKind; 8] = [
    TraceKind::Error,
    TraceKind::Normal,
    TraceKind::Normal,
    TraceKind::Slow,
    TraceKind::Normal,
    TraceKind::Normal,
    TraceKind::Normal,
    TraceKind::Normal,
];

/// The first `count` kinds of [`MIX`] repeated.
pub fn mix_kinds(count: usize) -> Vec<TraceKind> {
    MIX.iter().copied().cycle().take(count).collect()
}

impl TraceMix {
    /// A generator whose slow traces last `slow`, seeded from the clock and the process id.
    pub fn new(service: &str, slow: Duration) -> TraceMix {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        TraceMix {
            service: service.to_string(),
            slow,
            state: nanos ^ (u64::from(std::process::id()) << 32),
        }
    }

    /// splitmix64: uniform enough for ids, which is all the probabilistic policy needs.
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// One OTLP request holding one trace of each kind in `kinds`, ending now; and what was sent.
    pub fn request(&mut self, kinds: &[TraceKind]) -> (ExportTraceServiceRequest, Vec<SentTrace>) {
        let end = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mut spans = Vec::with_capacity(kinds.len() * SPANS_PER_TRACE);
        let mut sent = Vec::with_capacity(kinds.len());
        for &kind in kinds {
            let (trace, what) = self.trace(kind, end);
            spans.extend(trace);
            sent.push(what);
        }
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", &self.service)],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        (request, sent)
    }

    fn trace(&mut self, kind: TraceKind, end: u64) -> (Vec<Span>, SentTrace) {
        let trace_id: Vec<u8> = [self.next(), self.next()]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect();
        let ids: Vec<Vec<u8>> = (0..SPANS_PER_TRACE)
            .map(|_| self.next().to_be_bytes().to_vec())
            .collect();
        let total = match kind {
            TraceKind::Slow => self.slow.as_nanos() as u64,
            _ => 20_000_000,
        };
        let start = end - total;
        let error = kind == TraceKind::Error;
        let status = |failed: bool| {
            Some(Status {
                code: if failed {
                    StatusCode::Error as i32
                } else {
                    StatusCode::Unset as i32
                },
                message: if failed {
                    "query failed".into()
                } else {
                    String::new()
                },
            })
        };
        let root = Span {
            trace_id: trace_id.clone(),
            span_id: ids[0].clone(),
            name: "GET /items".into(),
            kind: SpanKind::Server as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            attributes: vec![
                kv("http.request.method", "GET"),
                kv("http.route", "/items"),
                kv(
                    "http.response.status_code",
                    if error { "500" } else { "200" },
                ),
            ],
            status: status(error),
            ..Default::default()
        };
        let query = Span {
            trace_id: trace_id.clone(),
            span_id: ids[1].clone(),
            parent_span_id: ids[0].clone(),
            name: "SELECT items".into(),
            kind: SpanKind::Client as i32,
            start_time_unix_nano: start + total / 10,
            end_time_unix_nano: start + total / 2,
            status: status(error),
            ..Default::default()
        };
        let render = Span {
            trace_id,
            span_id: ids[2].clone(),
            parent_span_id: ids[0].clone(),
            name: "render".into(),
            kind: SpanKind::Internal as i32,
            start_time_unix_nano: start + total / 2,
            end_time_unix_nano: end - total / 10,
            status: status(false),
            ..Default::default()
        };
        let sent = SentTrace {
            trace_id: hex(&render.trace_id),
            kind,
            span_ids: ids.iter().map(|i| hex(i)).collect(),
        };
        (vec![root, query, render], sent)
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(Any {
            value: Some(AnyValue::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// POSTs `request` as OTLP/HTTP protobuf to `url` (`.../v1/traces`); an error unless it answers 2xx.
pub fn post_traces(
    client: &reqwest::blocking::Client,
    url: &str,
    request: &ExportTraceServiceRequest,
) -> Result<(), StackError> {
    let resp = client
        .post(url)
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .map_err(StackError::http(url))?;
    crate::http::success(url, resp)
}
