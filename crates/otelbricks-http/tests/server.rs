//! The server layer through a real axum router, with the SDK's in-memory exporters
//! (`otelbricks_telemetry::testing::Capture`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::HashSet;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::{Request, StatusCode};
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_sdk::trace::SpanData;
use otelbricks_http::HttpServerLayer;
use otelbricks_telemetry::testing::{Capture, PointValue};
use tower::ServiceExt as _;

const UPSTREAM_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const UPSTREAM_SPAN: &str = "00f067aa0ba902b7";

fn app(capture: &Capture) -> Router {
    opentelemetry::global::set_text_map_propagator(capture.propagator());
    let jobs = Router::new()
        .route(
            "/jobs/{job_id}",
            get(|| async {
                tracing::info!("looking up the job");
                "job"
            }),
        )
        .route(
            "/boom",
            get(|| async {
                panic!("handler exploded");
                #[allow(unreachable_code)]
                ""
            }),
        )
        .route(
            "/fail",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }),
        )
        .route(
            "/upload",
            post(|body: String| async move { body.len().to_string() }),
        );
    Router::new()
        .nest("/api/v1", jobs)
        .route("/health", get(|| async { "ok" }))
        .route("/metrics", get(|| async { "metrics" }))
        .layer(
            HttpServerLayer::with_meter(&capture.meter("telemetry-http"))
                .tracer(capture.tracer("otelbricks-http"))
                .user_id_key(b"test-key".to_vec()),
        )
}

fn server_span(spans: &[SpanData]) -> &SpanData {
    spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Server)
        .expect("server span")
}

async fn send(app: &Router, req: Request<Body>) -> http::Response<Body> {
    app.clone().oneshot(req).await.expect("infallible")
}

fn get_req(uri: &str) -> http::request::Builder {
    Request::builder().uri(uri)
}

#[tokio::test]
async fn the_upstream_trace_is_continued_with_a_server_span_named_by_route() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    let app = app(&capture);
    let resp = send(
        &app,
        get_req("/api/v1/jobs/123")
            .header(
                "traceparent",
                format!("00-{UPSTREAM_TRACE}-{UPSTREAM_SPAN}-01"),
            )
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let spans = capture.finished_spans();
    let server = server_span(&spans);
    assert_eq!(server.name, "GET /api/v1/jobs/{job_id}");
    assert_eq!(server.span_context.trace_id().to_string(), UPSTREAM_TRACE);
    assert_eq!(server.parent_span_id.to_string(), UPSTREAM_SPAN);
    let attr = |k: &str| {
        server
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == k)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(attr("http.route").as_deref(), Some("/api/v1/jobs/{job_id}"));
    assert_eq!(attr("http.request.method").as_deref(), Some("GET"));
    assert_eq!(attr("http.response.status_code").as_deref(), Some("200"));
    // The handler's log line carries the request's context without passing it.
    let lines = capture.json_lines();
    let handler_line = lines
        .iter()
        .find(|l| l["message"] == "looking up the job")
        .expect("handler line");
    assert_eq!(handler_line["trace_id"], UPSTREAM_TRACE);
    assert!(
        handler_line["request_id"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    let done = lines
        .iter()
        .find(|l| l["message"] == "Request completed")
        .expect("completed line");
    assert_eq!(done["path"], "/api/v1/jobs/{job_id}");
    assert_eq!(done["status_code"], 200);
    assert_eq!(done["method"], "GET");
    assert!(done["duration"].as_f64().is_some_and(|d| d >= 0.0));
}

#[tokio::test]
async fn handler_spans_and_log_records_belong_to_the_server_span() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    let app = Router::new()
        .route(
            "/work",
            get(|| async {
                tracing::info!("before the child");
                let child = tracing::info_span!("child work", step = 1);
                let _in_child = child.enter();
                tracing::info!("inside the child");
                "done"
            }),
        )
        .layer(
            HttpServerLayer::with_meter(&capture.meter("m"))
                .tracer(capture.tracer("otelbricks-http")),
        );
    let resp = send(&app, get_req("/work").body(Body::empty()).expect("request")).await;
    assert_eq!(resp.status(), 200);
    let spans = capture.finished_spans();
    let server = server_span(&spans);
    let child = spans
        .iter()
        .find(|s| s.name == "child work")
        .expect("child span");
    let trace_id = server.span_context.trace_id();
    assert_eq!(child.span_context.trace_id(), trace_id);
    assert_eq!(child.parent_span_id, server.span_context.span_id());

    // JSON lines: the server span's ids outside the child, the child's inside, the request's
    // fields in both.
    let lines = capture.json_lines();
    let line = |m: &str| lines.iter().find(|l| l["message"] == m).cloned().expect(m);
    for (message, span_id) in [
        ("before the child", server.span_context.span_id()),
        ("inside the child", child.span_context.span_id()),
        ("Request completed", server.span_context.span_id()),
    ] {
        let l = line(message);
        assert_eq!(l["trace_id"], trace_id.to_string(), "{message}");
        assert_eq!(l["span_id"], span_id.to_string(), "{message}");
        assert!(
            l["request_id"].as_str().is_some_and(|s| !s.is_empty()),
            "{message}"
        );
    }

    // The server span carries the request id the lines carry.
    let span_request_id = server
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "request_id")
        .map(|kv| kv.value.to_string())
        .expect("request_id on the server span");
    assert_eq!(line("Request completed")["request_id"], span_request_id);

    // OpenTelemetry log records: the same trace context.
    let records = capture.log_records();
    for (message, span_id) in [
        ("before the child", server.span_context.span_id()),
        ("inside the child", child.span_context.span_id()),
        ("Request completed", server.span_context.span_id()),
    ] {
        let record = records
            .iter()
            .find(|r| {
                r.record
                    .body()
                    .is_some_and(|b| format!("{b:?}").contains(message))
            })
            .unwrap_or_else(|| panic!("no record {message}"));
        let tc = record.record.trace_context().expect("trace context");
        assert_eq!(tc.trace_id, trace_id, "{message}");
        assert_eq!(tc.span_id, span_id, "{message}");
    }
}

