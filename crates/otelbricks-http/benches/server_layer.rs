//! Added cost per request of the server layer, in process (router driven with `oneshot`, no
//! network), side by side in one run:
//! - `bare`: the router alone;
//! - `ours`: + `HttpServerLayer` (span, 4 metrics, request id, `Request completed` log line);
//! - `otel_tower+trace_layer`: + opentelemetry-instrumentation-tower 0.19 (axum) and tower-http's
//!   `TraceLayer`, what a user would assemble instead;
//! - `sdk_floor`: a minimal middleware calling the OTel SDK by hand (one span, one histogram record,
//!   one log record; `common::sdk_floor`), the SDK's own share of any such stack.
//!
//! All three run under the same subscriber: tracing-opentelemetry (spans), our JSON layer writing to
//! a lossy batching file writer (as `install` sets it up), and the OTel log bridge, with SDK providers whose exporters discard
//! (so nothing is measured but the app-side cost). Level filter `info,tower_http=debug` so that
//! TraceLayer's (debug) spans and events are on, as a user of it would have them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::convert::Infallible;
use std::hint::black_box;

use axum::Router;
use criterion::{Criterion, criterion_group, criterion_main};
use tower::ServiceExt as _;

mod common;
use common::{install, request, router};

fn run(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, app: Router) {
    // Finalized as `axum::serve` finalizes it: otherwise every request applies the layers again.
    let app = app.with_state(());
    c.bench_function(name, |b| {
        b.iter(|| {
            let resp = rt.block_on(app.clone().oneshot(request()));
            let resp: Result<_, Infallible> = resp;
            black_box(resp.map(|r| r.status()))
        })
    });
}

fn bench(c: &mut Criterion) {
    let _keep = install();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    run(c, &rt, "server_layer/bare", router());
    run(
        c,
        &rt,
        "server_layer/ours",
        router().layer(otelbricks_http::HttpServerLayer::new()),
    );
    run(
        c,
        &rt,
        "server_layer/otel_tower+trace_layer",
        router()
            .layer(opentelemetry_instrumentation_tower::http::server::Layer::new())
            .layer(tower_http::trace::TraceLayer::new_for_http()),
    );
    run(
        c,
        &rt,
        "server_layer/sdk_floor",
        common::sdk_floor(router()),
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(4))
        .sample_size(50);
    targets = bench
}
criterion_main!(benches);
