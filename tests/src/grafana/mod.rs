//! Grafana dashboards, Grafana provisioning and Prometheus rules, as data: what the static tests check and
//! what the end-to-end test runs against a live Prometheus.
//!
//! - [`load_dashboards`] reads `grafana/dashboards/*.json`; [`promql_queries`] / [`logql_queries`] list every
//!   panel target whose datasource is the provisioned Prometheus ([`PROMETHEUS_UID`]) or Loki ([`LOKI_UID`]).
//! - [`Substitutions`] + [`substitute`] turn a panel expression into runnable PromQL/LogQL by replacing the
//!   template variables (`$service`, `${route}`, `$__rate_interval`, `$__interval`, `$__range`, ...) with
//!   concrete values; an unknown variable is an error, never left in place.
//! - [`load_rules`] reads every `prometheus/rules/*.yml` into [`Rule`]s (name, kind, expression, labels,
//!   annotations); [`selectors`] lists the metric selectors of a PromQL expression (parsed with
//!   `promql-parser`), so that "returns data" can be checked on each selector of a rule whose expression
//!   compares against a threshold (and is therefore empty on a healthy stack).
//! - [`provisioned_datasources`] reads the datasource provisioning file.
//!
//! ```no_run
//! use stack_tests::grafana::{self, Substitutions};
//! let boards = grafana::load_dashboards(&grafana::dashboards_dir())?;
//! let subs = Substitutions::for_service("image2model");
//! for q in grafana::promql_queries(&boards) {
//!     let runnable = grafana::substitute(&q.expr, &subs)?;
//!     println!("{} / {}: {runnable}", q.dashboard_uid, q.panel_title);
//! }
//! for rule in grafana::load_rules(&grafana::rules_dir())? {
//!     for s in grafana::selectors(&rule.expr)? {
//!         println!("{} uses {}", rule.name, s.text);
//!     }
//! }
//! # Ok::<(), stack_tests::grafana::GrafanaError>(())
//! ```
//!
//! # Metric names (verified, not guessed)
//!
//! Checked on this machine against the real app (`image2model` + `loadgen`) exporting OTLP/HTTP to the real
//! collector (`otelcol-0.165.0`, `otel-collector/config.yaml`): the collector's Prometheus exporter
//! (`UnderscoreEscapingWithSuffixes`, scraped with `honor_labels`) gives `job` = `service.name`, `instance`
//! = `service.instance.id` (a UUID), and keeps `otel_scope_name`. The app's admin `/metrics` has the same
//! names (scraped as `job="image2model-admin"`; dashboards and rules exclude `job=~".+-admin"`).
//!
//! | OTel instrument | Prometheus series (labels) |
//! |---|---|
//! | `http.server.request.duration` | `http_server_request_duration_seconds_{bucket,count,sum}` (`http_route`, `http_request_method`, `http_response_status_code`, `url_scheme`); bucket `le="1"` (Prometheus 3 stores `le="1.0"`) |
//! | `http.server.active_requests` | `http_server_active_requests` (`http_request_method`, `url_scheme`; no route) |
//! | `http.client.request.duration` | `http_client_request_duration_seconds_*` (`server_address`, `server_port`, `http_response_status_code`, `error_type` on failure) |
//! | span_metrics connector | `traces_span_metrics_calls_total`, `traces_span_metrics_duration_seconds_bucket` (`service_name`, `span_name`, `span_kind`=`SPAN_KIND_SERVER`..., `status_code`=`STATUS_CODE_ERROR`/`_UNSET`, `http_route`, `http_request_method`, `http_response_status_code`); exemplars carry `trace_id` |
//! | business (Python design names) | `models_generated_total{status=success\|failure}`, `model_generation_duration_seconds_*` (successes only), `batch_processing_duration_seconds_*{batch_size}`, `tasks_total{task_name,status}`, `task_duration_seconds_*{task_name}`, `task_queue_length{queue_name}`, `fal_api_calls_total{endpoint,status}`, `fal_api_duration_seconds_*{endpoint}`, `fal_rate_limits_total` (appears with the first 429) |
//! | host-metrics | `system_cpu_utilization_ratio`, `system_cpu_load_average_{1m,5m,15m}`, `system_memory_usage_bytes{system_memory_state}`, `system_memory_utilization_ratio{system_memory_state}`, `system_memory_limit_bytes`, `system_filesystem_usage_bytes{system_filesystem_state=used\|free,system_filesystem_mountpoint}`, `system_filesystem_utilization_ratio`, `system_network_io_bytes_total{network_interface_name,network_io_direction}`, `system_disk_io_bytes_total{system_device,disk_io_direction}`, `process_cpu_utilization_ratio{cpu_mode}`, `process_memory_usage_bytes`, `process_memory_virtual_bytes`, `process_thread_count`, `process_unix_file_descriptor_count` |
//! | SDK self-metrics | `otel_sdk_processor_{span,log}_processed_total{error_type=queue_full\|already_shutdown}`, `otel_sdk_exporter_{span,log}_exported_total{otel_component_type}`, `telemetry_exporter_batches_total{signal,error_type on failure}`, `telemetry_log_file_lines_dropped_total{log_file_name}` |
//! | collector self-metrics (`job="otel-collector"`, **no `_total` suffix**) | `otelcol_receiver_{accepted,refused,failed}_{spans,metric_points,log_records}{receiver,transport}`, `otelcol_exporter_{sent,send_failed}_{spans,metric_points,log_records}{exporter}`, `otelcol_exporter_queue_{size,capacity}{exporter,data_type}` |

