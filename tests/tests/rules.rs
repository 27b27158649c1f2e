//! The Prometheus rules, the Prometheus config and the Alertmanager config, checked by the real tools
//! (promtool, amtool: the builds in the stack's cache, at the versions of stack/versions.env, when present,
//! else the ones on PATH; `bash stack/build-all.sh` builds them) and by the conventions docs/alerts.md states: the
//! Python design's severities, two routes (page, ticket) and a heartbeat, a `symptom` label for inhibition,
//! absolute runbook and dashboard links, promtool tests that make every alert fire and keep it silent, each
//! app series stored once, and span-metric label names pinned against the collector build.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use stack_tests::bins::which;
use stack_tests::grafana::{self, Rule, RuleKind};
use stack_tests::paths::{cache_dir, repo_root};
use stack_tests::rules::read;

const SEVERITIES: &[&str] = &["info", "warning", "error", "critical"];
const ANNOTATIONS: &[&str] = &["summary", "description", "runbook_url", "dashboard_url"];
/// Where Grafana answers under docker compose (its port is published on the host's loopback).
const GRAFANA_URL: &str = "http://localhost:3000";
/// Always firing by design (the dead man's switch): no silent test, no threshold.
const WATCHDOG: &str = "Watchdog";

/// `name` from the stack's cache (`<cache>/bin/<name>*`, the newest by name: the builds of
/// `stack/build-all.sh`) when there is one, else from PATH.
fn tool(name: &str) -> PathBuf {
    let cached = std::fs::read_dir(cache_dir().join("bin"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n == name || n.starts_with(&format!("{name}-")))
        })
        .filter(|p| p.is_file())
        .max();
    cached.unwrap_or_else(|| {
        which(&[name])
            .unwrap_or_else(|e| panic!("{e}: {name} is needed (run bash stack/build-all.sh)"))
    })
}

fn run(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let out = cmd
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{shown} failed:\n{text}");
    text
}

fn yml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML files in {dir}");
    files
}

fn rules() -> Vec<Rule> {
    grafana::load_rules(&grafana::rules_dir()).unwrap_or_else(|e| panic!("{e}"))
}

fn alerts() -> Vec<Rule> {
    rules()
        .into_iter()
        .filter(|r| r.kind == RuleKind::Alert)
        .collect()
}

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
fn promtool_accepts_the_prometheus_config() {
    let mut cmd = Command::new(tool("promtool"));
    cmd.args(["check", "config"])
        .arg(repo_root().join("prometheus/prometheus.yml"));
    run(&mut cmd);
}

#[test]
fn amtool_accepts_the_alertmanager_config() {
    let mut cmd = Command::new(tool("amtool"));
    cmd.arg("check-config")
        .arg(repo_root().join("alertmanager/alertmanager.yml"));
    let out = run(&mut cmd);
    assert!(out.contains("SUCCESS"), "{out}");
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

fn alertmanager() -> (String, Value) {
    let text = read("alertmanager/alertmanager.yml");
    let v = serde_norway::from_str(&text).expect("alertmanager.yml is YAML");
    (text, v)
}

fn receiver<'a>(cfg: &'a Value, name: &str) -> &'a Value {
    cfg["receivers"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("receiver {name} not defined"))
}

/// The receiver the alert with these labels must reach: the heartbeat for the Watchdog, a page for
/// critical, a ticket for everything else.
fn expected_receiver(labels: &BTreeMap<String, String>) -> &'static str {
    match (labels["alertname"].as_str(), labels["severity"].as_str()) {
        (WATCHDOG, _) => "heartbeat",
        (_, "critical") => "page",
        _ => "ticket",
    }
}

