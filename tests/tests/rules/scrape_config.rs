//! The Prometheus config: promtool accepts it, every app series is stored through one scrape job and
//! identified by host, and compose keeps the thirty days the SLO is computed over.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use stack_tests::paths::repo_root;
use stack_tests::rules::read;

use crate::{run, tool};

#[test]
fn promtool_accepts_the_prometheus_config() {
    let mut cmd = Command::new(tool("promtool"));
    cmd.args(["check", "config"])
        .arg(repo_root().join("prometheus/prometheus.yml"));
    run(&mut cmd);
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
