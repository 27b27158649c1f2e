//! Files and data on disk: bind-mounted host paths exist and are read-only, config files named on a command
//! line are mounted, stateful services keep their data on declared named volumes.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;
use serde_json::json;
use stack_tests::paths::repo_root;
use stack_tests::rules::{assert_caught, assert_clean};

use crate::document::{MountKind, command, flag, mounts, service, services};
use crate::listeners::Stack;
use crate::{broken, compose};

fn host_path_violations(doc: &Value, root: &Path) -> Vec<String> {
    let mut v = Vec::new();
    for (name, svc) in services(doc) {
        for m in mounts(svc)
            .into_iter()
            .filter(|m| m.kind == MountKind::Bind)
        {
            if !m.source.starts_with("./") {
                v.push(format!(
                    "{name}: bind source {:?} is not relative to the repository",
                    m.source
                ));
            } else if !root.join(&m.source).exists() {
                v.push(format!("{name}: bind source {} does not exist", m.source));
            } else if !m.read_only {
                v.push(format!(
                    "{name}: config mount {} is not read-only",
                    m.source
                ));
            }
        }
        if let Some(build) = svc.get("build") {
            let ctx = build.get("context").and_then(Value::as_str).unwrap_or(".");
            let file = build
                .get("dockerfile")
                .and_then(Value::as_str)
                .unwrap_or("Dockerfile");
            if !root.join(ctx).join(file).is_file() {
                v.push(format!("{name}: build file {ctx}/{file} does not exist"));
            }
        }
    }
    v
}

/// Config files named on a command line (`--config`, `-config.file`, `--config.file`) lie under a
/// read-only bind mount of the repository.
fn unmounted_config_files(doc: &Value) -> Vec<String> {
    let mut v = Vec::new();
    for (name, svc) in services(doc) {
        let args = command(svc);
        for f in ["--config", "--config.file"] {
            let Some(path) = flag(&args, f) else { continue };
            let path = path.trim_start_matches("file:");
            let covered = mounts(svc).iter().any(|m| {
                m.kind == MountKind::Bind
                    && (path == m.target || path.starts_with(&format!("{}/", m.target)))
            });
            if !covered {
                v.push(format!(
                    "{name}: {f} {path} is not mounted from the repository"
                ));
            }
        }
    }
    v
}

/// Data directories of the stateful services are named volumes declared at the top level.
fn data_volume_violations(stack: &Stack) -> Vec<String> {
    let doc = &stack.doc;
    let declared: BTreeSet<String> = doc
        .get("volumes")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let mut v = Vec::new();
    for (name, svc) in services(doc) {
        for m in mounts(svc)
            .into_iter()
            .filter(|m| m.kind == MountKind::Volume)
        {
            if m.source.is_empty() {
                v.push(format!("{name}: anonymous volume at {}", m.target));
            } else if !declared.contains(&m.source) {
                v.push(format!(
                    "{name}: volume {} is not declared under volumes:",
                    m.source
                ));
            }
        }
    }
    let flag_of = |svc: &str, f: &str| service(doc, svc).map(command).and_then(|a| flag(&a, f));
    let loki_prefix = stack
        .loki_config
        .get("common")
        .and_then(|c| c.get("path_prefix"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let data_dirs = [
        ("prometheus", flag_of("prometheus", "--storage.tsdb.path")),
        ("alertmanager", flag_of("alertmanager", "--storage.path")),
        ("loki", loki_prefix),
        ("grafana", Some("/var/lib/grafana".to_string())),
        (
            "image2model",
            stack
                .env("image2model")
                .get("IMAGE2MODEL_DATA_DIR")
                .cloned(),
        ),
    ];
    for (svc_name, dir) in data_dirs {
        let Some(dir) = dir else {
            v.push(format!("{svc_name}: data directory not set explicitly"));
            continue;
        };
        let on_volume = service(doc, svc_name)
            .map(mounts)
            .unwrap_or_default()
            .iter()
            .any(|m| {
                m.kind == MountKind::Volume
                    && !m.source.is_empty()
                    && (dir == m.target || dir.starts_with(&format!("{}/", m.target)))
            });
        if !on_volume {
            v.push(format!(
                "{svc_name}: data directory {dir} is not on a named volume"
            ));
        }
    }
    v
}

#[test]
fn every_mounted_host_path_exists_in_the_repository() {
    assert_clean("host paths", host_path_violations(&compose(), &repo_root()));
}

#[test]
fn every_config_file_a_command_names_is_mounted() {
    assert_clean("config mounts", unmounted_config_files(&compose()));
}

#[test]
fn service_data_lives_on_declared_named_volumes() {
    assert_clean("volumes", data_volume_violations(&Stack::real()));
}

#[test]
fn host_path_rule_rejects_a_missing_absolute_or_writable_mount() {
    let v = host_path_violations(
        &broken(|d| {
            d["services"]["grafana"]["volumes"] = json!([
                "./grafana/no-such-dir:/etc/grafana/provisioning:ro",
                "/etc/passwd:/etc/passwd:ro",
                "./loki/config.yaml:/etc/loki/config.yaml"
            ]);
            d["services"]["image2model"]["build"]["dockerfile"] = json!("Dockerfile.missing");
        }),
        &repo_root(),
    );
    assert_caught(&v, "./grafana/no-such-dir does not exist");
    assert_caught(&v, "\"/etc/passwd\" is not relative");
    assert_caught(&v, "is not read-only");
    assert_caught(&v, "Dockerfile.missing does not exist");
}

#[test]
fn config_mount_rule_rejects_a_command_pointing_at_an_unmounted_file() {
    let v = unmounted_config_files(&broken(|d| {
        d["services"]["loki"]["command"] = json!(["-config.file=/etc/loki/local-config.yaml"]);
        d["services"]["jaeger"]["command"] = json!(["--config", "file:/etc/jaeger/other.yaml"]);
    }));
    assert_caught(&v, "loki: --config.file /etc/loki/local-config.yaml");
    assert_caught(&v, "jaeger: --config /etc/jaeger/other.yaml");
}

#[test]
fn volume_rule_rejects_undeclared_anonymous_and_missing_data_volumes() {
    let v = data_volume_violations(&Stack::with(broken(|d| {
        d["volumes"]
            .as_object_mut()
            .and_then(|m| m.remove("grafana-data"))
            .expect("the real file has grafana-data");
        d["services"]["prometheus"]["command"] = json!([
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/tmp/tsdb"
        ]);
        d["services"]["alertmanager"]["volumes"] =
            json!(["./alertmanager:/etc/alertmanager:ro", "/alertmanager"]);
    })));
    assert_caught(&v, "volume grafana-data is not declared");
    assert_caught(
        &v,
        "prometheus: data directory /tmp/tsdb is not on a named volume",
    );
    assert_caught(&v, "alertmanager: anonymous volume at /alertmanager");
}
