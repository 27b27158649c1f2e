//! Each service on its own: valid against the Compose Specification, a pinned image, an exec-form healthcheck
//! that probes its readiness endpoint with a program the container has, a restart policy, and `depends_on`
//! conditions its dependencies can meet.

use serde_json::Value;
use serde_json::json;
use stack_tests::rules::{assert_caught, assert_clean, read};

use crate::dockerfile::final_stage;
use crate::document::{
    MountKind, command, condition_on, depends_on, healthcheck_test, is_one_shot, mounts, service,
    services,
};
use crate::listeners::Stack;
use crate::{broken, compose};

fn schema_violations(doc: &Value) -> Vec<String> {
    let schema: Value = serde_json::from_str(&read("tests/schemas/compose-spec.json"))
        .unwrap_or_else(|e| panic!("compose-spec.json is not JSON: {e}"));
    let validator = jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("compose-spec.json is not a valid schema: {e}"));
    validator
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// `name[:tag][@digest]`: the tag, if any (a registry port is not a tag).
pub(crate) fn image_tag(image: &str) -> Option<&str> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last_segment = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last_segment.split_once(':').map(|(_, t)| t)
}

fn unpinned_images(doc: &Value) -> Vec<String> {
    let mut v = Vec::new();
    for (name, svc) in services(doc) {
        if svc.get("build").is_some() {
            continue; // built from this repository's Dockerfile (whose own bases are checked below)
        }
        let Some(image) = svc.get("image").and_then(Value::as_str) else {
            v.push(format!("{name}: neither image nor build"));
            continue;
        };
        if image.contains('$') {
            v.push(format!(
                "{name}: image {image:?} is interpolated, not pinned"
            ));
            continue;
        }
        match image_tag(image) {
            None if !image.contains("@sha256:") => {
                v.push(format!("{name}: image {image:?} has no tag"))
            }
            Some("latest") => v.push(format!("{name}: image {image:?} is :latest")),
            Some(t) if !t.chars().any(|c| c.is_ascii_digit()) => v.push(format!(
                "{name}: image {image:?}: tag {t:?} names no version"
            )),
            _ => {}
        }
    }
    v
}

fn services_without_healthcheck(doc: &Value) -> Vec<String> {
    let mut v = Vec::new();
    for (name, svc) in services(doc) {
        if is_one_shot(svc) {
            continue;
        }
        match healthcheck_test(svc) {
            None => v.push(format!(
                "{name}: long-running service without an enabled healthcheck"
            )),
            Some(t) if t.first().map(String::as_str) != Some("CMD") => v.push(format!(
                "{name}: healthcheck {t:?} is not an exec-form [\"CMD\", ...] probe"
            )),
            Some(_) => {}
        }
    }
    v
}

fn restart_policy_violations(doc: &Value) -> Vec<String> {
    let mut v = Vec::new();
    for (name, svc) in services(doc) {
        match svc.get("restart").and_then(Value::as_str) {
            Some("no") | Some("unless-stopped") | Some("always") => {}
            Some(p) if p.starts_with("on-failure") => {}
            Some(p) => v.push(format!("{name}: unknown restart policy {p:?}")),
            None => v.push(format!("{name}: no restart policy")),
        }
    }
    v
}

fn healthcheck_endpoint_violations(stack: &Stack) -> Vec<String> {
    let expected = stack.readiness_urls();
    let mut v = Vec::new();
    for (name, svc) in services(&stack.doc) {
        if is_one_shot(svc) {
            continue;
        }
        let Some(want) = expected.get(name) else {
            v.push(format!(
                "{name}: no known readiness endpoint (add it to readiness_urls)"
            ));
            continue;
        };
        let test = healthcheck_test(svc).unwrap_or_default();
        if test.last() != Some(want) {
            v.push(format!(
                "{name}: healthcheck {test:?} does not probe its readiness endpoint {want}"
            ));
        }
    }
    v
}

