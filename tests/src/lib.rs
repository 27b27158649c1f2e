//! The observability stack on loopback, for tests and for local use without Docker.
//!
//! [`Stack::up`] starts the real OpenTelemetry Collector (our distribution in `otel-collector/`), Jaeger v2,
//! Prometheus and Alertmanager as child processes on free loopback ports, with the repository's own config
//! files (Prometheus' and Alertmanager's rendered to loopback addresses, see [`render`]), waits until each one
//! is ready, and stops them all when dropped (also when a test panics). [`Sink`] receives what would go to
//! Loki and to the alert webhook, and decodes it.
//!
//! ```no_run
//! use stack_tests::{Stack, StackOptions};
//! let dir = tempfile::tempdir()?;
//! let stack = Stack::up(StackOptions::new(dir.path()))?;
//! println!("OTLP/gRPC at {}", stack.otlp_grpc_endpoint());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod accounting;
pub mod app;
pub mod bins;
pub mod error;
pub mod exposition;
pub mod gateway;
pub mod grafana;
pub mod http;
pub mod paths;
pub mod poll;
pub mod process;
pub mod query;
pub mod render;
pub mod rules;
pub mod signals;
pub mod sink;
pub mod smtp;
pub mod stack;
pub mod traffic;
pub mod versions;

pub use app::{App, LoadSummary, Loadgen};
pub use bins::Binaries;
pub use error::StackError;
pub use poll::{eventually, wait_until};
pub use process::Process;
pub use sink::{ReceivedLog, Sink};
pub use smtp::{Mail, SmtpSink};
pub use stack::{Detached, Ports, Stack, StackOptions};
