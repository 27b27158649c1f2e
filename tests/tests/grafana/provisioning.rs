//! Grafana's provisioning files: the four datasources, their links to each other, escaping from Grafana's
//! environment expansion, and the dashboard provider.

use std::collections::BTreeMap;

use serde_json::Value;
use stack_tests::grafana::{
    self, ALERTMANAGER_UID, JAEGER_UID, LOKI_UID, PROMETHEUS_UID, parse_promql,
    provisioned_datasources,
};
use stack_tests::rules::{read, yaml};

use crate::{datasource_uids, repo_dashboards};

#[test]
fn the_four_datasources_are_provisioned_with_stable_uids() {
    let ds = datasource_uids();
    let want = [
        (PROMETHEUS_UID, "prometheus"),
        (LOKI_UID, "loki"),
        (JAEGER_UID, "jaeger"),
        (ALERTMANAGER_UID, "alertmanager"),
    ];
    for (uid, kind) in want {
        assert_eq!(
            ds.get(uid).map(String::as_str),
            Some(kind),
            "datasource uid {uid} of type {kind}"
        );
    }
}

#[test]
fn datasources_point_at_the_compose_services() {
    let urls: BTreeMap<String, String> = provisioned_datasources(&grafana::provisioning_dir())
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|d| (d.uid, d.url))
        .collect();
    assert_eq!(urls[PROMETHEUS_UID], "http://prometheus:9090");
    assert_eq!(urls[LOKI_UID], "http://loki:3100");
    assert_eq!(urls[JAEGER_UID], "http://jaeger:16686");
    assert_eq!(urls[ALERTMANAGER_UID], "http://alertmanager:9093");
}

#[test]
fn datasources_link_metrics_logs_and_traces_in_every_direction() {
    let all =
        provisioned_datasources(&grafana::provisioning_dir()).unwrap_or_else(|e| panic!("{e}"));
    let by = |uid: &str| {
        all.iter()
            .find(|d| d.uid == uid)
            .map(|d| d.json_data.clone())
            .expect(uid)
    };
    // What Grafana sees after its environment expansion, which turns `$$` into `$`.
    let s = |v: &Value, p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .replace("$$", "$")
    };

    let prom = by(PROMETHEUS_UID);
    assert_eq!(
        s(&prom, "/exemplarTraceIdDestinations/0/datasourceUid"),
        JAEGER_UID
    );
    assert_eq!(
        s(&prom, "/exemplarTraceIdDestinations/0/name"),
        "trace_id",
        "span_metrics exemplar label"
    );

    let loki = by(LOKI_UID);
    assert_eq!(s(&loki, "/derivedFields/0/matcherType"), "label");
    assert_eq!(s(&loki, "/derivedFields/0/matcherRegex"), "trace_id");
    assert_eq!(s(&loki, "/derivedFields/0/datasourceUid"), JAEGER_UID);

    let jaeger = by(JAEGER_UID);
    assert_eq!(s(&jaeger, "/tracesToLogsV2/datasourceUid"), LOKI_UID);
    let logs_query = s(&jaeger, "/tracesToLogsV2/query");
    assert!(
        logs_query.contains(r#"| trace_id="${__span.traceId}""#),
        "{logs_query}"
    );
    assert!(
        !s(&jaeger, "/tracesToLogsV2/spanStartTimeShift").is_empty(),
        "trace->logs needs a time shift"
    );
    assert!(
        !s(&jaeger, "/tracesToLogsV2/spanEndTimeShift").is_empty(),
        "trace->logs needs a time shift"
    );
    assert_eq!(s(&jaeger, "/tracesToMetrics/datasourceUid"), PROMETHEUS_UID);
    let metric_queries = jaeger
        .pointer("/tracesToMetrics/queries")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    assert!(!metric_queries.is_empty(), "trace->metrics has no queries");
    // Scoped by service: the span's service.name becomes the span metrics' job label through $__tags.
    assert_eq!(s(&jaeger, "/tracesToMetrics/tags/0/key"), "service.name");
    assert_eq!(s(&jaeger, "/tracesToMetrics/tags/0/value"), "job");
    for mq in metric_queries {
        let q = s(&mq, "/query");
        assert!(
            q.contains("$__tags"),
            "trace->metrics query not scoped by service: {q}"
        );
        parse_promql(
            &q.replace("${__span.name}", "GET /x")
                .replace("$__tags", r#"job="image2model""#),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Grafana expands `$NAME` / `${NAME}` from its environment in provisioning files; its own variables must be
/// written `$${...}` / `$$__...` to survive. Reads the raw text, before any YAML unescaping.
#[test]
fn grafana_variables_in_provisioning_files_are_escaped_from_env_expansion() {
    let raw = read("grafana/provisioning/datasources/datasources.yml");
    for (i, line) in raw.lines().enumerate() {
        let code = line.split(" #").next().unwrap_or("");
        if code.trim_start().starts_with('#') {
            continue;
        }
        let b = code.as_bytes();
        for (j, _) in code.match_indices('$') {
            let escaped = (j > 0 && b[j - 1] == b'$') || b.get(j + 1) == Some(&b'$');
            let starts_var = b
                .get(j + 1)
                .is_some_and(|c| *c == b'{' || c.is_ascii_alphabetic() || *c == b'_');
            assert!(
                !starts_var || escaped,
                "line {}: unescaped ${} reference: {line}",
                i + 1,
                "{...}"
            );
        }
    }
    // The parsed value (what Grafana sees after expansion of $$ to $) still holds the variable.
    assert!(raw.contains("$${__span.traceId}") && raw.contains("$${__value.raw}"));
}

#[test]
fn the_dashboard_provider_loads_the_mounted_dashboards_into_a_folder() {
    let v = yaml(&read("grafana/provisioning/dashboards/dashboards.yml"));
    let providers = v
        .get("providers")
        .and_then(Value::as_array)
        .expect("providers list");
    assert_eq!(providers.len(), 1);
    let p = &providers[0];
    assert!(
        p.get("folder")
            .and_then(Value::as_str)
            .is_some_and(|f| !f.is_empty()),
        "no folder"
    );
    assert_eq!(
        p.pointer("/options/path").and_then(Value::as_str),
        Some("/var/lib/grafana/dashboards")
    );
    // docker-compose.yml mounts grafana/dashboards at that path and the provisioning directory.
    let compose = read("docker-compose.yml");
    assert!(
        compose.contains("./grafana/dashboards:/var/lib/grafana/dashboards"),
        "compose mount changed"
    );
    assert!(
        compose.contains("./grafana/provisioning:/etc/grafana/provisioning"),
        "compose mount changed"
    );
    assert!(!repo_dashboards().is_empty());
}
