//! A small axum service on the embedded defaults: JSON logs on the console and in `logs/`, `/metrics`
//! on 127.0.0.1:9464, traces to a collector on localhost:4318 if one listens (dropped and counted if not).
//! `cargo run -p otelbricks-telemetry --example hello`, then `curl localhost:8080/hello/world`.

use axum::{Router, extract::Path, routing::get};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = otelbricks_telemetry::builder("hello").install()?; // traces, metrics, logs, /metrics
    let app = Router::new()
        .route(
            "/hello/{name}",
            get(|Path(name): Path<String>| async move {
                tracing::info!(name_len = name.len(), "greeting"); // carries trace_id and request_id
                format!("hello, {name}\n")
            }),
        )
        .layer(otelbricks_http::HttpServerLayer::new()); // a span, HTTP metrics and a line per request
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async { tokio::signal::ctrl_c().await.unwrap_or_default() })
        .await?;
    if let Err(e) = telemetry.shutdown() {
        eprintln!("telemetry: {e}"); // what a missing collector cost, counted
    }
    Ok(())
}
