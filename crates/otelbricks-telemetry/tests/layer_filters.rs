//! The layer from `build()` sets no global subscriber and filters only itself: our level filter
//! never hides events from the application's other layers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use tracing_subscriber::prelude::*;

mod common;

#[test]
fn build_sets_no_subscriber_and_our_filter_does_not_hide_events_from_other_layers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let extra = common::Counting::default();
    let (telemetry, guard) = otelbricks_telemetry::builder("filtered")
        .env_lookup(|k| (k == "OTEL_SDK_DISABLED").then(|| "true".to_owned()))
        .filter("warn")
        .log_dir(tmp.path())
        .console(otelbricks_telemetry::ConsoleFormat::Off)
        .build()
        .expect("build");
    assert!(!tracing::dispatcher::has_been_set());
    let subscriber = tracing_subscriber::registry()
        .with(extra.clone())
        .with(telemetry);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(target: "app", "below our filter");
        tracing::warn!(target: "app", "order accepted");
    });
    // `has_been_set` also turns true for scoped defaults; ask another thread what its default is.
    let global_is_none = std::thread::spawn(|| {
        tracing::dispatcher::get_default(|d| d.is::<tracing::subscriber::NoSubscriber>())
    })
    .join()
    .expect("thread");
    assert!(global_is_none, "still no global subscriber after use");
    assert_eq!(
        extra.0.lock().expect("lock").len(),
        2,
        "the application's layer sees the info event our filter drops"
    );
    let line = common::scenario_line(tmp.path(), "filtered");
    assert_eq!(line["level"], "WARNING");
    guard.shutdown().expect("shutdown");
    let text = std::fs::read_to_string(tmp.path().join("filtered.json")).expect("log file");
    assert!(!text.contains("below our filter"), "{text}");
}
