//! The Prometheus text exposition (what a `/metrics` endpoint answers: the collector's own telemetry, its
//! Prometheus exporter, Jaeger's, the app's admin listener), parsed into samples: name, label set, value.
//!
//! Labels are compared as parsed sets, never as text: [`Exposition::value`] finds the one sample with exactly
//! the labels asked for (`name{a="1"}` is not `name{a="1",b="2"}`, either way round), and a sum says which
//! samples it adds up with a predicate on each [`Sample`] (for instance `|s| s.has("exporter", "debug")`,
//! which, like a PromQL selector, keeps samples with other labels too).
//!
//! ```
//! use stack_tests::exposition::Exposition;
//! let text = "# TYPE sent counter\nsent_total{exporter=\"a\",host=\"h1\"} 3\nsent_total{exporter=\"a\"} 4\n";
//! let e = Exposition::parse(text)?;
//! assert_eq!(e.value("sent_total", &[("exporter", "a")]), Some(4.0));
//! assert_eq!(e.value("sent_total", &[("host", "h1")]), None);
//! assert_eq!(e.counter("sent", |s| s.has("exporter", "a")), 7.0);
//! # Ok::<(), stack_tests::exposition::ParseError>(())
//! ```

use std::collections::BTreeMap;

use crate::error::StackError;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name as written (with its `_total`, `_count`, `_bucket`, ... suffix).
    pub name: String,
    /// Its labels, values unescaped.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

impl Sample {
    /// The value of label `key`, if the sample has it.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    /// Whether label `key` is exactly `value`.
    pub fn has(&self, key: &str, value: &str) -> bool {
        self.label(key) == Some(value)
    }

    /// Whether the label set is exactly `labels` (in any order).
    pub fn labels_are(&self, labels: &[(&str, &str)]) -> bool {
        self.labels.len() == labels.len() && labels.iter().all(|(k, v)| self.has(k, v))
    }
}

/// A line that is not a sample, a comment or blank.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("exposition line {line}: {reason}: {text:?}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// The line.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Every sample of one exposition, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    samples: Vec<Sample>,
}

