//! Which events go where: the level filter with chatty dependencies quietened, and the targets that
//! must never feed the OTel log exporter.

use tracing_subscriber::EnvFilter;

use crate::TelemetryError;

/// Targets whose events never reach the OTel log exporter: the HTTP/gRPC stack the exporters use
/// and the OTel SDK itself, so an export error cannot produce a log record that is exported again.
const FEEDBACK_TARGETS: &[&str] = &[
    "hyper",
    "hyper_util",
    "h2",
    "tonic",
    "tower",
    "reqwest",
    "opentelemetry",
    "otelbricks_telemetry::export",
];

/// True when events of `target` may be exported as OTel log records: false for the HTTP/gRPC
/// stack the exporters use (`hyper`, `h2`, `tonic`, `tower`, `reqwest`), the OTel SDK and our
/// exporter wrapper, so an export error cannot produce a record that is exported again.
pub fn no_feedback_target(target: &str) -> bool {
    !FEEDBACK_TARGETS.iter().any(|t| {
        target.strip_prefix(t).is_some_and(|rest| {
            rest.is_empty()
                || rest.starts_with("::")
                || rest.starts_with('_')
                || rest.starts_with('-')
        })
    })
}

/// Directives added to the level filter for chatty dependencies, unless the filter names them.
const QUIET: &[&str] = &[
    "h2=warn",
    "hyper=warn",
    "hyper_util=warn",
    "tonic=warn",
    "tower=warn",
    "reqwest=warn",
    "opentelemetry=warn",
    "opentelemetry_sdk=warn",
    "opentelemetry-otlp=warn",
];

pub(crate) fn env_filter(directives: &str) -> Result<EnvFilter, TelemetryError> {
    let mut all = directives.to_owned();
    for q in QUIET {
        let name = q.split('=').next().unwrap_or_default();
        if !directives.contains(name) {
            all.push(',');
            all.push_str(q);
        }
    }
    EnvFilter::builder()
        .parse(&all)
        .map_err(|e| TelemetryError::InvalidConfig {
            var: "RUST_LOG".into(),
            value: directives.into(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exporter_stack_targets_never_feed_the_log_exporter() {
        for t in [
            "hyper",
            "hyper_util::client",
            "h2::codec",
            "tonic::transport",
            "reqwest",
            "opentelemetry_sdk",
            "opentelemetry-otlp",
            "otelbricks_telemetry::export",
        ] {
            assert!(!no_feedback_target(t), "{t} must be filtered");
        }
        for t in [
            "image2model",
            "hyperion",
            "telemetry_http",
            "my_app::tonicity",
        ] {
            assert!(no_feedback_target(t), "{t} must pass");
        }
    }

    #[test]
    fn quiet_directives_are_added_unless_the_filter_names_the_crate() {
        let f = env_filter("info,hyper=debug").expect("valid").to_string();
        assert!(f.contains("hyper=debug"), "{f}");
        assert!(!f.contains("hyper=warn"), "{f}");
        assert!(f.contains("h2=warn"), "{f}");
    }
}
