//! The Prometheus rule files: promtool accepts them and their unit tests pass; every alert has a Python
//! design severity, a symptom and the four annotations; the Python design's alerts keep their thresholds;
//! error ratios, SLO burn rates and ticket/page pairs are built as docs/alerts.md says; every alert has a
//! promtool test that fires it and one that keeps it silent; runbook and dashboard links lead somewhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use stack_tests::grafana::{self, Rule, RuleKind};
use stack_tests::rules::read;

use crate::{WATCHDOG, alerts, rules, run, tool, yml_files};

const SEVERITIES: &[&str] = &["info", "warning", "error", "critical"];

const ANNOTATIONS: &[&str] = &["summary", "description", "runbook_url", "dashboard_url"];

/// Where Grafana answers under docker compose (its port is published on the host's loopback).
const GRAFANA_URL: &str = "http://localhost:3000";

#[test]
fn promtool_accepts_every_rule_file() {
    let mut cmd = Command::new(tool("promtool"));
    cmd.args(["check", "rules"])
        .args(yml_files("prometheus/rules"));
    let out = run(&mut cmd);
    assert!(!out.contains("FAILED"), "{out}");
}

#[test]
fn promtool_unit_tests_pass() {
    let mut cmd = Command::new(tool("promtool"));
    cmd.args(["test", "rules"])
        .args(yml_files("prometheus/tests"));
    let out = run(&mut cmd);
    assert!(out.contains("SUCCESS") && !out.contains("FAILED"), "{out}");
}

#[test]
fn every_alert_has_a_python_design_severity_a_symptom_and_the_four_annotations() {
    let alerts = alerts();
    assert!(alerts.len() >= 20, "only {} alerts", alerts.len());
    for a in alerts {
        let sev = a.labels.get("severity").map(String::as_str).unwrap_or("");
        assert!(
            SEVERITIES.contains(&sev),
            "{}: severity {sev:?} not one of {SEVERITIES:?}",
            a.name
        );
        // Inhibition compares `symptom` and `job`: an alert without `symptom` would be muted by any page of
        // its job (a missing label equals a missing label).
        assert!(
            a.labels.get("symptom").is_some_and(|s| !s.is_empty()),
            "{}: no symptom label",
            a.name
        );
        for ann in ANNOTATIONS {
            let v = a.annotations.get(*ann).map(|s| s.trim()).unwrap_or("");
            assert!(
                !v.is_empty(),
                "{}: annotation {ann} missing or empty",
                a.name
            );
        }
    }
}

#[test]
fn the_python_designs_four_alerts_keep_their_levels_and_thresholds() {
    let by: BTreeMap<String, Rule> = alerts().into_iter().map(|a| (a.name.clone(), a)).collect();
    let check = |name: &str, severity: &str, threshold: &str| {
        let a = by
            .get(name)
            .unwrap_or_else(|| panic!("alert {name} missing"));
        assert_eq!(
            a.labels.get("severity").map(String::as_str),
            Some(severity),
            "{name}"
        );
        assert!(
            a.expr.contains(threshold),
            "{name}: threshold {threshold} not in {}",
            a.expr
        );
    };
    check("HighErrorRate", "error", "> 0.1");
    check("LowDiskSpace", "warning", "< 0.10");
    check("HighMemoryUsage", "warning", "> 0.90");
    check("ProviderRateLimited", "warning", "[1h])) > 5");
    for name in [
        "JobsFailing",
        "JobQueueBacklog",
        "InstanceDown",
        "TelemetryAppDroppingData",
        "TelemetryNotArriving",
        "SLINotComputable",
        WATCHDOG,
        "AlertmanagerNotificationsFailing",
        "PrometheusRuleEvaluationFailing",
        "TelemetryCollectorEnqueueFailing",
        "TelemetryCollectorQueueFilling",
    ] {
        assert!(by.contains_key(name), "alert {name} missing");
    }
}

fn for_duration(a: &Rule) -> Duration {
    a.for_duration
        .as_deref()
        .map(|d| humantime::parse_duration(d).unwrap_or_else(|e| panic!("for: {d}: {e}")))
        .unwrap_or_default()
}

