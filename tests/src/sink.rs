//! A local receiver standing in for the two endpoints that cannot run here: Loki's OTLP logs endpoint (the
//! collector's `otlp_http/loki` exporter sends to it) and the Alertmanager webhook. It decodes what it gets, so
//! tests check the content, not just that something arrived.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;

use crate::error::StackError;

/// One log record as it reached the Loki endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedLog {
    /// `service.name` of its resource.
    pub service_name: String,
    /// Severity text (`INFO`, `ERROR`, ...).
    pub severity_text: String,
    /// The body, when it is a string.
    pub body: String,
    /// Hex trace id; empty when the record has none.
    pub trace_id: String,
    /// Hex span id; empty when the record has none.
    pub span_id: String,
    /// Attribute keys of the record.
    pub attribute_keys: Vec<String>,
    /// Attribute values of the record, as text (strings as they are, numbers and booleans formatted), by key.
    pub attributes: BTreeMap<String, String>,
}

#[derive(Default)]
struct Received {
    logs: Vec<ReceivedLog>,
    log_requests: u64,
    alerts: Vec<serde_json::Value>,
}

/// The receiver; stopped when dropped.
pub struct Sink {
    addr: SocketAddr,
    state: Arc<Mutex<Received>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Sink {
    /// Starts it on a free loopback port.
    pub fn start() -> Result<Sink, StackError> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(StackError::io("binding the sink"))?;
        listener
            .set_nonblocking(true)
            .map_err(StackError::io("configuring the sink"))?;
        let addr = listener
            .local_addr()
            .map_err(StackError::io("reading the sink's address"))?;
        let state = Arc::new(Mutex::new(Received::default()));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new()
            .route("/otlp/v1/logs", post(logs))
            .route("/alerts", post(alerts))
            .with_state(state.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(StackError::io("starting the sink's runtime"))?;
        let thread = std::thread::Builder::new()
            .name("stack-sink".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = rx.await;
                        })
                        .await;
                });
            })
            .map_err(StackError::io("starting the sink's thread"))?;
        Ok(Sink {
            addr,
            state,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// The OTLP endpoint to give the collector as Loki's (`http://127.0.0.1:<port>/otlp`; the exporter appends
    /// `/v1/logs`, as with Loki).
    pub fn loki_endpoint(&self) -> String {
        format!("http://{}/otlp", self.addr)
    }

    /// The Alertmanager webhook URL.
    pub fn webhook_url(&self) -> String {
        format!("http://{}/alerts", self.addr)
    }

    /// Every log record received so far.
    pub fn logs(&self) -> Vec<ReceivedLog> {
        self.lock().logs.clone()
    }

    /// How many export requests carried logs.
    pub fn log_requests(&self) -> u64 {
        self.lock().log_requests
    }

    /// Every webhook payload received so far (Alertmanager's JSON, version 4).
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        self.lock().alerts.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Received> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

type Shared = State<Arc<Mutex<Received>>>;

async fn logs(
    State(state): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut out_headers = HeaderMap::new();
    out_headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/x-protobuf"),
    );
    let is_proto = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-protobuf"));
    if !is_proto {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, out_headers, Vec::new());
    }
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let raw = if gzip {
        let mut out = Vec::new();
        if flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut out)
            .is_err()
        {
            return (StatusCode::BAD_REQUEST, out_headers, Vec::new());
        }
        out
    } else {
        body.to_vec()
    };
    let Ok(request) = ExportLogsServiceRequest::decode(&raw[..]) else {
        return (StatusCode::BAD_REQUEST, out_headers, Vec::new());
    };
    let mut records = Vec::new();
    for rl in request.resource_logs {
        let service_name = rl
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| match &v.value {
                Some(AnyValue::StringValue(s)) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for sl in rl.scope_logs {
            for lr in sl.log_records {
                records.push(ReceivedLog {
                    service_name: service_name.clone(),
                    severity_text: lr.severity_text.clone(),
                    body: match lr.body.as_ref().and_then(|b| b.value.as_ref()) {
                        Some(AnyValue::StringValue(s)) => s.clone(),
                        _ => String::new(),
                    },
                    trace_id: hex(&lr.trace_id),
                    span_id: hex(&lr.span_id),
                    attribute_keys: lr.attributes.iter().map(|kv| kv.key.clone()).collect(),
                    attributes: lr
                        .attributes
                        .iter()
                        .filter_map(|kv| {
                            Some((kv.key.clone(), text_of(kv.value.as_ref()?.value.as_ref()?)?))
                        })
                        .collect(),
                });
            }
        }
    }
    {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.log_requests += 1;
        s.logs.extend(records);
    }
    (
        StatusCode::OK,
        out_headers,
        ExportLogsServiceResponse::default().encode_to_vec(),
    )
}

/// Answers as a Slack incoming webhook does (`200 ok`, `400 invalid_payload`): Alertmanager's Slack notifier
/// counts any other text answer as a failed delivery and sends again; its webhook notifier ignores the body.
async fn alerts(State(state): Shared, body: Bytes) -> (StatusCode, &'static str) {
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) => {
            state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .alerts
                .push(v);
            (StatusCode::OK, "ok")
        }
        Err(_) => (StatusCode::BAD_REQUEST, "invalid_payload"),
    }
}

/// A scalar attribute value as text; `None` for arrays, maps and bytes.
fn text_of(value: &AnyValue) -> Option<String> {
    match value {
        AnyValue::StringValue(s) => Some(s.clone()),
        AnyValue::IntValue(i) => Some(i.to_string()),
        AnyValue::DoubleValue(d) => Some(d.to_string()),
        AnyValue::BoolValue(b) => Some(b.to_string()),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    if bytes.iter().all(|b| *b == 0) {
        return String::new();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_posts_are_kept_and_answered_like_a_slack_incoming_webhook() {
        let sink = Sink::start().expect("sink starts");
        let client = reqwest::blocking::Client::new();
        let post = |body: &'static str| {
            let resp = client
                .post(sink.webhook_url())
                .header("content-type", "application/json")
                .body(body)
                .send()
                .expect("the sink answers");
            (resp.status().as_u16(), resp.text().expect("a text body"))
        };
        assert_eq!(post(r#"{"status":"firing"}"#), (200, "ok".to_string()));
        assert_eq!(post("not json"), (400, "invalid_payload".to_string()));
        assert_eq!(sink.alerts(), vec![serde_json::json!({"status": "firing"})]);
    }
}
