//! PromQL expressions, parsed with `promql-parser`: whether one parses, and the metric selectors it uses.

use super::GrafanaError;
use promql_parser::parser::{self, Expr};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
