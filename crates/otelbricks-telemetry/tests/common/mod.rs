//! Shared by the tests that compare `install()` with a subscriber the test composes itself: a
//! minimal OTLP/HTTP receiver on loopback, a layer of the test's own, and the scenario both run.

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::trace::{TraceContextExt as _, TraceId};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Records every OTLP/HTTP request (path and body) and answers 200 with an empty message.
#[derive(Clone, Default)]
pub struct Receiver {
    pub requests: Arc<Mutex<Vec<Request>>>,
}

/// Path, body and `Content-Encoding` of one request.
pub type Request = (String, Vec<u8>, Option<String>);

impl Receiver {
    pub fn start() -> (Self, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let receiver = Receiver::default();
        let r = receiver.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let r = r.clone();
                std::thread::spawn(move || {
                    let mut writer = conn.try_clone().expect("clone");
                    let mut reader = BufReader::new(conn);
                    loop {
                        let mut request_line = String::new();
                        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                            return;
                        }
                        let path = request_line
                            .split_whitespace()
                            .nth(1)
                            .unwrap_or_default()
                            .to_owned();
                        let mut len = 0usize;
                        let mut encoding = None;
                        loop {
                            let mut h = String::new();
                            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                                return;
                            }
                            let h = h.trim_end();
                            if h.is_empty() {
                                break;
                            }
                            if let Some((k, v)) = h.split_once(':')
                                && k.eq_ignore_ascii_case("content-length")
                            {
                                len = v.trim().parse().unwrap_or(0);
                            }
                            if let Some((k, v)) = h.split_once(':')
                                && k.eq_ignore_ascii_case("content-encoding")
                            {
                                encoding = Some(v.trim().to_owned());
                            }
                        }
                        let mut body = vec![0; len];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        r.requests
                            .lock()
                            .expect("lock")
                            .push((path, body, encoding));
                        let _ = writer.write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
                        );
                    }
                });
            }
        });
        (receiver, addr)
    }

    /// True when a body sent to `path` holds `needle` (e.g. a trace id's 16 bytes).
    pub fn saw(&self, path: &str, needle: &[u8]) -> bool {
        self.requests
            .lock()
            .expect("lock")
            .iter()
            .any(|(p, b, _)| p == path && b.windows(needle.len()).any(|w| w == needle))
    }
}

/// A layer of the test's own: counts the events it sees.
#[derive(Clone, Default)]
pub struct Counting(pub Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Counting {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        self.0
            .lock()
            .expect("lock")
            .push(event.metadata().target().to_owned());
    }
}

/// The environment both paths run with: OTLP/HTTP to `addr`, short batch delays.
pub fn env(addr: SocketAddr) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    move |k: &str| match k {
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(format!("http://{addr}")),
        "OTEL_BSP_SCHEDULE_DELAY" => Some("50".into()),
        "OTEL_BLRP_SCHEDULE_DELAY" => Some("50".into()),
        _ => None,
    }
}

/// The builder both paths start from: OTLP to the receiver at `addr`, files in `dir`, no console
/// and no admin listener.
pub fn builder(addr: SocketAddr, dir: &std::path::Path) -> otelbricks_telemetry::TelemetryBuilder {
    otelbricks_telemetry::builder("shop")
        .env_lookup(env(addr))
        .log_dir(dir)
        .console(otelbricks_telemetry::ConsoleFormat::Off)
        .without_admin()
}

/// One request-like span with a log line inside; returns the span's trace id.
pub fn scenario() -> TraceId {
    let span = tracing::info_span!("handle order", request_id = "r-42");
    let _e = span.enter();
    tracing::info!(target: "shop", order_id = 7_u64, "order accepted");
    span.context().span().span_context().trace_id()
}

/// Polls `check` every 20 ms until it returns `Some`, at most `limit` ([`test_support::eventually`]).
pub fn eventually<T>(limit: Duration, check: impl FnMut() -> Option<T>) -> Option<T> {
    test_support::eventually(limit, Duration::from_millis(20), check)
}

/// The JSON line of the scenario in `<dir>/<service>.json`, polled until written.
pub fn scenario_line(dir: &std::path::Path, service: &str) -> serde_json::Value {
    let path = dir.join(format!("{service}.json"));
    let read = || std::fs::read_to_string(&path).unwrap_or_default();
    let line = eventually(Duration::from_secs(10), || {
        read()
            .lines()
            .find(|l| l.contains("order accepted"))
            .map(str::to_owned)
    })
    .unwrap_or_else(|| panic!("no scenario line in {path:?}:\n{}", read()));
    serde_json::from_str(&line).expect("valid JSON line")
}

/// Checks what both paths must produce: the JSON line with trace context and request fields, and
/// the span and the log record exported over OTLP with the same trace id.
pub fn check(dir: &std::path::Path, service: &str, trace_id: TraceId, receiver: &Receiver) {
    let line = scenario_line(dir, service);
    assert_eq!(line["message"], "order accepted");
    assert_eq!(line["logger"], "shop");
    assert_eq!(line["request_id"], "r-42");
    assert_eq!(line["order_id"], 7);
    assert_eq!(line["trace_id"], trace_id.to_string().as_str(), "{line}");
    assert!(line["span_id"].is_string(), "{line}");
    let id = trace_id.to_bytes();
    assert!(receiver.saw("/v1/traces", &id), "the span reached OTLP");
    assert!(
        receiver.saw("/v1/logs", &id),
        "the log record reached OTLP with its trace id"
    );
}

/// Longest run of `byte` in any body sent to `path`.
pub fn longest_run(receiver: &Receiver, path: &str, byte: u8) -> usize {
    let requests = receiver.requests.lock().expect("lock");
    let mut best = 0;
    for (_, body, _) in requests.iter().filter(|(p, _, _)| p == path) {
        let mut run = 0;
        for &b in body {
            run = if b == byte { run + 1 } else { 0 };
            best = best.max(run);
        }
    }
    best
}
