//! The reference app (`image2model`) and its load generator as child processes wired to a [`Stack`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::error::StackError;
use crate::poll::wait_until;
use crate::process::{Process, listener_port, wait_ready};
use crate::stack::Stack;

/// Path of the `image2model` binary next to the running test's target directory (`target/<profile>/`).
/// Nothing is built here: `scripts/test.sh` builds it (with the workspace's test build) before the tests run.
pub fn image2model_bin() -> Result<PathBuf, StackError> {
    let exe = std::env::current_exe().map_err(StackError::io("locating the test binary"))?;
    // target/<profile>/deps/<test> or target/<profile>/<bin>
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join("image2model");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(StackError::NotProvisioned {
            reason: format!("{} is not built", bin.display()),
        })
    }
}

/// A running image2model exporting over OTLP/gRPC to the stack's collector, with its admin listener on the
/// port Prometheus scrapes. Stopped (SIGTERM, graceful) when dropped.
pub struct App {
    process: Process,
    base_url: String,
    admin_url: String,
}

impl App {
    /// Starts it with its data and log files under `dir`, a 2 s metric export interval, and `extra_env`
    /// (applied last, so it can override anything), and waits for `/ready`.
    pub fn start(stack: &Stack, dir: &Path, extra_env: &[(&str, &str)]) -> Result<App, StackError> {
        let bin = image2model_bin()?;
        std::fs::create_dir_all(dir)
            .map_err(StackError::io(format!("creating {}", dir.display())))?;
        let listen = format!("127.0.0.1:{}", listener_port()?);
        let mut cmd = Command::new(bin);
        cmd.current_dir(dir)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", stack.otlp_grpc_endpoint())
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            .env("OTEL_METRIC_EXPORT_INTERVAL", "2000")
            .env("TELEMETRY_ADMIN_ADDR", stack.app_admin_addr())
            .env("TELEMETRY_LOG_DIR", dir.join("logs"))
            .env("TELEMETRY_CONSOLE", "off")
            .env("IMAGE2MODEL_LISTEN", &listen)
            .env("IMAGE2MODEL_DATA_DIR", dir.join("data"))
            // Short simulated jobs, so that a test sees many finish.
            .env("IMAGE2MODEL_SIM_PROCESSING_MIN", "100ms")
            .env("IMAGE2MODEL_SIM_PROCESSING_MAX", "600ms")
            .env("IMAGE2MODEL_POLL_INTERVAL", "100ms");
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut process = Process::spawn("image2model", &mut cmd, &dir.join("image2model.out"))?;
        let base_url = format!("http://{listen}");
        wait_ready(
            &mut process,
            &format!("{base_url}/ready"),
            Duration::from_secs(60),
        )?;
        Ok(App {
            process,
            base_url,
            admin_url: format!("http://{}/metrics", stack.app_admin_addr()),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The admin `/metrics` URL (the app's own Prometheus rendering, independent of the collector).
    pub fn admin_metrics_url(&self) -> &str {
        &self.admin_url
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The process handle (exit status, log).
    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    /// Starts `image2model loadgen` against it (output in `dir/loadgen.out`).
    pub fn loadgen(&self, dir: &Path, rps: u32, duration: Duration) -> Result<Loadgen, StackError> {
        let bin = image2model_bin()?;
        let out = dir.join("loadgen.out");
        let mut cmd = Command::new(bin);
        cmd.arg("loadgen")
            .arg("--target")
            .arg(&self.base_url)
            .arg("--rps")
            .arg(rps.to_string())
            .arg("--duration")
            .arg(format!("{}s", duration.as_secs()))
            .env("TELEMETRY_CONSOLE", "off")
            .env("OTEL_SDK_DISABLED", "true")
            .current_dir(dir);
        let process = Process::spawn("loadgen", &mut cmd, &out)?;
        Ok(Loadgen { process, out })
    }
}

/// A running load generator.
pub struct Loadgen {
    process: Process,
    out: PathBuf,
}

/// What `image2model loadgen` printed at the end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadSummary {
    /// Requests sent.
    pub requests: u64,
    /// 5xx answers and transport errors.
    pub errors: u64,
    /// 4xx answers (mostly the deliberate bad requests of the mix).
    pub client_errors: u64,
    /// The whole report.
    pub text: String,
}

impl Loadgen {
    /// Waits for it to finish (at most `timeout`) and parses its summary.
    pub fn wait(mut self, timeout: Duration) -> Result<LoadSummary, StackError> {
        let process = &mut self.process;
        if !wait_until(timeout, Duration::from_millis(200), || {
            process.exited().is_some()
        }) {
            self.process.kill();
            return Err(StackError::NotReady {
                name: "loadgen".into(),
                reason: format!("still running after {timeout:?}"),
                log: self.out.clone(),
                tail: crate::process::log_tail(&self.out, 20),
            });
        }
        let text =
            std::fs::read_to_string(&self.out).map_err(StackError::io("reading loadgen output"))?;
        parse_summary(&text).ok_or_else(|| StackError::NotReady {
            name: "loadgen".into(),
            reason: "no summary in its output".into(),
            log: self.out.clone(),
            tail: crate::process::log_tail(&self.out, 20),
        })
    }
}

/// Parses the summary `image2model loadgen` prints.
pub fn parse_summary(text: &str) -> Option<LoadSummary> {
    let number_after = |prefix: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(prefix))?;
        line[prefix.len()..].split_whitespace().next()?.parse().ok()
    };
    Some(LoadSummary {
        requests: number_after("requests: ")?,
        errors: number_after("errors (5xx + transport): ")?,
        client_errors: number_after("client errors (4xx, mostly deliberate): ")?,
        text: text.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loadgen_summary_is_parsed_and_a_missing_one_is_none() {
        let text = "requests: 400 in 20.0s (20.0/s)\nerrors (5xx + transport): 3\nclient errors (4xx, mostly deliberate): 52\n";
        let s = parse_summary(text).expect("parses");
        assert_eq!((s.requests, s.errors, s.client_errors), (400, 3, 52));
        assert!(parse_summary("error: connection refused\n").is_none());
    }
}
