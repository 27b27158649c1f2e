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

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use promql_parser::parser::{self, Expr};
use serde_json::Value;

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

fn read(path: &Path) -> Result<String, GrafanaError> {
    std::fs::read_to_string(path).map_err(|source| GrafanaError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The files in `dir` whose name ends with one of `exts`, sorted.
fn files(dir: &Path, exts: &[&str]) -> Result<Vec<PathBuf>, GrafanaError> {
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

/// One dashboard file.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// The file it was read from.
    pub file: PathBuf,
    /// Its `uid`.
    pub uid: String,
    /// Its `title`.
    pub title: String,
    /// The whole JSON model.
    pub json: Value,
}

/// One panel (rows' nested panels included).
#[derive(Debug, Clone)]
pub struct Panel {
    /// Its `id` (`None` when missing).
    pub id: Option<i64>,
    /// Its `type`.
    pub kind: String,
    /// Its `title`.
    pub title: String,
    /// The uid of the panel-level datasource, if any.
    pub datasource_uid: Option<String>,
    /// The JSON of the panel.
    pub json: Value,
}

/// The query language of a panel target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// A target of the Prometheus datasource.
    PromQl,
    /// A target of the Loki datasource.
    LogQl,
}

/// One panel target: an expression and where it lives.
#[derive(Debug, Clone)]
pub struct Query {
    /// The dashboard's uid.
    pub dashboard_uid: String,
    /// The panel's id.
    pub panel_id: Option<i64>,
    /// The panel's title.
    pub panel_title: String,
    /// The target's `refId`.
    pub ref_id: String,
    /// The datasource uid the target uses (its own, else the panel's).
    pub datasource_uid: Option<String>,
    /// The expression, template variables unsubstituted.
    pub expr: String,
    /// Whether exemplars are requested (`exemplar: true`).
    pub exemplar: bool,
}

/// A dashboard template variable.
#[derive(Debug, Clone)]
pub struct Variable {
    /// Its name (used as `$name`).
    pub name: String,
    /// Its `type` (`query`, `custom`, ...).
    pub kind: String,
    /// The datasource uid of a query variable.
    pub datasource_uid: Option<String>,
    /// The query of a query variable, as text.
    pub query: Option<String>,
}

fn uid_of(ds: Option<&Value>) -> Option<String> {
    match ds? {
        Value::Object(m) => m.get("uid").and_then(Value::as_str).map(str::to_owned),
        // Old style: a datasource name or a variable as a plain string.
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

impl Dashboard {
    /// Parses one dashboard file.
    pub fn load(path: &Path) -> Result<Dashboard, GrafanaError> {
        let json: Value =
            serde_json::from_str(&read(path)?).map_err(|e| GrafanaError::Invalid {
                path: path.to_path_buf(),
                reason: format!("invalid JSON: {e}"),
            })?;
        let field = |name: &str| {
            json.get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| GrafanaError::Invalid {
                    path: path.to_path_buf(),
                    reason: format!("no string `{name}`"),
                })
        };
        Ok(Dashboard {
            uid: field("uid")?,
            title: field("title")?,
            file: path.to_path_buf(),
            json,
        })
    }

    /// Every panel, the panels nested in (collapsed) rows included, in file order.
    pub fn panels(&self) -> Vec<Panel> {
        fn walk(list: Option<&Value>, out: &mut Vec<Panel>) {
            for p in list.and_then(Value::as_array).into_iter().flatten() {
                out.push(Panel {
                    id: p.get("id").and_then(Value::as_i64),
                    kind: p
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    title: p
                        .get("title")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    datasource_uid: uid_of(p.get("datasource")),
                    json: p.clone(),
                });
                walk(p.get("panels"), out);
            }
        }
        let mut out = Vec::new();
        walk(self.json.get("panels"), &mut out);
        out
    }

    /// Every target of every panel that has an `expr`.
    pub fn queries(&self) -> Vec<Query> {
        let mut out = Vec::new();
        for panel in self.panels() {
            let targets = panel.json.get("targets").and_then(Value::as_array);
            for t in targets.into_iter().flatten() {
                let Some(expr) = t.get("expr").and_then(Value::as_str) else {
                    continue;
                };
                out.push(Query {
                    dashboard_uid: self.uid.clone(),
                    panel_id: panel.id,
                    panel_title: panel.title.clone(),
                    ref_id: t
                        .get("refId")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    datasource_uid: uid_of(t.get("datasource"))
                        .or_else(|| panel.datasource_uid.clone()),
                    expr: expr.to_owned(),
                    exemplar: t.get("exemplar").and_then(Value::as_bool).unwrap_or(false),
                });
            }
        }
        out
    }

    /// The template variables (`templating.list`).
    pub fn variables(&self) -> Vec<Variable> {
        let list = self
            .json
            .pointer("/templating/list")
            .and_then(Value::as_array);
        list.into_iter()
            .flatten()
            .map(|v| Variable {
                name: v
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                kind: v
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                datasource_uid: uid_of(v.get("datasource")),
                query: match v.get("query") {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Object(m)) => {
                        m.get("query").and_then(Value::as_str).map(str::to_owned)
                    }
                    _ => None,
                },
            })
            .collect()
    }

    /// Every datasource uid the dashboard names (panels, targets, variables, annotations), except
    /// Grafana's built-in `-- Grafana --` / `grafana` ones.
    pub fn datasource_uids(&self) -> BTreeSet<String> {
        fn walk(v: &Value, out: &mut BTreeSet<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(uid) = uid_of(m.get("datasource")) {
                        out.insert(uid);
                    }
                    m.values().for_each(|c| walk(c, out));
                }
                Value::Array(a) => a.iter().for_each(|c| walk(c, out)),
                _ => {}
            }
        }
        let mut out = BTreeSet::new();
        walk(&self.json, &mut out);
        out.retain(|u| u != "-- Grafana --" && u != "grafana");
        out
    }
}

