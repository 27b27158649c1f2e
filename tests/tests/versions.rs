//! `stack/versions.env` is the one place that names a component version: docker-compose.yml's images, the
//! Dockerfile's bases and otel-collector/go.mod must agree with it, the release and Go module versions it
//! pairs must map onto each other, and every entry must be read by something. The native stack's build
//! scripts source the file, so the tests run the versions compose runs (`collector.rs` checks the built
//! binaries' own version output).
//!
//! Each rule returns its violations; next to each rule's test on the real files is one on a deliberately
//! broken copy, so no rule passes vacuously.

use serde_json::Value;
use stack_tests::rules::{assert_caught, assert_clean, read};
use stack_tests::versions::Versions;

fn versions() -> Versions {
    Versions::load().expect("stack/versions.env parses")
}

fn compose() -> Value {
    serde_norway::from_str(&read("docker-compose.yml")).expect("docker-compose.yml is YAML")
}

/// Image repository -> (versions.env key, tag prefix): the tag must be prefix + value.
const IMAGES: &[(&str, &str, &str)] = &[
    ("busybox", "BUSYBOX_VERSION", ""),
    (
        "otel/opentelemetry-collector-contrib",
        "OTELCOL_CONTRIB_VERSION",
        "",
    ),
    ("jaegertracing/jaeger", "JAEGER_VERSION", ""),
    ("grafana/loki", "LOKI_VERSION", ""),
    ("prom/prometheus", "PROMETHEUS_VERSION", "v"),
    ("prom/alertmanager", "ALERTMANAGER_VERSION", "v"),
    ("grafana/grafana", "GRAFANA_VERSION", ""),
    ("rust", "RUST_IMAGE_VERSION", ""),
    ("debian", "DEBIAN_IMAGE_VERSION", ""),
];

/// `repo:tag[@digest]` -> (repo, tag).
fn split_image(image: &str) -> (&str, &str) {
    let image = image.split('@').next().unwrap_or(image);
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (image, ""),
    }
}

fn image_violations(what: &str, image: &str, versions: &Versions) -> Vec<String> {
    let (repo, tag) = split_image(image);
    let Some((_, key, prefix)) = IMAGES.iter().find(|(r, _, _)| *r == repo) else {
        return vec![format!(
            "{what}: image {image:?} has no entry in stack/versions.env"
        )];
    };
    match versions.get(key) {
        None => vec![format!("{what}: stack/versions.env has no {key}")],
        Some(v) if tag == format!("{prefix}{v}") => Vec::new(),
        Some(v) => vec![format!(
            "{what}: image {image:?}, but stack/versions.env has {key}={v}: want {repo}:{prefix}{v}"
        )],
    }
}

fn compose_violations(doc: &Value, versions: &Versions) -> Vec<String> {
    let mut v = Vec::new();
    for (name, svc) in doc
        .get("services")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if svc.get("build").is_some() {
            continue; // the Dockerfile, checked below
        }
        match svc.get("image").and_then(Value::as_str) {
            Some(image) => v.extend(image_violations(name, image, versions)),
            None => v.push(format!("{name}: no image")),
        }
    }
    v
}

fn dockerfile_violations(dockerfile: &str, versions: &Versions) -> Vec<String> {
    let mut v = Vec::new();
    let mut stages = 0;
    for line in dockerfile.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("FROM ") else {
            continue;
        };
        stages += 1;
        let image = rest.split_whitespace().next().unwrap_or("");
        v.extend(image_violations(&format!("FROM {image}"), image, versions));
    }
    if stages == 0 {
        v.push("the Dockerfile has no FROM".into());
    }
    v
}

/// Our collector distribution's modules: contrib components at OTELCOL_CONTRIB_VERSION, the core's v0
/// modules at OTELCOL_CORE_VERSION (its v1 modules are versioned apart and not checked).
fn go_mod_violations(go_mod: &str, versions: &Versions) -> Vec<String> {
    let mut v = Vec::new();
    let checks = [
        (
            "github.com/open-telemetry/opentelemetry-collector-contrib/",
            "OTELCOL_CONTRIB_VERSION",
        ),
        ("go.opentelemetry.io/collector/", "OTELCOL_CORE_VERSION"),
    ];
    let mut seen = [0; 2];
    for line in go_mod.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        let (Some(module), Some(version)) = (words.next(), words.next()) else {
            continue;
        };
        for (i, (prefix, key)) in checks.iter().enumerate() {
            if !module.starts_with(prefix) || (i == 1 && !version.starts_with("v0.")) {
                continue;
            }
            seen[i] += 1;
            let want = versions.get(key).unwrap_or("<missing>");
            if version != format!("v{want}") {
                v.push(format!(
                    "otel-collector/go.mod: {module} {version}, but stack/versions.env has {key}={want}"
                ));
            }
        }
    }
    for ((prefix, _), n) in checks.iter().zip(seen) {
        if n == 0 {
            v.push(format!(
                "otel-collector/go.mod requires no {prefix}* module"
            ));
        }
    }
    v
}

