//! LogQL in the dashboards uses only labels the collector -> Loki OTLP path produces.

use stack_tests::grafana::{self, logql_label_names};
use stack_tests::paths::repo_root;

use crate::repo_dashboards;

/// The labels the collector -> Loki OTLP path produces (loki/README.md, "Which OTLP data becomes what in
/// Loki"): index labels from Loki's default resource attributes, and structured metadata.
const LOKI_INDEX_LABELS: &[&str] = &[
    "service_name",
    "service_namespace",
    "service_instance_id",
    "deployment_environment",
    "deployment_environment_name",
];
const LOKI_STRUCTURED_METADATA: &[&str] = &[
    "severity_text",
    "severity_number",
    "trace_id",
    "span_id",
    "flags",
    "scope_name",
    "observed_timestamp",
    "detected_level",
];

#[test]
fn logql_uses_only_labels_the_collector_to_loki_mapping_produces() {
    let readme = std::fs::read_to_string(repo_root().join("loki/README.md")).unwrap_or_default();
    for name in LOKI_INDEX_LABELS.iter().chain(LOKI_STRUCTURED_METADATA) {
        assert!(
            readme.contains(name),
            "loki/README.md does not list {name}: the two lists disagree"
        );
    }
    let queries = grafana::logql_queries(&repo_dashboards());
    assert!(queries.len() >= 3, "only {} LogQL targets", queries.len());
    for q in &queries {
        for label in logql_label_names(&q.expr) {
            assert!(
                LOKI_INDEX_LABELS.contains(&label.as_str())
                    || LOKI_STRUCTURED_METADATA.contains(&label.as_str()),
                "{} / {}: label {label:?} is not produced by the collector -> Loki mapping: {}",
                q.dashboard_uid,
                q.panel_title,
                q.expr
            );
        }
        // A stream selector needs an indexed label; structured metadata only filters after it.
        let selector = q
            .expr
            .split('{')
            .nth(1)
            .and_then(|s| s.split('}').next())
            .unwrap_or("");
        assert!(
            LOKI_INDEX_LABELS.iter().any(|l| selector.contains(l)),
            "{}: stream selector {{{selector}}} has no index label",
            q.dashboard_uid
        );
    }
}

#[test]
fn the_logql_label_check_rejects_a_label_loki_does_not_have() {
    // The check above must be able to fail: a raw `level` label is not what Loki stores.
    let names = logql_label_names(r#"{service_name="x"} | level="error""#);
    assert!(names.contains("level"));
    assert!(!LOKI_INDEX_LABELS.contains(&"level") && !LOKI_STRUCTURED_METADATA.contains(&"level"));
}
