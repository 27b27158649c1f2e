//! The provider client against a scripted server on loopback: `Retry-After` is honoured, 4xx is
//! not retried, and the key goes out as `Authorization: Key ...`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use image2model::metrics::Metrics;
use image2model::provider::{ProviderClient, ProviderConfig, ProviderError};

type Script = Arc<Mutex<Vec<Response>>>;
/// Path and `Authorization` header of each request the server saw.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

async fn serve(script: Script, seen: Seen) -> String {
    let app = Router::new().fallback(any(move |uri: axum::http::Uri, headers: HeaderMap| {
        let script = script.clone();
        let seen = seen.clone();
        async move {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if let Ok(mut s) = seen.lock() {
                s.push((uri.path().to_owned(), auth));
            }
            let next = script.lock().ok().and_then(|mut s| {
                if s.is_empty() {
                    None
                } else {
                    Some(s.remove(0))
                }
            });
            next.unwrap_or_else(|| StatusCode::IM_A_TEAPOT.into_response())
        }
    }));
    let (addr, _) = common::serve_router(app).await;
    format!("http://{addr}")
}

fn client(base_url: String, backoff_max: Duration) -> ProviderClient {
    let meter = opentelemetry_sdk::metrics::SdkMeterProvider::default();
    let meter = opentelemetry::metrics::MeterProvider::meter(&meter, "test");
    ProviderClient::new(
        ProviderConfig {
            base_url: base_url.clone(),
            model: "fal-ai/trellis".into(),
            api_key: Some("k-123".into()),
            poll_interval: Duration::from_millis(5),
            request_timeout: Duration::from_secs(2),
            max_retries: 3,
            backoff_base: Duration::from_millis(5),
            backoff_max,
            ..ProviderConfig::new(base_url)
        },
        otelbricks_http::HttpClientMiddleware::with_meter(&meter),
        Metrics::new(&meter),
    )
    .expect("client")
}

fn json(v: serde_json::Value) -> Response {
    axum::Json(v).into_response()
}

#[tokio::test]
async fn retry_after_is_honoured_and_the_key_is_sent_as_key_authorization() {
    let script: Script = Arc::new(Mutex::new(vec![
        (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            "slow down",
        )
            .into_response(),
        json(serde_json::json!({"request_id": "r1"})),
        json(serde_json::json!({"status": "COMPLETED"})),
        json(serde_json::json!({"model_mesh": {"url": "/files/r1.glb"}})),
        image2model::files::triangle_glb("r1").into_response(),
    ]));
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let base = serve(script, seen.clone()).await;
    let c = client(base, Duration::from_secs(5));
    let start = Instant::now();
    let glb = c
        .generate(
            image2model::files::TINY_PNG,
            "image/png",
            &serde_json::json!({}),
        )
        .await
        .expect("generated");
    assert!(image2model::files::is_valid_glb(&glb));
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "waited for Retry-After"
    );
    let seen = seen.lock().expect("seen").clone();
    let paths: Vec<&str> = seen.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/fal-ai/trellis",
            "/fal-ai/trellis",
            "/fal-ai/trellis/requests/r1/status",
            "/fal-ai/trellis/requests/r1",
            "/files/r1.glb"
        ]
    );
    assert!(seen.iter().all(|(_, a)| a.as_deref() == Some("Key k-123")));
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let script: Script = Arc::new(Mutex::new(vec![
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(serde_json::json!({"detail": "bad image"})),
        )
            .into_response(),
    ]));
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let base = serve(script, seen.clone()).await;
    let err = client(base, Duration::from_millis(50))
        .generate(b"x", "image/png", &serde_json::json!({}))
        .await
        .expect_err("rejected");
    assert!(
        matches!(&err, ProviderError::Rejected { endpoint: "submit", status: 422, detail } if detail == "bad image"),
        "{err}"
    );
    assert_eq!(seen.lock().expect("seen").len(), 1);
}

#[tokio::test]
async fn a_missing_request_id_is_reported_as_garbage() {
    let script: Script = Arc::new(Mutex::new(vec![json(serde_json::json!({"id": 5}))]));
    let base = serve(script, Arc::new(Mutex::new(Vec::new()))).await;
    let err = client(base, Duration::from_millis(50))
        .generate(b"x", "image/png", &serde_json::json!({}))
        .await
        .expect_err("garbage");
    assert!(
        matches!(
            err,
            ProviderError::Garbage {
                endpoint: "submit",
                ..
            }
        ),
        "{err}"
    );
}
