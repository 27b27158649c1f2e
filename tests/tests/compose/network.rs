//! Ports and addresses: published ports bound to loopback and listened on, Prometheus targets, the app's
//! OTLP export, and the agent/gateway tier of the `scale` profile.

use std::collections::BTreeSet;

use serde_json::Value;
use serde_json::json;
use stack_tests::rules::{assert_caught, assert_clean, read, yaml};

use crate::document::{condition_on, interpolations, port_of, scalar, service, services};
use crate::listeners::{SCALE_TIER, Stack};
use crate::{broken, compose};

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

#[test]
fn every_published_port_is_bound_to_loopback() {
    assert_clean("ports", non_loopback_ports(&compose()));
}

#[test]
fn every_published_port_is_one_the_service_listens_on() {
    assert_clean("ports", ports_not_listened_on(&Stack::real()));
}

#[test]
fn scale_profile_runs_the_collector_image_and_the_agent_routes_to_its_gateways() {
    assert_clean(
        "scale profile",
        scale_tier_violations(&Stack::real(), &read("otel-collector/agent.yaml")),
    );
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
fn prometheus_targets_name_compose_services_on_ports_they_listen_on() {
    assert_clean(
        "prometheus targets",
        prometheus_target_violations(&Stack::real(), &read("prometheus/prometheus.yml")),
    );
}

#[test]
fn image2model_exports_otlp_grpc_to_the_collector() {
    assert_clean("app export", app_export_violations(&Stack::real()));
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
