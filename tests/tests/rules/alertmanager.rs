//! The Alertmanager config: amtool accepts it and routes every alert to the receiver its severity promises;
//! repeat intervals, inhibitions and Slack colours follow the Python design; no secret is written in it.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use stack_tests::paths::repo_root;
use stack_tests::rules::read;

use crate::{WATCHDOG, alerts, run, tool};

#[test]
fn amtool_accepts_the_alertmanager_config() {
    let mut cmd = Command::new(tool("amtool"));
    cmd.arg("check-config")
        .arg(repo_root().join("alertmanager/alertmanager.yml"));
    let out = run(&mut cmd);
    assert!(out.contains("SUCCESS"), "{out}");
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