/// Loads every `*.json` dashboard in `dir`, sorted by file name.
pub fn load_dashboards(dir: &Path) -> Result<Vec<Dashboard>, GrafanaError> {
    files(dir, &[".json"])?
        .iter()
        .map(|p| Dashboard::load(p))
        .collect()
}

/// Every panel target on the Prometheus datasource ([`PROMETHEUS_UID`]) of `dashboards`.
pub fn promql_queries(dashboards: &[Dashboard]) -> Vec<Query> {
    queries_on(dashboards, PROMETHEUS_UID)
}

/// Every panel target on the Loki datasource ([`LOKI_UID`]) of `dashboards`.
pub fn logql_queries(dashboards: &[Dashboard]) -> Vec<Query> {
    queries_on(dashboards, LOKI_UID)
}

fn queries_on(dashboards: &[Dashboard], uid: &str) -> Vec<Query> {
    dashboards
        .iter()
        .flat_map(Dashboard::queries)
        .filter(|q| q.datasource_uid.as_deref() == Some(uid))
        .collect()
}

/// Concrete values for template variables, by name without `$`.
#[derive(Debug, Clone, Default)]
pub struct Substitutions {
    values: BTreeMap<String, String>,
}

impl Substitutions {
    /// No values at all.
    pub fn new() -> Substitutions {
        Substitutions::default()
    }

    /// Values that make every panel of the stack's dashboards runnable for `service`: `service`,
    /// `route` = `.*` (the "All" value), `__rate_interval` = `1m`, `__interval` = `15s`, `__auto` = `1m`,
    /// `__range` = `5m` (and `__range_s`, `__range_ms`, `__interval_ms`).
    pub fn for_service(service: &str) -> Substitutions {
        Substitutions::new()
            .with("service", service)
            .with("route", ".*")
            .with("__rate_interval", "1m")
            .with("__interval", "15s")
            .with("__interval_ms", "15000")
            .with("__auto", "1m")
            .with("__range", "5m")
            .with("__range_s", "300")
            .with("__range_ms", "300000")
    }

