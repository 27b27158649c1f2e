//! Static checks of `docker-compose.yml`, the `Dockerfile` and `.dockerignore`.
//!
//! No Docker engine runs on the machines these tests run on, so the compose stack is never started here.
//! Instead the file is validated against the Compose Specification's JSON Schema (a copy in
//! `tests/schemas/compose-spec.json`) and against the stack's own rules, each a test of its own, each
//! cross-checked with the config files the services run (collector, Jaeger, Loki, Prometheus) so that a
//! port or a service name changed in one place and not the other fails here. Image versions are checked
//! against `stack/versions.env` in `versions.rs`.
//!
//! Every rule is a function returning the list of violations; next to each rule's test on the real files
//! is a test that feeds it a deliberately broken copy and asserts the rule catches it, so no rule can pass
//! vacuously.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Value, json};
use stack_tests::paths::repo_root;
use stack_tests::rules::{assert_caught, assert_clean, read, yaml};

// ---------------------------------------------------------------------------------------------------
// Reading the files

fn compose() -> Value {
    yaml(&read("docker-compose.yml"))
}

/// The real compose file with one change applied: the "deliberately broken copy" of the negative tests.
fn broken(change: impl FnOnce(&mut Value)) -> Value {
    let mut doc = compose();
    change(&mut doc);
    doc
}

// ---------------------------------------------------------------------------------------------------
// Views of a compose document

fn services(doc: &Value) -> Vec<(&str, &Value)> {
    doc.get("services")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .unwrap_or_default()
}

fn service<'a>(doc: &'a Value, name: &str) -> Option<&'a Value> {
    doc.get("services").and_then(|s| s.get(name))
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `environment:` in map or list form.
fn env_of(svc: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match svc.get("environment") {
        Some(Value::Object(m)) => {
            for (k, v) in m {
                out.insert(k.clone(), scalar(v).unwrap_or_default());
            }
        }
        Some(Value::Array(items)) => {
            for item in items.iter().filter_map(Value::as_str) {
                let (k, v) = item.split_once('=').unwrap_or((item, ""));
                out.insert(k.to_string(), v.to_string());
            }
        }
        _ => {}
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum MountKind {
    Bind,
    Volume,
}

#[derive(Debug, Clone)]
struct Mount {
    kind: MountKind,
    source: String,
    target: String,
    read_only: bool,
}

fn mounts(svc: &Value) -> Vec<Mount> {
    let mut out = Vec::new();
    for item in svc
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match item {
            Value::String(s) => {
                let parts: Vec<&str> = s.split(':').collect();
                let (source, target, mode) = match parts.as_slice() {
                    [t] => ("", *t, ""),
                    [s, t] => (*s, *t, ""),
                    [s, t, m, ..] => (*s, *t, *m),
                    [] => continue,
                };
                let kind = if source.starts_with('.')
                    || source.starts_with('/')
                    || source.starts_with('~')
                {
                    MountKind::Bind
                } else {
                    MountKind::Volume
                };
                out.push(Mount {
                    kind,
                    source: source.to_string(),
                    target: target.to_string(),
                    read_only: mode.split(',').any(|m| m == "ro"),
                });
            }
            Value::Object(m) => {
                let kind = match m.get("type").and_then(Value::as_str) {
                    Some("bind") => MountKind::Bind,
                    _ => MountKind::Volume,
                };
                out.push(Mount {
                    kind,
                    source: m.get("source").and_then(scalar).unwrap_or_default(),
                    target: m.get("target").and_then(scalar).unwrap_or_default(),
                    read_only: m.get("read_only").and_then(Value::as_bool).unwrap_or(false),
                });
            }
            _ => {}
        }
    }
    out
}

/// `command:` as a list of arguments (a string command split on whitespace).
fn command(svc: &Value) -> Vec<String> {
    match svc.get("command") {
        Some(Value::Array(a)) => a.iter().filter_map(scalar).collect(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// The value of a `--flag=value`, `-flag=value` or `--flag value` argument.
fn flag(args: &[String], name: &str) -> Option<String> {
    let bare = name.trim_start_matches('-');
    for (i, a) in args.iter().enumerate() {
        let a_bare = a.trim_start_matches('-');
        if !a.starts_with('-') {
            continue;
        }
        if let Some(v) = a_bare.strip_prefix(bare).and_then(|r| r.strip_prefix('=')) {
            return Some(v.to_string());
        }
        if a_bare == bare {
            return args.get(i + 1).cloned();
        }
    }
    None
}

fn is_one_shot(svc: &Value) -> bool {
    svc.get("restart").and_then(Value::as_str) == Some("no")
}

fn healthcheck_test(svc: &Value) -> Option<Vec<String>> {
    let hc = svc.get("healthcheck")?;
    if hc.get("disable").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    match hc.get("test")? {
        Value::Array(a) => Some(a.iter().filter_map(scalar).collect()),
        Value::String(s) => Some(vec!["CMD-SHELL".into(), s.clone()]),
        _ => None,
    }
}

fn depends_on(svc: &Value) -> Option<&Value> {
    svc.get("depends_on")
}

fn condition_on<'a>(svc: &'a Value, other: &str) -> Option<&'a str> {
    depends_on(svc)?.get(other)?.get("condition")?.as_str()
}

fn port_of(addr: &str) -> Option<u16> {
    addr.rsplit_once(':')?.1.trim_end_matches('/').parse().ok()
}

// ---------------------------------------------------------------------------------------------------
// Interpolation: `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`, `${VAR?message}` in
// compose files, `${env:VAR}` / `${env:VAR:-default}` in collector-style configs.

#[derive(Debug, Clone, PartialEq)]
struct Interp {
    name: String,
    /// `:-` / `-` default.
    default: Option<String>,
    /// `:?` (unset or empty is an error) / `?` (unset is an error).
    required: Option<bool>,
}

fn interpolations(text: &str) -> Vec<Interp> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && bytes.get(i + 1) == Some(&b'$') {
            i += 2; // `$$` is a literal dollar
            continue;
        }
        if bytes[i] == b'$'
            && bytes.get(i + 1) == Some(&b'{')
            && let Some(end) = text[i + 2..].find('}')
        {
            let body = &text[i + 2..i + 2 + end];
            let body = body.strip_prefix("env:").unwrap_or(body);
            let name_end = body
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(body.len());
            let (name, rest) = body.split_at(name_end);
            let (default, required) = if let Some(d) = rest.strip_prefix(":-") {
                (Some(d.to_string()), None)
            } else if let Some(d) = rest.strip_prefix('-') {
                (Some(d.to_string()), None)
            } else if rest.starts_with(":?") {
                (None, Some(true))
            } else if rest.starts_with('?') {
                (None, Some(false))
            } else {
                (None, None)
            };
            out.push(Interp {
                name: name.to_string(),
                default,
                required,
            });
            i += 2 + end + 1;
            continue;
        }
        i += 1;
    }
    out
}

