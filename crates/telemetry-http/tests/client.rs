//! The client middleware over a real loopback HTTP call: client spans are children of the server
//! span, and the callee continues the same trace.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use opentelemetry::trace::SpanKind;
use telemetry::testing::Capture;
use telemetry_http::{HttpClientMiddleware, HttpServerLayer};

#[derive(Clone)]
struct AppState {
    client: reqwest_middleware::ClientWithMiddleware,
    addr: SocketAddr,
    seen_traceparent: Arc<Mutex<Vec<String>>>,
}

#[tokio::test]
async fn client_spans_are_children_and_the_callee_gets_the_same_trace() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    opentelemetry::global::set_text_map_propagator(capture.propagator());
    let meter = capture.meter("telemetry-http");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let state = AppState {
        client: reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(HttpClientMiddleware::with_meter(&meter))
            .build(),
        addr,
        seen_traceparent: Arc::default(),
    };
    let app = Router::new()
        .route(
            "/call",
            get(|State(s): State<AppState>| async move {
                let url = format!("http://{}/callee?token=SECRET", s.addr);
                let resp = s.client.get(&url).send().await.expect("loopback call");
                resp.status().as_u16().to_string()
            }),
        )
        .route(
            "/callee",
            get(
                |State(s): State<AppState>, headers: http::HeaderMap| async move {
                    if let Some(tp) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
                        s.seen_traceparent.lock().expect("lock").push(tp.to_owned());
                    }
                    "called"
                },
            ),
        )
        .layer(HttpServerLayer::with_meter(&meter))
        .with_state(state.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let body = state
        .client
        .get(format!("http://{addr}/call"))
        .send()
        .await
        .expect("call")
        .text()
        .await
        .expect("body");
    assert_eq!(body, "200");
    server.abort();

    let spans = capture.finished_spans();
    let call_server = spans
        .iter()
        .find(|s| s.name == "GET /call")
        .expect("server span of /call");
    let callee_server = spans
        .iter()
        .find(|s| s.name == "GET /callee")
        .expect("server span of /callee");
    let trace = call_server.span_context.trace_id();
    let inner_client = spans
        .iter()
        .filter(|s| s.span_kind == SpanKind::Client)
        .find(|s| s.parent_span_id == call_server.span_context.span_id())
        .expect("the client span made inside /call is its child");
    assert_eq!(inner_client.span_context.trace_id(), trace);
    assert_eq!(
        callee_server.span_context.trace_id(),
        trace,
        "callee continues the trace"
    );
    assert_eq!(
        callee_server.parent_span_id,
        inner_client.span_context.span_id()
    );

    let seen = state.seen_traceparent.lock().expect("lock").clone();
    assert!(
        seen.iter().any(|tp| tp.contains(&trace.to_string())),
        "{seen:?}"
    );

    let attr = |k: &str| {
        inner_client
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == k)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(attr("server.address").as_deref(), Some("127.0.0.1"));
    assert_eq!(attr("http.response.status_code").as_deref(), Some("200"));
    assert!(!attr("url.full").unwrap_or_default().contains("SECRET"));

    let points = capture.metric_points(Some("http.client.request.duration"));
    assert!(
        points
            .iter()
            .any(|p| p.attr("server.address").as_deref() == Some("127.0.0.1"))
    );
    assert!(!capture.everything_as_text().contains("SECRET"));
}

#[tokio::test]
async fn a_refused_connection_is_a_failed_attempt_with_error_type() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(HttpClientMiddleware::with_meter(&capture.meter("t")))
        .build();
    // Port 9 (discard) is closed on loopback here.
    let err = client.get("http://127.0.0.1:9/x").send().await;
    assert!(err.is_err());
    let points = capture.metric_points(Some("http.client.request.duration"));
    assert_eq!(points[0].attr("error.type").as_deref(), Some("connect"));
}