#[tokio::test]
async fn malformed_trace_contexts_start_a_new_trace_and_are_served() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    let app = app(&capture);
    let bad = [
        format!("ff-{UPSTREAM_TRACE}-{UPSTREAM_SPAN}-01"),
        format!("00-{}-{UPSTREAM_SPAN}-01", "0".repeat(32)),
        format!("00-{UPSTREAM_TRACE}-{}-01", "0".repeat(16)),
        format!("00-{}-{UPSTREAM_SPAN}-01", "g".repeat(32)),
        format!("00-{UPSTREAM_TRACE}-{UPSTREAM_SPAN}-01{}", "x".repeat(4000)),
        "garbage".to_owned(),
    ];
    for tp in &bad {
        let resp = send(
            &app,
            get_req("/api/v1/jobs/1")
                .header("traceparent", tp)
                .body(Body::empty())
                .expect("req"),
        )
        .await;
        assert_eq!(resp.status(), 200, "{tp}");
    }
    let spans = capture.finished_spans();
    let servers: Vec<_> = spans
        .iter()
        .filter(|s| s.span_kind == SpanKind::Server)
        .collect();
    assert_eq!(servers.len(), bad.len());
    for s in servers {
        assert_ne!(s.span_context.trace_id().to_string(), UPSTREAM_TRACE);
        assert!(s.span_context.is_valid());
    }
    capture.json_lines(); // every line still parses
}

