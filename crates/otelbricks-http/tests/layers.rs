//! Each middleware alone on a router (only its own signals appear), the hooks, the edge policy
//! and a tower service that is not axum.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::convert::Infallible;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, Response, StatusCode};
use opentelemetry::trace::{SpanKind, Status};
use otelbricks_http::{
    CatchPanicLayer, ExcludePaths, HttpMetricsLayer, HttpServerLayer, HttpTraceLayer,
    IncomingTraceContext, Panicked, ProcessTimeLayer, RequestId, RequestIdLayer, RequestLogLayer,
    StatusInRangeAsFailures,
};
use otelbricks_telemetry::testing::Capture;
use tower::{ServiceBuilder, ServiceExt as _};

const UPSTREAM_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const UPSTREAM_SPAN: &str = "00f067aa0ba902b7";

fn routes() -> Router {
    Router::new()
        .route("/jobs/{id}", get(|| async { "job" }))
        .route(
            "/missing",
            get(|| async { (StatusCode::NOT_FOUND, "no such job") }),
        )
        .route(
            "/down",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }),
        )
        .route(
            "/boom",
            get(|| async {
                panic!("kaboom");
                #[allow(unreachable_code)]
                ""
            }),
        )
        .route("/internal/stats", get(|| async { "stats" }))
}

async fn get_uri(app: &Router, uri: &str) -> Response<Body> {
    app.clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap()
}

fn request_lines(capture: &Capture) -> Vec<serde_json::Value> {
    capture
        .json_lines()
        .into_iter()
        .filter(|l| l["message"] == "Request completed" || l["message"] == "Request failed")
        .collect()
}

fn attr(span: &opentelemetry_sdk::trace::SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

#[tokio::test]
async fn the_metrics_layer_alone_records_metrics_and_nothing_else() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    let app = routes().layer(HttpMetricsLayer::with_meter(&capture.meter("m")));
    assert_eq!(get_uri(&app, "/jobs/1").await.status(), 200);
    let points = capture.metric_points(Some("http.server.request.duration"));
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].attr("http.route").as_deref(), Some("/jobs/{id}"));
    assert_eq!(
        points[0].attr("network.protocol.version").as_deref(),
        Some("1.1")
    );
    assert!(capture.finished_spans().is_empty());
    assert!(request_lines(&capture).is_empty());
}

#[tokio::test]
async fn the_trace_layer_alone_makes_the_span_and_nothing_else() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    opentelemetry::global::set_text_map_propagator(capture.propagator());
    let app = routes().layer(HttpTraceLayer::new().tracer(capture.tracer("otelbricks-http")));
    let resp = app
        .clone()
        .oneshot(
            Request::get("/jobs/7")
                .header("host", "api.example.com:8443")
                .header("user-agent", "curl/8.5.0")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-request-id").is_none());
    let spans = capture.finished_spans();
    assert_eq!(spans.len(), 1);
    let s = &spans[0];
    assert_eq!(
        (s.name.as_ref(), s.span_kind.clone()),
        ("GET /jobs/{id}", SpanKind::Server)
    );
    assert_eq!(attr(s, "http.route").as_deref(), Some("/jobs/{id}"));
    assert_eq!(attr(s, "url.path").as_deref(), Some("/jobs/7"));
    assert_eq!(
        attr(s, "user_agent.original").as_deref(),
        Some("curl/8.5.0")
    );
    assert_eq!(
        attr(s, "server.address").as_deref(),
        Some("api.example.com")
    );
    assert_eq!(attr(s, "server.port").as_deref(), Some("8443"));
    assert_eq!(attr(s, "network.protocol.version").as_deref(), Some("1.1"));
    assert!(capture.metric_points(None).is_empty());
    assert!(request_lines(&capture).is_empty());
}