    /// Sets (or replaces) the value of `name` (without `$`).
    pub fn with(mut self, name: &str, value: &str) -> Substitutions {
        self.values.insert(name.to_owned(), value.to_owned());
        self
    }

    /// The value of `name`, if any.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

/// A template-variable reference found in an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
struct VarRef {
    start: usize,
    end: usize,
    name: String,
}

/// Finds `$name`, `${name}`, `${name:format}` and `[[name]]` references.
fn var_refs(expr: &str) -> Vec<VarRef> {
    let bytes = expr.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            if bytes.get(i + 1) == Some(&b'{') {
                if let Some(close) = expr[i + 2..].find('}') {
                    let inner = &expr[i + 2..i + 2 + close];
                    let name = inner.split([':', '.']).next().unwrap_or("").to_owned();
                    out.push(VarRef {
                        start: i,
                        end: i + 3 + close,
                        name,
                    });
                    i += 3 + close;
                    continue;
                }
            } else {
                let mut j = i + 1;
                // `$1` is a regex back-reference (label_replace), not a variable.
                let starts_name = bytes
                    .get(j)
                    .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_');
                while starts_name && j < bytes.len() && ident(bytes[j]) {
                    j += 1;
                }
                if j > i + 1 {
                    out.push(VarRef {
                        start: i,
                        end: j,
                        name: expr[i + 1..j].to_owned(),
                    });
                    i = j;
                    continue;
                }
            }
        } else if expr[i..].starts_with("[[")
            && let Some(close) = expr[i + 2..].find("]]")
        {
            let name = expr[i + 2..i + 2 + close]
                .split(':')
                .next()
                .unwrap_or("")
                .to_owned();
            if !name.is_empty() && name.bytes().all(ident) {
                out.push(VarRef {
                    start: i,
                    end: i + 4 + close,
                    name,
                });
                i += 4 + close;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// The names of the template variables `expr` uses (`$service` -> `service`).
pub fn variables_in(expr: &str) -> BTreeSet<String> {
    var_refs(expr).into_iter().map(|r| r.name).collect()
}

/// `expr` with every template variable replaced by its value in `subs`. A variable without a value is an
/// error ([`GrafanaError::UnknownVariable`]), so a half-substituted expression never reaches Prometheus.
pub fn substitute(expr: &str, subs: &Substitutions) -> Result<String, GrafanaError> {
    let mut out = String::with_capacity(expr.len());
    let mut last = 0;
    for r in var_refs(expr) {
        let value = subs
            .get(&r.name)
            .ok_or_else(|| GrafanaError::UnknownVariable {
                name: r.name.clone(),
                expr: expr.to_owned(),
            })?;
        out.push_str(&expr[last..r.start]);
        out.push_str(value);
        last = r.end;
    }
    out.push_str(&expr[last..]);
    Ok(out)
}

/// Whether a rule records a series or raises an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// `alert:`
    Alert,
    /// `record:`
    Record,
}

/// One Prometheus rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule file.
    pub file: PathBuf,
    /// The group's name.
    pub group: String,
    /// The alert name or the recorded series' name.
    pub name: String,
    /// Alert or recording rule.
    pub kind: RuleKind,
    /// The PromQL expression.
    pub expr: String,
    /// `for:`, if any.
    pub for_duration: Option<String>,
    /// `labels:`.
    pub labels: BTreeMap<String, String>,
    /// `annotations:`.
    pub annotations: BTreeMap<String, String>,
}

impl Rule {
    /// Whether the expression's top level is a comparison with a number (`... > 0.1`, possibly joined
    /// with `and`/`or`): such an expression is empty while the condition is false, so "returns data" is
    /// checked on its [`selectors`] instead.
    pub fn has_threshold(&self) -> bool {
        fn top(e: &Expr) -> bool {
            match e {
                Expr::Paren(p) => top(&p.expr),
                Expr::Binary(b) => {
                    let s = b.op.to_string();
                    let s = s.trim().to_ascii_lowercase();
                    if s == "and" || s == "or" || s == "unless" {
                        top(&b.lhs) || top(&b.rhs)
                    } else {
                        matches!(s.as_str(), ">" | "<" | ">=" | "<=" | "==" | "!=")
                    }
                }
                _ => false,
            }
        }
        parser::parse(&self.expr).map(|e| top(&e)).unwrap_or(false)
    }
}

fn yaml_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), s)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Loads every rule of one rule file.
pub fn load_rule_file(path: &Path) -> Result<Vec<Rule>, GrafanaError> {
    let invalid = |reason: String| GrafanaError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let doc: Value =
        serde_norway::from_str(&read(path)?).map_err(|e| invalid(format!("invalid YAML: {e}")))?;
    let groups = doc
        .get("groups")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("no `groups` list".into()))?;
    let mut out = Vec::new();
    for g in groups {
        let group = g
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        for r in g
            .get("rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (kind, name) = match (r.get("alert"), r.get("record")) {
                (Some(Value::String(n)), None) => (RuleKind::Alert, n.clone()),
                (None, Some(Value::String(n))) => (RuleKind::Record, n.clone()),
                _ => {
                    return Err(invalid(format!(
                        "group {group}: a rule without one `alert` or `record` name"
                    )));
                }
            };
            let expr = r
                .get("expr")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("rule {name}: no string `expr`")))?
                .trim()
                .to_owned();
            out.push(Rule {
                file: path.to_path_buf(),
                group: group.clone(),
                name,
                kind,
                expr,
                for_duration: r.get("for").and_then(Value::as_str).map(str::to_owned),
                labels: yaml_map(r.get("labels")),
                annotations: yaml_map(r.get("annotations")),
            });
        }
    }
    Ok(out)
}

