//! Dashboards (`grafana/dashboards/*.json`) as data: panels, their queries by datasource, template
//! variables; and the datasource provisioning file.

use super::{GrafanaError, LOKI_UID, PROMETHEUS_UID, files, read};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::path::PathBuf;

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
