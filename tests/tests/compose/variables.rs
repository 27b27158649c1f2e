//! Environment variables and secrets: no literal secret, every interpolated variable documented in
//! `.env.example`, every variable a config reads set or defaulted, every variable set on the app read by it.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use serde_json::json;
use stack_tests::paths::repo_root;
use stack_tests::rules::{assert_caught, assert_clean, read};

use crate::document::{env_of, interpolations, service, services};
use crate::listeners::SCALE_TIER;
use crate::{broken, compose};

fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    ["PASSWORD", "SECRET", "TOKEN", "CREDENTIAL", "PRIVATE"]
        .iter()
        .any(|w| k.contains(w))
        || k.ends_with("_KEY")
        || k.contains("API_KEY")
}

/// A secret must come from `${VAR:?message}`: required, no default, nothing literal.
fn literal_secrets(doc: &Value) -> Vec<String> {
    let mut v = Vec::new();
    for (name, svc) in services(doc) {
        for (key, value) in env_of(svc) {
            if !looks_secret(&key) {
                continue;
            }
            let ok = value.starts_with("${")
                && value.ends_with('}')
                && matches!(interpolations(&value).as_slice(), [i] if i.required == Some(true));
            if !ok {
                v.push(format!(
                    "{name}: {key} is {value:?}; a secret must be \"${{VAR:?message}}\" (from .env, no default)"
                ));
            }
        }
    }
    if let Some(g) = service(doc, "grafana")
        && !env_of(g).contains_key("GF_SECURITY_ADMIN_PASSWORD")
    {
        v.push(
            "grafana: GF_SECURITY_ADMIN_PASSWORD unset: Grafana would start with admin/admin"
                .into(),
        );
    }
    v
}

/// Every variable the compose file interpolates is listed in `.env.example`; secrets there are empty.
fn env_example_violations(compose_text: &str, env_example: &str) -> Vec<String> {
    let documented: BTreeMap<String, String> = env_example
        .lines()
        .map(|l| l.trim().trim_start_matches('#').trim())
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .map(|(k, val)| (k.to_string(), val.to_string()))
        .collect();
    let mut v = Vec::new();
    for i in interpolations(compose_text) {
        if !documented.contains_key(&i.name) {
            v.push(format!(
                "${{{}}} is used by docker-compose.yml but not in .env.example",
                i.name
            ));
        }
    }
    for (k, val) in &documented {
        if looks_secret(k) && !val.is_empty() {
            v.push(format!(
                ".env.example gives {k} a value; leave secrets empty"
            ));
        }
    }
    v
}

/// Variables a config reads without a default must be set on the service that mounts it; variables with
/// the config's prefix that the service sets must be read by the config (a typo is otherwise silent).
fn config_variable_violations(
    doc: &Value,
    svc_name: &str,
    config: &str,
    prefix: &str,
) -> Vec<String> {
    let env = service(doc, svc_name).map(env_of).unwrap_or_default();
    let used = interpolations(config);
    let mut v = Vec::new();
    for i in &used {
        if i.default.is_none() && !env.contains_key(&i.name) {
            v.push(format!(
                "{svc_name}: its config reads {} without a default and compose does not set it",
                i.name
            ));
        }
    }
    for k in env.keys().filter(|k| k.starts_with(prefix)) {
        if !used.iter().any(|i| &i.name == k) {
            v.push(format!(
                "{svc_name}: sets {k}, which its config never reads"
            ));
        }
    }
    v
}

/// Every variable set on image2model is one the app or the telemetry crate reads.
fn unknown_app_variables(doc: &Value, sources: &str) -> Vec<String> {
    let mut v = Vec::new();
    for key in service(doc, "image2model")
        .map(env_of)
        .unwrap_or_default()
        .keys()
    {
        if !sources.contains(&format!("\"{key}\"")) {
            v.push(format!(
                "image2model: {key} is read by neither image2model nor telemetry"
            ));
        }
    }
    v
}

fn app_sources() -> String {
    fn walk(dir: &Path, text: &mut String) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(&path, text);
            } else if path.extension().is_some_and(|x| x == "rs") {
                text.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    let mut text = String::new();
    for dir in ["crates/image2model/src", "crates/otelbricks-telemetry/src"] {
        walk(&repo_root().join(dir), &mut text);
    }
    text
}

#[test]
fn no_secret_is_written_in_the_compose_file() {
    assert_clean("secrets", literal_secrets(&compose()));
}