#[tokio::test]
async fn the_request_log_layer_alone_writes_one_line_per_request_whatever_its_status() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    let app = routes().layer(RequestLogLayer::new());
    for (uri, status) in [
        ("/jobs/1", 200),
        ("/missing", 404),
        ("/down", 503),
        ("/nowhere", 404),
    ] {
        assert_eq!(get_uri(&app, uri).await.status(), status);
    }
    let lines = request_lines(&capture);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert_eq!(lines[0]["message"], "Request completed");
    assert_eq!(lines[0]["path"], "/jobs/{id}");
    assert_eq!(
        lines[1]["message"], "Request completed",
        "a 4xx is not a server failure"
    );
    assert_eq!(lines[2]["message"], "Request failed");
    assert_eq!(lines[2]["level"], "ERROR");
    assert_eq!(lines[2]["error_type"], "503");
    assert_eq!(lines[2]["status_code"], 503);
    assert!(lines[3].get("path").is_none(), "unmatched: no path");
    assert!(capture.finished_spans().is_empty());
    assert!(capture.metric_points(None).is_empty());
}

#[tokio::test]
async fn the_request_id_layer_alone_sets_the_id_and_adopts_tower_https() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    let echo = || {
        Router::new().route(
            "/",
            get(|axum::Extension(id): axum::Extension<RequestId>| async move { id.to_string() }),
        )
    };
    let app = echo().layer(RequestIdLayer::new());
    let resp = app
        .clone()
        .oneshot(
            Request::get("/")
                .header("x-request-id", "abc-1")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "abc-1");
    let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
    assert_eq!(&body[..], b"abc-1");

    // tower-http's SetRequestIdLayer outside: its id is the one used.
    let app = echo().layer(
        ServiceBuilder::new()
            .layer(tower_http::request_id::SetRequestIdLayer::x_request_id(
                tower_http::request_id::MakeRequestUuid,
            ))
            .layer(RequestIdLayer::new()),
    );
    let resp = get_uri(&app, "/").await;
    let header = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
    assert_eq!(header.len(), 36);
    assert_eq!(body, header.as_bytes(), "the handler sees tower-http's id");
    assert!(capture.finished_spans().is_empty());
    assert!(capture.json_lines().is_empty());
}

#[tokio::test]
async fn the_catch_panic_layer_alone_answers_500_and_marks_the_response() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    let app = routes().layer(CatchPanicLayer::new());
    let resp = get_uri(&app, "/boom").await;
    assert_eq!(resp.status(), 500);
    assert_eq!(
        resp.extensions().get::<Panicked>().map(Panicked::message),
        Some("kaboom")
    );
    let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
    assert!(
        !String::from_utf8_lossy(&body).contains("kaboom"),
        "not shown to the client"
    );
    assert_eq!(get_uri(&app, "/jobs/1").await.status(), 200);
    assert!(capture.finished_spans().is_empty());
    assert!(request_lines(&capture).is_empty());
}

#[tokio::test]
async fn the_process_time_layer_alone_adds_the_header() {
    let app = routes().layer(ProcessTimeLayer::new());
    let resp = get_uri(&app, "/jobs/1").await;
    let secs: f64 = resp.headers()["x-process-time"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((0.0..10.0).contains(&secs));
}

#[tokio::test]
async fn hooks_name_spans_add_attributes_and_classify() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    let app = routes().layer(
        HttpTraceLayer::new()
            .tracer(capture.tracer("otelbricks-http"))
            .make_span_name_with(|req: &Request<Body>| format!("api {}", req.uri().path()))
            .on_request(
                |_: &Request<Body>, attrs: &mut Vec<opentelemetry::KeyValue>| {
                    attrs.push(opentelemetry::KeyValue::new("tenant", "t1"))
                },
            )
            .on_response(
                |res: &Response<Body>, attrs: &mut Vec<opentelemetry::KeyValue>| {
                    attrs.push(opentelemetry::KeyValue::new(
                        "big",
                        res.status().as_u16() > 400,
                    ))
                },
            )
            .classify(StatusInRangeAsFailures::new(400..=599)),
    );
    assert_eq!(get_uri(&app, "/missing").await.status(), 404);
    let spans = capture.finished_spans();
    let s = &spans[0];
    assert_eq!(s.name, "api /missing");
    assert_eq!(attr(s, "tenant").as_deref(), Some("t1"));
    assert_eq!(attr(s, "big").as_deref(), Some("true"));
    assert!(
        matches!(s.status, Status::Error { .. }),
        "404 is a failure here"
    );
    assert_eq!(attr(s, "error.type").as_deref(), Some("404"));
}