/// The variables a config reads, with their defaults overridden by what the compose service sets.
fn effective_env(config: &str, svc_env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for i in interpolations(config) {
        let value = svc_env
            .get(&i.name)
            .cloned()
            .or(i.default)
            .unwrap_or_default();
        out.insert(i.name, value);
    }
    out
}

// ---------------------------------------------------------------------------------------------------
// What the services listen on and where they report readiness, derived from their configs.

/// The agent/gateway tier of the `scale` profile: (service, the collector config it runs).
const SCALE_TIER: [(&str, &str); 3] = [
    ("otel-agent", "otel-collector/agent.yaml"),
    ("otel-gateway-1", "otel-collector/gateway.yaml"),
    ("otel-gateway-2", "otel-collector/gateway.yaml"),
];

/// Ports a collector listens on, from its effective `OTELCOL_*` environment: `*_ENDPOINT` addresses on all
/// interfaces and `*_PORT` numbers. Outgoing endpoints (Loki, Jaeger, gateways) name other services.
fn collector_listeners(env: &BTreeMap<String, String>) -> BTreeSet<u16> {
    let mut ports = BTreeSet::new();
    for (k, v) in env {
        let port = if k.ends_with("_ENDPOINT") && !v.contains("://") {
            port_of(v)
        } else if k.ends_with("_PORT") {
            v.parse().ok()
        } else {
            None
        };
        if let Some(p) = port
            && (v.starts_with("0.0.0.0:") || k.ends_with("_PORT"))
        {
            ports.insert(p);
        }
    }
    ports
}

struct Stack {
    doc: Value,
    collector_config: String,
    jaeger_config: String,
    loki_config: Value,
}

impl Stack {
    fn real() -> Stack {
        Stack::with(compose())
    }