mod dashboards;
mod logql;
mod promql;
mod rule_files;
mod templating;

pub use dashboards::{
    Dashboard, Datasource, Language, Panel, Query, Variable, load_dashboards, logql_queries,
    promql_queries, provisioned_datasources,
};
pub use logql::logql_label_names;
pub use promql::{Selector, parse_promql, selectors};
pub use rule_files::{Rule, RuleKind, load_rule_file, load_rules};
pub use templating::{Substitutions, substitute, variables_in};

use std::path::{Path, PathBuf};

use crate::paths::repo_root;

/// The provisioned Prometheus datasource's uid.
pub const PROMETHEUS_UID: &str = "prometheus";

/// The provisioned Loki datasource's uid.
pub const LOKI_UID: &str = "loki";

/// The provisioned Jaeger datasource's uid.
pub const JAEGER_UID: &str = "jaeger";

/// The provisioned Alertmanager datasource's uid.
pub const ALERTMANAGER_UID: &str = "alertmanager";

/// What can go wrong while reading dashboards, provisioning files or rules.
#[derive(Debug, thiserror::Error)]
pub enum GrafanaError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid JSON or YAML, or lacks what it must hold.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A PromQL expression does not parse.
    #[error("invalid PromQL {expr:?}: {reason}")]
    PromQl {
        /// The expression.
        expr: String,
        /// The parser's message.
        reason: String,
    },
    /// An expression uses a template variable no substitution is given for.
    #[error("no value for template variable ${name} in {expr:?}")]
    UnknownVariable {
        /// The variable.
        name: String,
        /// The expression.
        expr: String,
    },
}

/// `grafana/dashboards` of the repository.
pub fn dashboards_dir() -> PathBuf {
    repo_root().join("grafana").join("dashboards")
}

/// `grafana/provisioning` of the repository.
pub fn provisioning_dir() -> PathBuf {
    repo_root().join("grafana").join("provisioning")
}

/// `prometheus/rules` of the repository.
pub fn rules_dir() -> PathBuf {
    repo_root().join("prometheus").join("rules")
}

pub(super) fn read(path: &Path) -> Result<String, GrafanaError> {
    std::fs::read_to_string(path).map_err(|source| GrafanaError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The files in `dir` whose name ends with one of `exts`, sorted.
pub(super) fn files(dir: &Path, exts: &[&str]) -> Result<Vec<PathBuf>, GrafanaError> {
    let io = |source| GrafanaError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_file() && exts.iter().any(|e| name.ends_with(e)) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}
