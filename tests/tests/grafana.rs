//! Static checks of the Grafana side of the stack: provisioning files and the dashboards they load.
//!
//! Grafana cannot be installed on the machines these tests run on (it runs for real only under docker
//! compose), so what Grafana would reject or show as "No data" for a structural reason is checked here: every
//! dashboard parses, has a unique uid, panel ids unique, only provisioned datasource uids, every template
//! variable it uses defined, `$__rate_interval` in every PromQL range, PromQL that parses once substituted,
//! LogQL that uses only labels the collector -> Loki OTLP path produces; the datasources link to each other
//! by uid, Grafana's own variables are escaped from Grafana's environment expansion, and the dashboard
//! provider points at the directory docker compose mounts. Running every expression against live data is
//! the end-to-end test's job (`stack_tests::grafana` gives it the expressions).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use stack_tests::grafana::{
    self, ALERTMANAGER_UID, Dashboard, JAEGER_UID, LOKI_UID, PROMETHEUS_UID, Substitutions,
    logql_label_names, parse_promql, provisioned_datasources, substitute, variables_in,
};
use stack_tests::paths::repo_root;
use stack_tests::rules::{read, yaml};

fn dashboards() -> Vec<Dashboard> {
    grafana::load_dashboards(&grafana::dashboards_dir()).unwrap_or_else(|e| panic!("{e}"))
}

fn datasource_uids() -> BTreeMap<String, String> {
    provisioned_datasources(&grafana::provisioning_dir())
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|d| (d.uid, d.kind))
        .collect()
}

/// Grafana's built-in variables a dashboard may use without defining them.
const BUILTIN_VARIABLES: &[&str] = &[
    "__rate_interval",
    "__interval",
    "__interval_ms",
    "__range",
    "__range_s",
    "__range_ms",
    "__auto",
    "__from",
    "__to",
    "__dashboard",
    "__org",
    "__user",
];

#[test]
fn the_six_dashboards_of_the_issue_are_there_with_unique_uids() {
    let boards = dashboards();
    let uids: BTreeSet<_> = boards.iter().map(|b| b.uid.as_str()).collect();
    assert_eq!(uids.len(), boards.len(), "duplicate dashboard uid");
    for want in [
        "image2model-overview",
        "image2model-models",
        "image2model-provider",
        "image2model-host",
        "image2model-logs",
        "image2model-telemetry",
    ] {
        assert!(
            uids.contains(want),
            "dashboard {want} missing (have {uids:?})"
        );
    }
}

#[test]
fn dashboards_target_grafana_12_schema() {
    for b in dashboards() {
        let v = b
            .json
            .get("schemaVersion")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        assert!(
            v >= 39,
            "{}: schemaVersion {v} is older than Grafana 11/12's",
            b.file.display()
        );
        assert!(
            b.json.get("id").is_none_or(Value::is_null),
            "{}: a fixed `id` clashes on import",
            b.uid
        );
    }
}

#[test]
fn panel_ids_are_unique_and_present_in_every_dashboard() {
    for b in dashboards() {
        let mut seen = BTreeSet::new();
        for p in b.panels() {
            let id =
                p.id.unwrap_or_else(|| panic!("{}: panel {:?} has no id", b.uid, p.title));
            assert!(
                seen.insert(id),
                "{}: panel id {id} used twice (panel {:?})",
                b.uid,
                p.title
            );
        }
        assert!(!seen.is_empty(), "{}: no panels", b.uid);
    }
}

#[test]
fn dashboards_use_only_provisioned_datasource_uids() {
    let provisioned = datasource_uids();
    for b in dashboards() {
        for uid in b.datasource_uids() {
            assert!(
                provisioned.contains_key(&uid),
                "{}: datasource uid {uid:?} is not provisioned",
                b.uid
            );
        }
        for p in b.panels().iter().filter(|p| p.kind != "row") {
            assert!(
                p.datasource_uid.is_some(),
                "{}: panel {:?} names no datasource",
                b.uid,
                p.title
            );
        }
    }
}

