//! Grafana's template variables in a panel expression, replaced by concrete values to make it runnable.

use super::GrafanaError;
use std::collections::BTreeMap;
use std::collections::BTreeSet;

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
}