#[test]
fn error_ratios_read_counters_that_see_every_event_and_have_a_traffic_guard() {
    for a in alerts() {
        assert!(
            !a.expr.contains("traces_span_metrics"),
            "{}: span metrics are sampled and dropped; alert on the HTTP histogram counts",
            a.name
        );
        let is_ratio = a.expr.contains("ratio_rate") || a.expr.contains("\n/\n");
        if is_ratio && a.labels.contains_key("slo")
            || ["HighErrorRate", "JobsFailing"].contains(&a.name.as_str())
        {
            assert!(
                a.expr.contains(">= 20") || a.expr.contains(">= 5"),
                "{}: an error ratio without a minimum-traffic guard: {}",
                a.name,
                a.expr
            );
        }
        if a.name != WATCHDOG {
            assert!(
                for_duration(&a) >= Duration::from_secs(60),
                "{}: for: under a minute flaps on one bad scrape",
                a.name
            );
        }
    }
}

#[test]
fn a_ticket_sharing_a_symptom_with_a_page_waits_at_least_as_long_so_the_page_mutes_it() {
    let all = alerts();
    let pages: Vec<&Rule> = all
        .iter()
        .filter(|a| a.labels.get("severity").is_some_and(|s| s == "critical"))
        .collect();
    let mut pairs = 0;
    for ticket in all
        .iter()
        .filter(|a| a.labels.get("severity").is_some_and(|s| s != "critical"))
    {
        for page in pages
            .iter()
            .filter(|p| p.labels.get("symptom") == ticket.labels.get("symptom"))
        {
            pairs += 1;
            assert!(
                for_duration(ticket) >= for_duration(page),
                "{} ({:?}) fires before the page {} ({:?}) that should mute it",
                ticket.name,
                ticket.for_duration,
                page.name,
                page.for_duration
            );
        }
    }
    assert!(pairs >= 3, "only {pairs} page/ticket pairs share a symptom");
}

#[test]
fn slo_alerts_are_multi_window_multi_burn_rate_over_recorded_ratios() {
    let all = alerts();
    for (name, budget) in [
        ("SLOAvailabilityBudgetBurn", "0.005"),
        ("SLOLatencyBudgetBurn", "0.01"),
    ] {
        let variants: Vec<&Rule> = all.iter().filter(|a| a.name == name).collect();
        let sev: BTreeSet<&str> = variants
            .iter()
            .filter_map(|a| a.labels.get("severity").map(String::as_str))
            .collect();
        assert_eq!(
            sev,
            BTreeSet::from(["critical", "warning"]),
            "{name}: a page and a ticket"
        );
        for a in variants {
            let factors: &[(&str, &str, &str)] = if a.labels["severity"] == "critical" {
                &[("1h", "5m", "14.4"), ("6h", "30m", "6")]
            } else {
                &[("1d", "2h", "3"), ("3d", "6h", "1")]
            };
            for (long, short, f) in factors {
                for w in [long, short] {
                    let needle = format!("ratio_rate{w} > ({f} * {budget})");
                    assert!(
                        a.expr.contains(&needle),
                        "{name} ({}): no `{needle}` in {}",
                        a.labels["severity"],
                        a.expr
                    );
                }
            }
        }
    }
    // Long windows come from the recorded 5-minute numbers, never from raw rates over hours or days.
    for r in rules() {
        for w in ["30m", "1h", "2h", "6h", "1d", "3d", "30d"] {
            assert!(
                !(r.expr.contains(&format!("[{w}]"))
                    && r.expr.contains("http_server_request_duration")),
                "{}: a raw {w} rate of the request histogram; use the recorded 5-minute series",
                r.name
            );
        }
    }
    let recorded: BTreeSet<String> = rules()
        .into_iter()
        .filter(|r| r.kind == RuleKind::Record)
        .map(|r| r.name)
        .collect();
    for slo in ["availability", "latency"] {
        let name = format!("job:slo_{slo}:error_budget_remaining30d");
        assert!(recorded.contains(&name), "{name} is not recorded");
    }
}