/// Jaeger v2 releases are tagged twice: v2.N.P for the binary and v1.(N+63).P for the Go module
/// (v2.0.0 = v1.63.0, v2.13.0 = v1.76.0).
fn jaeger_release_of_module(module: &str) -> Option<String> {
    let mut it = module.strip_prefix("v1.")?.split('.');
    let (minor, patch) = (it.next()?.parse::<u32>().ok()?, it.next()?);
    (minor >= 63).then(|| format!("2.{}.{patch}", minor - 63))
}

/// Prometheus 3 releases are tagged v3.N.P for the binary and v0.(300+N).P for the Go module
/// (v3.5.0 = v0.305.0, v3.16.0 = v0.316.0).
fn prometheus_release_of_module(module: &str) -> Option<String> {
    let mut it = module.strip_prefix("v0.")?.split('.');
    let (minor, patch) = (it.next()?.parse::<u32>().ok()?, it.next()?);
    (minor >= 300).then(|| format!("3.{}.{patch}", minor - 300))
}

/// Maps a Go module version to the release it is.
type ReleaseOf = fn(&str) -> Option<String>;

fn module_mapping_violations(versions: &Versions) -> Vec<String> {
    let pairs: [(&str, &str, ReleaseOf); 2] = [
        (
            "JAEGER_MODULE_VERSION",
            "JAEGER_VERSION",
            jaeger_release_of_module,
        ),
        (
            "PROMETHEUS_MODULE_VERSION",
            "PROMETHEUS_VERSION",
            prometheus_release_of_module,
        ),
    ];
    let mut v = Vec::new();
    for (module_key, release_key, map) in pairs {
        let module = versions.get(module_key).unwrap_or("<missing>");
        let release = versions.get(release_key).unwrap_or("<missing>");
        match map(module) {
            Some(r) if r == release => {}
            Some(r) => v.push(format!(
                "{module_key}={module} is release {r}, but {release_key}={release}"
            )),
            None => v.push(format!("{module_key}={module} maps to no release")),
        }
    }
    v
}

/// Every entry is read by a rule above or by a build script (`$KEY` in stack/*.sh): none is stale.
fn unused_entries(versions: &Versions, scripts: &str) -> Vec<String> {
    let checked: Vec<&str> = IMAGES
        .iter()
        .map(|(_, key, _)| *key)
        .chain([
            "OTELCOL_CORE_VERSION",
            "JAEGER_MODULE_VERSION",
            "PROMETHEUS_MODULE_VERSION",
        ])
        .collect();
    versions
        .iter()
        .filter(|(key, _)| !checked.contains(key) && !scripts.contains(&format!("${key}")))
        .map(|(key, _)| format!("{key} is read by nothing"))
        .collect()
}

fn build_scripts() -> String {
    [
        "build-jaeger.sh",
        "build-prometheus.sh",
        "build-alertmanager.sh",
    ]
    .iter()
    .map(|s| read(&format!("stack/{s}")))
    .collect()
}

// ---------------------------------------------------------------------------------------------------
// The real files

#[test]
fn compose_images_are_the_versions_of_versions_env() {
    assert_clean("compose", compose_violations(&compose(), &versions()));
}

#[test]
fn dockerfile_bases_are_the_versions_of_versions_env() {
    assert_clean(
        "Dockerfile",
        dockerfile_violations(&read("Dockerfile"), &versions()),
    );
}

#[test]
fn collector_distribution_modules_are_the_versions_of_versions_env() {
    assert_clean(
        "go.mod",
        go_mod_violations(&read("otel-collector/go.mod"), &versions()),
    );
}

