//! Archival and retention of rotated log files on a timer, done by `otelbricks-logfiles` (feature
//! `log-archival`), the crate whose `RotatingFile` writes them: one place knows their names.
//!
//! The log writer rotates by size and gzips; this moves compressed rotations older than
//! `archive_after` into `<log dir>/archive/` (encrypted with `age` when recipients are set) and deletes
//! archives older than `retention`, once at start and then every `interval`, on its own thread. Nothing
//! here touches the active files or fresh rotations, so it never races the writer.
//!
//! Environment (overrides the builder): `TELEMETRY_LOG_ARCHIVE` (`true`/`false`),
//! `TELEMETRY_LOG_ARCHIVE_AFTER`, `TELEMETRY_LOG_RETENTION`, `TELEMETRY_LOG_ARCHIVE_INTERVAL` (durations such as
//! `30d`, `12h`), `TELEMETRY_LOG_ARCHIVE_RECIPIENTS` (comma-separated `age1...` public keys).

use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use opentelemetry::metrics::Counter;
use otelbricks_logfiles::ManageConfig;

use crate::TelemetryError;
use crate::config::{EnvSource, invalid, parse_bool};

/// What to archive and delete, and how often to look.
///
/// ```
/// use std::time::Duration;
/// let policy = otelbricks_telemetry::LogArchival::default()
///     .archive_after(Duration::from_secs(7 * 86_400))
///     .retention(Duration::from_secs(90 * 86_400));
/// let _builder = otelbricks_telemetry::builder("my-service").log_archival(policy);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogArchival {
    archive_after: Duration,
    retention: Duration,
    interval: Duration,
    recipients: Vec<String>,
}

impl Default for LogArchival {
    /// The Python design's policy: archive after 30 days, delete archives after 365 days, look every hour,
    /// no encryption.
    fn default() -> Self {
        LogArchival {
            archive_after: Duration::from_secs(30 * 86_400),
            retention: Duration::from_secs(365 * 86_400),
            interval: Duration::from_secs(3600),
            recipients: Vec::new(),
        }
    }
}

impl LogArchival {
    /// Compressed rotations older than this move to `archive/`.
    pub fn archive_after(mut self, age: Duration) -> Self {
        self.archive_after = age;
        self
    }

    /// Archives older than this are deleted.
    pub fn retention(mut self, age: Duration) -> Self {
        self.retention = age;
        self
    }

    /// How often to look (the first pass runs at start).
    pub fn interval(mut self, every: Duration) -> Self {
        self.interval = every;
        self
    }

    /// Encrypt archives to these `age` X25519 public keys (`age1...`); read them back with
    /// `logkit summary --identity FILE ...`.
    pub fn recipients(mut self, keys: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.recipients = keys.into_iter().map(Into::into).collect();
        self
    }

    /// The builder's policy (if any) with the environment applied; `None` when archival is off.
    pub(crate) fn resolve(
        base: Option<LogArchival>,
        env: &EnvSource,
    ) -> Result<Option<LogArchival>, TelemetryError> {
        let enabled = match env.get("TELEMETRY_LOG_ARCHIVE") {
            Some(v) => parse_bool("TELEMETRY_LOG_ARCHIVE", &v)?,
            None => base.is_some(),
        };
        if !enabled {
            return Ok(None);
        }
        let mut policy = base.unwrap_or_default();
        let duration = |var: &str, current: Duration| -> Result<Duration, TelemetryError> {
            match env.get(var) {
                None => Ok(current),
                Some(v) => match humantime::parse_duration(&v) {
                    Ok(d) if !d.is_zero() => Ok(d),
                    Ok(_) => Err(invalid(var, &v, "must be greater than 0")),
                    Err(e) => Err(invalid(
                        var,
                        &v,
                        format!("expected a duration such as 30d or 12h ({e})"),
                    )),
                },
            }
        };
        policy.archive_after = duration("TELEMETRY_LOG_ARCHIVE_AFTER", policy.archive_after)?;
        policy.retention = duration("TELEMETRY_LOG_RETENTION", policy.retention)?;
        policy.interval = duration("TELEMETRY_LOG_ARCHIVE_INTERVAL", policy.interval)?;
        if let Some(v) = env.get("TELEMETRY_LOG_ARCHIVE_RECIPIENTS") {
            policy.recipients = v
                .split(',')
                .map(|k| k.trim().to_owned())
                .filter(|k| !k.is_empty())
                .collect();
            otelbricks_logfiles::check_recipients(&policy.recipients)
                .map_err(|e| invalid("TELEMETRY_LOG_ARCHIVE_RECIPIENTS", &v, e.to_string()))?;
        } else if !policy.recipients.is_empty() {
            otelbricks_logfiles::check_recipients(&policy.recipients).map_err(|e| {
                invalid(
                    "log_archival recipients",
                    &policy.recipients.join(","),
                    e.to_string(),
                )
            })?;
        }
        if policy.retention < policy.archive_after {
            return Err(invalid(
                "TELEMETRY_LOG_RETENTION",
                &humantime::format_duration(policy.retention).to_string(),
                "must not be shorter than TELEMETRY_LOG_ARCHIVE_AFTER (archives would be deleted before they exist)",
            ));
        }
        Ok(Some(policy))
    }
}

/// The archival thread; stops (at its next wake-up, without waiting) when dropped.
pub(crate) struct Archiver {
    stop: Option<mpsc::Sender<()>>,
}