#[test]
fn every_rule_expression_parses_and_names_its_metrics() {
    let recorded: BTreeSet<String> = rules()
        .into_iter()
        .filter(|r| r.kind == RuleKind::Record)
        .map(|r| r.name)
        .collect();
    for r in rules() {
        let sels = grafana::selectors(&r.expr).unwrap_or_else(|e| panic!("{}: {e}", r.name));
        if r.name != WATCHDOG {
            assert!(!sels.is_empty(), "{}: no selector", r.name);
        }
        for s in sels {
            if let Some(m) = s.metric.as_deref().filter(|m| m.contains(':')) {
                assert!(
                    recorded.contains(m),
                    "{}: uses {m}, which no rule records",
                    r.name
                );
            }
        }
        // An alert fires on any value its expression returns: it needs a comparison, unless it means to fire
        // on absence (absent()) or always (the Watchdog).
        if r.kind == RuleKind::Alert && r.name != WATCHDOG && !r.expr.starts_with("absent(") {
            assert!(
                r.has_threshold(),
                "{}: an alert expression without a comparison fires on any value",
                r.name
            );
        }
    }
}

/// Alert name -> (has a test where it fires, has a test where it stays silent), over all promtool test files.
fn promtool_coverage() -> (BTreeMap<String, (bool, bool)>, BTreeSet<PathBuf>) {
    let mut cover: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    let mut rule_files = BTreeSet::new();
    for f in yml_files("prometheus/tests") {
        let text = std::fs::read_to_string(&f).expect("test file");
        let doc: Value =
            serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let dir = f.parent().unwrap_or(Path::new("."));
        for rf in doc
            .get("rule_files")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let p = dir.join(rf.as_str().unwrap_or(""));
            rule_files.insert(p.canonicalize().unwrap_or(p));
        }
        for t in doc
            .get("tests")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for art in t
                .get("alert_rule_test")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = art
                    .get("alertname")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let fires = art
                    .get("exp_alerts")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty());
                let e = cover.entry(name).or_default();
                if fires {
                    e.0 = true;
                } else {
                    e.1 = true;
                }
            }
        }
    }
    (cover, rule_files)
}

#[test]
fn every_alert_has_a_promtool_test_that_fires_it_and_one_that_keeps_it_silent() {
    let (cover, _) = promtool_coverage();
    for a in alerts() {
        let (fires, silent) = cover.get(&a.name).copied().unwrap_or_default();
        assert!(fires, "{}: no promtool test expects it to fire", a.name);
        assert!(
            silent || a.name == WATCHDOG,
            "{}: no promtool test expects it to stay silent",
            a.name
        );
    }
}

#[test]
fn every_rule_file_is_loaded_by_a_promtool_test() {
    let (_, loaded) = promtool_coverage();
    for f in yml_files("prometheus/rules") {
        let f = f.canonicalize().unwrap_or(f);
        assert!(
            loaded.contains(&f),
            "{} is not in any test's rule_files",
            f.display()
        );
    }
}

/// The runbook page every `runbook_url` points into: docs/alerts.md under the workspace's `repository`.
fn runbook_page() -> String {
    let cargo = read("Cargo.toml");
    let repo = cargo
        .lines()
        .find_map(|l| l.trim().strip_prefix("repository = "))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .expect("workspace repository");
    format!("{repo}/blob/main/docs/alerts.md")
}

/// Anchors of the headings of a Markdown file, as GitHub and GitLab make them (lowercase, spaces to `-`,
/// punctuation other than `-` and `_` dropped).
fn markdown_anchors(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| {
            h.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

#[test]
fn runbook_and_dashboard_links_are_absolute_and_lead_somewhere() {
    let page = runbook_page();
    let doc = read("docs/alerts.md");
    let anchors = markdown_anchors(&doc);
    for a in alerts() {
        let runbook = &a.annotations["runbook_url"];
        let anchor = runbook
            .strip_prefix(&format!("{page}#"))
            .unwrap_or_else(|| panic!("{}: runbook_url {runbook} is not {page}#<section>", a.name));
        assert!(
            anchors.contains(anchor),
            "{}: docs/alerts.md has no section #{anchor}",
            a.name
        );
        assert!(
            doc.contains(&format!("`{}`", a.name)),
            "{}: not in the catalogue of docs/alerts.md",
            a.name
        );
        let dashboard = &a.annotations["dashboard_url"];
        assert!(
            dashboard.starts_with(&format!("{GRAFANA_URL}/d/")),
            "{}: dashboard_url {dashboard} is not an absolute Grafana link",
            a.name
        );
    }
}
