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
    guard
        .shutdown()
        .expect("a clean shutdown: the collector answered");
    common::check(tmp.path(), "shop", trace_id, &receiver);
    assert!(
        extra.0.lock().expect("lock").iter().any(|t| t == "shop"),
        "the extra layer sees the events"
    );
}
