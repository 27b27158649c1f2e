//! Renders the compose-oriented Prometheus and Alertmanager configs for the loopback stack.
//!
//! Neither Prometheus nor Alertmanager expands environment variables in its config, so the repository's files
//! name compose addresses (`otel-collector:8889`, ...) and a placeholder webhook URL. The native stack writes a
//! copy where each of those becomes a loopback address; everything else stays byte for byte the same, so the
//! tests run the very rules and scrape settings compose runs.

use std::path::Path;

use crate::error::StackError;

/// The webhook URL `alertmanager/alertmanager.yml` carries as a placeholder for the native stack's receiver.
pub const WEBHOOK_PLACEHOLDER: &str = "http://127.0.0.1:9095/alerts";

/// The compose addresses `prometheus/prometheus.yml` scrapes, in the order of [`PrometheusTargets`]' fields.
pub const COMPOSE_TARGETS: [&str; 6] = [
    "localhost:9090",
    "otel-collector:8889",
    "otel-collector:8888",
    "image2model:9464",
    "jaeger:8888",
    "alertmanager:9093",
];

/// Loopback addresses (`127.0.0.1:port`) that replace the compose ones.
#[derive(Debug, Clone)]
pub struct PrometheusTargets {
    /// Prometheus itself.
    pub prometheus: String,
    /// The collector's Prometheus exporter (app metrics + span metrics).
    pub collector_exporter: String,
    /// The collector's own telemetry.
    pub collector_self: String,
    /// The app's admin listener.
    pub app_admin: String,
    /// Jaeger's own metrics.
    pub jaeger: String,
    /// Alertmanager.
    pub alertmanager: String,
}

/// Renders prometheus.yml: compose targets become loopback ones, `rules/` becomes `rules_dir`, and with
/// `interval` set, the global scrape interval, scrape timeout and evaluation interval become it (tests use a
/// few seconds instead of 15 s; every rule and scrape job stays the same).
pub fn prometheus(
    src: &str,
    targets: &PrometheusTargets,
    rules_dir: &Path,
    interval: Option<&str>,
) -> Result<String, StackError> {
    let loopback = [
        &targets.prometheus,
        &targets.collector_exporter,
        &targets.collector_self,
        &targets.app_admin,
        &targets.jaeger,
        &targets.alertmanager,
    ];
    let mut out = src.to_string();
    for (compose, local) in COMPOSE_TARGETS.iter().zip(loopback) {
        let quoted = format!("\"{compose}\"");
        if !out.contains(&quoted) {
            return Err(render_error(
                "prometheus.yml",
                format!("no target {quoted}"),
            ));
        }
        out = out.replace(&quoted, &format!("\"{local}\""));
    }
    let rules = "  - rules/*.yml";
    if !out.contains(rules) {
        return Err(render_error(
            "prometheus.yml",
            format!("no rule_files entry `{rules}`"),
        ));
    }
    out = out.replace(rules, &format!("  - {}/*.yml", rules_dir.display()));
    if let Some(interval) = interval {
        for key in ["scrape_interval", "scrape_timeout", "evaluation_interval"] {
            let line = out
                .lines()
                .find(|l| {
                    l.trim_start().starts_with(&format!("{key}:"))
                        && l.starts_with("  ")
                        && !l.starts_with("    ")
                })
                .map(str::to_string)
                .ok_or_else(|| render_error("prometheus.yml", format!("no global {key}")))?;
            out = out.replacen(&line, &format!("  {key}: {interval}"), 1);
        }
    }
    Ok(out)
}

/// Renders alertmanager.yml: the placeholder webhook URL becomes `webhook_url`.
pub fn alertmanager(src: &str, webhook_url: &str) -> Result<String, StackError> {
    if !src.contains(WEBHOOK_PLACEHOLDER) {
        return Err(render_error(
            "alertmanager.yml",
            format!("no webhook placeholder {WEBHOOK_PLACEHOLDER}"),
        ));
    }
    Ok(src.replace(WEBHOOK_PLACEHOLDER, webhook_url))
}

fn render_error(file: &str, reason: String) -> StackError {
    StackError::Render {
        file: file.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> PrometheusTargets {
        PrometheusTargets {
            prometheus: "127.0.0.1:1".into(),
            collector_exporter: "127.0.0.1:2".into(),
            collector_self: "127.0.0.1:3".into(),
            app_admin: "127.0.0.1:4".into(),
            jaeger: "127.0.0.1:5".into(),
            alertmanager: "127.0.0.1:6".into(),
        }
    }

    #[test]
    fn the_repository_prometheus_config_renders_every_compose_address_to_loopback() {
        let src =
            std::fs::read_to_string(crate::paths::repo_root().join("prometheus/prometheus.yml"))
                .expect("prometheus.yml is readable");
        let out =
            prometheus(&src, &targets(), Path::new("/abs/rules"), Some("2s")).expect("renders");
        for compose in COMPOSE_TARGETS {
            let quoted = format!("\"{compose}\"");
            assert!(
                !out.contains(&quoted),
                "{quoted} left in the rendered config"
            );
        }
        for port in 1..=6 {
            assert!(out.contains(&format!("\"127.0.0.1:{port}\"")));
        }
        assert!(out.contains("  - /abs/rules/*.yml"));
        for key in ["scrape_interval", "scrape_timeout", "evaluation_interval"] {
            assert!(
                out.contains(&format!("\n  {key}: 2s\n")),
                "{key} not rendered"
            );
        }
        // Only the substituted lines differ: target lines, the rule_files line and the three intervals.
        let target_lines = src
            .lines()
            .filter(|l| {
                COMPOSE_TARGETS
                    .iter()
                    .any(|t| l.contains(&format!("\"{t}\"")))
            })
            .count();
        let changed = src.lines().zip(out.lines()).filter(|(a, b)| a != b).count();
        assert_eq!(src.lines().count(), out.lines().count());
        assert_eq!(changed, target_lines + 1 + 3);
    }

    #[test]
    fn a_prometheus_config_missing_a_compose_target_is_refused_by_name() {
        let src = "global:\n  scrape_interval: 15s\nrule_files:\n  - rules/*.yml\n";
        let err = prometheus(src, &targets(), Path::new("/r"), None).unwrap_err();
        assert!(err.to_string().contains("\"localhost:9090\""), "{err}");
    }

    #[test]
    fn the_repository_alertmanager_config_gets_the_given_webhook() {
        let src = std::fs::read_to_string(
            crate::paths::repo_root().join("alertmanager/alertmanager.yml"),
        )
        .expect("alertmanager.yml is readable");
        let out = alertmanager(&src, "http://127.0.0.1:4242/alerts").expect("renders");
        assert!(!out.contains(WEBHOOK_PLACEHOLDER));
        assert!(out.contains("http://127.0.0.1:4242/alerts"));
    }

    #[test]
    fn an_alertmanager_config_without_the_placeholder_is_refused() {
        assert!(alertmanager("route: {}\n", "http://x").is_err());
    }
}
