//! Span-metric label names, pinned against the collector build: the collector runs with
//! `otel-collector/config.yaml`, and every label a dashboard selects on must exist.

use std::collections::BTreeSet;

use serde_json::Value;
use stack_tests::grafana::{self, Substitutions, substitute};
use stack_tests::paths::repo_root;

use crate::repo_dashboards;

/// The label names of `traces_span_metrics_calls_total` as the collector build in use really exports them: the
/// collector runs with `otel-collector/config.yaml`, gets one failed SERVER span over OTLP/HTTP, and its
/// Prometheus exporter is scraped until the span metric appears (the connector flushes every 15 s).
fn span_metric_labels_of_the_collector_build() -> (BTreeSet<String>, String) {
    use stack_tests::process::{Process, free_port, listener_port, wait_ready};
    use std::time::Duration;
    let bins = stack_tests::Binaries::ensure().expect("the collector is built");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ports = serde_json::Map::new();
    for name in [
        "otlp_grpc",
        "otlp_http",
        "collector_health",
        "collector_exporter",
        "collector_self",
        "jaeger_otlp_grpc",
        "jaeger_otlp_http",
        "jaeger_query",
        "jaeger_query_grpc",
        "jaeger_metrics",
        "prometheus",
        "alertmanager",
        "app_admin",
    ] {
        ports.insert(name.into(), listener_port().expect("port").into());
    }
    let ports: stack_tests::Ports = serde_json::from_value(Value::Object(ports)).expect("ports");
    let unused = free_port().expect("port");
    let mut cmd = std::process::Command::new(&bins.otelcol);
    cmd.arg(format!(
        "--config={}",
        repo_root().join("otel-collector/config.yaml").display()
    ));
    for (k, v) in
        stack_tests::stack::collector_env(&ports, &format!("http://127.0.0.1:{unused}/otlp"))
    {
        cmd.env(k, v);
    }
    let mut collector =
        Process::spawn("collector", &mut cmd, &dir.path().join("collector.log")).expect("spawn");
    wait_ready(
        &mut collector,
        &format!("http://127.0.0.1:{}/", ports.collector_health),
        Duration::from_secs(60),
    )
    .expect("collector ready");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let span = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "pinned"}},
            {"key": "service.instance.id", "value": {"stringValue": "a-random-uuid"}},
            {"key": "host.name", "value": {"stringValue": "host-a"}}
        ]},
        "scopeSpans": [{"spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
            "name": "GET /api/v1/models", "kind": 2,
            "startTimeUnixNano": (now - 2_000_000).to_string(), "endTimeUnixNano": now.to_string(),
            "status": {"code": 2},
            "attributes": [
                {"key": "http.request.method", "value": {"stringValue": "GET"}},
                {"key": "http.route", "value": {"stringValue": "/api/v1/models"}},
                {"key": "http.response.status_code", "value": {"intValue": 500}}
            ]
        }]}]
    }]});
    stack_tests::http::post_json(
        &format!("http://127.0.0.1:{}/v1/traces", ports.otlp_http),
        &span,
    )
    .expect("OTLP/HTTP export");
    let exporter = format!("http://127.0.0.1:{}/metrics", ports.collector_exporter);
    let sample = stack_tests::eventually(Duration::from_secs(60), Duration::from_secs(1), || {
        let metrics = stack_tests::exposition::scrape(&exporter).ok()?;
        metrics
            .named("traces_span_metrics_calls_total")
            .next()
            .cloned()
    })
    .expect("the span metric appears on the collector's exporter");
    collector.stop(Duration::from_secs(5));
    let names = sample.labels.keys().cloned().collect();
    (names, format!("{sample:?}"))
}

#[test]
fn span_metric_label_names_are_pinned_against_the_collector_build() {
    let (labels, line) = span_metric_labels_of_the_collector_build();
    for want in [
        "job",
        "instance",
        "service_name",
        "span_name",
        "span_kind",
        "status_code",
        "http_route",
        "http_request_method",
        "http_response_status_code",
        "host_name",
    ] {
        assert!(labels.contains(want), "no {want} label: {line}");
    }
    // otel_status_code is the legacy spelling; collector_instance_id (new at every collector start) would
    // begin new series at each restart: config.yaml excludes it.
    for unwanted in ["otel_status_code", "collector_instance_id"] {
        assert!(!labels.contains(unwanted), "{unwanted} is back: {line}");
    }
    // Every label a dashboard's span-metric selector matches on exists.
    let subs = Substitutions::for_service("image2model");
    for q in grafana::promql_queries(&repo_dashboards()) {
        let expr = substitute(&q.expr, &subs).unwrap_or_else(|e| panic!("{e}"));
        for sel in grafana::selectors(&expr).unwrap_or_else(|e| panic!("{e}")) {
            if !sel
                .metric
                .as_deref()
                .is_some_and(|m| m.starts_with("traces_span_metrics"))
            {
                continue;
            }
            for (name, _, _) in &sel.matchers {
                assert!(
                    name == "le" || name == "__name__" || labels.contains(name),
                    "{} / {}: span metrics have no label {name}",
                    q.dashboard_uid,
                    q.panel_title
                );
            }
        }
    }
}
