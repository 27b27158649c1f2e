//! A service that owns its `tracing` subscriber: our layer next to layers of its own (here a
//! plain-text stderr formatter showing warnings and errors only, standing in for an error reporter
//! or `tokio-console`). `RUST_LOG` filters our layer only; the stderr layer keeps its own filter.
//!
//! `cargo run -p otelbricks-telemetry --example own_registry`

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use anyhow::Context as _;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::prelude::*;

fn main() -> anyhow::Result<()> {
    // Builds the providers, log files, admin listener and console writer; sets the OTel globals
    // (tracer and meter providers, propagator) but not the tracing subscriber.
    let (telemetry, guard) = otelbricks_telemetry::builder("own-registry")
        .service_version(env!("CARGO_PKG_VERSION"))
        .build()
        .context("setting up telemetry")?;

    tracing_subscriber::registry()
        .with(telemetry)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(LevelFilter::WARN),
        )
        .init();

    let span = tracing::info_span!("startup", request_id = "boot");
    span.in_scope(|| {
        tracing::info!("JSON line, log record and span: our layer only");
        tracing::warn!("this one also reaches the stderr layer");
    });

    // Bounded flush; with no collector the report says what was dropped.
    if let Err(e) = guard.shutdown() {
        eprintln!("telemetry: {e}");
    }
    Ok(())
}
