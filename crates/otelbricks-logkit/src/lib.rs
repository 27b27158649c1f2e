//! `logkit`: analysis of the JSON request logs written by `otelbricks-telemetry` (and by the
//! Python design's services); the request-line schema is in the repository's
//! `docs/log-schema.md`.
//!
//! * [`analyze::analyze`] reads files, directories, globs or stdin (plain, gzip, age) and
//!   returns a [`report::Report`] (errors, performance, daily summary).
//! * Rotation, archival and cleanup are `otelbricks-logfiles`; the `logkit` binary's `rotate`,
//!   `archive` and `cleanup` subcommands call it.

pub mod analyze;
pub mod crypt;
pub mod error;
pub mod html;
pub mod input;
mod keys;
pub mod line;
pub mod report;
pub mod terminal;
pub mod timestamp;

pub use analyze::{Options, analyze};
pub use error::{AnalyzeError, InputError};
pub use report::{Report, Section};
