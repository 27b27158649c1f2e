//! The Image2Model backend of the Python design, in Rust: uploads, 3D-model generation jobs and
//! batches, an in-process worker pool calling a FAL.AI-style provider over HTTP, a provider
//! simulator and a load generator — instrumented only through the public API of `telemetry`,
//! `telemetry-http` and `host-metrics`.
//!
//! The binary (`src/main.rs`) is a thin CLI over [`app::App`], [`sim`] and [`loadgen`]; tests drive
//! the same pieces in-process.

pub mod api;
pub mod app;
pub mod config;
pub mod error;
pub mod files;
pub mod limits;
pub mod loadgen;
pub mod metrics;
pub mod provider;
pub mod retention;
pub mod rng;
pub mod server;
pub mod sim;
pub mod store;
pub mod worker;

pub use app::App;
pub use config::ServeConfig;
