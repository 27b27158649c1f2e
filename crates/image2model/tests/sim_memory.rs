//! The provider simulator's memory is bounded: finished requests are forgotten after the TTL,
//! and the table never holds more than `max_requests` (oldest finished first; 429 when only
//! unfinished ones are left).

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use image2model::sim::{SimConfig, SimStats};
use tower::ServiceExt as _;

fn sim(processing_ms: u64, ttl: Duration, max: u32) -> (Router, SimStats) {
    let mut cfg = SimConfig::fast(processing_ms);
    cfg.latency_max = Duration::ZERO;
    cfg.request_ttl = ttl;
    cfg.max_requests = max;
    image2model::sim::router(cfg)
}

async fn call(r: &Router, req: Request<Body>) -> (StatusCode, http::HeaderMap, serde_json::Value) {
    let resp = r.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        headers,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

async fn submit(r: &Router) -> (StatusCode, http::HeaderMap, serde_json::Value) {
    call(
        r,
        Request::post("/fal-ai/trellis")
            .header("content-type", "application/json")
            .body(Body::from(r#"{"image_url": "data:image/png;base64,AA=="}"#))
            .expect("request"),
    )
    .await
}

async fn submitted_id(r: &Router) -> String {
    let (status, _, v) = submit(r).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["request_id"].as_str().expect("request_id").to_owned()
}

async fn status_of(r: &Router, id: &str) -> (StatusCode, serde_json::Value) {
    let (s, _, v) = call(
        r,
        Request::get(format!("/fal-ai/trellis/requests/{id}/status"))
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    (s, v)
}

#[tokio::test]
async fn finished_requests_are_forgotten_after_the_ttl() {
    let (r, stats) = sim(0, Duration::from_millis(150), 1000);
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(submitted_id(&r).await);
    }
    assert_eq!(stats.remembered(), 3);
    let (s, v) = status_of(&r, &ids[0]).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("COMPLETED"))
    );

    // Time passing beyond the 150 ms TTL is the behaviour under test, not a wait for a condition.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (s, v) = status_of(&r, &ids[0]).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "expired: {v}");
    // The next submit sweeps the table.
    let fresh = submitted_id(&r).await;
    assert_eq!(stats.remembered(), 1, "only the fresh request is left");
    assert_eq!(status_of(&r, &fresh).await.0, StatusCode::OK);
}

#[tokio::test]
async fn the_table_is_capped_and_the_oldest_finished_requests_make_room() {
    let (r, stats) = sim(0, Duration::from_secs(3600), 5);
    let mut ids = Vec::new();
    for _ in 0..50 {
        ids.push(submitted_id(&r).await);
        assert!(stats.remembered() <= 5, "{}", stats.remembered());
    }
    assert_eq!(stats.remembered(), 5);
    for id in &ids[45..] {
        assert_eq!(status_of(&r, id).await.0, StatusCode::OK, "newest kept");
    }
    for id in &ids[..45] {
        assert_eq!(
            status_of(&r, id).await.0,
            StatusCode::NOT_FOUND,
            "oldest forgotten"
        );
    }
}

#[tokio::test]
async fn a_table_full_of_unfinished_requests_answers_429_with_retry_after() {
    let (r, stats) = sim(3_600_000, Duration::from_secs(60), 3);
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(submitted_id(&r).await);
    }
    let (s, headers, v) = submit(&r).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(
        headers.get("retry-after").and_then(|h| h.to_str().ok()),
        Some("1")
    );
    assert_eq!(stats.remembered(), 3);
    for id in &ids {
        let (s, v) = status_of(&r, id).await;
        assert_eq!(
            s,
            StatusCode::OK,
            "in-progress requests are never dropped: {v}"
        );
    }
}
