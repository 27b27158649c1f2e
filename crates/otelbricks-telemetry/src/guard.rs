//! The guard that keeps telemetry running and shuts it down, bounded in time, with a report of
//! what could not be delivered.

use std::net::SocketAddr;
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::TelemetryError;
use crate::export::{self, ExportStats, Reachability};
use crate::pipeline;
use crate::report::ShutdownReport;

/// Keeps telemetry running; flushes and shuts it down, bounded in time, on [`shutdown`] or drop.
///
/// Shutdown runs on its own thread, so it cannot deadlock a `current_thread` runtime, and it gives
/// up after the configured timeout (default 5 s) when the collector is unreachable.
///
/// [`shutdown`]: TelemetryGuard::shutdown
#[must_use = "telemetry stops when the guard is dropped"]
pub struct TelemetryGuard {
    pub(crate) inner: Option<pipeline::Running>,
    pub(crate) timeout: Duration,
    pub(crate) meter_provider: opentelemetry_sdk::metrics::SdkMeterProvider,
    pub(crate) tracer_provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
    pub(crate) logger_provider: Option<opentelemetry_sdk::logs::SdkLoggerProvider>,
    pub(crate) stats: Vec<Arc<ExportStats>>,
    pub(crate) reach: Arc<Reachability>,
    pub(crate) admin_addr: Option<SocketAddr>,
    #[cfg(feature = "log-archival")]
    pub(crate) archiver: Option<crate::archival::Archiver>,
}

impl std::fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryGuard")
            .field("admin_addr", &self.admin_addr)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl TelemetryGuard {
    /// The address the admin `/metrics` listener is bound to, if it runs.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The meter provider (also the OTel global, unless
    /// [`TelemetryBuilder::without_otel_globals`](crate::TelemetryBuilder::without_otel_globals)).
    pub fn meter_provider(&self) -> &opentelemetry_sdk::metrics::SdkMeterProvider {
        &self.meter_provider
    }

    /// The tracer provider (also the OTel global, unless
    /// [`TelemetryBuilder::without_otel_globals`](crate::TelemetryBuilder::without_otel_globals)); `None` when `OTEL_SDK_DISABLED=true`.
    pub fn tracer_provider(&self) -> Option<&opentelemetry_sdk::trace::SdkTracerProvider> {
        self.tracer_provider.as_ref()
    }

    /// The logger provider behind the OTel log bridge; `None` when logs are not exported.
    pub fn logger_provider(&self) -> Option<&opentelemetry_sdk::logs::SdkLoggerProvider> {
        self.logger_provider.as_ref()
    }

    /// Flushes every signal and the log files, then shuts the providers down. Returns within the
    /// configured timeout whatever the collector does.
    ///
    /// When not everything reached the collector, the error is
    /// [`TelemetryError::Undelivered`] with a [`ShutdownReport`] counting what was dropped over
    /// the run; its `Display` is one line for the operator, e.g. `collector unreachable at
    /// http://localhost:4318; dropped 12 spans, 30 log records, 3 metric exports`. A collector
    /// found unreachable is not retried during shutdown, so a service without one stops at once.
    pub fn shutdown(mut self) -> Result<(), TelemetryError> {
        self.shutdown_inner()
    }

    fn shutdown_inner(&mut self) -> Result<(), TelemetryError> {
        #[cfg(feature = "log-archival")]
        drop(self.archiver.take());
        let Some(running) = self.inner.take() else {
            return Ok(());
        };
        self.reach.begin_shutdown();
        let timeout = self.timeout;
        let started = Instant::now();
        let (tx, rx) = mpsc::channel();
        let spawned = thread::Builder::new()
            .name("telemetry-shutdown".into())
            .spawn(move || {
                let _ = tx.send(running.shutdown(timeout));
            });
        if spawned.is_err() {
            return Err(TelemetryError::Shutdown(
                "cannot start the shutdown thread".into(),
            ));
        }
        let (errors, timed_out) = match rx.recv_timeout(timeout + Duration::from_millis(250)) {
            Ok(errors) => (errors, started.elapsed() >= timeout),
            Err(_) => (Vec::new(), true),
        };
        let outcomes: Vec<_> = self.stats.iter().map(|s| s.outcome()).collect();
        // A provider's own error ("Failed to shutdown") says less than the counts do: keep it
        // only when nothing was counted for its signal.
        let other = errors
            .into_iter()
            .filter(|(signal, _)| {
                signal.is_none_or(|sig| {
                    !timed_out
                        && !outcomes
                            .iter()
                            .any(|o| o.signal == sig && o.failed_exports > 0)
                })
            })
            .map(|(_, e)| export::redact_text(&e))
            .collect();
        let report = ShutdownReport::new(&outcomes, timed_out.then_some(timeout), other);
        if report.is_clean() {
            Ok(())
        } else {
            Err(TelemetryError::Undelivered(Box::new(report)))
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        match self.shutdown_inner() {
            // A last export that failed was already counted and logged (rate-limited); the
            // embedded default has no collector, so that is the normal case and not worth a line.
            Ok(()) => {}
            Err(TelemetryError::Undelivered(r)) if r.timed_out.is_none() && r.other.is_empty() => {}
            // The subscriber may already be gone; stderr is the one channel left.
            Err(e) => eprintln!("telemetry: {e}"),
        }
    }
}
