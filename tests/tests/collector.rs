//! Static checks of the collector and Jaeger configs with the real binaries: `validate` with compose's
//! defaults (no `OTELCOL_*` set, as under docker compose) and with the loopback stack's environment, and our
//! distribution holds exactly the components its configs (config.yaml, agent.yaml, gateway.yaml) use. And
//! every provisioned binary is the version `stack/versions.env` pins, the one docker-compose.yml runs.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use stack_tests::paths::repo_root;
use stack_tests::rules::read;
use stack_tests::versions::Versions;
use stack_tests::{Binaries, Ports};

fn bins() -> Binaries {
    Binaries::provisioned().unwrap_or_else(|e| panic!("{e}"))
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The component kinds of a collector config and of `<collector> components`.
const KINDS: [&str; 5] = [
    "receivers",
    "processors",
    "exporters",
    "connectors",
    "extensions",
];

/// Component types (`otlp_http` of `otlp_http/loki`) per kind, as config.yaml declares them.
fn declared(config: &serde_norway::Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for kind in KINDS {
        if let Some(map) = config.get(kind).and_then(|v| v.as_mapping()) {
            for key in map.keys().filter_map(|k| k.as_str()) {
                let ty = key.split('/').next().unwrap_or(key);
                out.insert((kind.to_string(), ty.to_string()));
            }
        }
    }
    out
}

/// Component types per kind, as `<collector> components` lists them.
fn built_in(listing: &str) -> BTreeSet<(String, String)> {
    let doc: serde_norway::Value =
        serde_norway::from_str(listing).expect("components output is YAML");
    let mut out = BTreeSet::new();
    for kind in KINDS {
        for item in doc
            .get(kind)
            .and_then(|v| v.as_sequence())
            .into_iter()
            .flatten()
        {
            if let Some(name) = item.get("name").and_then(|n| n.as_str()) {
                out.insert((kind.to_string(), name.to_string()));
            }
        }
    }
    out
}

/// `<bin> validate --config=<repo>/<config>` with every variable starting with `clear` removed (so the
/// config's own defaults, the compose ones, apply) and then `env` set; panics with the output on failure.
fn assert_validates(bin: &Path, config: &str, clear: &str, env: &[(&str, String)]) {
    let mut cmd = Command::new(bin);
    cmd.arg("validate")
        .arg(format!("--config={}", repo_root().join(config).display()));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with(clear)) {
        cmd.env_remove(key);
    }
    for (key, value) in env {
        cmd.env(key, value);
    }
    let (ok, text) = run(&mut cmd);
    assert!(ok, "validate of {config} failed:\n{text}");
}

#[test]
fn collector_config_validates_with_compose_defaults() {
    assert_validates(
        &bins().otelcol,
        "otel-collector/config.yaml",
        "OTELCOL_",
        &[],
    );
}

#[test]
fn collector_config_validates_with_the_loopback_stack_environment() {
    let ports: Ports = serde_json::from_value(serde_json::json!({
        "otlp_grpc": 1, "otlp_http": 2, "collector_health": 3, "collector_exporter": 4, "collector_self": 5,
        "jaeger_otlp_grpc": 6, "jaeger_otlp_http": 7, "jaeger_query": 8, "jaeger_query_grpc": 9,
        "jaeger_metrics": 10, "prometheus": 11, "alertmanager": 12, "app_admin": 13
    }))
    .expect("ports");
    let env = stack_tests::stack::collector_env(&ports, "http://127.0.0.1:14/otlp");
    assert_validates(
        &bins().otelcol,
        "otel-collector/config.yaml",
        "OTELCOL_",
        &env,
    );
}

/// The collector configs of the repository: the single collector and the agent/gateway tier.
const CONFIGS: [&str; 3] = [
    "otel-collector/config.yaml",
    "otel-collector/agent.yaml",
    "otel-collector/gateway.yaml",
];

#[test]
fn agent_and_gateway_configs_validate_with_compose_defaults() {
    for config in &CONFIGS[1..] {
        assert_validates(&bins().otelcol, config, "OTELCOL_", &[]);
    }
}

