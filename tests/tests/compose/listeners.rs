//! What the services listen on and where they report readiness, derived from the config files they run: the
//! other side every port, healthcheck and target rule is checked against.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use serde_json::Value;
use stack_tests::rules::{read, yaml};

use crate::compose;
use crate::document::{command, effective_env, env_of, flag, port_of, service};

/// The agent/gateway tier of the `scale` profile: (service, the collector config it runs).
pub(crate) const SCALE_TIER: [(&str, &str); 3] = [
    ("otel-agent", "otel-collector/agent.yaml"),
    ("otel-gateway-1", "otel-collector/gateway.yaml"),
    ("otel-gateway-2", "otel-collector/gateway.yaml"),
];

/// Ports a collector listens on, from its effective `OTELCOL_*` environment: `*_ENDPOINT` addresses on all
/// interfaces and `*_PORT` numbers. Outgoing endpoints (Loki, Jaeger, gateways) name other services.
pub(crate) fn collector_listeners(env: &BTreeMap<String, String>) -> BTreeSet<u16> {
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

pub(crate) struct Stack {
    pub(crate) doc: Value,
    pub(crate) collector_config: String,
    pub(crate) jaeger_config: String,
    pub(crate) loki_config: Value,
}

impl Stack {
    pub(crate) fn real() -> Stack {
        Stack::with(compose())
    }

    pub(crate) fn with(doc: Value) -> Stack {
        Stack {
            doc,
            collector_config: read("otel-collector/config.yaml"),
            jaeger_config: read("jaeger/config.yaml"),
            loki_config: yaml(&read("loki/config.yaml")),
        }
    }

    pub(crate) fn env(&self, name: &str) -> BTreeMap<String, String> {
        service(&self.doc, name).map(env_of).unwrap_or_default()
    }

    pub(crate) fn collector_env(&self) -> BTreeMap<String, String> {
        effective_env(&self.collector_config, &self.env("otel-collector"))
    }

    /// The effective `OTELCOL_*` environment of a `scale` profile collector running `config`.
    pub(crate) fn tier_env(&self, name: &str, config: &str) -> BTreeMap<String, String> {
        effective_env(&read(config), &self.env(name))
    }

    pub(crate) fn jaeger_env(&self) -> BTreeMap<String, String> {
        effective_env(&self.jaeger_config, &self.env("jaeger"))
    }

    pub(crate) fn loki_port(&self, key: &str) -> Option<u16> {
        self.loki_config
            .get("server")?
            .get(key)?
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
    }

    /// Flag value from the service's command, else the program's default listen address.
    pub(crate) fn flag_port(&self, svc: &str, flag_name: &str, default: u16) -> u16 {
        service(&self.doc, svc)
            .map(command)
            .and_then(|args| flag(&args, flag_name))
            .and_then(|a| port_of(&a))
            .unwrap_or(default)
    }

    pub(crate) fn grafana_port(&self) -> u16 {
        self.env("grafana")
            .get("GF_SERVER_HTTP_PORT")
            .and_then(|p| p.parse().ok())
            .unwrap_or(3000)
    }

    /// Ports each service listens on.
    pub(crate) fn listen_ports(&self) -> BTreeMap<&'static str, BTreeSet<u16>> {
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
    pub(crate) fn readiness_urls(&self) -> BTreeMap<&'static str, String> {
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