/// The healthcheck's program must exist in the container: `curl` in the image our Dockerfile builds (its
/// runtime stage installs it), or a file under a volume that a one-shot service this one waits for
/// (`service_completed_successfully`) writes.
fn healthcheck_program_violations(doc: &Value, dockerfile: &str) -> Vec<String> {
    let runtime_installs_curl = final_stage(dockerfile)
        .iter()
        .any(|l| l.contains("apt-get install") && l.split_whitespace().any(|w| w == "curl"));
    let mut v = Vec::new();
    for (name, svc) in services(doc) {
        let Some(test) = healthcheck_test(svc) else {
            continue;
        };
        let Some(program) = test.get(1) else {
            v.push(format!("{name}: empty healthcheck"));
            continue;
        };
        if program == "curl" && svc.get("build").is_some() {
            if !runtime_installs_curl {
                v.push(format!(
                    "{name}: probes with curl, which the Dockerfile's runtime stage does not install"
                ));
            }
            continue;
        }
        let Some(mount) = mounts(svc).into_iter().find(|m| {
            m.kind == MountKind::Volume && program.starts_with(&format!("{}/", m.target))
        }) else {
            v.push(format!(
                "{name}: healthcheck program {program:?} is not on a volume this service mounts \
                 (third-party images here have no shell, wget or curl of their own)"
            ));
            continue;
        };
        let file = &program[mount.target.len() + 1..];
        let provider = services(doc).into_iter().find(|(other, o)| {
            *other != name
                && is_one_shot(o)
                && mounts(o).iter().any(|om| {
                    om.kind == MountKind::Volume
                        && om.source == mount.source
                        && command(o)
                            .join(" ")
                            .contains(&format!("{}/{file}", om.target))
                })
        });
        match provider {
            None => v.push(format!(
                "{name}: no one-shot service writes {file:?} into volume {:?}",
                mount.source
            )),
            Some((p, _)) if condition_on(svc, p) != Some("service_completed_successfully") => v.push(
                format!("{name}: does not wait for {p} (service_completed_successfully), which fills {:?}", mount.source),
            ),
            Some(_) => {}
        }
    }
    v
}

fn depends_on_violations(doc: &Value) -> Vec<String> {
    let mut v = Vec::new();
    for (name, svc) in services(doc) {
        let Some(deps) = depends_on(svc) else {
            continue;
        };
        let Some(deps) = deps.as_object() else {
            v.push(format!(
                "{name}: depends_on is a list (no condition); use the long form with a condition"
            ));
            continue;
        };
        for (dep, spec) in deps {
            let Some(target) = service(doc, dep) else {
                v.push(format!("{name}: depends on unknown service {dep}"));
                continue;
            };
            match spec.get("condition").and_then(Value::as_str) {
                Some("service_healthy") => {
                    if healthcheck_test(target).is_none() {
                        v.push(format!(
                            "{name}: waits for {dep} to be healthy, but {dep} has no healthcheck"
                        ));
                    }
                }
                Some("service_completed_successfully") => {
                    if !is_one_shot(target) {
                        v.push(format!(
                            "{name}: waits for {dep} to complete, but {dep} is long-running"
                        ));
                    }
                }
                other => v.push(format!(
                    "{name}: depends on {dep} with condition {other:?} (want service_healthy or \
                     service_completed_successfully)"
                )),
            }
        }
    }
    v
}

#[test]
fn compose_file_is_valid_against_the_compose_specification_schema() {
    assert_clean("schema", schema_violations(&compose()));
}

#[test]
fn every_image_is_pinned_to_a_version_except_the_one_built_here() {
    assert_clean("images", unpinned_images(&compose()));
}

#[test]
fn every_long_running_service_has_an_exec_form_healthcheck() {
    assert_clean("healthchecks", services_without_healthcheck(&compose()));
}

#[test]
fn every_service_has_a_restart_policy() {
    assert_clean("restart", restart_policy_violations(&compose()));
}

#[test]
fn healthchecks_probe_each_services_readiness_endpoint_on_its_configured_port() {
    assert_clean("readiness", healthcheck_endpoint_violations(&Stack::real()));
}

#[test]
fn healthcheck_programs_exist_inside_the_containers() {
    assert_clean(
        "healthcheck programs",
        healthcheck_program_violations(&compose(), &read("Dockerfile")),
    );
}

#[test]
fn every_depends_on_uses_a_condition_its_target_can_meet() {
    assert_clean("depends_on", depends_on_violations(&compose()));
}

#[test]
fn schema_check_rejects_a_misspelled_healthcheck_key_and_a_non_string_image() {
    let v = schema_violations(&broken(|d| {
        d["services"]["jaeger"]["healthcheck"]["intervall"] = json!("10s");
        d["services"]["loki"]["image"] = json!(3);
    }));
    assert_caught(&v, "/services/jaeger/healthcheck");
    assert_caught(&v, "/services/loki/image");
}

