//! A small axum service on the embedded defaults: JSON logs on the console and in `logs/`,
//! `/metrics` on 127.0.0.1:9464, traces exported to a collector if one listens on
//! localhost:4318 (dropped quietly, counted, if not).
//!
//! `cargo run -p otelbricks-telemetry --example hello`, then `curl localhost:8080/hello/world`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;

use anyhow::Context as _;
use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use opentelemetry::KeyValue;
use tracing::Instrument as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = otelbricks_telemetry::builder("hello")
        .service_version(env!("CARGO_PKG_VERSION"))
        .install()
        .context("setting up telemetry")?;

    let greetings = opentelemetry::global::meter("hello")
        .u64_counter("greetings")
        .with_description("Greetings served, by language.")
        .build();
    let app = Router::new().route(
        "/hello/{name}",
        get(move |Path(name): Path<String>| {
            let greetings = greetings.clone();
            let request_id = uuid::Uuid::new_v4().to_string();
            async move {
                tracing::info!(name_len = name.len() as u64, "greeting");
                greetings.add(1, &[KeyValue::new("language", "en")]);
                format!("hello, {name}\n")
            }
            .instrument(tracing::info_span!("GET /hello/{name}", request_id))
        }),
    );

    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .with_context(|| format!("invalid PORT={p:?}: expected a port number"))?,
        Err(_) => 8080,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    tracing::info!(%addr, metrics = ?telemetry.admin_addr(), "hello listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving")?;
    tracing::info!("shutting down");
    // Without a collector the last export fails: already counted and logged, not a failed exit.
    if let Err(e) = telemetry.shutdown() {
        eprintln!("telemetry: {e}");
    }
    Ok(())
}
