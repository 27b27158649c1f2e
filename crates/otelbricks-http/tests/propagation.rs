//! W3C Trace Context through the real server layer and a real loopback client call: what comes in
//! on `/call` goes out, per the spec, on the call `/call` makes to `/callee`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use otelbricks_http::{HttpClientMiddleware, HttpServerLayer};
use otelbricks_telemetry::testing::Capture;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// (traceparent values, tracestate values) of one request the callee received.
type Seen = (Vec<String>, Vec<String>);

#[derive(Clone)]
struct AppState {
    client: reqwest_middleware::ClientWithMiddleware,
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn values(headers: &http::HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}

/// Starts the two-route app; returns its state. The test sends `incoming` headers to `/call`.
async fn start(capture: &Capture) -> AppState {
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
        seen: Arc::default(),
    };
    let app = Router::new()
        .route(
            "/call",
            get(|State(s): State<AppState>| async move {
                let url = format!("http://{}/callee", s.addr);
                s.client
                    .get(&url)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(599)
                    .to_string()
            }),
        )
        .route(
            "/callee",
            get(
                |State(s): State<AppState>, headers: http::HeaderMap| async move {
                    s.seen.lock().expect("lock").push((
                        values(&headers, "traceparent"),
                        values(&headers, "tracestate"),
                    ));
                    "ok"
                },
            ),
        )
        .layer(HttpServerLayer::with_meter(&meter).tracer(capture.tracer("otelbricks-http")))
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    state
}

async fn call(state: &AppState, headers: &[(&str, &str)]) -> Seen {
    state.seen.lock().expect("lock").clear();
    let mut req = reqwest::Client::new().get(format!("http://{}/call", state.addr));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = req.send().await.expect("call").text().await.expect("body");
    assert_eq!(body, "200");
    state
        .seen
        .lock()
        .expect("lock")
        .pop()
        .expect("callee was called")
}

fn parse(tp: &str) -> (String, String, String, String) {
    let p: Vec<&str> = tp.split('-').collect();
    assert_eq!(p.len(), 4, "{tp}");
    (p[0].into(), p[1].into(), p[2].into(), p[3].into())
}

#[tokio::test]
async fn a_valid_context_with_random_flag_and_split_tracestate_is_passed_on_per_the_spec() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    let state = start(&capture).await;
    let tp = format!("00-{TRACE}-{PARENT}-03");
    let (out_tp, out_ts) = call(
        &state,
        &[
            ("traceparent", tp.as_str()),
            ("tracestate", "congo=t61rcWkgMzE"),
            ("tracestate", "rojo=00f067aa0ba902b7"),
        ],
    )
    .await;
    assert_eq!(out_tp.len(), 1, "exactly one traceparent goes out");
    let (version, trace, parent, flags) = parse(&out_tp[0]);
    assert_eq!(version, "00");
    assert_eq!(trace, TRACE, "the trace continues");
    assert_ne!(parent, PARENT, "the parent is our client span");
    assert_eq!(flags, "03", "sampled and the Level 2 random flag are kept");
    assert_eq!(
        out_ts,
        vec!["congo=t61rcWkgMzE,rojo=00f067aa0ba902b7".to_owned()],
        "both tracestate fields, in order, in one header"
    );
}

#[tokio::test]
async fn invalid_contexts_start_a_new_trace_and_send_no_tracestate() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    let state = start(&capture).await;
    let two = format!("00-{TRACE}-{PARENT}-01");
    let cases: Vec<Vec<(&str, String)>> = vec![
        vec![("traceparent", format!("00-{TRACE}-{}-01", &PARENT[..15]))],
        vec![("traceparent", format!("00-{TRACE}-{PARENT}-1"))],
        vec![("traceparent", format!("0-{TRACE}-{PARENT}-01"))],
        vec![("traceparent", format!("ff-{TRACE}-{PARENT}-01"))],
        vec![(
            "traceparent",
            format!("00-{}-{PARENT}-01", TRACE.to_uppercase()),
        )],
        vec![("traceparent", two.clone()), ("traceparent", two.clone())],
    ];
    for case in &cases {
        let mut headers: Vec<(&str, &str)> = case.iter().map(|(k, v)| (*k, v.as_str())).collect();
        headers.push(("tracestate", "congo=t61rcWkgMzE"));
        let (out_tp, out_ts) = call(&state, &headers).await;
        let (_, trace, _, _) = parse(&out_tp[0]);
        assert_ne!(trace, TRACE, "{case:?} must start a new trace");
        assert!(
            out_ts.is_empty(),
            "{case:?}: no state to send, no tracestate header"
        );
    }
}

#[tokio::test]
async fn a_higher_version_is_parsed_as_00_and_a_tracestate_with_an_invalid_member_is_discarded() {
    let capture = Capture::new("svc");
    let _g = capture.set_default();
    let state = start(&capture).await;
    let future = format!("cc-{TRACE}-{PARENT}-01-what-the-future-holds");
    let (out_tp, out_ts) = call(
        &state,
        &[
            ("traceparent", future.as_str()),
            ("tracestate", "ok=1, BAD KEY=2 ,tenant@vendor=3"),
        ],
    )
    .await;
    let (version, trace, _, flags) = parse(&out_tp[0]);
    assert_eq!(
        (version.as_str(), trace.as_str(), flags.as_str()),
        ("00", TRACE, "01")
    );
    assert!(
        out_ts.is_empty(),
        "the default policy discards a tracestate that breaks the grammar: {out_ts:?}"
    );
}
