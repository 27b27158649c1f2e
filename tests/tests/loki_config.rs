//! Static checks of `loki/config.yaml`: what the collector -> Loki path needs.
//!
//! Loki cannot be built or installed on the machines these tests run on (see docs/stack.md); it runs for
//! real only under docker compose. So its config is checked here against what the stack relies on:
//! the native OTLP endpoint needs schema v13 with the TSDB index and structured metadata; every
//! directory Loki writes must lie on the compose `loki` service's named volume; retention must be
//! something the compactor accepts; and the collector's `otlp_http/loki` exporter must, by default,
//! reach this Loki by its compose service name and port. Each rule has a test on a deliberately
//! broken copy.

use serde_json::{Value, json};
use stack_tests::rules::{assert_caught, assert_clean, read, yaml};

fn loki() -> Value {
    yaml(&read("loki/config.yaml"))
}

fn broken(change: impl FnOnce(&mut Value)) -> Value {
    let mut cfg = loki();
    change(&mut cfg);
    cfg
}

fn at<'a>(v: &'a Value, pointer: &str) -> Option<&'a Value> {
    v.pointer(pointer)
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    at(v, pointer).and_then(Value::as_str)
}

// ---------------------------------------------------------------------------------------------------
// Rules

/// The period in force now (the last one) must be TSDB, schema v13, filesystem, 24 h index period: the
/// only combination on which structured metadata, hence OTLP ingestion, works.
fn schema_violations(cfg: &Value) -> Vec<String> {
    let Some(periods) = at(cfg, "/schema_config/configs").and_then(Value::as_array) else {
        return vec!["schema_config.configs missing".into()];
    };
    let Some(current) = periods.last() else {
        return vec!["schema_config.configs is empty".into()];
    };
    let mut v = Vec::new();
    let field = |k: &str| current.get(k).and_then(Value::as_str).unwrap_or("");
    if field("schema") != "v13" {
        v.push(format!(
            "schema {:?}: OTLP/structured metadata need v13",
            field("schema")
        ));
    }
    if field("store") != "tsdb" {
        v.push(format!("store {:?}: want tsdb", field("store")));
    }
    if field("object_store") != "filesystem" {
        v.push(format!(
            "object_store {:?}: compose runs Loki on its filesystem volume",
            field("object_store")
        ));
    }
    if str_at(current, "/index/period") != Some("24h") {
        v.push(format!(
            "index period {:?}: tsdb requires 24h",
            str_at(current, "/index/period")
        ));
    }
    v
}

fn structured_metadata_violations(cfg: &Value) -> Vec<String> {
    let mut v = Vec::new();
    if at(cfg, "/limits_config/allow_structured_metadata").and_then(Value::as_bool) != Some(true) {
        v.push(
            "limits_config.allow_structured_metadata is not true: Loki rejects OTLP log payloads"
                .into(),
        );
    }
    // ignore_defaults drops service.name -> service_name (and the rest) from the index labels the
    // dashboards' LogQL selects on.
    if at(
        cfg,
        "/limits_config/otlp_config/resource_attributes/ignore_defaults",
    )
    .and_then(Value::as_bool)
        == Some(true)
    {
        v.push(
            "otlp_config.resource_attributes.ignore_defaults: service_name would not be a label"
                .into(),
        );
    }
    v
}

/// Every directory Loki writes lies under a named-volume mount of the compose `loki` service.
fn storage_violations(cfg: &Value, compose: &Value) -> Vec<String> {
    let volume_targets: Vec<String> = compose
        .pointer("/services/loki/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|m| {
            let parts: Vec<&str> = m.split(':').collect();
            match parts.as_slice() {
                [src, target, ..] if !src.starts_with('.') && !src.starts_with('/') => {
                    Some(target.to_string())
                }
                _ => None,
            }
        })
        .collect();
    let mut v = Vec::new();
    if volume_targets.is_empty() {
        v.push("compose service loki mounts no named volume".into());
    }
    for pointer in [
        "/common/path_prefix",
        "/common/storage/filesystem/chunks_directory",
        "/common/storage/filesystem/rules_directory",
        "/storage_config/tsdb_shipper/active_index_directory",
        "/storage_config/tsdb_shipper/cache_location",
        "/compactor/working_directory",
    ] {
        match str_at(cfg, pointer) {
            None => v.push(format!(
                "{pointer} is not set (Loki's default may lie outside the volume)"
            )),
            Some(dir) => {
                let on_volume = volume_targets
                    .iter()
                    .any(|t| dir == t || dir.starts_with(&format!("{t}/")));
                if !on_volume {
                    v.push(format!(
                        "{pointer} = {dir} is not on the loki volume {volume_targets:?}"
                    ));
                }
            }
        }
    }
    v
}

