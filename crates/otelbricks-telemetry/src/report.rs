//! What a shutdown could not deliver, counted: [`ShutdownReport`].

use std::fmt;
use std::time::Duration;

use crate::config::Signal;
use crate::export::Outcome;

/// What [`crate::TelemetryGuard::shutdown`] could not deliver, counted over the whole run. Its
/// `Display` is one line meant for an operator, e.g.
/// `collector unreachable at http://localhost:4318; dropped 12 spans, 30 log records, 3 metric exports`.
///
/// Endpoints are shown without credentials or query.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// The OTLP endpoints that failed (base URLs, credentials removed).
    pub endpoints: Vec<String>,
    /// The last failure was a connection failure or a timeout.
    pub unreachable: bool,
    /// The last export error, when the collector was reachable but refused or failed.
    pub last_error: Option<String>,
    /// Spans that never reached the collector: failed exports, full queues, and spans still
    /// queued when shutdown stopped.
    pub spans_dropped: u64,
    /// Log records that never reached the collector, counted the same way.
    pub log_records_dropped: u64,
    /// Metric exports (each a whole collection) that failed.
    pub metric_exports_failed: u64,
    /// Of the dropped spans, those never handed to the exporter (a full queue, or still queued at
    /// the time bound).
    pub spans_unsent: u64,
    /// Of the dropped log records, those never handed to the exporter.
    pub log_records_unsent: u64,
    /// Set when shutdown stopped at its time bound (`TELEMETRY_SHUTDOWN_TIMEOUT`).
    pub timed_out: Option<Duration>,
    /// Anything else that went wrong (a log file not fully written, a provider error).
    pub other: Vec<String>,
}

impl ShutdownReport {
    pub(crate) fn new(
        outcomes: &[Outcome],
        timed_out: Option<Duration>,
        other: Vec<String>,
    ) -> Self {
        let mut r = ShutdownReport {
            endpoints: Vec::new(),
            unreachable: false,
            last_error: None,
            spans_dropped: 0,
            log_records_dropped: 0,
            metric_exports_failed: 0,
            spans_unsent: 0,
            log_records_unsent: 0,
            timed_out,
            other,
        };
        for o in outcomes {
            let unsent = o.accepted.saturating_sub(o.delivered + o.failed);
            let dropped = o.accepted.saturating_sub(o.delivered).max(o.failed);
            match o.signal {
                Signal::Traces => {
                    r.spans_dropped = dropped;
                    r.spans_unsent = unsent;
                }
                Signal::Logs => {
                    r.log_records_dropped = dropped;
                    r.log_records_unsent = unsent;
                }
                Signal::Metrics => r.metric_exports_failed = o.failed_exports,
            }
            if o.failed_exports == 0 && (timed_out.is_none() || unsent == 0) {
                continue;
            }
            let base = base_url(&o.endpoint, o.signal);
            if !r.endpoints.contains(&base) {
                r.endpoints.push(base);
            }
            r.unreachable |= o.unreachable;
            if !o.unreachable && o.last_error.is_some() {
                r.last_error.clone_from(&o.last_error);
            }
        }
        r
    }

    /// Nothing was lost and nothing failed.
    pub fn is_clean(&self) -> bool {
        self.spans_dropped == 0
            && self.log_records_dropped == 0
            && self.metric_exports_failed == 0
            && self.timed_out.is_none()
            && self.other.is_empty()
    }
}

/// `http://host:4318/v1/traces` is shown as `http://host:4318`, the form users configure.
fn base_url(endpoint: &str, signal: Signal) -> String {
    let suffix = format!("/v1/{}", signal.as_str());
    endpoint
        .strip_suffix(&suffix)
        .unwrap_or(endpoint)
        .to_owned()
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.endpoints.is_empty() {
            let at = self.endpoints.join(", ");
            parts.push(match (&self.last_error, self.unreachable) {
                (_, true) => format!("collector unreachable at {at}"),
                (Some(e), false) => format!("exports to {at} failed ({e})"),
                (None, false) if self.timed_out.is_some() => {
                    format!("collector at {at} did not answer in time")
                }
                (None, false) => format!("exports to {at} failed"),
            });
        }
        let mut dropped = Vec::new();
        if self.spans_dropped > 0 {
            dropped.push(plural(self.spans_dropped, "span", "spans"));
        }
        if self.log_records_dropped > 0 {
            dropped.push(plural(
                self.log_records_dropped,
                "log record",
                "log records",
            ));
        }
        if self.metric_exports_failed > 0 {
            dropped.push(plural(
                self.metric_exports_failed,
                "metric export",
                "metric exports",
            ));
        }
        if !dropped.is_empty() {
            parts.push(format!("dropped {}", dropped.join(", ")));
        }
        if let Some(bound) = self.timed_out {
            let mut unsent = Vec::new();
            if self.spans_unsent > 0 {
                unsent.push(plural(self.spans_unsent, "span", "spans"));
            }
            if self.log_records_unsent > 0 {
                unsent.push(plural(self.log_records_unsent, "log record", "log records"));
            }
            let what = if unsent.is_empty() {
                String::new()
            } else {
                format!(" with {} not yet sent", unsent.join(" and "))
            };
            parts.push(format!(
                "shutdown stopped at its {} bound (TELEMETRY_SHUTDOWN_TIMEOUT){what}",
                humantime::format_duration(bound)
            ));
        }
        parts.extend(self.other.iter().cloned());
        if parts.is_empty() {
            parts.push("nothing lost".to_owned());
        }
        f.write_str(&parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(
        signal: Signal,
        accepted: u64,
        delivered: u64,
        failed: u64,
        exports: u64,
    ) -> Outcome {
        Outcome {
            signal,
            endpoint: format!("http://localhost:4318/v1/{}", signal.as_str()),
            accepted,
            delivered,
            failed,
            failed_exports: exports,
            unreachable: exports > 0,
            last_error: (exports > 0).then(|| "network error".to_owned()),
        }
    }

    #[test]
    fn one_line_says_where_and_how_much() {
        let r = ShutdownReport::new(
            &[
                outcome(Signal::Traces, 12, 0, 12, 1),
                outcome(Signal::Logs, 30, 0, 30, 2),
                outcome(Signal::Metrics, 0, 0, 0, 3),
            ],
            None,
            Vec::new(),
        );
        assert_eq!(
            r.to_string(),
            "collector unreachable at http://localhost:4318; dropped 12 spans, 30 log records, 3 metric exports"
        );
        assert!(!r.is_clean());
    }

    #[test]
    fn a_timed_out_shutdown_says_what_was_still_queued() {
        let r = ShutdownReport::new(
            &[outcome(Signal::Traces, 5000, 0, 512, 1)],
            Some(Duration::from_secs(5)),
            Vec::new(),
        );
        assert_eq!(r.spans_dropped, 5000);
        assert_eq!(r.spans_unsent, 4488);
        assert_eq!(
            r.to_string(),
            "collector unreachable at http://localhost:4318; dropped 5000 spans; shutdown stopped \
             at its 5s bound (TELEMETRY_SHUTDOWN_TIMEOUT) with 4488 spans not yet sent"
        );
    }

    #[test]
    fn a_delivered_run_is_clean() {
        let r = ShutdownReport::new(&[outcome(Signal::Traces, 3, 3, 0, 0)], None, Vec::new());
        assert!(r.is_clean(), "{r}");
    }
}
