//! The dashboards themselves: schema, uids, panel ids, datasources, variables, PromQL that parses once
//! substituted, the panels the issue asks for, the generator's output, and the links from error panels.

use std::collections::BTreeSet;

use serde_json::Value;
use stack_tests::grafana::{
    self, JAEGER_UID, LOKI_UID, Substitutions, logql_label_names, parse_promql, substitute,
    variables_in,
};
use stack_tests::paths::repo_root;

use crate::{board, datasource_uids, panel_titled, repo_dashboards};

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
    let boards = repo_dashboards();
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
    for b in repo_dashboards() {
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
    for b in repo_dashboards() {
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
    for b in repo_dashboards() {
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
    for b in repo_dashboards() {
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
    let boards = repo_dashboards();
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
    for q in grafana::promql_queries(&repo_dashboards()) {
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
    let boards = repo_dashboards();
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
    for q in grafana::promql_queries(&repo_dashboards()) {
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
    for b in repo_dashboards() {
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
