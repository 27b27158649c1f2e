//! A hello route for loopback load tests:
//! `cargo run --release -p otelbricks-http --example hello_server -- [STACK] [PORT]`, `STACK` one of
//! `--bare`, `--signals`, `--metrics-only`, `--baseline`, `--axum-tracing-otel`, `--sdk-floor`,
//! `--ours-discard` (default: ours).
//!
//! - `--bare`: the router with no instrumentation at all.
//! - default: `otelbricks_telemetry::install()` (console off, files in a temporary directory removed at exit,
//!   OTLP to a closed port so export fails and is counted) and `HttpServerLayer`.
//! - `--signals`: the same `otelbricks_telemetry::install()` and only the three layers that emit
//!   signals: `HttpTraceLayer` + `HttpMetricsLayer` + `RequestLogLayer` (the span, the four
//!   instruments, the request log line to the file and as an OTel log record; no request id, user
//!   id, `X-Process-Time` or panic catching).
//! - `--metrics-only`: the same `otelbricks_telemetry::install()` and `HttpMetricsLayer` alone (the four
//!   HTTP server instruments, no span, no log line).
//! - `--baseline`: the same `otelbricks_telemetry::install()` with what a user would assemble instead of our
//!   layer: opentelemetry-instrumentation-tower's server layer and tower-http's `TraceLayer`
//!   (its debug spans and events on, as in the `server_layer` bench).
//! - `--axum-tracing-otel`: axum-tracing-opentelemetry's `OtelInResponseLayer` + `OtelAxumLayer`
//!   (its README's setup) under the benches' subscriber with the `tracing-opentelemetry` layer,
//!   propagator and filter directive as init-tracing-opentelemetry wires them, exporters that
//!   discard (as `--sdk-floor`: `benches/common/mod.rs`). One span per request, no metrics, no
//!   request log line.
//! - `--ours-discard`: `HttpServerLayer` under the benches' subscriber and exporters that discard,
//!   as `--axum-tracing-otel` and `--sdk-floor` run: the layer's own cost next to theirs, without
//!   the log files and the failing OTLP export of the default.
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
    Signals,
    MetricsOnly,
    Baseline,
    AxumTracingOtel,
    SdkFloor,
    OursDiscard,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut stack = Stack::Ours;
    let mut port = 18081u16;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--bare" => stack = Stack::Bare,
            "--signals" => stack = Stack::Signals,
            "--metrics-only" => stack = Stack::MetricsOnly,
            "--baseline" => stack = Stack::Baseline,
            "--axum-tracing-otel" => stack = Stack::AxumTracingOtel,
            "--sdk-floor" => stack = Stack::SdkFloor,
            "--ours-discard" => stack = Stack::OursDiscard,
            _ => {
                port = arg.parse().with_context(|| {
                    format!(
                        "invalid argument {arg:?}: expected --bare, --signals, --metrics-only, \
                     --baseline, --axum-tracing-otel, --sdk-floor, --ours-discard or a port"
                    )
                })?
            }
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
    let mut _common = None;
    let (app, _guard) = match stack {
        Stack::Bare => (app, None),
        Stack::SdkFloor => {
            _common = Some(common::install());
            (common::sdk_floor(app), None)
        }
        Stack::OursDiscard => {
            _common = Some(common::install());
            (app.layer(otelbricks_http::HttpServerLayer::new()), None)
        }
        Stack::AxumTracingOtel => {
            _common = Some(common::install_with(
                common::Wiring::InitTracingOpentelemetry,
            ));
            (
                app.layer(axum_tracing_opentelemetry::middleware::OtelInResponseLayer)
                    .layer(axum_tracing_opentelemetry::middleware::OtelAxumLayer::default()),
                None,
            )
        }
        Stack::Ours => (
            app.layer(otelbricks_http::HttpServerLayer::new()),
            Some(telemetry("info")?),
        ),
        Stack::Signals => (
            app.layer(
                tower::ServiceBuilder::new()
                    .layer(otelbricks_http::HttpTraceLayer::new())
                    .layer(otelbricks_http::HttpMetricsLayer::new())
                    .layer(otelbricks_http::RequestLogLayer::new()),
            ),
            Some(telemetry("info")?),
        ),
        Stack::MetricsOnly => (
            app.layer(otelbricks_http::HttpMetricsLayer::new()),
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