#[test]
fn release_and_go_module_versions_name_the_same_release() {
    assert_clean("module versions", module_mapping_violations(&versions()));
}

#[test]
fn every_entry_of_versions_env_is_read() {
    assert_clean("unused", unused_entries(&versions(), &build_scripts()));
}

#[test]
fn build_scripts_take_their_versions_from_versions_env() {
    for (script, keys) in [
        ("build-jaeger.sh", &["JAEGER_MODULE_VERSION"][..]),
        (
            "build-prometheus.sh",
            &["PROMETHEUS_VERSION", "PROMETHEUS_MODULE_VERSION"][..],
        ),
        ("build-alertmanager.sh", &["ALERTMANAGER_VERSION"][..]),
    ] {
        let text = read(&format!("stack/{script}"));
        assert!(
            text.contains("upstream-build.sh"),
            "{script} does not source upstream-build.sh (which reads versions.env)"
        );
        for key in keys {
            assert!(
                text.contains(&format!("${key}")),
                "{script} does not use ${key}"
            );
        }
    }
    assert!(read("stack/upstream-build.sh").contains("versions.env"));
}

// ---------------------------------------------------------------------------------------------------
// Deliberately broken copies

#[test]
fn compose_rule_rejects_a_tag_behind_versions_env_and_an_unknown_image() {
    let ahead = versions().with("PROMETHEUS_VERSION", "3.99.0");
    assert_caught(
        &compose_violations(&compose(), &ahead),
        "want prom/prometheus:v3.99.0",
    );
    let mut doc = compose();
    doc["services"]["prometheus"]["image"] = Value::from("quay.io/prometheus/prometheus:v3.16.0");
    assert_caught(
        &compose_violations(&doc, &versions()),
        "has no entry in stack/versions.env",
    );
}

#[test]
fn dockerfile_rule_rejects_a_base_behind_versions_env() {
    let v = dockerfile_violations(
        &read("Dockerfile"),
        &versions().with("RUST_IMAGE_VERSION", "1.99.0-slim-trixie"),
    );
    assert_caught(&v, "want rust:1.99.0-slim-trixie");
}

#[test]
fn go_mod_rule_rejects_a_contrib_or_core_module_at_another_version() {
    let go_mod = read("otel-collector/go.mod");
    let contrib = versions()
        .get("OTELCOL_CONTRIB_VERSION")
        .unwrap_or("")
        .to_string();
    let bumped = go_mod.replacen(&format!(" v{contrib}"), " v9.9.9", 1);
    assert_ne!(bumped, go_mod, "go.mod pins contrib v{contrib}");
    assert_caught(
        &go_mod_violations(&bumped, &versions()),
        "but stack/versions.env has OTELCOL_CONTRIB_VERSION",
    );
    let v = go_mod_violations(&go_mod, &versions().with("OTELCOL_CORE_VERSION", "0.1.0"));
    assert_caught(&v, "go.opentelemetry.io/collector/otelcol");
}

#[test]
fn module_mapping_maps_known_pairs_and_rejects_a_mismatch() {
    assert_eq!(
        jaeger_release_of_module("v1.63.0").as_deref(),
        Some("2.0.0")
    );
    assert_eq!(
        jaeger_release_of_module("v1.76.0").as_deref(),
        Some("2.13.0")
    );
    assert_eq!(jaeger_release_of_module("v1.62.0"), None);
    assert_eq!(
        prometheus_release_of_module("v0.305.0").as_deref(),
        Some("3.5.0")
    );
    assert_eq!(
        prometheus_release_of_module("v0.316.0").as_deref(),
        Some("3.16.0")
    );
    assert_eq!(prometheus_release_of_module("v0.55.1"), None);
    let v = module_mapping_violations(&versions().with("JAEGER_MODULE_VERSION", "v1.77.0"));
    assert_caught(&v, "is release 2.14.0, but JAEGER_VERSION=");
    let v = module_mapping_violations(&versions().with("PROMETHEUS_MODULE_VERSION", "v0.305.0"));
    assert_caught(&v, "is release 3.5.0, but PROMETHEUS_VERSION=");
}

#[test]
fn unused_rule_rejects_an_entry_nothing_reads() {
    let v = unused_entries(
        &versions().with("NODE_EXPORTER_VERSION", "1.9.0"),
        &build_scripts(),
    );
    assert_caught(&v, "NODE_EXPORTER_VERSION is read by nothing");
}
