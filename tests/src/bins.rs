//! The stack's binaries, built from source at the versions `docker-compose.yml` runs
//! (`stack/versions.env`) and cached outside the clone.
//!
//! Tests never build or install anything: they find the binaries through the `STACK_*_BIN` environment
//! variables that `stack/build-all.sh` prints and `scripts/test.sh` exports, and fail at once with a one-line
//! message naming `scripts/test.sh` when they are not there. The `stack` command, which a person runs, builds
//! them itself ([`Binaries::build`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::StackError;
use crate::paths::repo_root;

/// Paths of every binary the stack runs.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// Our collector distribution (`otel-collector/build.sh`).
    pub otelcol: PathBuf,
    /// Jaeger v2 (`stack/build-jaeger.sh`).
    pub jaeger: PathBuf,
    /// Prometheus (`stack/build-prometheus.sh`).
    pub prometheus: PathBuf,
    /// promtool, of the same build as `prometheus`.
    pub promtool: PathBuf,
    /// Alertmanager (`stack/build-alertmanager.sh`).
    pub alertmanager: PathBuf,
    /// amtool, of the same build as `alertmanager`.
    pub amtool: PathBuf,
}

/// The script that builds every binary and prints the environment naming them.
pub const BUILD_SCRIPT: &str = "stack/build-all.sh";

/// (binary, environment variable naming it), in [`Binaries`] field order.
pub const VARS: [(&str, &str); 6] = [
    ("otelcol", "STACK_OTELCOL_BIN"),
    ("jaeger", "STACK_JAEGER_BIN"),
    ("prometheus", "STACK_PROMETHEUS_BIN"),
    ("promtool", "STACK_PROMTOOL_BIN"),
    ("alertmanager", "STACK_ALERTMANAGER_BIN"),
    ("amtool", "STACK_AMTOOL_BIN"),
];

impl Binaries {
    /// The binaries `scripts/test.sh` provisioned, from the `STACK_*_BIN` variables; never builds anything.
    /// Errs with [`StackError::NotProvisioned`] when a variable is unset or names no executable.
    pub fn provisioned() -> Result<Binaries, StackError> {
        Binaries::from_lookup(|var| std::env::var_os(var).filter(|v| !v.is_empty()))
    }

    /// The same as [`Binaries::provisioned`] (builds nothing): the name earlier callers use.
    pub fn ensure() -> Result<Binaries, StackError> {
        Binaries::provisioned()
    }

    /// Runs `stack/build-all.sh` (Go builds of whatever is not cached yet; its output goes to this process's
    /// stderr) and returns the paths it printed. For the `stack` command, not for tests.
    pub fn build() -> Result<Binaries, StackError> {
        let out = Command::new("bash")
            .arg(repo_root().join(BUILD_SCRIPT))
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(StackError::io(format!("running {BUILD_SCRIPT}")))?;
        if !out.status.success() {
            return Err(StackError::Script {
                script: BUILD_SCRIPT.to_string(),
                status: out.status.to_string(),
            });
        }
        let printed = parse_exports(&String::from_utf8_lossy(&out.stdout));
        Binaries::from_lookup(|var| {
            printed
                .iter()
                .find(|(k, _)| k == var)
                .map(|(_, v)| v.into())
        })
    }

    fn from_lookup(
        lookup: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Binaries, StackError> {
        let find = |name: &str| -> Result<PathBuf, StackError> {
            let var = var_of(name);
            let path =
                lookup(var)
                    .map(PathBuf::from)
                    .ok_or_else(|| StackError::NotProvisioned {
                        reason: format!("{var} is not set"),
                    })?;
            if is_executable(&path) {
                Ok(path)
            } else {
                Err(StackError::NotProvisioned {
                    reason: format!("{var}={} is not an executable", path.display()),
                })
            }
        };
        Ok(Binaries {
            otelcol: find("otelcol")?,
            jaeger: find("jaeger")?,
            prometheus: find("prometheus")?,
            promtool: find("promtool")?,
            alertmanager: find("alertmanager")?,
            amtool: find("amtool")?,
        })
    }

    /// `export NAME='path'` lines naming every binary, as `stack/build-all.sh` prints them.
    pub fn exports(&self) -> String {
        let paths = [
            &self.otelcol,
            &self.jaeger,
            &self.prometheus,
            &self.promtool,
            &self.alertmanager,
            &self.amtool,
        ];
        VARS.iter()
            .zip(paths)
            .map(|((_, var), path)| format!("export {var}='{}'\n", path.display()))
            .collect()
    }
}

fn var_of(name: &str) -> &'static str {
    VARS.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, var)| *var)
        .unwrap_or("STACK_UNKNOWN_BIN")
}

/// `NAME` and `value` of every `export NAME='value'` line.
fn parse_exports(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("export "))
        .filter_map(|rest| rest.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect()
}

/// The provisioned binary called `names[0]` (`promtool`, `amtool`, `prometheus`, ...), from its
/// `STACK_*_BIN` variable: never a copy found on `PATH`, which may be another version than compose runs.
pub fn which(names: &[&str]) -> Result<PathBuf, StackError> {
    let bins = Binaries::provisioned()?;
    let found = names.iter().find_map(|name| match *name {
        "otelcol" => Some(bins.otelcol.clone()),
        "jaeger" => Some(bins.jaeger.clone()),
        "prometheus" => Some(bins.prometheus.clone()),
        "promtool" => Some(bins.promtool.clone()),
        "alertmanager" | "prometheus-alertmanager" => Some(bins.alertmanager.clone()),
        "amtool" => Some(bins.amtool.clone()),
        _ => None,
    });
    found.ok_or_else(|| StackError::Missing {
        name: names.join(" or "),
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unset_variable_is_a_one_line_error_naming_the_test_script() {
        let err = Binaries::from_lookup(|_| None).unwrap_err().to_string();
        assert!(err.contains("STACK_OTELCOL_BIN is not set"), "{err}");
        assert!(err.contains("scripts/test.sh"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }

    #[test]
    fn a_variable_naming_no_executable_is_an_error() {
        let err = Binaries::from_lookup(|_| Some("/nonexistent/otelcol".into()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("STACK_OTELCOL_BIN=/nonexistent/otelcol is not an executable"),
            "{err}"
        );
    }

    #[test]
    fn the_printed_exports_parse_back_to_the_same_paths() {
        let exe = std::env::current_exe().expect("test binary path");
        let bins = Binaries::from_lookup(|_| Some(exe.clone().into())).expect("all executable");
        let printed = parse_exports(&bins.exports());
        assert_eq!(printed.len(), VARS.len());
        for ((_, var), (k, v)) in VARS.iter().zip(&printed) {
            assert_eq!((var, Path::new(v)), (&k.as_str(), exe.as_path()));
        }
    }
}
