//! The test service of the W3C Trace Context test suite (w3c/trace-context, `test/`), built from
//! this crate's layers: `HttpServerLayer` on the way in, `HttpClientMiddleware` on the way out,
//! the W3C propagator of otelbricks-trace-context with its defaults.
//!
//! `POST /test` takes a JSON array of `{"url": …, "arguments": …}` and POSTs each `arguments` to
//! its `url`, so the harness sees what trace context the service passes on.
//!
//! ```text
//! cargo run -p otelbricks-http --example w3c_service -- 5000
//! python test/test.py http://127.0.0.1:5000/test                  # Level 1
//! SPEC_LEVEL=2 python test/test.py http://127.0.0.1:5000/test     # Level 2
//! ```
//!
//! `scripts/w3c-trace-context.sh` does all of it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use anyhow::Context as _;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use otelbricks_http::{HttpClientMiddleware, HttpServerLayer};
use otelbricks_trace_context::W3CTraceContextPropagator;
use reqwest_middleware::ClientWithMiddleware;
use tracing_subscriber::prelude::*;

async fn test(
    State(client): State<ClientWithMiddleware>,
    Json(cases): Json<Vec<serde_json::Value>>,
) -> &'static str {
    for case in cases {
        let Some(url) = case["url"].as_str() else {
            continue;
        };
        let body = serde_json::to_vec(&case["arguments"]).unwrap_or_default();
        let sent = client
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "callback failed");
        }
    }
    "ok"
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = match std::env::args().nth(1) {
        Some(p) => p.parse().with_context(|| format!("invalid port {p:?}"))?,
        None => 5000,
    };
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, "w3c");
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .init();
    opentelemetry::global::set_text_map_propagator(W3CTraceContextPropagator::new());
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(HttpClientMiddleware::new())
        .build();
    let app = Router::new()
        .route("/test", post(test))
        .layer(HttpServerLayer::new())
        .with_state(client);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("listening on 127.0.0.1:{port}"))?;
    axum::serve(listener, app).await?;
    Ok(())
}
