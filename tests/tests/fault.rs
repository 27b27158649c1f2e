//! Fault: the collector is killed for 30 s while the app is under load, then restarted.
//!
//! Telemetry must never hurt the app it observes: every request is still served, memory stays bounded
//! (the SDK queues are bounded and drop), what was dropped is counted in the app's self-metrics, and export
//! resumes by itself once the collector is back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stack_tests::process::rss_bytes;
use stack_tests::signals::Outcomes;
use stack_tests::{App, Stack, StackOptions, eventually, exposition, query};

const MIB: f64 = 1024.0 * 1024.0;

#[test]
fn killing_the_collector_for_30s_under_load_costs_no_request_bounded_memory_and_counted_drops_then_export_resumes()
 {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = StackOptions::new(dir.path().join("stack"));
    opts.interval = Some(Duration::from_secs(2));
    let mut stack = Stack::up(opts).expect("stack comes up");
    let app_dir = dir.path().join("app");
    let app = App::start(&stack, &app_dir, &[]).expect("image2model starts");

    // RSS of the app, sampled twice a second for the whole run.
    let samples: Arc<Mutex<Vec<(Instant, u64)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (samples, stop, pid) = (samples.clone(), stop.clone(), app.pid());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(rss) = rss_bytes(pid) {
                    samples
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((Instant::now(), rss));
                }
                // The sampling rate, not a wait.
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };

    let start = Instant::now();
    let load = app
        .loadgen(&app_dir, 25, Duration::from_secs(75))
        .expect("loadgen starts");
    // Export works before the fault (or the test would prove nothing), then the load runs a deliberate 15 s
    // with the collector up: the baseline phase of the memory comparison.
    let exporting = eventually(Duration::from_secs(15), Duration::from_millis(500), || {
        exposition::scrape(&stack.collector_metrics_url())
            .ok()
            .map(|e| e.counter("otelcol_receiver_accepted_spans", |_| true))
            .filter(|accepted| *accepted > 0.0)
    });
    assert!(
        exporting.is_some(),
        "the collector accepts the app's spans before the fault"
    );
    std::thread::sleep(Duration::from_secs(15).saturating_sub(start.elapsed()));
    let dropped_before = dropped_spans(&app);
    let killed_at = Instant::now();
    stack.kill_collector();
    eprintln!("collector killed at {:?}", start.elapsed());
    // The outage itself: its length is the fault under test.
    std::thread::sleep(Duration::from_secs(30));
    let restarted_in = stack.start_collector().expect("collector restarts");
    let restarted_at = Instant::now();
    eprintln!(
        "collector back at {:?} (ready in {restarted_in:?})",
        start.elapsed()
    );
    let summary = load
        .wait(Duration::from_secs(120))
        .expect("loadgen finishes");
    eprintln!("{}", summary.text);

    // Export resumes: the new collector process accepts spans and Jaeger gets traces started after it.
    let resumed = eventually(Duration::from_secs(45), Duration::from_secs(2), || {
        let accepted = exposition::scrape(&stack.collector_metrics_url())
            .ok()?
            .counter("otelcol_receiver_accepted_spans", |_| true);
        let fresh = query::jaeger_find(
            &stack.jaeger_url(),
            "image2model",
            None,
            restarted_at.elapsed(),
            5,
        )
        .ok()?;
        (accepted > 0.0 && !fresh.is_empty()).then_some((accepted, fresh.len()))
    });
    let dropped_after = dropped_spans(&app);
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();

    let samples = samples.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let max_in = |from: Instant, to: Instant| {
        samples
            .iter()
            .filter(|(t, _)| *t >= from && *t <= to)
            .map(|(_, r)| *r)
            .max()
            .unwrap_or(0) as f64
            / MIB
    };
    let before = max_in(start, killed_at);
    let during = max_in(killed_at, restarted_at);
    let after = max_in(restarted_at, Instant::now());
    let warnings = export_warnings(&app_dir.join("logs/image2model.json"));
    eprintln!(
        "RSS MiB before {before:.1}, during outage {during:.1}, after {after:.1}; spans dropped before {dropped_before}, \
         after {dropped_after}; export-failure warnings logged {warnings}; resumed {resumed:?}"
    );

    assert!(summary.requests >= 1000, "the load ran: {}", summary.text);
    assert_eq!(
        summary.errors, 0,
        "no request failed while the collector was down:\n{}",
        summary.text
    );
    assert!(
        before > 0.0 && during > 0.0 && after > 0.0,
        "RSS was sampled in every phase"
    );
    assert!(
        during <= before * 1.5 + 64.0 && after <= before * 1.5 + 64.0,
        "memory stays bounded: {before:.1} MiB before, {during:.1} during, {after:.1} after"
    );
    assert!(
        dropped_after > dropped_before,
        "spans lost during the outage are counted in the app's self-metrics ({dropped_before} -> {dropped_after})"
    );
    assert!(
        warnings <= 6,
        "export failures are logged at most once a minute per signal, got {warnings}"
    );
    assert!(
        resumed.is_some(),
        "export resumed after the collector restarted"
    );
}

/// Spans the app did not deliver: dropped by the processor (queue full) or failed in the exporter.
fn dropped_spans(app: &App) -> u64 {
    let metrics = exposition::scrape(app.admin_metrics_url()).expect("admin metrics");
    Outcomes::read(&metrics, "span").dropped()
}

fn export_warnings(log: &std::path::Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            l.contains("\"logger\":\"otelbricks_telemetry::export\"") && l.contains("export failed")
        })
        .count()
}
