//! Which tracer a layer without `.tracer(…)` uses: the global provider's at its first request,
//! kept for every later request. A test binary of its own, since it replaces the global tracer
//! provider.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use otelbricks_http::HttpTraceLayer;
use tower::ServiceExt as _;

fn provider() -> (SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    (provider, exporter)
}

fn app() -> Router {
    Router::new()
        .route("/jobs/{id}", get(|| async { "job" }))
        .route("/health", get(|| async { "ok" }))
        .layer(HttpTraceLayer::new())
        .with_state(())
}

async fn get_uri(app: &Router, uri: &str) {
    let res = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert!(res.status().is_success());
}

fn span_names(exporter: &InMemorySpanExporter) -> Vec<String> {
    exporter
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .map(|s| s.name.into_owned())
        .collect()
}

#[tokio::test]
async fn a_layer_keeps_the_global_tracer_of_its_first_request() {
    let built_before_any_provider = app();
    let (first, first_spans) = provider();
    opentelemetry::global::set_tracer_provider(first.clone());
    get_uri(&built_before_any_provider, "/jobs/1").await;

    let (second, second_spans) = provider();
    opentelemetry::global::set_tracer_provider(second.clone());
    // Every route of the layer shares the tracer it took, not only the route that took it.
    get_uri(&built_before_any_provider, "/health").await;
    get_uri(&app(), "/jobs/2").await;

    assert_eq!(
        span_names(&first_spans),
        ["GET /jobs/{id}", "GET /health"],
        "the layer's spans after the provider changed still go to the first provider"
    );
    assert_eq!(
        span_names(&second_spans),
        ["GET /jobs/{id}"],
        "a layer whose first request came after the change uses the new provider"
    );
}