#[tokio::test]
async fn by_default_a_4xx_is_not_an_error_and_prefixes_can_be_excluded() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    let app = routes().layer(
        HttpServerLayer::with_meter(&capture.meter("m"))
            .tracer(capture.tracer("otelbricks-http"))
            .exclude(ExcludePaths::new().prefix("/internal/")),
    );
    assert_eq!(get_uri(&app, "/missing").await.status(), 404);
    let spans = capture.finished_spans();
    assert_eq!(spans.len(), 1);
    assert!(!matches!(spans[0].status, Status::Error { .. }));
    assert_eq!(attr(&spans[0], "error.type"), None);
    let points = capture.metric_points(Some("http.server.request.duration"));
    assert_eq!(points[0].attr("error.type"), None);

    let resp = get_uri(&app, "/internal/stats").await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-request-id").is_none());
    assert_eq!(
        capture.finished_spans().len(),
        1,
        "nothing for the excluded path"
    );
    assert_eq!(request_lines(&capture).len(), 1);
}

#[tokio::test]
async fn a_server_error_has_exactly_one_request_line() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    let app = routes().layer(
        HttpServerLayer::with_meter(&capture.meter("m")).tracer(capture.tracer("otelbricks-http")),
    );
    assert_eq!(get_uri(&app, "/down").await.status(), 503);
    assert_eq!(get_uri(&app, "/boom").await.status(), 500);
    let lines = request_lines(&capture);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(lines.iter().all(|l| l["message"] == "Request failed"));
    assert!(lines.iter().all(|l| l["request_id"].as_str().is_some()));
    assert!(lines.iter().all(|l| l["trace_id"].as_str().is_some()));
}

#[tokio::test]
async fn client_controlled_values_are_cut_to_the_bound() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    let app = Router::new().fallback(|| async { "any" }).layer(
        HttpServerLayer::with_meter(&capture.meter("m")).tracer(capture.tracer("otelbricks-http")),
    );
    let long = format!("/{}", "é".repeat(3000));
    let ua = "u".repeat(5000);
    let resp = app
        .clone()
        .oneshot(
            Request::get(long.replace('é', "%C3%A9").as_str())
                .header("user-agent", ua.as_str())
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let spans = capture.finished_spans();
    let path = attr(&spans[0], "url.path").unwrap();
    assert_eq!(path.len(), otelbricks_http::MAX_ATTRIBUTE_LEN);
    let ua_attr = attr(&spans[0], "user_agent.original").unwrap();
    assert_eq!(ua_attr.len(), otelbricks_http::MAX_ATTRIBUTE_LEN);
}