fn hours(duration: &str) -> Option<u64> {
    humantime::parse_duration(duration)
        .ok()
        .map(|d| d.as_secs() / 3600)
        .filter(|h| *h * 3600 == humantime::parse_duration(duration).map_or(0, |d| d.as_secs()))
}

/// Retention: applied by the compactor (which then needs a delete-request store), at least one index
/// period, in whole index periods; a single-process ring.
fn retention_and_limits_violations(cfg: &Value) -> Vec<String> {
    let mut v = Vec::new();
    let period = str_at(cfg, "/limits_config/retention_period");
    match period.map(|p| (p, hours(p))) {
        None => v.push("limits_config.retention_period not set: logs are kept forever".into()),
        Some((p, None)) => v.push(format!("retention_period {p:?} is not whole hours")),
        Some((p, Some(h))) if h < 24 || h % 24 != 0 => v.push(format!(
            "retention_period {p}: want a multiple of the 24h index period"
        )),
        Some(_) => {}
    }
    if at(cfg, "/compactor/retention_enabled").and_then(Value::as_bool) != Some(true) {
        v.push("compactor.retention_enabled is not true: retention_period is never applied".into());
    } else if str_at(cfg, "/compactor/delete_request_store").is_none() {
        v.push("compactor.retention_enabled needs compactor.delete_request_store (Loki refuses to start)".into());
    }
    if at(cfg, "/common/replication_factor").and_then(Value::as_u64) != Some(1) {
        v.push("common.replication_factor must be 1 for one Loki process".into());
    }
    if str_at(cfg, "/common/ring/kvstore/store") != Some("inmemory") {
        v.push("common.ring.kvstore.store must be inmemory for one Loki process".into());
    }
    if at(cfg, "/auth_enabled").and_then(Value::as_bool) != Some(false) {
        v.push("auth_enabled is not false: the collector's exporter sends no X-Scope-OrgID".into());
    }
    v
}

/// `${env:OTELCOL_LOKI_ENDPOINT:-<default>}` of the collector config.
fn collector_loki_default(collector_config: &str) -> Option<String> {
    let start = collector_config.find("${env:OTELCOL_LOKI_ENDPOINT:-")?;
    let rest = &collector_config[start + "${env:OTELCOL_LOKI_ENDPOINT:-".len()..];
    Some(rest[..rest.find('}')?].to_string())
}

/// The collector's `otlp_http/loki` exporter default is `http://<compose service>:<http_listen_port>/otlp`,
/// and the compose file neither overrides it elsewhere nor lacks the service.
fn endpoint_violations(cfg: &Value, collector_config: &str, compose: &Value) -> Vec<String> {
    let mut v = Vec::new();
    let collector: Value = yaml(collector_config);
    let uses_var = collector
        .pointer("/exporters/otlp_http~1loki/endpoint")
        .and_then(Value::as_str)
        .is_some_and(|e| e.contains("OTELCOL_LOKI_ENDPOINT"));
    if !uses_var {
        v.push("collector exporter otlp_http/loki does not take its endpoint from OTELCOL_LOKI_ENDPOINT".into());
    }
    let Some(endpoint) = collector_loki_default(collector_config) else {
        v.push("OTELCOL_LOKI_ENDPOINT has no default in the collector config".into());
        return v;
    };
    let port = at(cfg, "/server/http_listen_port").and_then(Value::as_u64);
    let Some(port) = port else {
        v.push("server.http_listen_port not set".into());
        return v;
    };
    let want = format!("http://loki:{port}/otlp");
    if endpoint != want {
        v.push(format!(
            "collector's Loki endpoint default {endpoint}, want {want}"
        ));
    }
    if compose.pointer("/services/loki").is_none() {
        v.push("docker-compose.yml has no service named loki".into());
    }
    if let Some(set) = compose
        .pointer("/services/otel-collector/environment/OTELCOL_LOKI_ENDPOINT")
        .and_then(Value::as_str)
        && set != want
    {
        v.push(format!(
            "compose sets OTELCOL_LOKI_ENDPOINT={set}, want {want}"
        ));
    }
    v
}

/// `limits_config.otlp_config.resource_attributes.attributes_config`: what Loki does with which resource
/// attributes (empty when absent).
fn resource_attribute_configs(cfg: &Value) -> Vec<Value> {
    at(
        cfg,
        "/limits_config/otlp_config/resource_attributes/attributes_config",
    )
    .and_then(Value::as_array)
    .cloned()
    .unwrap_or_default()
}

