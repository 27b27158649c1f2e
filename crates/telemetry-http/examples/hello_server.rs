//! A hello route for loopback load tests: `cargo run --release -p telemetry-http --example
//! hello_server -- [--bare] [PORT]`. With `--bare` the router has no instrumentation at all; without
//! it the server runs `telemetry::install()` (console off, files in a temp dir, OTLP to a closed
//! port so export fails and is counted) and `HttpServerLayer`.

use anyhow::Context as _;
use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut bare = false;
    let mut port = 18081u16;
    for arg in std::env::args().skip(1) {
        if arg == "--bare" {
            bare = true;
        } else {
            port = arg
                .parse()
                .with_context(|| format!("invalid port {arg:?}"))?;
        }
    }
    let app = Router::new().route("/hello", get(|| async { "hello" }));
    let (app, _telemetry) = if bare {
        (app, None)
    } else {
        let dir = std::env::temp_dir().join(format!("hello-server-{}", std::process::id()));
        let guard = telemetry::builder("hello-server")
            .log_dir(&dir)
            .console(telemetry::ConsoleFormat::Off)
            .otlp_endpoint("http://127.0.0.1:9")
            .admin_addr("127.0.0.1:0".parse()?)
            .install()
            .context("telemetry")?;
        (
            app.layer(telemetry_http::HttpServerLayer::new()),
            Some(guard),
        )
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
