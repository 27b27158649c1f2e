//! LogQL label names, read from an expression's stream selectors, filters and groupings.

use std::collections::BTreeSet;

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
}
