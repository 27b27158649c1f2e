//! Views of a compose document (services, environment, mounts, commands, healthchecks, dependencies) and
//! the variable interpolation of compose files and collector-style configs: `${VAR}`, `${VAR:-default}`,
//! `${VAR-default}`, `${VAR:?message}`, `${VAR?message}` in compose files, `${env:VAR}` /
//! `${env:VAR:-default}` in collector-style configs.

use std::collections::BTreeMap;

use serde_json::Value;

pub(crate) fn services(doc: &Value) -> Vec<(&str, &Value)> {
    doc.get("services")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .unwrap_or_default()
}

pub(crate) fn service<'a>(doc: &'a Value, name: &str) -> Option<&'a Value> {
    doc.get("services").and_then(|s| s.get(name))
}

pub(crate) fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `environment:` in map or list form.
pub(crate) fn env_of(svc: &Value) -> BTreeMap<String, String> {
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
pub(crate) enum MountKind {
    Bind,
    Volume,
}

#[derive(Debug, Clone)]
pub(crate) struct Mount {
    pub(crate) kind: MountKind,
    pub(crate) source: String,
    pub(crate) target: String,
    pub(crate) read_only: bool,
}

pub(crate) fn mounts(svc: &Value) -> Vec<Mount> {
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
pub(crate) fn command(svc: &Value) -> Vec<String> {
    match svc.get("command") {
        Some(Value::Array(a)) => a.iter().filter_map(scalar).collect(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// The value of a `--flag=value`, `-flag=value` or `--flag value` argument.
pub(crate) fn flag(args: &[String], name: &str) -> Option<String> {
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

pub(crate) fn is_one_shot(svc: &Value) -> bool {
    svc.get("restart").and_then(Value::as_str) == Some("no")
}

pub(crate) fn healthcheck_test(svc: &Value) -> Option<Vec<String>> {
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

pub(crate) fn depends_on(svc: &Value) -> Option<&Value> {
    svc.get("depends_on")
}

pub(crate) fn condition_on<'a>(svc: &'a Value, other: &str) -> Option<&'a str> {
    depends_on(svc)?.get(other)?.get("condition")?.as_str()
}

pub(crate) fn port_of(addr: &str) -> Option<u16> {
    addr.rsplit_once(':')?.1.trim_end_matches('/').parse().ok()
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Interp {
    pub(crate) name: String,
    /// `:-` / `-` default.
    pub(crate) default: Option<String>,
    /// `:?` (unset or empty is an error) / `?` (unset is an error).
    pub(crate) required: Option<bool>,
}

pub(crate) fn interpolations(text: &str) -> Vec<Interp> {
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
pub(crate) fn effective_env(
    config: &str,
    svc_env: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
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

#[test]
pub(crate) fn interpolation_parser_reads_defaults_required_markers_and_escapes() {
    let got =
        interpolations("a ${A} ${B:-x:1} ${C-y} ${D:?msg} ${E?m} $${F} ${env:G:-0.0.0.0:4317}");
    let names: Vec<_> = got.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["A", "B", "C", "D", "E", "G"]);
    assert_eq!(got[1].default.as_deref(), Some("x:1"));
    assert_eq!(got[3].required, Some(true));
    assert_eq!(got[4].required, Some(false));
    assert_eq!(got[5].default.as_deref(), Some("0.0.0.0:4317"));
}