async fn edge(
    policy: IncomingTraceContext,
    flags: &str,
) -> Vec<opentelemetry_sdk::trace::SpanData> {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    opentelemetry::global::set_text_map_propagator(capture.propagator());
    let app = routes().layer(
        HttpServerLayer::with_meter(&capture.meter("m"))
            .tracer(capture.tracer("otelbricks-http"))
            .incoming(policy),
    );
    let resp = app
        .oneshot(
            Request::get("/jobs/1")
                .header(
                    "traceparent",
                    format!("00-{UPSTREAM_TRACE}-{UPSTREAM_SPAN}-{flags}"),
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    capture.finished_spans()
}

#[tokio::test]
async fn by_default_the_trace_continues_and_an_unsampled_flag_hides_nothing() {
    for flags in ["00", "01"] {
        let spans = edge(IncomingTraceContext::default(), flags).await;
        assert_eq!(spans.len(), 1, "flags {flags}");
        assert_eq!(spans[0].span_context.trace_id().to_string(), UPSTREAM_TRACE);
        assert_eq!(spans[0].parent_span_id.to_string(), UPSTREAM_SPAN);
        assert!(spans[0].span_context.is_sampled());
    }
}

#[tokio::test]
async fn honouring_the_sampled_flag_drops_unsampled_requests() {
    assert!(
        edge(IncomingTraceContext::ContinueHonouringSampled, "00")
            .await
            .is_empty()
    );
    let spans = edge(IncomingTraceContext::ContinueHonouringSampled, "01").await;
    assert_eq!(spans[0].span_context.trace_id().to_string(), UPSTREAM_TRACE);
}

#[tokio::test]
async fn restarting_at_the_edge_starts_a_new_trace_linked_to_the_callers() {
    for flags in ["00", "01"] {
        let spans = edge(IncomingTraceContext::Restart, flags).await;
        assert_eq!(spans.len(), 1, "flags {flags}");
        let s = &spans[0];
        assert_ne!(s.span_context.trace_id().to_string(), UPSTREAM_TRACE);
        assert_eq!(s.parent_span_id, opentelemetry::trace::SpanId::INVALID);
        let links: Vec<_> = s.links.iter().collect();
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].span_context.trace_id().to_string(), UPSTREAM_TRACE);
        assert_eq!(links[0].span_context.span_id().to_string(), UPSTREAM_SPAN);
    }
}

#[tokio::test]
async fn a_plain_tower_service_that_is_not_axum_gets_every_signal() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    let svc = ServiceBuilder::new()
        .layer(
            HttpServerLayer::with_meter(&capture.meter("m"))
                .tracer(capture.tracer("otelbricks-http")),
        )
        .service(tower::service_fn(|req: Request<String>| async move {
            tracing::info!("handling");
            let status = if req.uri().path() == "/fail" {
                500
            } else {
                200
            };
            let mut res = Response::new(format!("echo {}", req.body()));
            *res.status_mut() = StatusCode::from_u16(status).unwrap();
            Ok::<_, Infallible>(res)
        }));
    for path in ["/a", "/fail"] {
        let resp = svc
            .clone()
            .oneshot(Request::post(path).body("hi".to_owned()).unwrap())
            .await
            .unwrap();
        assert!(resp.headers().contains_key("x-request-id"));
        assert!(resp.headers().contains_key("x-process-time"));
    }
    let spans = capture.finished_spans();
    assert_eq!(spans.len(), 2);
    assert!(
        spans
            .iter()
            .all(|s| s.name == "POST" && attr(s, "http.route").is_none())
    );
    let points = capture.metric_points(Some("http.server.request.duration"));
    assert_eq!(points.len(), 2);
    let sizes = capture.metric_points(Some("http.server.request.body.size"));
    assert!(!sizes.is_empty());
    let lines = request_lines(&capture);
    assert_eq!(lines.len(), 2);
    let handler = capture
        .json_lines()
        .into_iter()
        .find(|l| l["message"] == "handling")
        .unwrap();
    assert!(handler["request_id"].as_str().is_some());
    assert!(handler["trace_id"].as_str().is_some());
}

#[tokio::test]
async fn served_with_connect_info_the_span_has_the_client_address() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    let app = Router::new()
        .route("/hello", get(|| async { "hello" }))
        .layer(
            HttpServerLayer::with_meter(&capture.meter("m"))
                .tracer(capture.tracer("otelbricks-http")),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dispatch = capture.dispatch().clone();
    let server = tokio::spawn(tracing::instrument::WithSubscriber::with_subscriber(
        async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
        },
        dispatch,
    ));
    let body = reqwest::get(format!("http://{addr}/hello"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "hello");
    server.abort();
    let spans = capture.finished_spans();
    let s = spans.iter().find(|s| s.name == "GET /hello").unwrap();
    assert_eq!(attr(s, "client.address").as_deref(), Some("127.0.0.1"));
    assert!(attr(s, "client.port").is_some());
    assert_eq!(attr(s, "server.address").as_deref(), Some("127.0.0.1"));
    assert_eq!(attr(s, "server.port"), Some(addr.port().to_string()));
}