/// The resource attributes this config promotes to index labels are listed in loki/README.md, with the
/// defaults, so that dashboard authors know which LogQL selectors exist.
fn undocumented_index_labels(cfg: &Value, readme: &str) -> Vec<String> {
    let mut v = Vec::new();
    let configs = resource_attribute_configs(cfg);
    for c in configs {
        if c.get("action").and_then(Value::as_str) != Some("index_label") {
            continue;
        }
        for attr in c
            .get("attributes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let label = attr.replace('.', "_");
            if !readme.contains(&format!("`{attr}`")) || !readme.contains(&format!("`{label}`")) {
                v.push(format!(
                    "index label {attr} -> {label} is not in loki/README.md"
                ));
            }
        }
    }
    for (attr, label) in [
        ("service.name", "service_name"),
        ("service.namespace", "service_namespace"),
    ] {
        if !readme.contains(&format!("`{attr}`")) || !readme.contains(&format!("`{label}`")) {
            v.push(format!(
                "default index label {attr} -> {label} is not in loki/README.md"
            ));
        }
    }
    v
}

/// Resource attributes that change at every start of a process or pod: as index labels, every restart would
/// open new streams. Loki indexes the first two by default, so the config must demote them.
const PER_START_ATTRIBUTES: [&str; 3] = ["service.instance.id", "k8s.pod.name", "process.pid"];

