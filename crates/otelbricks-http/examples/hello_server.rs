//! A hello route for loopback load tests:
//! `cargo run --release -p otelbricks-http --example hello_server -- [--bare|--baseline|--sdk-floor] [PORT]`.
//!
//! - `--bare`: the router with no instrumentation at all.
//! - default: `otelbricks_telemetry::install()` (console off, files in a temporary directory removed at exit,
//!   OTLP to a closed port so export fails and is counted) and `HttpServerLayer`.
//! - `--baseline`: the same `otelbricks_telemetry::install()` with what a user would assemble instead of our
//!   layer: opentelemetry-instrumentation-tower's server layer and tower-http's `TraceLayer`
//!   (its debug spans and events on, as in the `server_layer` bench).
//! - `--sdk-floor`: the benches' `sdk_floor` stack (one span, one histogram record and one log
//!   record made with the OTel SDK by hand, exporters that discard): a lower bound for any
//!   OpenTelemetry middleware, not a usable one.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use anyhow::Context as _;
use axum::Router;
use axum::routing::get;

#[path = "../benches/common/mod.rs"]
mod common;

#[derive(Clone, Copy, PartialEq)]
enum Stack {
    Bare,
    Ours,
    Baseline,
    SdkFloor,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut stack = Stack::Ours;
    let mut port = 18081u16;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--bare" => stack = Stack::Bare,
            "--baseline" => stack = Stack::Baseline,
            "--sdk-floor" => stack = Stack::SdkFloor,
            _ => port = arg.parse().with_context(|| {
                format!(
                    "invalid argument {arg:?}: expected --bare, --baseline, --sdk-floor or a port"
                )
            })?,
        }
    }
    let app = Router::new().route("/hello", get(|| async { "hello" }));
    let dir = tempfile::Builder::new()
        .prefix("hello-server-")
        .tempdir()
        .context("temporary log directory")?;
    let telemetry = |filter: &str| {
        otelbricks_telemetry::builder("hello-server")
            .filter(filter)
            .log_dir(dir.path())
            .console(otelbricks_telemetry::ConsoleFormat::Off)
            .otlp_endpoint("http://127.0.0.1:9")
            .admin_addr(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .install()
            .context("telemetry")
    };
    let mut _floor = None;
    let (app, _guard) = match stack {
        Stack::Bare => (app, None),
        Stack::SdkFloor => {
            _floor = Some(common::install());
            (common::sdk_floor(app), None)
        }
        Stack::Ours => (
            app.layer(otelbricks_http::HttpServerLayer::new()),
            Some(telemetry("info")?),
        ),
        Stack::Baseline => (
            app.layer(opentelemetry_instrumentation_tower::http::server::Layer::new())
                .layer(tower_http::trace::TraceLayer::new_for_http()),
            Some(telemetry("info,tower_http=debug")?),
        ),
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("listening on 127.0.0.1:{port}"))?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