#[tokio::test]
async fn ten_thousand_random_unmatched_paths_add_one_series_per_method_and_status() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    let app = app(&capture);
    for i in 0..10_000u32 {
        let path = format!("/scan/{i}/{}", i.wrapping_mul(2654435761));
        let method = if i % 2 == 0 { "GET" } else { "DELETE" };
        let resp = send(
            &app,
            Request::builder()
                .method(method)
                .uri(&path)
                .body(Body::empty())
                .expect("req"),
        )
        .await;
        assert_eq!(resp.status(), 404);
    }
    let points = capture.metric_points(Some("http.server.request.duration"));
    assert!(
        points.iter().all(|p| p.attr("http.route").is_none()),
        "{points:?}"
    );
    let series: HashSet<_> = points
        .iter()
        .map(|p| {
            (
                p.attr("http.request.method"),
                p.attr("http.response.status_code"),
            )
        })
        .collect();
    assert_eq!(series.len(), 2, "{series:?}");
    assert_eq!(points.len(), 2, "{points:?}");
    let spans = capture.finished_spans();
    assert_eq!(spans.len(), 10_000);
    let names: HashSet<_> = spans.iter().map(|s| s.name.to_string()).collect();
    assert_eq!(
        names,
        HashSet::from(["GET".to_owned(), "DELETE".to_owned()])
    );
    assert!(spans.iter().all(|s| {
        s.attributes
            .iter()
            .all(|kv| kv.key.as_str() != "http.route")
    }));
    let lines = capture.json_lines();
    let done: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == "Request completed")
        .collect();
    assert_eq!(done.len(), 10_000, "one line per request");
    assert!(done.iter().all(|l| l.get("path").is_none()));
}

#[tokio::test]
async fn secrets_appear_in_no_span_log_or_metric() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    let app = app(&capture);
    let resp = send(
        &app,
        get_req("/api/v1/jobs/9?token=QUERYSECRET&api_key=KEYSECRET&page=2")
            .header("authorization", "Bearer BEARERSECRET")
            .header("cookie", "session=COOKIESECRET")
            .header("proxy-authorization", "Basic PROXYSECRET")
            .header("x-api-key", "APIKEYSECRET")
            .body(Body::empty())
            .expect("req"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let all = capture.everything_as_text();
    for secret in [
        "QUERYSECRET",
        "KEYSECRET",
        "BEARERSECRET",
        "COOKIESECRET",
        "PROXYSECRET",
        "APIKEYSECRET",
    ] {
        assert!(!all.contains(secret), "{secret} leaked");
    }
    // The user id is there, hashed.
    let done = capture
        .json_lines()
        .into_iter()
        .find(|l| l["message"] == "Request completed")
        .expect("line");
    let uid = done["user_id"].as_str().expect("user_id");
    assert_eq!(uid.len(), 16);
}

#[tokio::test]
async fn a_panicking_handler_becomes_a_500_in_all_three_signals_and_the_server_lives_on() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    let app = app(&capture);
    let resp = send(
        &app,
        get_req("/api/v1/boom").body(Body::empty()).expect("req"),
    )
    .await;
    assert_eq!(resp.status(), 500);
    let body = axum::body::to_bytes(resp.into_body(), 1024)
        .await
        .expect("body");
    let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON error body");
    assert_eq!(json["error"]["code"], "internal_error");

    let spans = capture.finished_spans();
    let server = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Server)
        .expect("span");
    assert!(
        matches!(server.status, Status::Error { .. }),
        "{:?}",
        server.status
    );
    let points = capture.metric_points(Some("http.server.request.duration"));
    assert!(points.iter().any(
        |p| p.attr("http.response.status_code").as_deref() == Some("500")
            && p.attr("error.type").as_deref() == Some("panic")
    ));
    let failed = capture
        .json_lines()
        .into_iter()
        .find(|l| l["message"] == "Request failed")
        .expect("failed line");
    assert_eq!(failed["error_type"], "panic");
    assert_eq!(failed["level"], "ERROR");
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("handler exploded"))
    );
    let records = capture.log_records();
    assert!(
        records
            .iter()
            .any(|r| r.record.severity_text() == Some("ERROR"))
    );

    let again = send(
        &app,
        get_req("/api/v1/jobs/1").body(Body::empty()).expect("req"),
    )
    .await;
    assert_eq!(again.status(), 200, "the server keeps serving");
}

