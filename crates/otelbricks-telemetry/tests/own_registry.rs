//! `build()`: the application composes its own subscriber from our layer and its own layers, and
//! gets what `install()` gives (the same scenario as `install_path.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use tracing_subscriber::prelude::*;

mod common;

#[test]
fn a_user_owned_registry_gets_the_same_lines_and_otlp_records_as_install() {
    let (receiver, addr) = common::Receiver::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let extra = common::Counting::default();
    let (telemetry, guard) = common::builder(addr, tmp.path()).build().expect("build");
    assert!(
        !tracing::dispatcher::has_been_set(),
        "build() sets no tracing subscriber"
    );
    tracing_subscriber::registry()
        .with(extra.clone())
        .with(telemetry)
        .init();
    let trace_id = common::scenario();
    guard
        .shutdown()
        .expect("a clean shutdown: the collector answered");
    common::check(tmp.path(), "shop", trace_id, &receiver);
    assert!(
        extra.0.lock().expect("lock").iter().any(|t| t == "shop"),
        "the application's own layer sees the events"
    );
}