    fn with(doc: Value) -> Stack {
        Stack {
            doc,
            collector_config: read("otel-collector/config.yaml"),
            jaeger_config: read("jaeger/config.yaml"),
            loki_config: yaml(&read("loki/config.yaml")),
        }
    }

    fn env(&self, name: &str) -> BTreeMap<String, String> {
        service(&self.doc, name).map(env_of).unwrap_or_default()
    }

    fn collector_env(&self) -> BTreeMap<String, String> {
        effective_env(&self.collector_config, &self.env("otel-collector"))
    }

    /// The effective `OTELCOL_*` environment of a `scale` profile collector running `config`.
    fn tier_env(&self, name: &str, config: &str) -> BTreeMap<String, String> {
        effective_env(&read(config), &self.env(name))
    }

    fn jaeger_env(&self) -> BTreeMap<String, String> {
        effective_env(&self.jaeger_config, &self.env("jaeger"))
    }

    fn loki_port(&self, key: &str) -> Option<u16> {
        self.loki_config
            .get("server")?
            .get(key)?
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
    }

    /// Flag value from the service's command, else the program's default listen address.
    fn flag_port(&self, svc: &str, flag_name: &str, default: u16) -> u16 {
        service(&self.doc, svc)
            .map(command)
            .and_then(|args| flag(&args, flag_name))
            .and_then(|a| port_of(&a))
            .unwrap_or(default)
    }

    fn grafana_port(&self) -> u16 {
        self.env("grafana")
            .get("GF_SERVER_HTTP_PORT")
            .and_then(|p| p.parse().ok())
            .unwrap_or(3000)
    }

    /// Ports each service listens on.
    fn listen_ports(&self) -> BTreeMap<&'static str, BTreeSet<u16>> {
        let mut m: BTreeMap<&'static str, BTreeSet<u16>> = BTreeMap::new();
        m.insert("otel-collector", collector_listeners(&self.collector_env()));
        for (name, config) in SCALE_TIER {
            m.insert(name, collector_listeners(&self.tier_env(name, config)));
        }
        for (k, v) in self.jaeger_env() {
            if k.ends_with("_PORT")
                && let Ok(p) = v.parse()
            {
                m.entry("jaeger").or_default().insert(p);
            }
        }
        for key in ["http_listen_port", "grpc_listen_port"] {
            if let Some(p) = self.loki_port(key) {
                m.entry("loki").or_default().insert(p);
            }
        }
        let app = self.env("image2model");
        for key in ["IMAGE2MODEL_LISTEN", "TELEMETRY_ADMIN_ADDR"] {
            if let Some(p) = app.get(key).and_then(|a| port_of(a)) {
                m.entry("image2model").or_default().insert(p);
            }
        }
        m.entry("prometheus").or_default().insert(self.flag_port(
            "prometheus",
            "--web.listen-address",
            9090,
        ));
        m.entry("alertmanager").or_default().insert(self.flag_port(
            "alertmanager",
            "--web.listen-address",
            9093,
        ));
        m.entry("grafana").or_default().insert(self.grafana_port());
        m
    }

    /// The readiness endpoint of each long-running service, as its healthcheck must probe it.
    fn readiness_urls(&self) -> BTreeMap<&'static str, String> {
        let mut m = BTreeMap::new();
        let local = |port: Option<u16>, path: &str| match port {
            Some(p) => format!("http://127.0.0.1:{p}{path}"),
            None => format!("<no port found for {path}>"),
        };
        let col = self.collector_env();
        m.insert(
            "otel-collector",
            local(
                col.get("OTELCOL_HEALTH_ENDPOINT").and_then(|a| port_of(a)),
                "/",
            ),
        );
        for (name, config) in SCALE_TIER {
            let env = self.tier_env(name, config);
            m.insert(
                name,
                local(
                    env.get("OTELCOL_HEALTH_ENDPOINT").and_then(|a| port_of(a)),
                    "/",
                ),
            );
        }
        let jg = self.jaeger_env();
        m.insert(
            "jaeger",
            local(
                jg.get("JAEGER_QUERY_HTTP_PORT")
                    .and_then(|p| p.parse().ok()),
                "/api/v3/services",
            ),
        );
        m.insert("loki", local(self.loki_port("http_listen_port"), "/ready"));
        m.insert(
            "prometheus",
            local(
                Some(self.flag_port("prometheus", "--web.listen-address", 9090)),
                "/-/ready",
            ),
        );
        m.insert(
            "alertmanager",
            local(
                Some(self.flag_port("alertmanager", "--web.listen-address", 9093)),
                "/-/ready",
            ),
        );
        m.insert("grafana", local(Some(self.grafana_port()), "/api/health"));
        m.insert(
            "image2model",
            local(
                self.env("image2model")
                    .get("IMAGE2MODEL_LISTEN")
                    .and_then(|a| port_of(a)),
                "/ready",
            ),
        );
        m
    }
}