#[test]
fn every_variable_a_dashboard_uses_is_defined_or_builtin() {
    for b in dashboards() {
        let defined: BTreeSet<String> = b.variables().into_iter().map(|v| v.name).collect();
        let mut used = BTreeSet::new();
        for q in b.queries() {
            used.extend(variables_in(&q.expr));
        }
        for v in b.variables() {
            used.extend(variables_in(v.query.as_deref().unwrap_or("")));
        }
        for name in used {
            assert!(
                defined.contains(&name) || BUILTIN_VARIABLES.contains(&name.as_str()),
                "{}: ${name} is used but not defined",
                b.uid
            );
        }
    }
}

#[test]
fn every_promql_range_uses_rate_interval_and_parses_once_substituted() {
    let boards = dashboards();
    let queries = grafana::promql_queries(&boards);
    assert!(
        queries.len() >= 40,
        "only {} PromQL panel targets",
        queries.len()
    );
    let subs = Substitutions::for_service("image2model");
    for q in queries {
        let runnable =
            substitute(&q.expr, &subs).unwrap_or_else(|e| panic!("{}: {e}", q.dashboard_uid));
        parse_promql(&runnable)
            .unwrap_or_else(|e| panic!("{} / {}: {e}", q.dashboard_uid, q.panel_title));
        // A range of rate()/increase() is $__rate_interval, except the fixed windows the alerts use.
        for range in q
            .expr
            .split('[')
            .skip(1)
            .map(|r| r.split(']').next().unwrap_or(""))
        {
            assert!(
                range == "$__rate_interval" || range == "1h",
                "{} / {}: range [{range}] (use $__rate_interval): {}",
                q.dashboard_uid,
                q.panel_title,
                q.expr
            );
        }
    }
}

