//! What the dashboards show of the alert rules: the dashboard links alerts carry, firing alerts on the
//! overview, and each alert's threshold drawn on the panel of its signal.

use std::collections::BTreeSet;

use stack_tests::grafana;

use crate::{board, panel_titled, repo_dashboards};

#[test]
fn alert_dashboard_urls_open_provisioned_dashboards_with_their_variables() {
    let boards = repo_dashboards();
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
