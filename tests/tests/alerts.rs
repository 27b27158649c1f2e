//! Alert delivery end to end: with the provider simulator failing most calls, the error-rate and
//! jobs-failing alerts of `prometheus/rules/` fire in the real Prometheus, and the real Alertmanager, with
//! `alertmanager/alertmanager.yml`'s routing, delivers them to a local webhook receiver within a bounded time.
//! The receiver checks the payload: labels, severity, and the four annotations every rule carries.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use stack_tests::query;
use stack_tests::{App, Sink, Stack, StackOptions, eventually};

const EXPECTED: [&str; 2] = ["HighErrorRate", "JobsFailing"];

#[test]
fn a_failing_provider_fires_the_error_rate_and_jobs_failing_alerts_and_alertmanager_delivers_them()
{
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = Sink::start().expect("webhook receiver starts");
    let mut opts = StackOptions::new(dir.path().join("stack"));
    opts.interval = Some(Duration::from_secs(2));
    opts.webhook_url = Some(sink.webhook_url());
    let stack = Stack::up(opts).expect("stack comes up");
    let app_dir = dir.path().join("app");
    let app = App::start(
        &stack,
        &app_dir,
        &[
            // Most generations fail for good, and many calls get a transient 500 first.
            ("IMAGE2MODEL_SIM_FAILURE_RATE", "0.9"),
            ("IMAGE2MODEL_SIM_ERROR_RATE", "0.5"),
            ("IMAGE2MODEL_PROVIDER_MAX_RETRIES", "1"),
            ("IMAGE2MODEL_RETRY_BASE", "50ms"),
        ],
    )
    .expect("image2model starts");
    let start = Instant::now();
    let load = app
        .loadgen(&app_dir, 15, Duration::from_secs(180))
        .expect("loadgen starts");

    // `for: 1m` on both rules, 5 m rate windows over 2 s scrapes, 5 s group_wait: well within 3 minutes.
    let delivered = eventually(Duration::from_secs(180), Duration::from_secs(2), || {
        let names: BTreeSet<String> = firing_in_payloads(&sink.alerts()).into_iter().collect();
        EXPECTED.iter().all(|a| names.contains(*a)).then_some(())
    });
    let firing = query::prom_firing_alerts(&stack.prometheus_url()).unwrap_or_default();
    let elapsed = start.elapsed();
    drop(load);
    eprintln!(
        "after {elapsed:?}: firing in Prometheus {firing:?}; webhook payloads {}",
        sink.alerts().len()
    );

    assert!(
        delivered.is_some(),
        "{EXPECTED:?} not all delivered within 180 s; Prometheus has firing {firing:?}; webhook got {:?}",
        firing_in_payloads(&sink.alerts())
    );
    for name in EXPECTED {
        assert!(
            firing.iter().any(|f| f == name),
            "{name} is firing in Prometheus: {firing:?}"
        );
        let alert = sink
            .alerts()
            .iter()
            .flat_map(|p| p["alerts"].as_array().cloned().unwrap_or_default())
            .find(|a| a["labels"]["alertname"] == name && a["status"] == "firing")
            .expect("delivered alert");
        check_payload(name, &alert);
    }
    for payload in sink.alerts() {
        assert_eq!(
            payload["version"], "4",
            "Alertmanager webhook payload version"
        );
        assert_eq!(
            payload["receiver"], "webhook",
            "severity=error routes to the webhook receiver"
        );
    }
}

fn firing_in_payloads(payloads: &[Value]) -> Vec<String> {
    payloads
        .iter()
        .flat_map(|p| p["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["status"] == "firing")
        .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_string))
        .collect()
}

fn check_payload(name: &str, alert: &Value) {
    let labels = &alert["labels"];
    assert_eq!(labels["severity"], "error", "{name}: severity label");
    assert_eq!(
        labels["job"], "image2model",
        "{name}: job label is the service"
    );
    let annotations = &alert["annotations"];
    for key in ["summary", "description", "dashboard", "runbook"] {
        let text = annotations[key].as_str().unwrap_or_default();
        assert!(
            !text.trim().is_empty(),
            "{name}: annotation {key} is missing: {annotations}"
        );
        assert!(
            !text.contains("{{"),
            "{name}: annotation {key} has an unexpanded template: {text}"
        );
    }
    assert!(
        annotations["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("image2model"),
        "{name}: the summary names the service: {annotations}"
    );
    assert!(
        alert["startsAt"].as_str().is_some_and(|s| !s.is_empty()),
        "{name}: startsAt"
    );
    assert!(
        alert["generatorURL"]
            .as_str()
            .is_some_and(|s| s.contains("/graph?g0.expr=")),
        "{name}: generatorURL links the expression"
    );
}