// ---------------------------------------------------------------------------------------------------
// Rules

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
fn image_tag(image: &str) -> Option<&str> {
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

/// Published ports: `127.0.0.1:host:container[/proto]` or the long form with `host_ip: 127.0.0.1`.
fn published_ports(svc: &Value) -> Vec<(Option<String>, Option<u16>, String)> {
    let mut out = Vec::new();
    for p in svc
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match p {
            Value::Object(m) => out.push((
                m.get("host_ip").and_then(scalar),
                m.get("target")
                    .and_then(Value::as_u64)
                    .and_then(|t| u16::try_from(t).ok()),
                p.to_string(),
            )),
            other => {
                let s = scalar(other).unwrap_or_default();
                let spec = s.split('/').next().unwrap_or(&s);
                let parts: Vec<&str> = spec.split(':').collect();
                let ip = (parts.len() == 3).then(|| parts[0].to_string());
                let target = parts.last().and_then(|t| t.parse().ok());
                out.push((ip, target, s));
            }
        }
    }
    out
}

fn non_loopback_ports(doc: &Value) -> Vec<String> {
    let mut v = Vec::new();
    for (name, svc) in services(doc) {
        for (ip, _, spec) in published_ports(svc) {
            if ip.as_deref() != Some("127.0.0.1") {
                v.push(format!("{name}: port {spec} is not bound to 127.0.0.1"));
            }
        }
    }
    v
}

fn ports_not_listened_on(stack: &Stack) -> Vec<String> {
    let listen = stack.listen_ports();
    let mut v = Vec::new();
    for (name, svc) in services(&stack.doc) {
        for (_, target, spec) in published_ports(svc) {
            let ok = match (listen.get(name), target) {
                (Some(ports), Some(t)) => ports.contains(&t),
                _ => false,
            };
            if !ok {
                v.push(format!(
                    "{name}: publishes {spec}, but its config listens on {:?}",
                    listen.get(name)
                ));
            }
        }
    }
    v
}

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

/// Prometheus scrape and alerting targets name compose services on ports those services listen on.
fn prometheus_target_violations(stack: &Stack, prometheus_yml: &str) -> Vec<String> {
    let listen = stack.listen_ports();
    let mut v = Vec::new();
    let mut targets = Vec::new();
    collect_targets(&yaml(prometheus_yml), &mut targets);
    if targets.is_empty() {
        v.push("prometheus.yml has no targets".into());
    }
    for t in targets {
        let Some((host, port)) = t.rsplit_once(':') else {
            v.push(format!("target {t:?} is not host:port"));
            continue;
        };
        let host = if host == "localhost" {
            "prometheus"
        } else {
            host
        };
        let port: Option<u16> = port.parse().ok();
        match (listen.get(host), port) {
            (Some(ports), Some(p)) if ports.contains(&p) => {}
            (Some(ports), _) => v.push(format!("target {t}: {host} listens on {ports:?}")),
            (None, _) => v.push(format!("target {t}: no compose service {host:?}")),
        }
        if service(&stack.doc, host).is_none() {
            v.push(format!("target {t}: no compose service {host:?}"));
        }
    }
    v
}