/// Per-start attributes the config indexes (promotes, or leaves to Loki's defaults without demoting them).
fn per_start_index_labels(cfg: &Value) -> Vec<String> {
    let configs = resource_attribute_configs(cfg);
    let with_action = |action: &str| -> Vec<String> {
        configs
            .iter()
            .filter(|c| c.get("action").and_then(Value::as_str) == Some(action))
            .flat_map(|c| {
                c.get("attributes")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect()
    };
    let promoted = with_action("index_label");
    let demoted = with_action("structured_metadata");
    PER_START_ATTRIBUTES
        .iter()
        .filter(|a| {
            let default_indexed = **a != "process.pid";
            promoted.iter().any(|p| p == *a)
                || (default_indexed && !demoted.iter().any(|d| d == *a))
        })
        .map(|a| format!("{a} is an index label: every restart opens new streams"))
        .collect()
}

// ---------------------------------------------------------------------------------------------------
// Tests on the real files

#[test]
fn loki_uses_schema_v13_on_tsdb_with_a_filesystem_store() {
    assert_clean("schema", schema_violations(&loki()));
}

#[test]
fn loki_accepts_structured_metadata_so_its_otlp_endpoint_works() {
    assert_clean(
        "structured metadata",
        structured_metadata_violations(&loki()),
    );
}

#[test]
fn every_loki_directory_lies_on_the_compose_loki_volume() {
    assert_clean(
        "storage",
        storage_violations(&loki(), &yaml(&read("docker-compose.yml"))),
    );
}

#[test]
fn loki_retention_is_applied_in_whole_days_by_a_single_process() {
    assert_clean(
        "retention and limits",
        retention_and_limits_violations(&loki()),
    );
}

#[test]
fn collector_exports_logs_to_the_compose_loki_service_and_port_by_default() {
    assert_clean(
        "endpoint",
        endpoint_violations(
            &loki(),
            &read("otel-collector/config.yaml"),
            &yaml(&read("docker-compose.yml")),
        ),
    );
}

#[test]
fn loki_readme_lists_the_index_labels_dashboards_can_select_on() {
    assert_clean(
        "index labels",
        undocumented_index_labels(&loki(), &read("loki/README.md")),
    );
}

#[test]
fn restarts_open_no_new_loki_streams() {
    assert_clean("per-start index labels", per_start_index_labels(&loki()));
}

// ---------------------------------------------------------------------------------------------------
// Each rule catches a deliberately broken copy

#[test]
fn per_start_rule_rejects_a_default_left_indexed_or_a_promoted_pid() {
    let v = per_start_index_labels(&broken(|c| {
        c["limits_config"]["otlp_config"]["resource_attributes"]["attributes_config"]
            .as_array_mut()
            .expect("attributes_config")
            .retain(|a| a["action"] != "structured_metadata");
    }));
    assert_caught(&v, "service.instance.id is an index label");
    assert_caught(&v, "k8s.pod.name is an index label");
    let v = per_start_index_labels(&broken(|c| {
        c["limits_config"]["otlp_config"]["resource_attributes"]["attributes_config"][0]["attributes"]
            .as_array_mut()
            .expect("the first attributes_config lists attributes")
            .push(json!("process.pid"));
    }));
    assert_caught(&v, "process.pid is an index label");
}

#[test]
fn schema_rule_rejects_v12_boltdb_and_a_weekly_index() {
    let v = schema_violations(&broken(|c| {
        c["schema_config"]["configs"][0]["schema"] = json!("v12");
        c["schema_config"]["configs"][0]["store"] = json!("boltdb-shipper");
        c["schema_config"]["configs"][0]["index"]["period"] = json!("168h");
    }));
    assert_caught(&v, "need v13");
    assert_caught(&v, "want tsdb");
    assert_caught(&v, "24h");
    // A newer period appended after the current one is what counts.
    let v = schema_violations(&broken(|c| {
        let mut next = c["schema_config"]["configs"][0].clone();
        next["schema"] = json!("v12");
        c["schema_config"]["configs"]
            .as_array_mut()
            .expect("schema_config.configs is a list")
            .push(next);
    }));
    assert_caught(&v, "need v13");
}

#[test]
fn structured_metadata_rule_rejects_it_off_or_defaults_ignored() {
    let v = structured_metadata_violations(&broken(|c| {
        c["limits_config"]["allow_structured_metadata"] = json!(false);
        c["limits_config"]["otlp_config"]["resource_attributes"]["ignore_defaults"] = json!(true);
    }));
    assert_caught(&v, "rejects OTLP");
    assert_caught(&v, "ignore_defaults");
}

#[test]
fn storage_rule_rejects_a_directory_off_the_volume_or_a_compose_file_without_one() {
    let compose = yaml(&read("docker-compose.yml"));
    let v = storage_violations(
        &broken(|c| {
            c["storage_config"]["tsdb_shipper"]["cache_location"] = json!("/tmp/loki-cache")
        }),
        &compose,
    );
    assert_caught(&v, "cache_location = /tmp/loki-cache");
    let mut no_volume = compose.clone();
    no_volume["services"]["loki"]["volumes"] =
        json!(["./loki/config.yaml:/etc/loki/config.yaml:ro"]);
    let v = storage_violations(&loki(), &no_volume);
    assert_caught(&v, "mounts no named volume");
}

#[test]
fn retention_rule_rejects_partial_days_no_compactor_and_a_replicated_ring() {
    let v = retention_and_limits_violations(&broken(|c| {
        c["limits_config"]["retention_period"] = json!("36h");
        c["common"]["replication_factor"] = json!(3);
        c["auth_enabled"] = json!(true);
    }));
    assert_caught(&v, "multiple of the 24h");
    assert_caught(&v, "replication_factor");
    assert_caught(&v, "X-Scope-OrgID");
    let v = retention_and_limits_violations(&broken(|c| {
        c["compactor"]
            .as_object_mut()
            .and_then(|m| m.remove("delete_request_store"))
            .expect("the real file has delete_request_store");
    }));
    assert_caught(&v, "delete_request_store");
    let v = retention_and_limits_violations(&broken(|c| {
        c["compactor"]["retention_enabled"] = json!(false);
    }));
    assert_caught(&v, "never applied");
}

#[test]
fn endpoint_rule_rejects_a_moved_loki_port_a_renamed_service_and_a_wrong_override() {
    let collector = read("otel-collector/config.yaml");
    let compose = yaml(&read("docker-compose.yml"));
    let v = endpoint_violations(
        &broken(|c| c["server"]["http_listen_port"] = json!(3101)),
        &collector,
        &compose,
    );
    assert_caught(&v, "want http://loki:3101/otlp");
    let renamed = collector.replace("http://loki:3100/otlp", "http://logs:3100/otlp");
    assert_ne!(renamed, collector);
    assert_caught(
        &endpoint_violations(&loki(), &renamed, &compose),
        "want http://loki:3100/otlp",
    );
    let mut no_loki = compose.clone();
    no_loki["services"]
        .as_object_mut()
        .and_then(|m| m.remove("loki"))
        .expect("the real file has loki");
    assert_caught(
        &endpoint_violations(&loki(), &collector, &no_loki),
        "no service named loki",
    );
    let mut overridden = compose.clone();
    overridden["services"]["otel-collector"]["environment"] =
        json!({"OTELCOL_LOKI_ENDPOINT": "http://loki:3100"});
    assert_caught(
        &endpoint_violations(&loki(), &collector, &overridden),
        "compose sets OTELCOL_LOKI_ENDPOINT",
    );
}

#[test]
fn index_label_rule_rejects_a_promoted_attribute_the_readme_does_not_list() {
    let v = undocumented_index_labels(
        &broken(|c| {
            c["limits_config"]["otlp_config"]["resource_attributes"]["attributes_config"][0]["attributes"]
                .as_array_mut()
                .expect("the first attributes_config lists attributes")
                .push(json!("host.name"));
        }),
        &read("loki/README.md"),
    );
    assert_caught(&v, "host.name -> host_name");
    assert_caught(
        &undocumented_index_labels(&loki(), ""),
        "service.name -> service_name",
    );
}
