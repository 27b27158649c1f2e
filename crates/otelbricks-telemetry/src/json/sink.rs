//! Where lines go: the [`LineSink`] trait, standard output, and a sink with its level.

use std::io::Write as _;

use tracing::Level;

/// Where formatted lines go. Each call gets one complete line, newline included.
pub trait LineSink: Send + Sync + 'static {
    /// Writes one line. Must not block for long and must not panic.
    fn write_line(&self, line: &[u8]);
}

/// Standard output, written synchronously: one `write_all` of a whole line under the stdout lock.
/// For tests and tools; `install` puts the console behind a [`crate::writer::BatchWriter`] so a slow
/// reader of stdout cannot slow the service.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdoutSink;

impl LineSink for StdoutSink {
    fn write_line(&self, line: &[u8]) {
        // A closed stdout (e.g. a pipe whose reader left) must not take the service down.
        let _ = std::io::stdout().lock().write_all(line);
    }
}

/// A sink of a [`super::JsonLayer`] and the least severe level it takes.
pub(super) struct Sink {
    /// Least severe level this sink takes (INFO takes INFO, WARN, ERROR).
    pub(super) min_level: Level,
    pub(super) out: Box<dyn LineSink>,
}