#[test]
fn image_rule_rejects_latest_untagged_versionless_and_registry_port_only_images() {
    for (image, needle) in [
        ("grafana/grafana:latest", ":latest"),
        ("grafana/grafana", "no tag"),
        ("busybox:musl", "names no version"),
        ("localhost:5000/grafana", "no tag"),
        ("${GRAFANA_IMAGE}", "interpolated"),
    ] {
        let v = unpinned_images(&broken(|d| {
            d["services"]["grafana"]["image"] = json!(image)
        }));
        assert_caught(&v, needle);
    }
    let v = unpinned_images(&broken(|d| {
        d["services"]["grafana"]["image"] = json!("grafana/grafana@sha256:0123")
    }));
    assert!(v.is_empty(), "a digest pins: {v:?}");
}

#[test]
fn healthcheck_rule_rejects_a_missing_disabled_or_shell_form_check() {
    let v = services_without_healthcheck(&broken(|d| {
        d["services"]["loki"]
            .as_object_mut()
            .and_then(|m| m.remove("healthcheck"))
            .expect("the real file has healthcheck");
        d["services"]["jaeger"]["healthcheck"]["disable"] = json!(true);
        d["services"]["grafana"]["healthcheck"]["test"] = json!("wget -q --spider http://x/");
    }));
    assert_caught(&v, "loki");
    assert_caught(&v, "jaeger");
    assert_caught(&v, "grafana: healthcheck");
}

#[test]
fn restart_rule_rejects_a_service_without_a_policy() {
    let v = restart_policy_violations(&broken(|d| {
        d["services"]["prometheus"]
            .as_object_mut()
            .and_then(|m| m.remove("restart"))
            .expect("the real file has restart");
    }));
    assert_caught(&v, "prometheus: no restart policy");
}

#[test]
fn readiness_rule_rejects_a_probe_on_the_wrong_path_or_a_port_the_config_moved() {
    let v = healthcheck_endpoint_violations(&Stack::with(broken(|d| {
        d["services"]["prometheus"]["healthcheck"]["test"][5] =
            json!("http://127.0.0.1:9090/-/healthy");
    })));
    assert_caught(&v, "prometheus");
    // The collector's health port comes from its config: moving it there (through compose) without
    // moving the probe is caught.
    let v = healthcheck_endpoint_violations(&Stack::with(broken(|d| {
        d["services"]["otel-collector"]["environment"] =
            json!({"OTELCOL_HEALTH_ENDPOINT": "0.0.0.0:13134"});
    })));
    assert_caught(&v, "http://127.0.0.1:13134/");
}

#[test]
fn healthcheck_program_rule_rejects_wget_the_image_lacks_an_unmounted_tool_and_a_missing_wait() {
    let dockerfile = read("Dockerfile");
    let v = healthcheck_program_violations(
        &broken(|d| d["services"]["loki"]["healthcheck"]["test"][1] = json!("wget")),
        &dockerfile,
    );
    assert_caught(&v, "loki: healthcheck program \"wget\"");
    let v = healthcheck_program_violations(
        &broken(|d| {
            d["services"]["jaeger"]["volumes"] =
                json!(["./jaeger/config.yaml:/etc/jaeger/config.yaml:ro"])
        }),
        &dockerfile,
    );
    assert_caught(&v, "jaeger: healthcheck program");
    let v = healthcheck_program_violations(
        &broken(|d| {
            d["services"]["otel-collector"]["depends_on"]
                .as_object_mut()
                .and_then(|m| m.remove("tools-init"))
                .expect("the real file has tools-init");
        }),
        &dockerfile,
    );
    assert_caught(&v, "otel-collector: does not wait for tools-init");
    let v = healthcheck_program_violations(&compose(), &dockerfile.replace(" curl", " wget"));
    assert_caught(&v, "image2model: probes with curl");
}

#[test]
fn depends_on_rule_rejects_the_list_form_service_started_and_waiting_on_a_check_that_does_not_exist()
 {
    let v = depends_on_violations(&broken(|d| {
        d["services"]["grafana"]["depends_on"] = json!(["prometheus"]);
        d["services"]["image2model"]["depends_on"]["otel-collector"]["condition"] =
            json!("service_started");
        d["services"]["loki"]["healthcheck"]["disable"] = json!(true);
        d["services"]["jaeger"]["depends_on"] =
            json!({"prometheus": {"condition": "service_completed_successfully"}});
    }));
    assert_caught(&v, "grafana: depends_on is a list");
    assert_caught(
        &v,
        "image2model: depends on otel-collector with condition Some(\"service_started\")",
    );
    assert_caught(
        &v,
        "otel-collector: waits for loki to be healthy, but loki has no healthcheck",
    );
    assert_caught(&v, "jaeger: waits for prometheus to complete");
}