/// Loads every rule of every `*.yml`/`*.yaml` file in `dir` (file order, then rule order).
pub fn load_rules(dir: &Path) -> Result<Vec<Rule>, GrafanaError> {
    let mut out = Vec::new();
    for f in files(dir, &[".yml", ".yaml"])? {
        out.extend(load_rule_file(&f)?);
    }
    Ok(out)
}

/// A metric selector found in a PromQL expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// The metric name (`None` for `{__name__=~"..."}`-only selectors).
    pub metric: Option<String>,
    /// The instant-vector selector as PromQL text (range and offset dropped), e.g.
    /// `models_generated_total{status="failure",job!~".+-admin"}`: runnable as is.
    pub text: String,
    /// Its label matchers, as `(name, operator, value)`.
    pub matchers: Vec<(String, String, String)>,
}

/// Every vector/matrix selector of `expr`, in order of appearance, without duplicates.
pub fn selectors(expr: &str) -> Result<Vec<Selector>, GrafanaError> {
    let ast = parser::parse(expr).map_err(|reason| GrafanaError::PromQl {
        expr: expr.to_owned(),
        reason,
    })?;
    let mut out: Vec<Selector> = Vec::new();
    walk_selectors(&ast, &mut out);
    Ok(out)
}

fn walk_selectors(e: &Expr, out: &mut Vec<Selector>) {
    let mut push = |vs: &parser::VectorSelector| {
        let mut plain = vs.clone();
        plain.offset = None;
        plain.at = None;
        let sel = Selector {
            metric: vs.name.clone(),
            text: plain.to_string(),
            matchers: vs
                .matchers
                .matchers
                .iter()
                .map(|m| (m.name.clone(), m.op.to_string(), m.value.clone()))
                .collect(),
        };
        if !out.contains(&sel) {
            out.push(sel);
        }
    };
    match e {
        Expr::VectorSelector(vs) => push(vs),
        Expr::MatrixSelector(ms) => push(&ms.vs),
        Expr::Aggregate(a) => {
            walk_selectors(&a.expr, out);
            if let Some(p) = &a.param {
                walk_selectors(p, out);
            }
        }
        Expr::Unary(u) => walk_selectors(&u.expr, out),
        Expr::Binary(b) => {
            walk_selectors(&b.lhs, out);
            walk_selectors(&b.rhs, out);
        }
        Expr::Paren(p) => walk_selectors(&p.expr, out),
        Expr::Subquery(s) => walk_selectors(&s.expr, out),
        Expr::Call(c) => c.args.args.iter().for_each(|a| walk_selectors(a, out)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// Parses a (substituted) PromQL expression; `Err` carries the parser's message.
pub fn parse_promql(expr: &str) -> Result<(), GrafanaError> {
    parser::parse(expr)
        .map(|_| ())
        .map_err(|reason| GrafanaError::PromQl {
            expr: expr.to_owned(),
            reason,
        })
}

/// A provisioned datasource.
#[derive(Debug, Clone)]
pub struct Datasource {
    /// Its `uid`.
    pub uid: String,
    /// Its `type` (`prometheus`, `loki`, `jaeger`, `alertmanager`).
    pub kind: String,
    /// Its `url`.
    pub url: String,
    /// Its `jsonData`.
    pub json_data: Value,
}

/// The datasources of every file in `grafana/provisioning/datasources`.
pub fn provisioned_datasources(provisioning: &Path) -> Result<Vec<Datasource>, GrafanaError> {
    let mut out = Vec::new();
    for f in files(&provisioning.join("datasources"), &[".yml", ".yaml"])? {
        let doc: Value = serde_norway::from_str(&read(&f)?).map_err(|e| GrafanaError::Invalid {
            path: f.clone(),
            reason: format!("invalid YAML: {e}"),
        })?;
        for d in doc
            .get("datasources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            out.push(Datasource {
                uid: s("uid"),
                kind: s("type"),
                url: s("url"),
                json_data: d.get("jsonData").cloned().unwrap_or(Value::Null),
            });
        }
    }
    Ok(out)
}

/// Label names a LogQL expression relies on: stream-selector matchers (`{service_name="x"}`), label
/// filters after a pipe (`| trace_id="..."`, `| severity_text=~"..."`) and `by`/`without` groupings.
/// Line filters (`|= "text"`) and parsers' output are not label uses.
pub fn logql_label_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = expr.as_bytes();
    let ident_start = |c: u8| c.is_ascii_alphabetic() || c == b'_';
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let skip_ws = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let read_ident = |i: usize| {
        let mut j = i;
        while j < b.len() && ident(b[j]) {
            j += 1;
        }
        j
    };
    let mut i = 0;
    let mut in_string = false;
    while i < b.len() {
        let c = b[i];
        if in_string {
            if c == b'\\' {
                i += 2;
                continue;
            }
            if c == b'"' || c == b'`' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        match c {
            b'"' | b'`' => in_string = true,
            b'{' => {
                // Stream selector: name op "value" (, name op "value")*
                let mut j = i + 1;
                loop {
                    j = skip_ws(j);
                    if j < b.len() && ident_start(b[j]) {
                        let end = read_ident(j);
                        out.insert(expr[j..end].to_owned());
                        j = end;
                    }
                    // Skip to the next ',' or '}' outside quotes.
                    let mut q = false;
                    while j < b.len() {
                        let d = b[j];
                        if q {
                            if d == b'\\' {
                                j += 1;
                            } else if d == b'"' {
                                q = false;
                            }
                        } else if d == b'"' {
                            q = true;
                        } else if d == b',' || d == b'}' {
                            break;
                        }
                        j += 1;
                    }
                    if j >= b.len() || b[j] == b'}' {
                        break;
                    }
                    j += 1;
                }
                i = j;
            }
            b'|' => {
                let j = skip_ws(i + 1);
                // `|=`/`|~` are line filters; `| name op` is a label filter.
                if i + 1 < b.len() && (b[i + 1] == b'=' || b[i + 1] == b'~') {
                    i += 2;
                    continue;
                }
                if j < b.len() && ident_start(b[j]) {
                    let end = read_ident(j);
                    let k = skip_ws(end);
                    let op = &expr[k..(k + 2).min(expr.len())];
                    if op.starts_with('=')
                        || op.starts_with("!=")
                        || op.starts_with("!~")
                        || op.starts_with('>')
                        || op.starts_with('<')
                    {
                        out.insert(expr[j..end].to_owned());
                    }
                    i = end;
                    continue;
                }
            }
            _ if ident_start(c) && (i == 0 || !ident(b[i - 1])) => {
                let end = read_ident(i);
                let word = &expr[i..end];
                if word == "by" || word == "without" {
                    let k = skip_ws(end);
                    if k < b.len() && b[k] == b'(' {
                        let close = expr[k..].find(')').map(|p| k + p).unwrap_or(b.len());
                        for name in expr[k + 1..close].split(',') {
                            let name = name.trim();
                            if !name.is_empty() {
                                out.insert(name.to_owned());
                            }
                        }
                        i = close;
                        continue;
                    }
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution_replaces_every_form_of_variable() {
        let subs = Substitutions::for_service("svc");
        let out = substitute(
            r#"sum(rate(x{job="$service", r=~"${route}", q="${service:raw}", l="[[service]]"}[$__rate_interval])) + $__range_s"#,
            &subs,
        )
        .unwrap();
        assert_eq!(
            out,
            r#"sum(rate(x{job="svc", r=~".*", q="svc", l="svc"}[1m])) + 300"#
        );
    }

    #[test]
    fn the_longest_variable_name_wins() {
        let subs = Substitutions::new()
            .with("__range", "5m")
            .with("__range_s", "300");
        assert_eq!(substitute("$__range_s $__range", &subs).unwrap(), "300 5m");
    }

    #[test]
    fn an_unknown_variable_is_an_error_not_left_in_place() {
        let err = substitute("rate(x[$__nope])", &Substitutions::for_service("s")).unwrap_err();
        assert!(
            matches!(err, GrafanaError::UnknownVariable { ref name, .. } if name == "__nope"),
            "{err}"
        );
    }

    #[test]
    fn selectors_are_listed_without_range_and_deduplicated() {
        let s = selectors(
            r#"sum(rate(a_total{x="1"}[5m])) / sum(rate(a_total{x="1"}[5m])) > 0.1 or b offset 5m"#,
        )
        .unwrap();
        let texts: Vec<_> = s.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, vec![r#"a_total{x="1"}"#, "b"]);
        assert_eq!(s[0].metric.as_deref(), Some("a_total"));
        assert_eq!(s[0].matchers, vec![("x".into(), "=".into(), "1".into())]);
    }

    #[test]
    fn invalid_promql_is_reported_with_the_expression() {
        assert!(matches!(
            selectors("sum(rate(x[5m])"),
            Err(GrafanaError::PromQl { .. })
        ));
    }

    #[test]
    fn logql_label_names_cover_selectors_filters_and_groupings() {
        let names = logql_label_names(
            r#"sum by (severity_text) (count_over_time({service_name="a", deployment_environment=~"p|q"} |= "x=1" | trace_id="t" | json [1m]))"#,
        );
        let want: BTreeSet<String> = [
            "severity_text",
            "service_name",
            "deployment_environment",
            "trace_id",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(names, want);
    }

    #[test]
    fn threshold_rules_are_recognised() {
        let rule = |expr: &str| Rule {
            file: PathBuf::new(),
            group: String::new(),
            name: "r".into(),
            kind: RuleKind::Alert,
            expr: expr.into(),
            for_duration: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        };
        assert!(rule("up == 0").has_threshold());
        assert!(rule("(a > 1 and b > 1) or (c > 2)").has_threshold());
        assert!(!rule("sum(rate(a[5m])) / sum(rate(b[5m]))").has_threshold());
    }
}