impl Exposition {
    /// Parses the text format (and OpenMetrics: `# EOF` and exemplars after a sample are skipped). Comment
    /// and blank lines are skipped; any other line that is not `name[{labels}] value [timestamp]` is an error.
    pub fn parse(text: &str) -> Result<Exposition, ParseError> {
        let samples = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(|(i, l)| {
                parse_line(l).map_err(|reason| ParseError {
                    line: i + 1,
                    text: l.to_string(),
                    reason,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Exposition { samples })
    }

    /// Every sample.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// The samples named exactly `name` (not longer names sharing it as a prefix).
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The value of the sample named `name` whose label set is exactly `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.named(name)
            .find(|s| s.labels_are(labels))
            .map(|s| s.value)
    }

    /// Sum of the samples named `name` that `keep` selects (0 when there are none).
    pub fn sum(&self, name: &str, keep: impl Fn(&Sample) -> bool) -> f64 {
        self.named(name).filter(|s| keep(s)).map(|s| s.value).sum()
    }

    /// [`Exposition::sum`] for a counter, whichever way the exposition names it: `name` (the collector's own
    /// telemetry in the classic text format) or `name_total` (OpenMetrics conventions).
    pub fn counter(&self, name: &str, keep: impl Fn(&Sample) -> bool) -> f64 {
        self.sum(name, &keep) + self.sum(&format!("{name}_total"), &keep)
    }
}

/// Fetches and parses the exposition at `url`.
pub fn scrape(url: &str) -> Result<Exposition, StackError> {
    let text = crate::http::get_text(url)?;
    Exposition::parse(&text).map_err(StackError::http(url))
}

/// A sample's label `error_type` is set: the SDK's self-metrics mark each failed or dropped item with it.
pub fn failed(sample: &Sample) -> bool {
    sample.label("error_type").is_some()
}

fn parse_line(line: &str) -> Result<Sample, &'static str> {
    let line = line.trim();
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("no value")?;
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return Err("not a metric name");
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut labels)?;
    }
    // `value [timestamp] [# exemplar]`
    let value = rest
        .split_whitespace()
        .next()
        .ok_or("no value")?
        .parse::<f64>()
        .map_err(|_| "the value is not a number")?;
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Reads `key="value",...}` into `labels`; returns what follows the `}`.
fn parse_labels<'a>(
    mut text: &'a str,
    labels: &mut BTreeMap<String, String>,
) -> Result<&'a str, &'static str> {
    loop {
        text = text.trim_start();
        if let Some(after) = text.strip_prefix('}') {
            return Ok(after);
        }
        let (key, after) = text.split_once('=').ok_or("a label without a value")?;
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err("not a label name");
        }
        let quoted = after
            .trim_start()
            .strip_prefix('"')
            .ok_or("an unquoted label value")?;
        let mut chars = quoted.char_indices();
        let mut value = String::new();
        let end = loop {
            match chars.next().ok_or("an unterminated label value")? {
                (i, '"') => break i + 1,
                (_, '\\') => match chars.next().ok_or("an unterminated label value")?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        if labels.insert(key.to_string(), value).is_some() {
            return Err("a label given twice");
        }
        text = quoted[end..].trim_start();
        text = text.strip_prefix(',').unwrap_or(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Exposition {
        Exposition::parse(text).expect("parses")
    }

    #[test]
    fn a_label_set_matches_only_itself() {
        let e = parse("m{a=\"1\"} 1\nm{a=\"1\",b=\"2\"} 2\nm 3\n");
        assert_eq!(e.value("m", &[("a", "1")]), Some(1.0));
        assert_eq!(e.value("m", &[("b", "2"), ("a", "1")]), Some(2.0));
        assert_eq!(e.value("m", &[]), Some(3.0));
        assert_eq!(e.value("m", &[("a", "1"), ("b", "3")]), None);
        assert_eq!(e.value("m", &[("b", "2")]), None);
    }

    #[test]
    fn names_match_whole_not_by_prefix() {
        let e = parse("foo_total 1\nfoo_total_other 100\nfoo 7\n");
        assert_eq!(e.sum("foo_total", |_| true), 1.0);
        assert_eq!(e.sum("foo", |_| true), 7.0);
        assert_eq!(e.counter("foo", |_| true), 8.0);
        assert_eq!(e.sum("bar", |_| true), 0.0);
    }

    #[test]
    fn label_values_are_compared_whole_and_unescaped() {
        let e = parse(
            "m{xa=\"1\"} 1\nm{a=\"10\"} 2\nm{a=\"1\"} 4\nm{a=\"q\\\"x\\\\y\\nz\",b=\"a=\\\"1\\\"\"} 8\n",
        );
        assert_eq!(e.sum("m", |s| s.has("a", "1")), 4.0);
        assert_eq!(
            e.value("m", &[("a", "q\"x\\y\nz"), ("b", "a=\"1\"")]),
            Some(8.0)
        );
    }

    #[test]
    fn labels_may_hold_commas_and_braces_and_end_with_a_comma() {
        let e = parse("m{route=\"/a,{b}\",} 5\n");
        assert_eq!(e.value("m", &[("route", "/a,{b}")]), Some(5.0));
    }

    #[test]
    fn timestamps_exemplars_comments_and_special_values_are_read() {
        let e = parse(
            "# HELP m help\n# TYPE m counter\n\nm_total{a=\"1\"} 3 1700000000\n\
             h_bucket{le=\"+Inf\"} 2 # {trace_id=\"abc\"} 0.5 1700000000.1\nnan_metric NaN\nup +Inf\n# EOF\n",
        );
        assert_eq!(e.value("m_total", &[("a", "1")]), Some(3.0));
        assert_eq!(e.value("h_bucket", &[("le", "+Inf")]), Some(2.0));
        assert!(e.value("nan_metric", &[]).is_some_and(f64::is_nan));
        assert_eq!(e.value("up", &[]), Some(f64::INFINITY));
        assert_eq!(e.samples().len(), 4);
    }

    #[test]
    fn a_line_that_is_not_a_sample_is_an_error_naming_it() {
        for (text, reason) in [
            ("m{a=\"1 1\n", "an unterminated label value"),
            ("m{a=\"1\" 1\n", "a label without a value"),
            ("m{a=1} 1\n", "an unquoted label value"),
            ("m{a=\"1\",a=\"2\"} 1\n", "a label given twice"),
            ("m{a=\"1\"} one\n", "the value is not a number"),
            ("ok 1\nm\n", "no value"),
            ("m-x 1\n", "not a metric name"),
        ] {
            let err = Exposition::parse(text).expect_err(text);
            assert_eq!(err.reason, reason, "{text}");
        }
        assert_eq!(Exposition::parse("ok 1\nm\n").expect_err("m").line, 2);
    }

    #[test]
    fn failures_are_the_samples_with_an_error_type() {
        let e = parse("x{error_type=\"a\"} 2\nx{ok=\"1\"} 5\nx_total{error_type=\"\"} 1\n");
        assert_eq!(e.counter("x", failed), 3.0);
        assert_eq!(e.counter("x", |s| !failed(s)), 5.0);
    }
}