#[test]
fn collector_distribution_holds_exactly_the_components_the_configs_use() {
    let mut used = BTreeSet::new();
    for file in CONFIGS {
        let text = read(file);
        let config: serde_norway::Value = serde_norway::from_str(&text).expect("config is YAML");
        used.extend(declared(&config));
    }
    let (ok, listing) = run(Command::new(bins().otelcol).arg("components"));
    assert!(ok, "components failed:\n{listing}");
    let built = built_in(&listing);
    let unused: Vec<_> = built.difference(&used).collect();
    let missing: Vec<_> = used.difference(&built).collect();
    assert!(
        missing.is_empty(),
        "the configs use components the distribution lacks: {missing:?}"
    );
    assert!(
        unused.is_empty(),
        "the distribution carries components no config uses: {unused:?}"
    );
}

#[test]
fn component_comparison_notices_a_component_the_distribution_lacks() {
    let config: serde_norway::Value = serde_norway::from_str(
        "receivers: {otlp: {}}\nexporters: {otlp_http/loki: {}, kafka: {}}\n",
    )
    .expect("yaml");
    let listing = "receivers:\n  - name: otlp\nexporters:\n  - name: otlp_http\n";
    let missing: Vec<_> = declared(&config)
        .difference(&built_in(listing))
        .cloned()
        .collect();
    assert_eq!(
        missing,
        vec![("exporters".to_string(), "kafka".to_string())]
    );
}

#[test]
fn jaeger_config_validates_with_compose_defaults() {
    assert_validates(&bins().jaeger, "jaeger/config.yaml", "JAEGER_", &[]);
}

#[test]
fn a_broken_collector_config_is_refused_by_validate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broken = dir.path().join("broken.yaml");
    let text = read("otel-collector/config.yaml");
    // A pipeline naming an exporter that is not defined.
    std::fs::write(
        &broken,
        text.replacen(
            "exporters: [prometheus]",
            "exporters: [prometheus, otlp_http/nowhere]",
            1,
        ),
    )
    .expect("write");
    let (ok, out) = run(Command::new(bins().otelcol)
        .arg("validate")
        .arg(format!("--config={}", broken.display())));
    assert!(
        !ok,
        "validate accepted a pipeline with an undefined exporter:\n{out}"
    );
}

/// The version a binary reports: the first number after `version ` or `"gitVersion":"` in its output.
fn reported_version(output: &str) -> Option<String> {
    ["version ", "\"gitVersion\":\""].iter().find_map(|marker| {
        output.split(marker).skip(1).find_map(|rest| {
            let word = rest.split([' ', '"', ',', '\n']).next()?;
            let word = word.trim_start_matches('v');
            word.starts_with(|c: char| c.is_ascii_digit())
                .then(|| word.to_string())
        })
    })
}

#[test]
fn every_binary_reports_the_version_versions_env_pins() {
    let versions = Versions::load().expect("stack/versions.env");
    let bins = bins();
    let cases = [
        (&bins.otelcol, "--version", "OTELCOL_CORE_VERSION"),
        (&bins.jaeger, "version", "JAEGER_VERSION"),
        (&bins.prometheus, "--version", "PROMETHEUS_VERSION"),
        (&bins.promtool, "--version", "PROMETHEUS_VERSION"),
        (&bins.alertmanager, "--version", "ALERTMANAGER_VERSION"),
        (&bins.amtool, "--version", "ALERTMANAGER_VERSION"),
    ];
    for (bin, arg, key) in cases {
        let (ok, out) = run(Command::new(bin).arg(arg));
        assert!(ok, "{} {arg} failed:\n{out}", bin.display());
        let want = versions.get(key).expect("the key is in versions.env");
        assert_eq!(
            reported_version(&out).as_deref(),
            Some(want),
            "{} is not {key}={want}; run scripts/test.sh to rebuild:\n{out}",
            bin.display()
        );
    }
}

#[test]
fn reported_versions_are_read_from_each_tools_output_shape() {
    for (output, want) in [
        (
            "prometheus, version 3.16.0 (branch: HEAD, revision: unknown)\n",
            "3.16.0",
        ),
        ("otelcol-otelbricks version 0.165.0\n", "0.165.0"),
        (
            "log line\n{\"gitCommit\":\"\",\"gitVersion\":\"v2.13.0\",\"buildDate\":\"\"}",
            "2.13.0",
        ),
    ] {
        assert_eq!(reported_version(output).as_deref(), Some(want), "{output}");
    }
    assert_eq!(reported_version("no version here\n"), None);
    assert_eq!(reported_version("{\"gitVersion\":\"\"}"), None);
}
