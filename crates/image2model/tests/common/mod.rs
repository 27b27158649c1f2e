//! Helpers shared by the integration tests: an app on a temporary data directory with the
//! in-process simulator on a loopback port, requests through the router with `oneshot`.

#![allow(dead_code)]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use image2model::app::{App, AppOptions};
use image2model::config::ServeConfig;
use image2model::sim::SimConfig;
use otelbricks_telemetry::testing::Capture;
use tower::ServiceExt as _;

pub const PNG: &[u8] = image2model::files::TINY_PNG;
pub const JPEG: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00,
];
pub const WEBP: &[u8] = b"RIFF\x1a\x00\x00\x00WEBPVP8 \x0e\x00\x00\x00";

pub struct TestApp {
    pub app: App,
    pub router: Router,
    pub dir: tempfile::TempDir,
}

pub async fn start_with(cfg: ServeConfig, options: AppOptions) -> (App, Router) {
    let app = App::start(cfg, options).await.expect("app starts");
    let router = app.router();
    (app, router)
}

pub async fn start(sim: SimConfig) -> TestApp {
    start_cfg(|_| {}, sim, AppOptions::default()).await
}

pub async fn start_cfg(
    tweak: impl FnOnce(&mut ServeConfig),
    sim: SimConfig,
    options: AppOptions,
) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = ServeConfig::for_tests(dir.path(), sim);
    tweak(&mut cfg);
    let (app, router) = start_with(cfg, options).await;
    TestApp { app, router, dir }
}

pub async fn send(router: &Router, req: Request<Body>) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    let resp = router.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), 16 * 1024 * 1024)
        .await
        .expect("body")
        .to_vec();
    (status, headers, body)
}

pub async fn send_json(router: &Router, req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let (status, _, body) = send(router, req).await;
    let v = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (status, v)
}

pub fn multipart(field: &str, filename: &str, content: &[u8]) -> Request<Body> {
    let boundary = "XtestBoundaryX";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: image/png\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Request::post("/api/v1/upload")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .expect("request")
}

pub fn post_json(uri: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .expect("request")
}

pub fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).expect("request")
}

pub async fn upload(router: &Router) -> String {
    let (status, v) = send_json(router, multipart("file", "cat.png", PNG)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["file_id"].as_str().expect("file_id").to_owned()
}

pub async fn create_job(router: &Router, file_id: &str) -> String {
    let (status, v) = send_json(
        router,
        post_json(
            "/api/v1/models",
            &serde_json::json!({"file_id": file_id}).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    v["job_id"].as_str().expect("job_id").to_owned()
}

pub async fn create_batch(router: &Router, file_ids: &[String]) -> (String, Vec<String>) {
    let (status, v) = send_json(
        router,
        post_json(
            "/api/v1/batches",
            &serde_json::json!({"file_ids": file_ids}).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let ids = v["job_ids"]
        .as_array()
        .expect("job_ids")
        .iter()
        .map(|j| j.as_str().expect("id").to_owned())
        .collect();
    (v["batch_id"].as_str().expect("batch_id").to_owned(), ids)
}

/// The app's telemetry into `capture`: its meter and its tracer provider (the server layer's spans).
pub fn options_of(capture: &Capture) -> AppOptions {
    AppOptions {
        meter: Some(capture.meter("image2model")),
        tracer_provider: Some(capture.tracer_provider().clone()),
    }
}

/// Polls `GET uri` (which must answer 200) until `done` accepts the body; panics after `limit` with the
/// last body.
pub async fn wait_for(
    router: &Router,
    uri: &str,
    limit: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    // Every 20 ms: polling faster would meet the app's own rate limit in the longer waits.
    let found = eventually_every(limit, Duration::from_millis(20), async || {
        let (status, v) = send_json(router, get(uri)).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        last = v.clone();
        done(&v).then_some(v)
    })
    .await;
    found.unwrap_or_else(|| panic!("{uri} not there within {limit:?}: {last}"))
}

/// Polls the job until it is terminal (panics after `limit`).
pub async fn wait_job(router: &Router, job_id: &str, limit: Duration) -> serde_json::Value {
    wait_for(router, &format!("/api/v1/jobs/{job_id}"), limit, |v| {
        v["status"] == "succeeded" || v["status"] == "failed"
    })
    .await
}

/// Polls the batch until it is completed.
pub async fn wait_batch(router: &Router, batch_id: &str, limit: Duration) -> serde_json::Value {
    wait_for(router, &format!("/api/v1/batches/{batch_id}"), limit, |v| {
        v["status"] == "completed"
    })
    .await
}

pub fn assert_error(status: StatusCode, v: &serde_json::Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
}

pub mod fake;

/// Starts an app, uploads a PNG and waits for a job on it to end: the app, the file, the job id
/// and the job.
pub async fn one_job(
    tweak: impl FnOnce(&mut ServeConfig),
    sim: SimConfig,
) -> (TestApp, String, String, serde_json::Value) {
    let t = start_cfg(tweak, sim, AppOptions::default()).await;
    let f = upload(&t.router).await;
    let job = create_job(&t.router, &f).await;
    let v = wait_job(&t.router, &job, Duration::from_secs(10)).await;
    (t, f, job, v)
}

/// Serves `t`'s app on a loopback port with the real server (timeouts, connection limit);
/// the server stops when the returned sender is dropped or sent to.
pub async fn serve_app(app: &App) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.serve(listener, async move {
        let _ = rx.await;
    }));
    (addr, tx)
}

/// Serves `app` on a free loopback port until the runtime ends (or the handle is aborted).
pub async fn serve_router(app: Router) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, server)
}

/// Polls `f` every 10 ms until it returns `Some`, at most `limit`: every wait of these tests goes through it
/// (or [`eventually_every`], [`eventually_blocking`]), never a sleep.
pub async fn eventually<T>(limit: Duration, f: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    eventually_every(limit, Duration::from_millis(10), f).await
}

/// [`eventually`], polling every `every` (requests through the router count against its rate limit).
pub async fn eventually_every<T>(
    limit: Duration,
    every: Duration,
    f: impl AsyncFnMut() -> Option<T>,
) -> Option<T> {
    test_support::eventually_async(limit, every, f).await
}

/// [`eventually`] for a blocking check (a child process, a file), polling every 20 ms.
pub fn eventually_blocking<T>(limit: Duration, f: impl FnMut() -> Option<T>) -> Option<T> {
    test_support::eventually(limit, Duration::from_millis(20), f)
}