#[test]
fn application_panels_select_the_service_variable() {
    for q in grafana::promql_queries(&dashboards()) {
        // The collector's own metrics, scrape health and the stack-wide count of firing alerts are not a
        // service's.
        let collector_own = q.expr.contains("otelcol_")
            || q.expr.trim() == "up"
            || q.expr
                .starts_with(r#"count(ALERTS{alertstate="firing", alertname!="#);
        if !collector_own {
            assert!(
                q.expr.contains(r#"job="$service""#),
                "{} / {}: no job=\"$service\" filter: {}",
                q.dashboard_uid,
                q.panel_title,
                q.expr
            );
        }
    }
}

#[test]
fn the_overview_has_latency_with_exemplars_and_an_slo_panel() {
    let boards = dashboards();
    let overview = boards
        .iter()
        .find(|b| b.uid == "image2model-overview")
        .expect("overview dashboard");
    let qs = overview.queries();
    assert!(
        qs.iter().any(|q| q.exemplar
            && q.expr
                .contains("traces_span_metrics_duration_seconds_bucket")),
        "no exemplar-enabled span-metrics latency target"
    );
    assert!(
        qs.iter()
            .any(|q| q.expr.contains("job:slo_availability_errors:")),
        "no availability SLO panel"
    );
    assert!(
        qs.iter().any(|q| q.expr.contains("job:slo_latency_slow:")),
        "no latency SLO panel"
    );
    let vars: BTreeSet<_> = overview.variables().into_iter().map(|v| v.name).collect();
    assert!(
        vars.contains("service") && vars.contains("route"),
        "{vars:?}"
    );
}

#[test]
fn slo_panels_use_only_recorded_series_that_exist() {
    let recorded: BTreeSet<String> = grafana::load_rules(&grafana::rules_dir())
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .filter(|r| r.kind == grafana::RuleKind::Record)
        .map(|r| r.name)
        .collect();
    let subs = Substitutions::for_service("image2model");
    for q in grafana::promql_queries(&dashboards()) {
        let runnable = substitute(&q.expr, &subs).unwrap_or_else(|e| panic!("{e}"));
        for s in grafana::selectors(&runnable).unwrap_or_else(|e| panic!("{e}")) {
            if let Some(name) = s.metric.filter(|m| m.contains(':')) {
                assert!(
                    recorded.contains(&name),
                    "{}: {name} is not recorded by any rule",
                    q.dashboard_uid
                );
            }
        }
    }
}

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
    let queries = grafana::logql_queries(&dashboards());
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
    assert!(!dashboards().is_empty());
}

#[test]
fn alert_dashboard_urls_open_provisioned_dashboards_with_their_variables() {
    let boards = dashboards();
    for rule in grafana::load_rules(&grafana::rules_dir()).unwrap_or_else(|e| panic!("{e}")) {
        let Some(link) = rule.annotations.get("dashboard_url") else {
            continue;
        };
        let path = link
            .strip_prefix("http://localhost:3000/d/")
            .unwrap_or_else(|| {
                panic!(
                    "{}: dashboard_url {link:?} is not http://localhost:3000/d/<uid>...",
                    rule.name
                )
            });
        let uid = path.split(['/', '?']).next().unwrap_or("");
        let board = boards
            .iter()
            .find(|b| b.uid == uid)
            .unwrap_or_else(|| panic!("{}: dashboard {uid} does not exist", rule.name));
        let vars: BTreeSet<String> = board.variables().into_iter().map(|v| v.name).collect();
        for param in path
            .split_once('?')
            .map(|(_, q)| q)
            .unwrap_or("")
            .split('&')
        {
            if let Some(var) = param.strip_prefix("var-").and_then(|p| p.split('=').next()) {
                assert!(
                    vars.contains(var),
                    "{}: {uid} has no variable {var}",
                    rule.name
                );
            }
        }
    }
}

#[test]
fn the_generated_dashboards_match_their_generator() {
    // grafana/generate.py writes the JSON files; a hand edit of one of them would be lost on the next run.
    let Ok(out) = std::process::Command::new("python3")
        .arg(repo_root().join("grafana/generate.py"))
        .env(
            "GRAFANA_DASHBOARDS_OUT",
            std::env::temp_dir().join(format!("dash-{}", std::process::id())),
        )
        .output()
    else {
        eprintln!("python3 not available: generator comparison skipped");
        return;
    };
    assert!(
        out.status.success(),
        "generate.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = std::env::temp_dir().join(format!("dash-{}", std::process::id()));
    for b in dashboards() {
        let name = b.file.file_name().expect("file name");
        let fresh =
            std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name:?}: {e}"));
        let committed = std::fs::read_to_string(&b.file).expect("dashboard file");
        assert!(
            fresh == committed,
            "{}: differs from `python3 grafana/generate.py` output",
            b.file.display()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The label names of `traces_span_metrics_calls_total` as the collector build in use really exports them: the
/// collector runs with `otel-collector/config.yaml`, gets one failed SERVER span over OTLP/HTTP, and its
/// Prometheus exporter is scraped until the span metric appears (the connector flushes every 15 s).
fn span_metric_labels_of_the_collector_build() -> (BTreeSet<String>, String) {
    use stack_tests::process::{Process, free_port, wait_ready};
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
        ports.insert(name.into(), free_port().expect("port").into());
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
    for q in grafana::promql_queries(&dashboards()) {
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

fn board(uid: &str) -> Dashboard {
    dashboards()
        .into_iter()
        .find(|b| b.uid == uid)
        .unwrap_or_else(|| panic!("dashboard {uid} missing"))
}

fn panel_titled(b: &Dashboard, fragment: &str) -> grafana::Panel {
    b.panels()
        .into_iter()
        .find(|p| p.title.contains(fragment))
        .unwrap_or_else(|| panic!("{}: no panel titled ...{fragment}...", b.uid))
}

#[test]
fn the_overview_shows_firing_alerts_and_an_alert_list_of_the_service() {
    let b = board("image2model-overview");
    let list = b
        .panels()
        .into_iter()
        .find(|p| p.kind == "alertlist")
        .expect("an alert list panel");
    let filter = list.json["options"]["alertInstanceLabelFilter"]
        .as_str()
        .unwrap_or("");
    assert_eq!(filter, r#"{job="$service"}"#);
    assert_eq!(list.json["options"]["stateFilter"]["firing"], true);
    let firing: Vec<String> = b
        .queries()
        .into_iter()
        .map(|q| q.expr)
        .filter(|e| e.contains("ALERTS{alertstate=\"firing\""))
        .collect();
    assert!(firing.len() >= 2, "firing-alert stats: {firing:?}");
}

/// (dashboard, panel title fragment, alert, the threshold as the alert's expression and the panel spell it).
const DRAWN_THRESHOLDS: &[(&str, &str, &str, &str, f64)] = &[
    (
        "image2model-overview",
        "5xx error ratio",
        "HighErrorRate",
        "> 0.1",
        0.1,
    ),
    (
        "image2model-models",
        "Failed generations",
        "JobsFailing",
        "> 0.25",
        0.25,
    ),
    (
        "image2model-models",
        "Queue length",
        "JobQueueBacklog",
        "> 100",
        100.0,
    ),
    (
        "image2model-host",
        "Memory used",
        "HighMemoryUsage",
        "> 0.90",
        0.9,
    ),
    (
        "image2model-telemetry",
        "Exporter queue fill",
        "TelemetryCollectorQueueFilling",
        "> 0.8",
        0.8,
    ),
    (
        "image2model-overview",
        "Error budget burn rate by window",
        "SLOAvailabilityBudgetBurn",
        "(14.4 *",
        14.4,
    ),
];

#[test]
fn alert_thresholds_are_drawn_on_the_panels_that_show_their_signal() {
    let rules = grafana::load_rules(&grafana::rules_dir()).unwrap_or_else(|e| panic!("{e}"));
    for (uid, fragment, alert, in_expr, value) in DRAWN_THRESHOLDS {
        assert!(
            rules
                .iter()
                .any(|r| r.name == *alert && r.expr.contains(in_expr)),
            "{alert}'s expression no longer holds `{in_expr}`: update the panel's line"
        );
        let p = panel_titled(&board(uid), fragment);
        let defaults = &p.json["fieldConfig"]["defaults"];
        let steps: Vec<f64> = defaults["thresholds"]["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["value"].as_f64())
            .collect();
        assert!(
            steps.iter().any(|s| (s - value).abs() < 1e-9),
            "{uid} / {}: no threshold step at {value}: {steps:?}",
            p.title
        );
        let mode = defaults["custom"]["thresholdsStyle"]["mode"]
            .as_str()
            .unwrap_or("off");
        assert_ne!(mode, "off", "{uid} / {}: thresholds not drawn", p.title);
    }
}

#[test]
fn error_panels_link_to_the_matching_logs_and_traces() {
    let uids = datasource_uids();
    for (uid, fragment) in [
        ("image2model-overview", "5xx error rate by route"),
        ("image2model-overview", "5xx error ratio"),
        ("image2model-models", "Failed generations"),
    ] {
        let p = panel_titled(&board(uid), fragment);
        let links = p.json["fieldConfig"]["defaults"]["links"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut targets = BTreeSet::new();
        for link in links {
            let url = link["url"].as_str().unwrap_or("");
            let parsed = reqwest::Url::parse(&format!("http://grafana{url}"))
                .unwrap_or_else(|e| panic!("{uid} / {}: {url}: {e}", p.title));
            assert_eq!(parsed.path(), "/explore", "{url}");
            let panes = parsed
                .query_pairs()
                .find(|(k, _)| k == "panes")
                .map(|(_, v)| v.into_owned())
                .expect("panes");
            let panes: Value = serde_json::from_str(&panes)
                .unwrap_or_else(|e| panic!("{uid} / {}: panes is not JSON: {e}: {panes}", p.title));
            let pane = &panes["a"];
            let ds = pane["datasource"].as_str().unwrap_or("");
            assert!(
                uids.contains_key(ds),
                "{url}: datasource {ds} is not provisioned"
            );
            assert!(
                pane["queries"].to_string().contains("${service}"),
                "{url}: not scoped to the dashboard's service"
            );
            if ds == LOKI_UID {
                let expr = pane["queries"][0]["expr"].as_str().unwrap_or("");
                for label in logql_label_names(expr) {
                    assert!(
                        ["service_name", "severity_text"].contains(&label.as_str()),
                        "{url}: Loki has no label {label}"
                    );
                }
            }
            targets.insert(ds.to_owned());
        }
        assert_eq!(
            targets,
            BTreeSet::from([LOKI_UID.to_owned(), JAEGER_UID.to_owned()]),
            "{uid} / {}: links to logs and traces",
            p.title
        );
    }
}