#[test]
fn every_interpolated_variable_is_documented_in_env_example_without_secret_values() {
    assert_clean(
        ".env.example",
        env_example_violations(&read("docker-compose.yml"), &read(".env.example")),
    );
}

#[test]
fn every_otelcol_and_jaeger_variable_has_a_default_or_is_set() {
    let doc = compose();
    let mut v = config_variable_violations(
        &doc,
        "otel-collector",
        &read("otel-collector/config.yaml"),
        "OTELCOL_",
    );
    v.extend(config_variable_violations(
        &doc,
        "jaeger",
        &read("jaeger/config.yaml"),
        "JAEGER_",
    ));
    assert_clean("config variables", v);
}

#[test]
fn every_otelcol_variable_of_the_scale_profile_has_a_default_or_is_set() {
    let doc = compose();
    let mut v = Vec::new();
    for (name, config) in SCALE_TIER {
        v.extend(config_variable_violations(
            &doc,
            name,
            &read(config),
            "OTELCOL_",
        ));
    }
    assert_clean("config variables", v);
}

#[test]
fn image2model_variables_are_ones_the_app_reads() {
    assert_clean(
        "app variables",
        unknown_app_variables(&compose(), &app_sources()),
    );
}

#[test]
fn secret_rule_rejects_literal_defaulted_optional_and_missing_grafana_passwords() {
    for (value, needle) in [
        ("admin", "GF_SECURITY_ADMIN_PASSWORD is \"admin\""),
        (
            "${GRAFANA_ADMIN_PASSWORD:-admin}",
            "GF_SECURITY_ADMIN_PASSWORD",
        ),
        ("${GRAFANA_ADMIN_PASSWORD}", "GF_SECURITY_ADMIN_PASSWORD"),
        (
            "x${GRAFANA_ADMIN_PASSWORD:?set it}",
            "GF_SECURITY_ADMIN_PASSWORD",
        ),
    ] {
        let v = literal_secrets(&broken(|d| {
            d["services"]["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] = json!(value)
        }));
        assert_caught(&v, needle);
    }
    let v = literal_secrets(&broken(|d| {
        d["services"]["grafana"]["environment"] = json!(["GF_SECURITY_ADMIN_PASSWORD=hunter2"]);
    }));
    assert_caught(&v, "hunter2");
    let v = literal_secrets(&broken(|d| {
        d["services"]["grafana"]["environment"] = json!({"GF_USERS_ALLOW_SIGN_UP": "false"});
    }));
    assert_caught(&v, "admin/admin");
    let v = literal_secrets(&broken(|d| {
        d["services"]["image2model"]["environment"]["IMAGE2MODEL_PROVIDER_KEY"] = json!("fal-123");
    }));
    assert_caught(&v, "IMAGE2MODEL_PROVIDER_KEY");
}

#[test]
fn env_example_rule_rejects_an_undocumented_variable_and_a_filled_in_secret() {
    let compose_text = format!("{}\n# ${{NEW_SETTING:-1}}\n", read("docker-compose.yml"));
    let v = env_example_violations(&compose_text, &read(".env.example"));
    assert_caught(&v, "NEW_SETTING");
    let v = env_example_violations(
        &read("docker-compose.yml"),
        &read(".env.example").replace("GRAFANA_ADMIN_PASSWORD=", "GRAFANA_ADMIN_PASSWORD=admin"),
    );
    assert_caught(&v, "gives GRAFANA_ADMIN_PASSWORD a value");
}

#[test]
fn config_variable_rule_rejects_an_unset_variable_without_default_and_a_misspelled_one() {
    let config = format!(
        "{}\nextra: ${{env:OTELCOL_NEW_ENDPOINT}}\n",
        read("otel-collector/config.yaml")
    );
    let v = config_variable_violations(&compose(), "otel-collector", &config, "OTELCOL_");
    assert_caught(&v, "reads OTELCOL_NEW_ENDPOINT without a default");
    let doc =
        broken(|d| d["services"]["jaeger"]["environment"] = json!({"JAEGER_QUERY_PORT": "16686"}));
    let v = config_variable_violations(&doc, "jaeger", &read("jaeger/config.yaml"), "JAEGER_");
    assert_caught(&v, "sets JAEGER_QUERY_PORT, which its config never reads");
}

#[test]
fn app_variable_rule_rejects_a_misspelled_variable() {
    let v = unknown_app_variables(
        &broken(|d| {
            d["services"]["image2model"]["environment"]["IMAGE2MODEL_LISTN"] = json!("0.0.0.0:8080")
        }),
        &app_sources(),
    );
    assert_caught(&v, "IMAGE2MODEL_LISTN");
}