struct Instruments {
    archived: Counter<u64>,
    deleted: Counter<u64>,
    errors: Counter<u64>,
}

impl Archiver {
    pub(crate) fn start(dir: PathBuf, policy: LogArchival) -> Result<Archiver, TelemetryError> {
        let meter = opentelemetry::global::meter("telemetry");
        let instruments = Instruments {
            archived: meter
                .u64_counter("telemetry.log_files.archived")
                .with_description("Compressed log files moved into archive/.")
                .build(),
            deleted: meter
                .u64_counter("telemetry.log_files.deleted")
                .with_description("Archived log files deleted after the retention period.")
                .build(),
            errors: meter
                .u64_counter("telemetry.log_files.maintenance_errors")
                .with_description("Archival or cleanup passes that failed.")
                .build(),
        };
        let config = ManageConfig {
            archive_after: policy.archive_after,
            retention: policy.retention,
            recipients: policy.recipients.clone(),
            ..ManageConfig::new(dir)
        };
        let (tx, rx) = mpsc::channel::<()>();
        thread::Builder::new()
            .name("telemetry-log-archiver".into())
            .spawn(move || {
                loop {
                    pass(&config, &instruments);
                    match rx.recv_timeout(policy.interval) {
                        Err(mpsc::RecvTimeoutError::Timeout) => continue,
                        _ => break,
                    }
                }
            })
            .map_err(|e| {
                TelemetryError::Shutdown(format!("cannot start the log archiver thread: {e}"))
            })?;
        Ok(Archiver { stop: Some(tx) })
    }
}

impl Drop for Archiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn pass(config: &ManageConfig, m: &Instruments) {
    match otelbricks_logfiles::archive(config) {
        Ok(done) => m.archived.add(done.len() as u64, &[]),
        Err(e) => {
            m.errors.add(1, &[]);
            tracing::warn!(target: "otelbricks_telemetry::archival", error = %e, dir = %config.dir.display(), "log archival failed");
        }
    }
    match otelbricks_logfiles::cleanup(config) {
        Ok(done) => m.deleted.add(done.len() as u64, &[]),
        Err(e) => {
            m.errors.add(1, &[]);
            tracing::warn!(target: "otelbricks_telemetry::archival", error = %e, dir = %config.dir.display(), "log cleanup failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> EnvSource {
        EnvSource::from_fn(move |k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn archival_is_off_unless_the_builder_or_the_environment_turns_it_on() {
        assert_eq!(LogArchival::resolve(None, &env(&[])).ok(), Some(None));
        let on = LogArchival::resolve(None, &env(&[("TELEMETRY_LOG_ARCHIVE", "true")]))
            .ok()
            .flatten();
        assert_eq!(on, Some(LogArchival::default()));
        let off = LogArchival::resolve(
            Some(LogArchival::default()),
            &env(&[("TELEMETRY_LOG_ARCHIVE", "off")]),
        );
        assert_eq!(off.ok(), Some(None));
    }

    #[test]
    fn the_environment_overrides_the_builder_policy() {
        let policy = LogArchival::resolve(
            Some(LogArchival::default().archive_after(Duration::from_secs(60))),
            &env(&[
                ("TELEMETRY_LOG_ARCHIVE_AFTER", "7d"),
                ("TELEMETRY_LOG_ARCHIVE_INTERVAL", "10m"),
            ]),
        )
        .ok()
        .flatten()
        .expect("policy");
        assert_eq!(policy.archive_after, Duration::from_secs(7 * 86_400));
        assert_eq!(policy.interval, Duration::from_secs(600));
    }

    #[test]
    fn invalid_archival_settings_name_the_variable() {
        for (pairs, var) in [
            (
                &[("TELEMETRY_LOG_ARCHIVE", "maybe")][..],
                "TELEMETRY_LOG_ARCHIVE",
            ),
            (
                &[
                    ("TELEMETRY_LOG_ARCHIVE", "true"),
                    ("TELEMETRY_LOG_RETENTION", "forever"),
                ][..],
                "TELEMETRY_LOG_RETENTION",
            ),
            (
                &[
                    ("TELEMETRY_LOG_ARCHIVE", "true"),
                    ("TELEMETRY_LOG_ARCHIVE_INTERVAL", "0s"),
                ][..],
                "TELEMETRY_LOG_ARCHIVE_INTERVAL",
            ),
            (
                &[
                    ("TELEMETRY_LOG_ARCHIVE", "true"),
                    ("TELEMETRY_LOG_ARCHIVE_RECIPIENTS", "age1notakey"),
                ][..],
                "TELEMETRY_LOG_ARCHIVE_RECIPIENTS",
            ),
            (
                &[
                    ("TELEMETRY_LOG_ARCHIVE", "true"),
                    ("TELEMETRY_LOG_RETENTION", "1d"),
                ][..],
                "TELEMETRY_LOG_RETENTION",
            ),
        ] {
            let leaked: &'static [(&'static str, &'static str)] =
                Box::leak(pairs.to_vec().into_boxed_slice());
            match LogArchival::resolve(None, &env(leaked)) {
                Err(TelemetryError::InvalidConfig { var: v, .. }) => assert_eq!(v, var),
                other => panic!("{pairs:?}: expected an error naming {var}, got {other:?}"),
            }
        }
    }
}
