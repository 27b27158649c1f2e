//! The load generator against an instance served on loopback.

mod common;

use std::time::Duration;

use image2model::loadgen::{LoadgenConfig, run};
use image2model::sim::SimConfig;

#[tokio::test]
async fn loadgen_drives_the_mix_without_server_errors_and_summarises_latency() {
    let t = common::start(SimConfig::fast(20)).await;
    let (addr, server) = common::serve_router(t.router.clone()).await;
    let cfg = LoadgenConfig {
        target: format!("http://{addr}"),
        rps: 60.0,
        duration: Duration::from_secs(1),
        concurrency: 16,
        timeout: Duration::from_secs(5),
    };
    let s = run(&cfg, false).await.expect("runs");
    assert_eq!(s.requests + s.skipped, 60, "{s}");
    assert!(s.requests >= 50, "{s}");
    assert_eq!(s.errors, 0, "{s}");
    assert!(s.by_operation.get("upload").is_some_and(|n| *n > 0), "{s}");
    assert!(s.p50 > 0.0 && s.p50 <= s.p95 && s.p95 <= s.p99, "{s}");
    assert!(s.to_string().contains("p99"));
    server.abort();
    t.app.shutdown_with_grace(Duration::ZERO).await;
}