fn collect_targets(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, val) in m {
                if k == "targets" {
                    out.extend(val.as_array().into_iter().flatten().filter_map(scalar));
                } else {
                    collect_targets(val, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_targets(x, out)),
        _ => {}
    }
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

/// image2model exports OTLP/gRPC to the collector's gRPC port, and starts after the collector is healthy.
fn app_export_violations(stack: &Stack) -> Vec<String> {
    let env = stack.env("image2model");
    let grpc_port = stack
        .collector_env()
        .get("OTELCOL_OTLP_GRPC_ENDPOINT")
        .and_then(|a| port_of(a));
    let mut v = Vec::new();
    let want = grpc_port.map(|p| format!("http://otel-collector:{p}"));
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") != want.as_ref() {
        v.push(format!(
            "image2model: OTEL_EXPORTER_OTLP_ENDPOINT {:?}, want {want:?}",
            env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        ));
    }
    if env.get("OTEL_EXPORTER_OTLP_PROTOCOL").map(String::as_str) != Some("grpc") {
        v.push("image2model: OTEL_EXPORTER_OTLP_PROTOCOL is not grpc".into());
    }
    if let Some(a) = env.get("IMAGE2MODEL_LISTEN")
        && !a.starts_with("0.0.0.0:")
    {
        v.push(format!(
            "image2model: listens on {a}, unreachable from other containers"
        ));
    }
    if let Some(a) = env.get("TELEMETRY_ADMIN_ADDR")
        && !a.starts_with("0.0.0.0:")
    {
        v.push(format!(
            "image2model: admin listener {a} is unreachable for Prometheus"
        ));
    }
    if service(&stack.doc, "image2model").and_then(|s| condition_on(s, "otel-collector"))
        != Some("service_healthy")
    {
        v.push("image2model: does not wait for a healthy otel-collector".into());
    }
    v
}

// ---------------------------------------------------------------------------------------------------
// Dockerfile

/// Logical lines (backslash continuations joined), comments dropped.
fn dockerfile_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && cur.is_empty()) {
            continue;
        }
        if let Some(body) = t.strip_suffix('\\') {
            cur.push_str(body);
            cur.push(' ');
        } else {
            cur.push_str(t);
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn instruction<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let (head, rest) = line.split_once(char::is_whitespace)?;
    head.eq_ignore_ascii_case(name).then_some(rest.trim())
}

/// `FROM image [AS name]` lines: (image, stage name).
fn stages(text: &str) -> Vec<(String, Option<String>)> {
    dockerfile_lines(text)
        .iter()
        .filter_map(|l| instruction(l, "FROM"))
        .map(|rest| {
            let words: Vec<&str> = rest
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let image = words.first().copied().unwrap_or("").to_string();
            let name = words
                .iter()
                .position(|w| w.eq_ignore_ascii_case("AS"))
                .and_then(|i| words.get(i + 1))
                .map(|s| s.to_string());
            (image, name)
        })
        .collect()
}

fn final_stage(text: &str) -> Vec<String> {
    let lines = dockerfile_lines(text);
    let start = lines
        .iter()
        .rposition(|l| instruction(l, "FROM").is_some())
        .unwrap_or(0);
    lines[start..].to_vec()
}

fn parse_version(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    let patch = it.next().map_or(Some(0), |p| p.parse().ok())?;
    Some((major, minor, patch))
}

fn workspace_rust_version(cargo_toml: &str) -> Option<(u32, u32, u32)> {
    cargo_toml
        .lines()
        .find_map(|l| l.trim().strip_prefix("rust-version"))
        .and_then(|r| r.split('"').nth(1))
        .and_then(parse_version)
}

/// Debian release of an image tag: `rust:1.95.0-slim-trixie` -> 13, `debian:13.4-slim` -> 13.
fn debian_release(image: &str) -> Option<u32> {
    const CODENAMES: [(&str, u32); 3] = [("bullseye", 11), ("bookworm", 12), ("trixie", 13)];
    let tag = image_tag(image)?;
    if let Some((_, n)) = CODENAMES.iter().find(|(c, _)| tag.contains(c)) {
        return Some(*n);
    }
    if image.starts_with("debian:") {
        return tag.split(['.', '-']).next()?.parse().ok();
    }
    None
}

