//! The client middleware over a real loopback HTTP call: client spans are children of the server
//! span, and the callee continues the same trace.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use opentelemetry::trace::SpanKind;
use otelbricks_http::{HttpClientMiddleware, HttpServerLayer};
use otelbricks_telemetry::testing::Capture;

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
        .layer(HttpServerLayer::with_meter(&meter).tracer(capture.tracer("otelbricks-http")))
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

    // Every attempt was counted in flight and back out.
    let active = capture.metric_points(Some("http.client.active_requests"));
    assert!(!active.is_empty());
    for p in &active {
        assert_eq!(
            p.value,
            otelbricks_telemetry::testing::PointValue::Number(0.0),
            "{p:?}"
        );
        assert_eq!(p.attr("server.address").as_deref(), Some("127.0.0.1"));
        assert_eq!(p.attr("url.scheme").as_deref(), Some("http"));
    }
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

#[tokio::test]
async fn retries_behind_a_retry_middleware_are_separate_attempts_with_a_resend_count() {
    use reqwest_retry::{RetryTransientMiddleware, policies::ExponentialBackoff};
    use std::sync::atomic::{AtomicU32, Ordering};

    let capture = Capture::new("svc");
    let _g = capture.set_default();
    opentelemetry::global::set_text_map_propagator(capture.propagator());
    let meter = capture.meter("telemetry-http");

    // The callee fails twice with 503 (transient for reqwest-retry), then answers.
    let calls = Arc::new(AtomicU32::new(0));
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let app = Router::new().route(
        "/flaky",
        get({
            let (calls, seen) = (calls.clone(), seen.clone());
            move |headers: http::HeaderMap| async move {
                if let Some(tp) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
                    seen.lock().expect("lock").push(tp.to_owned());
                }
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    http::StatusCode::SERVICE_UNAVAILABLE
                } else {
                    http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let retries = ExponentialBackoff::builder()
        .retry_bounds(
            std::time::Duration::from_millis(1),
            std::time::Duration::from_millis(5),
        )
        .build_with_max_retries(3);
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(RetryTransientMiddleware::new_with_policy(retries))
        .with(HttpClientMiddleware::with_meter(&meter))
        .build();
    let parent = tracing::info_span!("parent");
    let status = {
        let _enter = parent.enter();
        client
            .get(format!("http://{addr}/flaky"))
            .send()
            .await
            .expect("retried call")
            .status()
    };
    assert_eq!(status, 200);
    server.abort();
    drop(parent);

    let spans = capture.finished_spans();
    let parent = spans
        .iter()
        .find(|s| s.name == "parent")
        .expect("parent span");
    let mut attempts: Vec<_> = spans
        .iter()
        .filter(|s| s.span_kind == SpanKind::Client)
        .collect();
    attempts.sort_by_key(|s| s.start_time);
    let attr = |s: &opentelemetry_sdk::trace::SpanData, k: &str| {
        s.attributes
            .iter()
            .find(|kv| kv.key.as_str() == k)
            .map(|kv| kv.value.to_string())
    };
    let summary: Vec<(Option<String>, Option<String>)> = attempts
        .iter()
        .map(|s| {
            (
                attr(s, "http.response.status_code"),
                attr(s, "http.request.resend_count"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (Some("503".into()), None),
            (Some("503".into()), Some("1".into())),
            (Some("200".into()), Some("2".into())),
        ]
    );
    for attempt in &attempts {
        assert_eq!(attempt.parent_span_id, parent.span_context.span_id());
        assert_eq!(
            attempt.span_context.trace_id(),
            parent.span_context.trace_id()
        );
    }

    // Each attempt sent its own span as the parent of the callee's work.
    let seen = seen.lock().expect("lock").clone();
    let sent: Vec<String> = attempts
        .iter()
        .map(|s| {
            format!(
                "00-{}-{}-01",
                s.span_context.trace_id(),
                s.span_context.span_id()
            )
        })
        .collect();
    assert_eq!(seen, sent);

    let points = capture.metric_points(Some("http.client.request.duration"));
    let count = |error_type: Option<&str>| -> u64 {
        points
            .iter()
            .filter(|p| p.attr("error.type").as_deref() == error_type)
            .map(|p| match p.value {
                otelbricks_telemetry::testing::PointValue::Histogram { count, .. } => count,
                _ => 0,
            })
            .sum()
    };
    assert_eq!((count(Some("503")), count(None)), (2, 1));
}
