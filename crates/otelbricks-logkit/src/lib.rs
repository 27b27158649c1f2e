//! `logkit`: log rotation, archival and analysis for the JSON request logs written by the
//! `telemetry` crate (and by the seed's Python services).
//!
//! * [`analyze::analyze`] reads files, directories, globs or stdin (plain, gzip, age) and
//!   returns a [`report::Report`] (errors, performance, daily summary).
//! * [`manage`] rotates, compresses, archives, encrypts and deletes log files, crash-safely.

pub mod analyze;
pub mod crypt;
pub mod error;
pub mod html;
pub mod input;
mod keys;
pub mod line;
pub mod manage;
pub mod report;
pub mod timestamp;

pub use analyze::{Options, analyze};
pub use error::{AnalyzeError, InputError, ManageError};
pub use report::{Report, Section};