#[tokio::test]
async fn server_errors_are_failed_requests_with_error_type() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    let app = app(&capture);
    let resp = send(
        &app,
        get_req("/api/v1/fail").body(Body::empty()).expect("req"),
    )
    .await;
    assert_eq!(resp.status(), 503);
    let failed = capture
        .json_lines()
        .into_iter()
        .find(|l| l["message"] == "Request failed")
        .expect("line");
    assert_eq!(failed["error_type"], "503");
    let points = capture.metric_points(Some("http.server.request.duration"));
    assert_eq!(points[0].attr("error.type").as_deref(), Some("503"));
}

#[tokio::test]
async fn excluded_paths_emit_nothing() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    let app = app(&capture);
    for p in ["/health", "/metrics"] {
        let resp = send(&app, get_req(p).body(Body::empty()).expect("req")).await;
        assert_eq!(resp.status(), 200);
        assert!(resp.headers().get("x-request-id").is_none());
    }
    assert!(capture.finished_spans().is_empty());
    assert!(capture.json_lines().is_empty());
    assert!(
        capture
            .metric_points(Some("http.server.request.duration"))
            .is_empty()
    );
}

#[tokio::test]
async fn request_ids_are_kept_when_safe_and_replaced_when_hostile() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    let app = app(&capture);
    let resp = send(
        &app,
        get_req("/api/v1/jobs/1")
            .header("x-request-id", "abc-123")
            .body(Body::empty())
            .expect("req"),
    )
    .await;
    assert_eq!(resp.headers()["x-request-id"], "abc-123");
    let secs: f64 = resp.headers()["x-process-time"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((0.0..10.0).contains(&secs));

    let hostile = format!("\"}}{{\"injected\":true,{}", "x".repeat(2048));
    let resp = send(
        &app,
        get_req("/api/v1/jobs/1")
            .header("x-request-id", hostile.as_str())
            .body(Body::empty())
            .expect("req"),
    )
    .await;
    let id = resp.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_ne!(id, hostile);
    assert_eq!(id.len(), 36, "a fresh UUID replaces it");
    for line in capture.json_lines() {
        assert!(line.get("injected").is_none());
    }
}

#[tokio::test]
async fn unknown_methods_are_recorded_as_other() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    let app = app(&capture);
    let req = Request::builder()
        .method("BREW")
        .uri("/api/v1/jobs/1")
        .body(Body::empty())
        .expect("req");
    let resp = send(&app, req).await;
    assert_eq!(resp.status(), 405);
    let points = capture.metric_points(Some("http.server.request.duration"));
    assert_eq!(
        points[0].attr("http.request.method").as_deref(),
        Some("_OTHER")
    );
}

#[tokio::test]
async fn body_sizes_and_active_requests_are_measured() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    let app = app(&capture);
    let resp = send(
        &app,
        Request::post("/api/v1/upload")
            .body(Body::from(vec![b'a'; 1000]))
            .expect("req"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let req_size = capture.metric_points(Some("http.server.request.body.size"));
    match &req_size[0].value {
        PointValue::Histogram { count, sum, .. } => assert_eq!((*count, *sum), (1, 1000.0)),
        other => panic!("{other:?}"),
    }
    let active = capture.metric_points(Some("http.server.active_requests"));
    assert_eq!(
        active[0].value,
        PointValue::Number(0.0),
        "back to zero after the request"
    );
    assert_eq!(
        capture
            .metric_points(Some("http.server.response.body.size"))
            .len(),
        1
    );
}

#[test]
fn duration_buckets_match_the_telemetry_crate_views() {
    // telemetry-http sets the buckets on its instruments (so they hold with any MeterProvider);
    // telemetry's view sets the same list for the same names. The two must not drift apart.
    let captured = {
        let capture = Capture::new("svc");
        let h = capture
            .meter("t")
            .f64_histogram("http.server.request.duration")
            .with_unit("s")
            .build();
        h.record(0.1, &[]);
        match capture
            .metric_points(Some("http.server.request.duration"))
            .remove(0)
            .value
        {
            PointValue::Histogram { bounds, .. } => bounds,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        captured.as_slice(),
        otelbricks_telemetry::HTTP_DURATION_BUCKETS
    );
    assert_eq!(
        otelbricks_http::DURATION_BUCKETS,
        otelbricks_telemetry::HTTP_DURATION_BUCKETS
    );
}
