//! Prometheus rule files (`prometheus/rules/*.yml`) as data: recording and alerting rules with their
//! expressions, labels and annotations.

use super::{GrafanaError, files, read};
use promql_parser::parser::{self, Expr};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::path::PathBuf;

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
    /// checked on its [`selectors`](super::promql::selectors) instead.
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

#[cfg(test)]
mod tests {
    use super::*;

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
