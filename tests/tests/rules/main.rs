//! The Prometheus rules, the Prometheus config and the Alertmanager config, checked by the real tools
//! (promtool, amtool: the builds in the stack's cache, at the versions of stack/versions.env, when present,
//! else the ones on PATH; `bash stack/build-all.sh` builds them) and by the conventions docs/alerts.md states: the
//! Python design's severities, two routes (page, ticket) and a heartbeat, a `symptom` label for inhibition,
//! absolute runbook and dashboard links, promtool tests that make every alert fire and keep it silent, each
//! app series stored once. (The span-metric label names are pinned against the collector build in the grafana
//! tests, next to the dashboards that select on them.)
//!
//! One test binary, a module per config: prometheus_rules (the rule files, their promtool tests and
//! runbook links), alertmanager (routes, repeats, inhibitions, receivers, credentials) and scrape_config
//! (prometheus.yml: one scrape job per series, retention).

mod alertmanager;
mod prometheus_rules;
mod scrape_config;

use std::path::PathBuf;
use std::process::Command;

use stack_tests::bins::which;
use stack_tests::grafana::{self, Rule, RuleKind};
use stack_tests::paths::{cache_dir, repo_root};

/// Always firing by design (the dead man's switch): no silent test, no threshold.
pub(crate) const WATCHDOG: &str = "Watchdog";

/// `name` from the stack's cache (`<cache>/bin/<name>*`, the newest by name: the builds of
/// `stack/build-all.sh`) when there is one, else from PATH.
pub(crate) fn tool(name: &str) -> PathBuf {
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

pub(crate) fn run(cmd: &mut Command) -> String {
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

pub(crate) fn yml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML files in {dir}");
    files
}

pub(crate) fn rules() -> Vec<Rule> {
    grafana::load_rules(&grafana::rules_dir()).unwrap_or_else(|e| panic!("{e}"))
}

pub(crate) fn alerts() -> Vec<Rule> {
    rules()
        .into_iter()
        .filter(|r| r.kind == RuleKind::Alert)
        .collect()
}
