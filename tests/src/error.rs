//! The harness's error type.

use std::path::PathBuf;

/// What can go wrong while building, starting or talking to the stack.
///
/// `Debug` prints the `Display` text, so a test's `expect("...")` shows the readable one-line message.
#[derive(thiserror::Error)]
pub enum StackError {
    /// The stack's binaries were not provisioned for this process.
    #[error(
        "stack binaries not provisioned ({reason}): run scripts/test.sh, which builds them and runs these tests"
    )]
    NotProvisioned {
        /// Which variable is missing or wrong.
        reason: String,
    },
    /// A build or install script failed.
    #[error("{script} failed ({status}); its output is above")]
    Script {
        /// The script, relative to the repository root.
        script: String,
        /// Its exit status.
        status: String,
    },
    /// A binary name the stack does not build.
    #[error("{name} is not one of the stack's binaries")]
    Missing {
        /// The binary's name.
        name: String,
    },
    /// A component did not become ready in time, or exited while starting.
    #[error("{name} not ready: {reason}\n--- last lines of {log} ---\n{tail}")]
    NotReady {
        /// The component.
        name: String,
        /// Why.
        reason: String,
        /// Its log file.
        log: PathBuf,
        /// The end of its log.
        tail: String,
    },
    /// A config file does not hold what the renderer substitutes.
    #[error("cannot render {file}: {reason}")]
    Render {
        /// The config file.
        file: String,
        /// What is missing.
        reason: String,
    },
    /// An I/O error, with what was being done.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An HTTP request to a component failed.
    #[error("{url}: {reason}")]
    Http {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}

impl StackError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StackError {
        let what = what.into();
        move |source| StackError::Io { what, source }
    }

    pub(crate) fn http<E: std::fmt::Display>(
        url: impl Into<String>,
    ) -> impl FnOnce(E) -> StackError {
        let url = url.into();
        move |reason| StackError::Http {
            url,
            reason: reason.to_string(),
        }
    }
}

impl std::fmt::Debug for StackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