fn dockerfile_violations(dockerfile: &str, cargo_toml: &str) -> Vec<String> {
    let mut v = Vec::new();
    let stages = stages(dockerfile);
    let names: BTreeSet<String> = stages.iter().filter_map(|(_, n)| n.clone()).collect();
    if stages.len() < 2 {
        v.push("Dockerfile is not multi-stage".into());
    }
    for (image, _) in &stages {
        if names.contains(image) {
            continue;
        }
        match image_tag(image) {
            None => v.push(format!("FROM {image}: untagged")),
            Some("latest") => v.push(format!("FROM {image}: latest")),
            Some(t) if !t.chars().any(|c| c.is_ascii_digit()) => {
                v.push(format!("FROM {image}: tag names no version"))
            }
            _ => {}
        }
    }
    // The builder: an official rust image at least as new as the workspace's rust-version.
    let builder = stages.iter().find(|(i, _)| i.starts_with("rust:"));
    let want = workspace_rust_version(cargo_toml);
    match (builder, want) {
        (None, _) => v.push("no FROM rust:<version> builder stage".into()),
        (_, None) => v.push("workspace Cargo.toml has no rust-version".into()),
        (Some((image, _)), Some(want)) => {
            let have = image_tag(image)
                .and_then(|t| t.split('-').next())
                .and_then(parse_version);
            match have {
                Some(have) if have >= want => {}
                have => v.push(format!(
                    "{image}: Rust {have:?} is older than the workspace rust-version {want:?}"
                )),
            }
        }
    }
    // glibc: the runtime's Debian release is the builder's or newer.
    let runtime = stages.last().map(|(i, _)| i.as_str()).unwrap_or("");
    match (builder.and_then(|(i, _)| debian_release(i)), debian_release(runtime)) {
        (Some(b), Some(r)) if r >= b => {}
        (b, r) => v.push(format!(
            "runtime {runtime} (Debian {r:?}) is older than the builder's Debian {b:?}, or unknown: \
             the binary may need a newer glibc"
        )),
    }
    let all = dockerfile_lines(dockerfile);
    if !all.iter().any(|l| {
        l.contains("cargo build")
            && l.contains("--release")
            && l.contains("--locked")
            && l.contains("-p image2model")
    }) {
        v.push("no `cargo build --release -p image2model --locked`".into());
    }
    let last = final_stage(dockerfile);
    // image2model refuses to start without a CA store (rustls with the system roots: https providers and
    // OTLP endpoints), and slim images have none unless ca-certificates is installed.
    if !last
        .iter()
        .any(|l| l.contains("apt-get install") && l.contains("ca-certificates"))
    {
        v.push(
            "runtime stage does not install ca-certificates (image2model exits without a CA store)"
                .into(),
        );
    }
    match last.iter().rev().find_map(|l| instruction(l, "USER")) {
        None => v.push("runtime stage runs as root (no USER)".into()),
        Some(u) if matches!(u.split(':').next(), Some("root") | Some("0")) => {
            v.push(format!("runtime stage runs as root (USER {u})"))
        }
        Some(_) => {}
    }
    match last.iter().find_map(|l| instruction(l, "HEALTHCHECK")) {
        None => v.push("runtime stage has no HEALTHCHECK".into()),
        Some(h) if !h.contains("/ready") => {
            v.push(format!("HEALTHCHECK {h} does not probe /ready"))
        }
        Some(_) => {}
    }
    let exposed: BTreeSet<&str> = last
        .iter()
        .filter_map(|l| instruction(l, "EXPOSE"))
        .flat_map(str::split_whitespace)
        .collect();
    for port in ["8080", "9464"] {
        if !exposed.contains(port) {
            v.push(format!("runtime stage does not EXPOSE {port}"));
        }
    }
    v
}

/// `*` glob of one path segment, as `.dockerignore` patterns use it.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((pre, post)) => {
            name.len() >= pre.len() + post.len() && name.starts_with(pre) && name.ends_with(post)
        }
    }
}

fn dockerignore_violations(text: &str) -> Vec<String> {
    let patterns: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .map(|l| l.trim_end_matches('/'))
        .collect();
    [
        "target",
        "target-compose",
        "target-image2model",
        ".git",
        "data",
        "logs",
        ".env",
    ]
    .iter()
    .filter(|path| !patterns.iter().any(|p| glob(p, path)))
    .map(|path| format!(".dockerignore does not exclude {path}"))
    .collect()
}

