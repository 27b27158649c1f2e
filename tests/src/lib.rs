//! The observability stack on loopback, for tests and for local use without Docker.
//!
//! [`Stack::up`] starts the real OpenTelemetry Collector (our distribution in `otel-collector/`), Jaeger v2,
//! Prometheus and Alertmanager as child processes on free loopback ports, with the repository's own config
//! files, waits until each one is ready, and stops them all when dropped (also when a test panics).

pub mod grafana;
pub mod paths;
