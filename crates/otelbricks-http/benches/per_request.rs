//! Instructions and allocations per request, for `valgrind --tool=callgrind` (repeatable on a noisy
//! machine where wall time is not): one stack, `N` requests after a warm-up, allocations counted by a
//! wrapping global allocator and printed.
//!
//! ```text
//! cargo bench -p otelbricks-http --bench per_request --no-run
//! BIN=$(ls -t $CARGO_TARGET_DIR/release/deps/per_request-* | grep -v '\.d$' | head -1)
//! $BIN ours 10000                       # allocations per request
//! valgrind --tool=callgrind $BIN ours 200; valgrind --tool=callgrind $BIN ours 1200
//! # (Ir of the second − Ir of the first) / 1000 = instructions per request
//! ```
//!
//! Stacks: `bare`, `ours` (`HttpServerLayer`), `signals` (only the three layers that emit
//! signals: `HttpTraceLayer` + `HttpMetricsLayer` + `RequestLogLayer`, no request id, user id,
//! `X-Process-Time` or panic catching), `otel_tower+trace_layer`, `sdk_floor` (as in the
//! `server_layer` bench); `axum_tracing_otel`, axum-tracing-opentelemetry's `OtelInResponseLayer` +
//! `OtelAxumLayer` as its README sets them up, with the `tracing-opentelemetry` layer, propagator
//! and filter directive wired as init-tracing-opentelemetry wires them
//! ([`common::Wiring::InitTracingOpentelemetry`]; its own `init_subscriber` would install a second
//! global subscriber, so its layer goes into the benches' subscriber instead, under the same
//! providers and exporters); each middleware alone: `exclude`, `request_id`, `user_id`,
//! `process_time`, `trace`, `metrics`, `request_log`, `catch_panic`; and `metrics_by_hand`, the
//! four HTTP server instruments recorded by hand with the OTel API (`common::metrics_by_hand`),
//! to compare `metrics` with; `minus_<layer>` (`minus_trace`, `minus_request_id`, …), the stack of
//! `HttpServerLayer` built from the public layers with that one left out (`minus_none`: all of
//! them), so that `minus_none − minus_<layer>` is what the layer costs inside the stack, where it
//! also feeds the others (the request id, for one, becomes a span attribute and a field of every
//! log line).
//!
//! The router is finalized with `with_state(())`, as `axum::serve` does, before the requests.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use tower::ServiceExt as _;

mod common;
use common::{Wiring, install_with, request, router};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to `System` unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let stack = args.next().unwrap_or_else(|| "ours".into());
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let _keep = install_with(if stack == "axum_tracing_otel" {
        Wiring::InitTracingOpentelemetry
    } else {
        Wiring::Ours
    });
    let app: Router = match stack.as_str() {
        "bare" => router(),
        "ours" => router().layer(otelbricks_http::HttpServerLayer::new()),
        "signals" => router().layer(
            tower::ServiceBuilder::new()
                .layer(otelbricks_http::HttpTraceLayer::new())
                .layer(otelbricks_http::HttpMetricsLayer::new())
                .layer(otelbricks_http::RequestLogLayer::new()),
        ),
        "otel_tower+trace_layer" => router()
            .layer(opentelemetry_instrumentation_tower::http::server::Layer::new())
            .layer(tower_http::trace::TraceLayer::new_for_http()),
        "axum_tracing_otel" => router()
            .layer(axum_tracing_opentelemetry::middleware::OtelInResponseLayer)
            .layer(axum_tracing_opentelemetry::middleware::OtelAxumLayer::default()),
        "sdk_floor" => common::sdk_floor(router()),
        "metrics_by_hand" => common::metrics_by_hand(router()),
        "exclude" => router().layer(otelbricks_http::ExcludeLayer::new(
            otelbricks_http::ExcludePaths::new()
                .exact("/metrics")
                .exact("/health"),
        )),
        "request_id" => router().layer(otelbricks_http::RequestIdLayer::new()),
        "user_id" => router().layer(otelbricks_http::UserIdLayer::default()),
        "process_time" => router().layer(otelbricks_http::ProcessTimeLayer::new()),
        "trace" => router().layer(otelbricks_http::HttpTraceLayer::new()),
        "metrics" => router().layer(otelbricks_http::HttpMetricsLayer::new()),
        "request_log" => router().layer(otelbricks_http::RequestLogLayer::new()),
        "catch_panic" => router().layer(otelbricks_http::CatchPanicLayer::new()),
        s if s.starts_with("minus_") => {
            use otelbricks_http::*;
            use tower::util::option_layer;
            let skip = &s["minus_".len()..];
            let layers = [
                "exclude",
                "request_id",
                "user_id",
                "process_time",
                "trace",
                "metrics",
                "request_log",
                "catch_panic",
            ];
            assert!(
                skip == "none" || layers.contains(&skip),
                "unknown layer {skip}"
            );
            let on = |name: &str| skip != name;
            router().layer(
                tower::ServiceBuilder::new()
                    .layer(option_layer(on("exclude").then(|| {
                        ExcludeLayer::new(ExcludePaths::new().exact("/metrics").exact("/health"))
                    })))
                    .layer(option_layer(on("request_id").then(RequestIdLayer::new)))
                    .layer(option_layer(on("user_id").then(UserIdLayer::default)))
                    .layer(option_layer(on("process_time").then(ProcessTimeLayer::new)))
                    .layer(option_layer(on("trace").then(HttpTraceLayer::new)))
                    .layer(option_layer(on("metrics").then(HttpMetricsLayer::new)))
                    .layer(option_layer(on("request_log").then(RequestLogLayer::new)))
                    .layer(option_layer(on("catch_panic").then(CatchPanicLayer::new))),
            )
        }
        other => panic!("unknown stack {other}"),
    };
    // Finalized as `axum::serve` finalizes it (`into_make_service` calls `with_state`): without
    // this, axum turns the handler into a route and applies every layer again per request.
    let app = app.with_state(());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut ok = 0u64;
    for _ in 0..100 {
        ok += u64::from(rt.block_on(app.clone().oneshot(request())).is_ok());
    }
    let (a0, b0) = (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    for _ in 0..n {
        ok += u64::from(rt.block_on(app.clone().oneshot(request())).is_ok());
    }
    let (a1, b1) = (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    // Every span and log record exported before exit: instruction counts then include the export
    // of all `n` requests, not whatever the batch threads had reached.
    common::flush();
    println!(
        "{stack}: {n} requests ({ok} ok), {:.2} allocations and {:.0} bytes allocated per request",
        (a1 - a0) as f64 / n as f64,
        (b1 - b0) as f64 / n as f64
    );
}