/// The `scale` profile: its collectors run the image of the single collector, only under that profile,
/// and the agent's default gateway list names exactly the profile's gateways on their OTLP/gRPC port.
fn scale_tier_violations(stack: &Stack, agent_config: &str) -> Vec<String> {
    let doc = &stack.doc;
    let image = |name: &str| {
        service(doc, name)
            .and_then(|s| s.get("image"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let mut v = Vec::new();
    let want = image("otel-collector");
    for (name, _) in SCALE_TIER {
        let Some(svc) = service(doc, name) else {
            v.push(format!("no service {name} (the scale profile)"));
            continue;
        };
        if image(name) != want {
            v.push(format!(
                "{name}: image {:?}, but otel-collector runs {want:?}",
                image(name)
            ));
        }
        let profiles: Vec<String> = svc
            .get("profiles")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(scalar)
            .collect();
        if profiles != ["scale"] {
            v.push(format!("{name}: profiles {profiles:?}, want [\"scale\"]"));
        }
    }
    let listed: BTreeSet<String> = interpolations(agent_config)
        .into_iter()
        .find(|i| i.name == "OTELCOL_GATEWAY_ENDPOINTS")
        .and_then(|i| stack.env("otel-agent").get(&i.name).cloned().or(i.default))
        .map(|list| {
            list.trim_matches(|c| c == '[' || c == ']')
                .split(',')
                .map(|e| e.trim().to_string())
                .filter(|e| !e.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let gateways: BTreeSet<String> = SCALE_TIER
        .iter()
        .filter(|(_, config)| config.ends_with("gateway.yaml"))
        .map(|(name, config)| {
            let grpc = stack
                .tier_env(name, config)
                .get("OTELCOL_OTLP_GRPC_ENDPOINT")
                .and_then(|a| port_of(a))
                .unwrap_or(0);
            format!("{name}:{grpc}")
        })
        .collect();
    if listed != gateways {
        v.push(format!(
            "the agent routes to {listed:?}, but the scale profile's gateways listen on {gateways:?}"
        ));
    }
    v
}

// ---------------------------------------------------------------------------------------------------
// Tests on the real files

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
fn every_published_port_is_bound_to_loopback() {
    assert_clean("ports", non_loopback_ports(&compose()));
}

#[test]
fn every_published_port_is_one_the_service_listens_on() {
    assert_clean("ports", ports_not_listened_on(&Stack::real()));
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
fn scale_profile_runs_the_collector_image_and_the_agent_routes_to_its_gateways() {
    assert_clean(
        "scale profile",
        scale_tier_violations(&Stack::real(), &read("otel-collector/agent.yaml")),
    );
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
fn scale_rule_rejects_another_image_a_missing_profile_and_a_gateway_the_agent_does_not_know() {
    let doc = broken(|d| {
        d["services"]["otel-gateway-1"]["image"] =
            json!("otel/opentelemetry-collector-contrib:0.1.0");
        d["services"]["otel-agent"]
            .as_object_mut()
            .map(|s| s.remove("profiles"));
        d["services"]["otel-agent"]["environment"] =
            json!({"OTELCOL_GATEWAY_ENDPOINTS": "[otel-gateway-1:4317]"});
    });
    let v = scale_tier_violations(&Stack::with(doc), &read("otel-collector/agent.yaml"));
    assert_caught(&v, "otel-gateway-1: image");
    assert_caught(&v, "otel-agent: profiles");
    assert_caught(&v, "the agent routes to");
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
fn prometheus_targets_name_compose_services_on_ports_they_listen_on() {
    assert_clean(
        "prometheus targets",
        prometheus_target_violations(&Stack::real(), &read("prometheus/prometheus.yml")),
    );
}

#[test]
fn image2model_variables_are_ones_the_app_reads() {
    assert_clean(
        "app variables",
        unknown_app_variables(&compose(), &app_sources()),
    );
}

#[test]
fn image2model_exports_otlp_grpc_to_the_collector() {
    assert_clean("app export", app_export_violations(&Stack::real()));
}

#[test]
fn dockerfile_is_multi_stage_pinned_non_root_and_its_rust_satisfies_the_workspace_rust_version() {
    assert_clean(
        "Dockerfile",
        dockerfile_violations(&read("Dockerfile"), &read("Cargo.toml")),
    );
}

#[test]
fn dockerignore_keeps_build_outputs_git_data_logs_and_env_out_of_the_context() {
    assert_clean(
        ".dockerignore",
        dockerignore_violations(&read(".dockerignore")),
    );
}

// ---------------------------------------------------------------------------------------------------
// Each rule catches a deliberately broken copy

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

#[test]
fn port_rule_rejects_ports_on_every_interface() {
    let v = non_loopback_ports(&broken(|d| {
        d["services"]["grafana"]["ports"] = json!([
            "3000:3000",
            "0.0.0.0:3001:3000",
            {"target": 3000, "published": "3002"},
            {"target": 3000, "published": "3003", "host_ip": "127.0.0.1"}
        ]);
    }));
    assert_eq!(v.len(), 3, "{v:?}");
    assert_caught(&v, "port 3000:3000");
}

#[test]
fn port_rule_rejects_publishing_a_port_nothing_listens_on() {
    let v = ports_not_listened_on(&Stack::with(broken(|d| {
        d["services"]["jaeger"]["ports"] = json!(["127.0.0.1:14268:14268"]);
    })));
    assert_caught(&v, "jaeger: publishes 127.0.0.1:14268:14268");
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

#[test]
fn prometheus_target_rule_rejects_an_unknown_service_and_a_wrong_port() {
    let prom = read("prometheus/prometheus.yml");
    let renamed = prom.replace("\"jaeger:8888\"", "\"jaeger-query:8888\"");
    assert_ne!(renamed, prom);
    assert_caught(
        &prometheus_target_violations(&Stack::real(), &renamed),
        "no compose service \"jaeger-query\"",
    );
    let moved = prom.replace("\"image2model:9464\"", "\"image2model:9465\"");
    assert_ne!(moved, prom);
    assert_caught(
        &prometheus_target_violations(&Stack::real(), &moved),
        "target image2model:9465",
    );
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

#[test]
fn app_export_rule_rejects_the_http_port_loopback_listeners_and_no_wait() {
    let v = app_export_violations(&Stack::with(broken(|d| {
        let env = &mut d["services"]["image2model"]["environment"];
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = json!("http://otel-collector:4318");
        env["TELEMETRY_ADMIN_ADDR"] = json!("127.0.0.1:9464");
        d["services"]["image2model"]
            .as_object_mut()
            .and_then(|m| m.remove("depends_on"))
            .expect("the real file has depends_on");
    })));
    assert_caught(&v, "want Some(\"http://otel-collector:4317\")");
    assert_caught(&v, "admin listener 127.0.0.1:9464");
    assert_caught(&v, "does not wait");
}

#[test]
fn dockerfile_rule_rejects_old_rust_latest_bases_root_older_runtime_and_unlocked_builds() {
    let real = read("Dockerfile");
    let cargo = read("Cargo.toml");
    let cases = [
        (
            real.replace("rust:1.95.0-slim-trixie", "rust:1.85.0-slim-trixie"),
            "older than the workspace rust-version",
        ),
        (
            real.replace("debian:13.4-slim", "debian:latest"),
            "FROM debian:latest: latest",
        ),
        (
            real.replace("debian:13.4-slim", "debian:12.11-slim"),
            "may need a newer glibc",
        ),
        (
            real.replace("USER 10001:10001", "USER root"),
            "runs as root",
        ),
        (real.replace(" --locked", ""), "--locked"),
        (
            real.replace("HEALTHCHECK", "# HEALTHCHECK"),
            "no HEALTHCHECK",
        ),
        (
            real.replace("EXPOSE 8080 9464", "EXPOSE 8080"),
            "EXPOSE 9464",
        ),
        (real.replace("ca-certificates ", ""), "ca-certificates"),
    ];
    for (text, needle) in cases {
        assert_ne!(text, real, "the mutation for {needle:?} changed nothing");
        assert_caught(&dockerfile_violations(&text, &cargo), needle);
    }
    let newer = cargo.replace("rust-version = \"1.88\"", "rust-version = \"1.96\"");
    assert_ne!(newer, cargo);
    assert_caught(
        &dockerfile_violations(&real, &newer),
        "older than the workspace rust-version",
    );
}

#[test]
fn dockerignore_rule_rejects_a_context_with_target_dirs_or_git() {
    let v = dockerignore_violations("target\n.git\ndata\nlogs\n.env\n");
    assert_caught(&v, "target-compose");
    let v = dockerignore_violations("target*\ndata\nlogs\n.env\n");
    assert_caught(&v, ".git");
}

#[test]
fn interpolation_parser_reads_defaults_required_markers_and_escapes() {
    let got =
        interpolations("a ${A} ${B:-x:1} ${C-y} ${D:?msg} ${E?m} $${F} ${env:G:-0.0.0.0:4317}");
    let names: Vec<_> = got.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["A", "B", "C", "D", "E", "G"]);
    assert_eq!(got[1].default.as_deref(), Some("x:1"));
    assert_eq!(got[3].required, Some(true));
    assert_eq!(got[4].required, Some(false));
    assert_eq!(got[5].default.as_deref(), Some("0.0.0.0:4317"));
}
