//! `install()` (the one-liner) with a layer of the test's own: JSON lines with trace context,
//! spans and log records over OTLP, and the extra layer sees the events. `own_registry.rs` runs
//! the same scenario through a subscriber the test composes itself.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

#[test]
fn install_writes_json_lines_and_exports_otlp_with_the_same_trace_id() {
    let (receiver, addr) = common::Receiver::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let extra = common::Counting::default();
    let guard = common::builder(addr, tmp.path())
        .with_layer(extra.clone())
        .install()
        .expect("install");
    assert!(
        tracing::dispatcher::has_been_set(),
        "install sets the subscriber"
    );
    let trace_id = common::scenario();
    // A client-controlled value far over the 4 KiB default limit, on a span and in a log line.
    let big = "x".repeat(100_000);
    tracing::info_span!("upload", payload = big.as_str())
        .in_scope(|| tracing::info!(target: "shop", payload = big.as_str(), "big payload"));
    guard
        .shutdown()
        .expect("a clean shutdown: the collector answered");
    common::check(tmp.path(), "shop", trace_id, &receiver);
    assert_eq!(
        common::longest_run(&receiver, "/v1/traces", b'x'),
        4096,
        "span attribute values are cut at 4096 bytes"
    );
    assert_eq!(
        common::longest_run(&receiver, "/v1/logs", b'x'),
        4096,
        "log record attribute values are cut at 4096 bytes"
    );
    let log = std::fs::read_to_string(tmp.path().join("shop.json")).expect("log file");
    let line = log
        .lines()
        .find(|l| l.contains("big payload"))
        .expect("line");
    let v: serde_json::Value = serde_json::from_str(line).expect("json");
    assert_eq!(
        v["payload"].as_str().map(str::len),
        Some(4096),
        "JSON values too"
    );
    assert!(
        extra.0.lock().expect("lock").iter().any(|t| t == "shop"),
        "the extra layer sees the events"
    );
}