/// `amtool config routes test` with `labels`: the receivers the routing tree picks.
fn amtool_route(labels: &BTreeMap<String, String>) -> String {
    let mut cmd = Command::new(tool("amtool"));
    cmd.args(["config", "routes", "test", "--config.file"])
        .arg(repo_root().join("alertmanager/alertmanager.yml"));
    for (k, v) in labels {
        cmd.arg(format!("{k}={v}"));
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run amtool: {e}"));
    assert!(
        out.status.success(),
        "amtool config routes test {labels:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // stdout holds the receivers; stderr a warning that --config.file wins over --alertmanager.url.
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn amtool_routes_every_alert_to_the_receiver_its_severity_promises() {
    let mut seen = BTreeSet::new();
    for a in alerts() {
        let mut labels = a.labels.clone();
        labels.insert("alertname".into(), a.name.clone());
        labels.insert("job".into(), "image2model".into());
        let want = expected_receiver(&labels);
        let got = amtool_route(&labels);
        assert_eq!(got, want, "{} ({:?}) routes to {got}", a.name, a.labels);
        seen.insert(want);
    }
    assert_eq!(seen, BTreeSet::from(["heartbeat", "page", "ticket"]));
    // And any severity a future rule may use, alone.
    for (sev, want) in [
        ("critical", "page"),
        ("error", "ticket"),
        ("warning", "ticket"),
        ("info", "ticket"),
    ] {
        let labels = BTreeMap::from([
            ("alertname".to_owned(), "Any".to_owned()),
            ("severity".to_owned(), sev.to_owned()),
        ]);
        assert_eq!(amtool_route(&labels), want, "severity {sev}");
    }
}

#[test]
fn a_page_goes_to_webhook_and_slack_a_ticket_by_email_the_heartbeat_to_its_webhook() {
    let (_, cfg) = alertmanager();
    let page = receiver(&cfg, "page");
    assert!(page.get("webhook_configs").is_some() && page.get("slack_configs").is_some());
    assert!(page.get("email_configs").is_none());
    let ticket = receiver(&cfg, "ticket");
    assert!(ticket.get("email_configs").is_some());
    assert!(ticket.get("webhook_configs").is_none() && ticket.get("slack_configs").is_none());
    let heartbeat = receiver(&cfg, "heartbeat");
    assert!(heartbeat.get("webhook_configs").is_some());
}

fn interval(route: &Value, parent: &Value, key: &str) -> Duration {
    let v = route
        .get(key)
        .or_else(|| parent.get(key))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {key}"));
    humantime::parse_duration(v).unwrap_or_else(|e| panic!("{key} {v}: {e}"))
}

#[test]
fn pages_and_tickets_repeat_after_hours_the_heartbeat_every_few_minutes() {
    let (_, cfg) = alertmanager();
    let root = &cfg["route"];
    let hour = Duration::from_secs(3600);
    assert!(interval(root, root, "repeat_interval") >= hour);
    for r in root["routes"].as_array().expect("routes") {
        let repeat = interval(r, root, "repeat_interval");
        match r["receiver"].as_str().unwrap_or("") {
            "heartbeat" => assert!(repeat <= Duration::from_secs(600), "heartbeat {repeat:?}"),
            other => assert!(repeat >= hour, "{other}: repeats every {repeat:?}"),
        }
    }
    let group_by: Vec<&str> = root["group_by"]
        .as_array()
        .expect("group_by")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        group_by.contains(&"alertname") && group_by.contains(&"job"),
        "{group_by:?}"
    );
}

fn has(rule: &Value, key: &str, want: &str) -> bool {
    rule[key]
        .as_array()
        .is_some_and(|a| a.iter().any(|m| m.as_str() == Some(want)))
}

#[test]
fn a_page_mutes_the_tickets_of_its_symptom_and_service_and_a_collector_outage_its_consequences() {
    let (_, cfg) = alertmanager();
    let rules = cfg["inhibit_rules"].as_array().expect("inhibit_rules");
    let by_symptom = rules.iter().find(|r| {
        has(r, "source_matchers", r#"severity="critical""#)
            && r["equal"]
                .as_array()
                .is_some_and(|e| e.iter().any(|v| v == "symptom") && e.iter().any(|v| v == "job"))
    });
    let by_symptom = by_symptom.expect("critical mutes the same symptom and job");
    let target = by_symptom["target_matchers"][0].as_str().unwrap_or("");
    for sev in ["error", "warning", "info"] {
        assert!(target.contains(sev), "{target} leaves {sev} unmuted");
    }
    assert!(!target.contains("critical"), "a page must not mute a page");
    assert!(rules.iter().any(|r| {
        has(r, "source_matchers", r#"alertname="InstanceDown""#)
            && has(r, "source_matchers", r#"job="otel-collector""#)
            && r["target_matchers"][0].as_str().is_some_and(|t| {
                t.contains("TelemetryNotArriving") && t.contains("SLINotComputable")
            })
    }));
}

#[test]
fn slack_messages_are_coloured_by_severity_as_the_python_design_does() {
    let (_, cfg) = alertmanager();
    let slack = &receiver(&cfg, "page")["slack_configs"][0];
    let color = slack["color"].as_str().unwrap_or("");
    for (sev, hex) in [
        ("critical", "#FF0000"),
        ("error", "#FF6600"),
        ("warning", "#FFCC00"),
        ("info", "#0099FF"),
    ] {
        assert!(
            color.contains(&format!(r#""{sev}" }}}}{hex}"#)),
            "colour of {sev} should be {hex}: {color}"
        );
    }
}

#[test]
fn alertmanager_holds_no_secret_and_reads_credentials_from_files() {
    let (text, cfg) = alertmanager();
    for forbidden in [
        "api_url:",
        "auth_password:",
        "hooks.slack.com",
        "smtp_auth_password:",
    ] {
        assert!(
            !text.contains(forbidden),
            "alertmanager.yml must not contain {forbidden}"
        );
    }
    let slack = &receiver(&cfg, "page")["slack_configs"][0];
    assert!(
        slack["api_url_file"]
            .as_str()
            .is_some_and(|p| p.starts_with("/etc/alertmanager/"))
    );
    let email = &receiver(&cfg, "ticket")["email_configs"][0];
    assert!(
        email["auth_password_file"]
            .as_str()
            .is_some_and(|p| p.starts_with("/etc/alertmanager/"))
    );
}

#[test]
fn the_webhook_urls_are_the_native_harness_placeholders() {
    let (_, cfg) = alertmanager();
    let mut urls = BTreeSet::new();
    for r in cfg["receivers"].as_array().expect("receivers") {
        for w in r
            .get("webhook_configs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            urls.insert(w["url"].as_str().unwrap_or("").to_owned());
        }
    }
    assert_eq!(
        urls,
        BTreeSet::from([
            stack_tests::render::WEBHOOK_PLACEHOLDER.to_owned(),
            "http://127.0.0.1:9095/heartbeat".to_owned()
        ])
    );
}

fn prometheus_config() -> Value {
    let text = read("prometheus/prometheus.yml");
    serde_norway::from_str(&text).expect("prometheus.yml is YAML")
}

fn scrape_job<'a>(cfg: &'a Value, name: &str) -> &'a Value {
    cfg["scrape_configs"]
        .as_array()
        .and_then(|a| a.iter().find(|j| j["job_name"] == name))
        .unwrap_or_else(|| panic!("scrape job {name} missing"))
}

/// Each app series is stored once: the collector path keeps them, the admin listener's job drops every
/// scraped sample (only Prometheus' own `up` and `scrape_*` series stay), and no two jobs scrape one target.
#[test]
fn each_app_series_is_stored_through_one_scrape_job_only() {
    let cfg = prometheus_config();
    let admin = scrape_job(&cfg, "image2model-admin");
    let drops_all = admin["metric_relabel_configs"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| {
            r["action"] == "drop"
                && r["source_labels"] == serde_json::json!(["__name__"])
                && matches!(r["regex"].as_str(), Some(".+" | ".*"))
        });
    assert!(
        drops_all,
        "the admin job must drop every scraped sample: {admin}"
    );
    let exporter = scrape_job(&cfg, "otel-collector-exporter");
    let keeps = exporter["metric_relabel_configs"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|r| r["action"] != "drop" && r["action"] != "keep");
    assert!(
        keeps,
        "the collector path keeps every app series: {exporter}"
    );
    let mut targets = BTreeMap::new();
    for job in cfg["scrape_configs"].as_array().expect("scrape_configs") {
        for sc in job["static_configs"].as_array().into_iter().flatten() {
            for t in sc["targets"].as_array().into_iter().flatten() {
                let t = t.as_str().unwrap_or("").to_owned();
                if let Some(other) = targets.insert(t.clone(), job["job_name"].clone()) {
                    panic!("{t} scraped by {other} and {}", job["job_name"]);
                }
            }
        }
    }
}

#[test]
fn app_series_are_identified_by_host_not_by_a_per_start_instance_id() {
    let cfg = prometheus_config();
    let exporter = scrape_job(&cfg, "otel-collector-exporter");
    let rules = exporter["metric_relabel_configs"]
        .as_array()
        .expect("relabel");
    assert!(rules.iter().any(|r| {
        r["source_labels"] == serde_json::json!(["host_name"]) && r["target_label"] == "instance"
    }));
    assert!(
        rules
            .iter()
            .any(|r| r["action"] == "labeldrop" && r["regex"] == "process_pid")
    );
    let collector = read("otel-collector/config.yaml");
    let collector: Value = serde_norway::from_str(&collector).expect("YAML");
    let included = &collector["exporters"]["prometheus"]["resource_constant_labels"]["included"];
    assert!(
        included
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "host.name")),
        "the exporter must label every series with host_name: {included}"
    );
}

#[test]
fn compose_keeps_the_thirty_days_the_slo_is_computed_over() {
    let compose = read("docker-compose.yml");
    let compose: Value = serde_norway::from_str(&compose).expect("YAML");
    let args: Vec<&str> = compose["services"]["prometheus"]["command"]
        .as_array()
        .expect("prometheus command")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let retention = args
        .iter()
        .find_map(|a| a.strip_prefix("--storage.tsdb.retention.time="))
        .expect("retention flag");
    let retention = humantime::parse_duration(retention).expect("retention duration");
    assert!(
        retention >= Duration::from_secs(30 * 86400),
        "retention {retention:?} is shorter than the 30-day SLO window"
    );
    assert!(
        args.iter()
            .any(|a| a.starts_with("--web.external-url=http")),
        "notifications link back to Prometheus through --web.external-url: {args:?}"
    );
}
