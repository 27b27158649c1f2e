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
//!
//! One test binary, a module per concern: dashboards (structure, queries, links), logs (LogQL labels),
//! provisioning (datasources, provider), alerts (what the dashboards show of the alert rules) and
//! span_metrics (label names pinned against the collector build, which runs for it).

mod alerts;
mod dashboards;
mod logs;
mod provisioning;
mod span_metrics;

use std::collections::BTreeMap;

use stack_tests::grafana::{self, Dashboard, provisioned_datasources};

/// Every dashboard of `grafana/dashboards`.
pub(crate) fn repo_dashboards() -> Vec<Dashboard> {
    grafana::load_dashboards(&grafana::dashboards_dir()).unwrap_or_else(|e| panic!("{e}"))
}

pub(crate) fn datasource_uids() -> BTreeMap<String, String> {
    provisioned_datasources(&grafana::provisioning_dir())
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|d| (d.uid, d.kind))
        .collect()
}

pub(crate) fn board(uid: &str) -> Dashboard {
    repo_dashboards()
        .into_iter()
        .find(|b| b.uid == uid)
        .unwrap_or_else(|| panic!("dashboard {uid} missing"))
}

pub(crate) fn panel_titled(b: &Dashboard, fragment: &str) -> grafana::Panel {
    b.panels()
        .into_iter()
        .find(|p| p.title.contains(fragment))
        .unwrap_or_else(|| panic!("{}: no panel titled ...{fragment}...", b.uid))
}
