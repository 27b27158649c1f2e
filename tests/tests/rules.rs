//! The Prometheus rules and the Alertmanager config, checked by the real tools (promtool, amtool: Debian's
//! prometheus 2.42 / prometheus-alertmanager 0.25, installed by stack/install-prometheus.sh) and by our own
//! conventions: severities from the seed's levels, the four annotations, a promtool unit test that makes every
//! alert fire and one that keeps it silent, and the seed's channel rules in Alertmanager's routing tree.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use stack_tests::bins::which;
use stack_tests::grafana::{self, Rule, RuleKind};
use stack_tests::paths::repo_root;

const SEVERITIES: &[&str] = &["info", "warning", "error", "critical"];
const ANNOTATIONS: &[&str] = &["summary", "description", "dashboard", "runbook"];

fn tool(name: &str) -> PathBuf {
    which(&[name])
        .unwrap_or_else(|e| panic!("{e}: {name} is needed (run stack/install-prometheus.sh)"))
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
fn every_alert_has_a_seed_severity_and_the_four_annotations() {
    let alerts = alerts();
    assert!(alerts.len() >= 13, "only {} alerts", alerts.len());
    for a in alerts {
        let sev = a.labels.get("severity").map(String::as_str).unwrap_or("");
        assert!(
            SEVERITIES.contains(&sev),
            "{}: severity {sev:?} not one of {SEVERITIES:?}",
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
fn the_seeds_four_alerts_keep_their_levels_and_thresholds() {
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
    ] {
        assert!(by.contains_key(name), "alert {name} missing");
    }
}

fn minutes(d: &str) -> f64 {
    humantime::parse_duration(d)
        .unwrap_or_else(|e| panic!("for: {d}: {e}"))
        .as_secs_f64()
        / 60.0
}

#[test]
fn the_alerts_the_e2e_test_waits_for_fire_within_a_minute() {
    for a in alerts()
        .into_iter()
        .filter(|a| a.name == "HighErrorRate" || a.name == "JobsFailing")
    {
        let m = a.for_duration.as_deref().map(minutes).unwrap_or(0.0);
        assert!(
            m <= 1.0,
            "{}: for {m} min; the end-to-end alert test needs at most 1m",
            a.name
        );
    }
}

#[test]
fn slo_alerts_are_multi_window_multi_burn_rate() {
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
        assert!(!sels.is_empty(), "{}: no selector", r.name);
        for s in sels {
            if let Some(m) = s.metric.as_deref().filter(|m| m.contains(':')) {
                assert!(
                    recorded.contains(m),
                    "{}: uses {m}, which no rule records",
                    r.name
                );
            }
        }
        if r.kind == RuleKind::Alert {
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
            silent,
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

fn alertmanager() -> (String, Value) {
    let text = std::fs::read_to_string(repo_root().join("alertmanager/alertmanager.yml"))
        .expect("alertmanager.yml");
    let v = serde_norway::from_str(&text).expect("alertmanager.yml is YAML");
    (text, v)
}

/// The receiver a single alert with `severity` reaches: the first child route whose matchers accept it.
fn receiver_for(cfg: &Value, severity: &str) -> String {
    let route = &cfg["route"];
    for r in route
        .get("routes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for m in r
            .get("matchers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let m = m.as_str().unwrap_or("");
            let value = |sep: &str| {
                m.split_once(sep)
                    .map(|(_, v)| v.trim().trim_matches('"').to_owned())
            };
            let hit = if let Some(re) = value("=~") {
                re.split('|').any(|alt| alt == severity)
            } else {
                value("=").is_some_and(|v| v == severity)
            };
            if m.trim_start().starts_with("severity") && hit {
                return r["receiver"].as_str().unwrap_or("").to_owned();
            }
        }
    }
    route["receiver"].as_str().unwrap_or("").to_owned()
}

fn receiver<'a>(cfg: &'a Value, name: &str) -> &'a Value {
    cfg["receivers"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("receiver {name} not defined"))
}

#[test]
fn alertmanager_routes_by_the_seeds_channel_rules() {
    let (_, cfg) = alertmanager();
    let critical = receiver(&cfg, &receiver_for(&cfg, "critical"));
    assert!(
        critical.get("webhook_configs").is_some() && critical.get("slack_configs").is_some(),
        "critical: webhook + Slack"
    );
    let error = receiver(&cfg, &receiver_for(&cfg, "error"));
    assert!(
        error.get("webhook_configs").is_some() && error.get("slack_configs").is_none(),
        "error: webhook only"
    );
    let default = cfg["route"]["receiver"].as_str().unwrap_or("");
    for sev in ["warning", "info"] {
        assert_eq!(
            receiver_for(&cfg, sev),
            default,
            "{sev} goes to the default receiver"
        );
    }
    assert!(
        receiver(&cfg, default).get("webhook_configs").is_none(),
        "warnings must not page the webhook"
    );
}

#[test]
fn alertmanager_repeats_after_the_seeds_cooldown_and_groups() {
    let (_, cfg) = alertmanager();
    assert_eq!(cfg["route"]["repeat_interval"].as_str(), Some("5m"));
    let group_by: Vec<&str> = cfg["route"]["group_by"]
        .as_array()
        .expect("group_by")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(group_by.contains(&"alertname"), "{group_by:?}");
}

#[test]
fn a_critical_alert_inhibits_the_warning_of_the_same_name() {
    let (_, cfg) = alertmanager();
    let rules = cfg["inhibit_rules"].as_array().expect("inhibit_rules");
    assert!(rules.iter().any(|r| {
        let has = |k: &str, want: &str| {
            r[k].as_array()
                .is_some_and(|a| a.iter().any(|m| m.as_str() == Some(want)))
        };
        has("source_matchers", r#"severity="critical""#)
            && has("target_matchers", r#"severity="warning""#)
            && r["equal"]
                .as_array()
                .is_some_and(|e| e.iter().any(|v| v == "alertname"))
    }));
}

#[test]
fn slack_messages_are_coloured_by_severity_as_the_seed_does() {
    let (_, cfg) = alertmanager();
    let slack = &receiver(&cfg, &receiver_for(&cfg, "critical"))["slack_configs"][0];
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
    let slack = &receiver(&cfg, &receiver_for(&cfg, "critical"))["slack_configs"][0];
    assert!(
        slack["api_url_file"]
            .as_str()
            .is_some_and(|p| p.starts_with("/etc/alertmanager/"))
    );
    let email = cfg["receivers"]
        .as_array()
        .expect("receivers")
        .iter()
        .find_map(|r| r["email_configs"].get(0))
        .expect("an email receiver");
    assert!(
        email["auth_password_file"]
            .as_str()
            .is_some_and(|p| p.starts_with("/etc/alertmanager/"))
    );
}

#[test]
fn the_native_harness_placeholder_is_the_only_webhook_url() {
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
        BTreeSet::from([stack_tests::render::WEBHOOK_PLACEHOLDER.to_owned()])
    );
}
