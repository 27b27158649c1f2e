//! A ledger of what each signal should hold and what it holds, rendered as a table when they differ.
//!
//! ```
//! use std::collections::BTreeMap;
//! use stack_tests::accounting::Ledger;
//! let sent = BTreeMap::from([(201, 3), (404, 1)]);
//! let mut ledger = Ledger::new("requests per status");
//! ledger.per_status("admin /metrics", &sent, Ok(BTreeMap::from([(201, 3), (404, 1)])));
//! ledger.row("Jaeger server spans", "all", 4, Ok(4));
//! assert!(ledger.balanced(), "{ledger}");
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::error::StackError;
use crate::sink::Sink;
use crate::stack::{Stack, StackOptions};

/// The stack the accounting tests run against, in `dir/stack`: Prometheus scraping and evaluating every 2 s,
/// the collector's Loki exporter pointed at `sink`.
pub fn stack_with_sink(dir: &Path, sink: &Sink) -> Result<Stack, StackError> {
    let mut opts = StackOptions::new(dir.join("stack"));
    opts.interval = Some(Duration::from_secs(2));
    opts.loki_endpoint = Some(sink.loki_endpoint());
    Stack::up(opts)
}

/// One line of a [`Ledger`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Where the count was read (`Prometheus via the collector`, `Jaeger server spans`, ...).
    pub signal: String,
    /// The HTTP status, or what the row counts (`all`, `delivered + dropped`, ...).
    pub status: String,
    /// What it must be.
    pub expected: u64,
    /// What was found, or why it could not be read.
    pub found: Result<u64, String>,
}

impl Row {
    /// Whether it was read and equals what was expected.
    pub fn balanced(&self) -> bool {
        self.found.as_ref().is_ok_and(|f| *f == self.expected)
    }
}

/// Expected-versus-found counts, signal by signal.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    title: String,
    rows: Vec<Row>,
}

impl Ledger {
    /// An empty ledger under `title`.
    pub fn new(title: &str) -> Ledger {
        Ledger {
            title: title.to_string(),
            rows: Vec::new(),
        }
    }

    /// Adds one row.
    pub fn row(&mut self, signal: &str, status: &str, expected: u64, found: Result<u64, String>) {
        self.rows.push(Row {
            signal: signal.to_string(),
            status: status.to_string(),
            expected,
            found,
        });
    }

    /// Adds a row per status seen in `expected` or in `found` (a status found but never sent is expected 0),
    /// or one row carrying the error when `found` could not be read.
    pub fn per_status(
        &mut self,
        signal: &str,
        expected: &BTreeMap<u16, u64>,
        found: Result<BTreeMap<u16, u64>, String>,
    ) {
        match found {
            Ok(found) => {
                let statuses: BTreeSet<u16> =
                    expected.keys().chain(found.keys()).copied().collect();
                for s in statuses {
                    let want = expected.get(&s).copied().unwrap_or(0);
                    let got = found.get(&s).copied().unwrap_or(0);
                    self.row(signal, &s.to_string(), want, Ok(got));
                }
            }
            Err(e) => self.row(signal, "all", expected.values().sum(), Err(e)),
        }
    }

    /// Every row.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Whether every row balances.
    pub fn balanced(&self) -> bool {
        self.rows.iter().all(Row::balanced)
    }

    /// The signals with at least one row that does not balance.
    pub fn unbalanced_signals(&self) -> BTreeSet<&str> {
        self.rows
            .iter()
            .filter(|r| !r.balanced())
            .map(|r| r.signal.as_str())
            .collect()
    }
}

impl fmt::Display for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let found = |r: &Row| match &r.found {
            Ok(n) => n.to_string(),
            Err(e) => format!("error: {e}"),
        };
        let width =
            |col: fn(&Row) -> &str| self.rows.iter().map(|r| col(r).len()).fold(6, usize::max);
        let w_signal = width(|r| &r.signal);
        let w_status = width(|r| &r.status);
        writeln!(f, "{}", self.title)?;
        writeln!(
            f,
            "  {:<w_signal$}  {:<w_status$}  {:>8}  {:>8}",
            "signal", "status", "expected", "found"
        )?;
        for r in &self.rows {
            writeln!(
                f,
                "  {:<w_signal$}  {:<w_status$}  {:>8}  {:>8}{}",
                r.signal,
                r.status,
                r.expected,
                found(r),
                if r.balanced() { "" } else { "  <-- differs" }
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_found_but_never_sent_and_a_missing_one_both_unbalance_the_ledger() {
        let sent = BTreeMap::from([(201, 2), (500, 1)]);
        let mut l = Ledger::new("t");
        l.per_status("logs", &sent, Ok(BTreeMap::from([(201, 2), (404, 1)])));
        let rows: Vec<(String, u64, Result<u64, String>)> = l
            .rows()
            .iter()
            .map(|r| (r.status.clone(), r.expected, r.found.clone()))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("201".into(), 2, Ok(2)),
                ("404".into(), 0, Ok(1)),
                ("500".into(), 1, Ok(0)),
            ]
        );
        assert!(!l.balanced());
        assert_eq!(l.unbalanced_signals(), BTreeSet::from(["logs"]));
    }

    #[test]
    fn an_unreadable_signal_is_one_unbalanced_row_with_its_error_and_the_table_marks_it() {
        let mut l = Ledger::new("requests");
        l.row("jaeger", "all", 3, Ok(3));
        l.per_status(
            "prometheus",
            &BTreeMap::from([(200, 3)]),
            Err("down".into()),
        );
        assert!(!l.balanced());
        let text = l.to_string();
        assert!(text.starts_with("requests\n"), "{text}");
        assert!(
            text.contains("prometheus  all            3  error: down  <-- differs"),
            "{text}"
        );
        assert!(
            !text.lines().nth(2).unwrap_or_default().contains("differs"),
            "{text}"
        );
    }
}
