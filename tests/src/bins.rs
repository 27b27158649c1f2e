//! The stack's binaries: built (collector, Jaeger) or installed (Prometheus, Alertmanager) once, then cached.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use crate::error::StackError;
use crate::paths::repo_root;

/// Paths of every binary the stack runs.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// Our collector distribution (`otel-collector/build.sh`).
    pub otelcol: PathBuf,
    /// Jaeger v2 (`stack/build-jaeger.sh`).
    pub jaeger: PathBuf,
    /// Prometheus (Debian package).
    pub prometheus: PathBuf,
    /// promtool (Debian package `prometheus`).
    pub promtool: PathBuf,
    /// Alertmanager (Debian package `prometheus-alertmanager`).
    pub alertmanager: PathBuf,
    /// amtool (Debian package `prometheus-alertmanager`).
    pub amtool: PathBuf,
}

static ENSURED: Mutex<Option<Binaries>> = Mutex::new(None);

impl Binaries {
    /// Builds or installs what is missing (a cold collector + Jaeger build takes ~20 minutes on 2 cores; a warm
    /// call takes milliseconds) and returns the paths. Build output goes to this process's stderr.
    pub fn ensure() -> Result<Binaries, StackError> {
        let mut guard = ENSURED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bins) = guard.as_ref() {
            return Ok(bins.clone());
        }
        run_script("stack/install-prometheus.sh")?;
        let otelcol = PathBuf::from(run_script("otel-collector/build.sh")?);
        let jaeger = PathBuf::from(run_script("stack/build-jaeger.sh")?);
        let bins = Binaries {
            otelcol,
            jaeger,
            prometheus: which(&["prometheus"])?,
            promtool: which(&["promtool"])?,
            alertmanager: which(&["prometheus-alertmanager", "alertmanager"])?,
            amtool: which(&["amtool"])?,
        };
        *guard = Some(bins.clone());
        Ok(bins)
    }
}

/// Runs a repository script with bash and returns the last line it printed on stdout.
fn run_script(script: &str) -> Result<String, StackError> {
    let out = Command::new("bash")
        .arg(repo_root().join(script))
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(StackError::io(format!("running {script}")))?;
    if !out.status.success() {
        return Err(StackError::Script {
            script: script.to_string(),
            status: out.status.to_string(),
        });
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    Ok(stdout.lines().last().unwrap_or_default().trim().to_string())
}

/// The first of `names` found on PATH (or in /usr/bin, /usr/local/bin).
pub fn which(names: &[&str]) -> Result<PathBuf, StackError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.push(PathBuf::from("/usr/bin"));
    dirs.push(PathBuf::from("/usr/local/bin"));
    for name in names {
        for dir in &dirs {
            let candidate = dir.join(name);
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    Err(StackError::Missing {
        name: names.join(" or "),
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
