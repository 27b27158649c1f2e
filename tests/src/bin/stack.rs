//! `stack build|up|down|status`: the observability stack (OTel Collector, Jaeger, Prometheus, Alertmanager) on
//! loopback without Docker, with the repository's configs.
//!
//! ```text
//! cargo run -p stack-tests --bin stack -- up        # builds on first use, prints the ports
//! cargo run -p stack-tests --bin stack -- status
//! cargo run -p stack-tests --bin stack -- down
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use stack_tests::{Binaries, Detached, Stack, StackOptions, paths, wait_until};

#[derive(Parser)]
#[command(about = "The observability stack on loopback, without Docker")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the collector, Jaeger, Prometheus and Alertmanager (cached; a warm run is instant) and print
    /// the `export STACK_*_BIN=...` lines the stack tests read.
    Build,
    /// Start every component on free loopback ports and leave them running.
    Up {
        /// Directory for configs, data and logs.
        #[arg(long, default_value_os_t = paths::run_dir())]
        dir: PathBuf,
        /// Prometheus scrape and evaluation interval (default: prometheus.yml's own).
        #[arg(long, value_parser = humantime::parse_duration)]
        interval: Option<Duration>,
    },
    /// Stop what `up` started.
    Down {
        /// The directory given to `up`.
        #[arg(long, default_value_os_t = paths::run_dir())]
        dir: PathBuf,
    },
    /// Show what runs and where.
    Status {
        /// The directory given to `up`.
        #[arg(long, default_value_os_t = paths::run_dir())]
        dir: PathBuf,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Build => {
            let bins = Binaries::build()?;
            print!("{}", bins.exports());
        }
        Cmd::Up { dir, interval } => {
            if let Ok(state) = read_state(&dir)
                && state.pids.iter().any(|(_, pid, exe)| ours(*pid, exe))
            {
                bail!(
                    "a stack is already running from {} (run `stack down` first)",
                    dir.display()
                );
            }
            let mut opts = StackOptions::new(&dir);
            opts.interval = interval;
            let stack = Stack::up_with(Binaries::build()?, opts).context("starting the stack")?;
            let state = stack.detach();
            let path = dir.join("state.json");
            std::fs::write(&path, serde_json::to_vec_pretty(&state)?)
                .with_context(|| format!("writing {}", path.display()))?;
            print_state(&state);
        }
        Cmd::Down { dir } => {
            let state = read_state(&dir)?;
            for (name, pid, exe) in &state.pids {
                if stop(*pid, exe) {
                    println!("stopped {name} (pid {pid})");
                }
            }
            let _ = std::fs::remove_file(dir.join("state.json"));
        }
        Cmd::Status { dir } => {
            let state = read_state(&dir)?;
            print_state(&state);
        }
    }
    Ok(())
}

fn read_state(dir: &std::path::Path) -> Result<Detached> {
    let path = dir.join("state.json");
    let bytes = std::fs::read(&path)
        .with_context(|| format!("no stack state at {} (is it up?)", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))
}

fn print_state(state: &Detached) {
    let p = &state.ports;
    for (name, pid, exe) in &state.pids {
        let status = if ours(*pid, exe) {
            "running"
        } else {
            "NOT RUNNING"
        };
        println!("{name:<13} pid {pid:<8} {status}");
    }
    println!();
    println!(
        "OTEL_EXPORTER_OTLP_PROTOCOL=grpc OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:{}   (OTLP/HTTP: {})",
        p.otlp_grpc, p.otlp_http
    );
    println!(
        "TELEMETRY_ADMIN_ADDR=127.0.0.1:{}              (Prometheus scrapes the app here)",
        p.app_admin
    );
    println!("Jaeger        http://127.0.0.1:{}", p.jaeger_query);
    println!("Prometheus    http://127.0.0.1:{}", p.prometheus);
    println!("Alertmanager  http://127.0.0.1:{}", p.alertmanager);
    println!("logs and data {}", state.dir.display());
}

fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

/// `pid` is alive and still runs `exe` (so it is the process `up` started, not one that reused its pid).
fn ours(pid: u32, exe: &Path) -> bool {
    alive(pid)
        && std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|running| {
            running.as_path() == exe || std::fs::canonicalize(exe).is_ok_and(|e| e == running)
        })
}

fn stop(pid: u32, exe: &Path) -> bool {
    let Ok(id) = i32::try_from(pid) else {
        return false;
    };
    if !ours(pid, exe) {
        return false;
    }
    // SAFETY: kill(2) on a pid recorded by `up`, still running the executable `up` started.
    unsafe { libc::kill(id, libc::SIGTERM) };
    if wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
        !ours(pid, exe)
    }) {
        return true;
    }
    // SAFETY: as above.
    unsafe { libc::kill(id, libc::SIGKILL) };
    true
}
