//! `image2model [serve]`, `image2model provider-sim`, `image2model loadgen`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use image2model::app::{App, AppOptions};
use image2model::config::ServeConfig;
use image2model::loadgen::LoadgenConfig;
use image2model::sim::SimConfig;

/// The Image2Model backend: uploads, 3D-model generation jobs and batches, fully instrumented.
#[derive(Debug, Parser)]
#[command(name = "image2model", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeConfig,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the API and the workers (the default).
    Serve(Box<ServeConfig>),
    /// Runs the FAL.AI-style provider simulator on its own.
    ProviderSim(SimConfig),
    /// Drives a realistic load against a running instance.
    Loadgen(LoadgenConfig),
}

/// The environment variable behind a flag such as `--workers <WORKERS>`, searched in every
/// subcommand.
fn env_of(cmd: &clap::Command, flag: &str) -> Option<String> {
    let long = flag.trim_start_matches("--").split([' ', '=']).next()?;
    for a in cmd.get_arguments() {
        if a.get_long() == Some(long) {
            return a.get_env().map(|e| e.to_string_lossy().into_owned());
        }
    }
    cmd.get_subcommands().find_map(|c| env_of(c, flag))
}

fn parse_cli() -> Result<Cli, ExitCode> {
    let cmd = Cli::command();
    let matches = cmd.clone().try_get_matches();
    let result = matches.and_then(|m| Cli::from_arg_matches(&m));
    result.map_err(|e| {
        use clap::error::{ContextKind, ContextValue, ErrorKind};
        if matches!(
            e.kind(),
            ErrorKind::InvalidValue | ErrorKind::ValueValidation
        ) && let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg)
            && let Some(var) = env_of(&cmd, arg)
        {
            eprintln!("error: invalid value for {arg} (environment variable {var}): see below");
        }
        let _ = e.print();
        ExitCode::from(if e.use_stderr() { 2 } else { 0 })
    })
}

/// reqwest 0.13's rustls verifier loads the system's CA roots when *any* client is built (the
/// OTLP exporter's, the provider's, loadgen's) and fails with a bare "builder error" when there
/// are none (a slim container without `ca-certificates`). Say so up front instead.
#[cfg(all(unix, not(target_vendor = "apple"), not(target_os = "android")))]
fn check_system_ca_roots() -> anyhow::Result<()> {
    let found = rustls_native_certs::load_native_certs();
    if found.certs.is_empty() {
        let why = found
            .errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ");
        anyhow::bail!(
            "no CA certificates found on this system{}: every HTTP client here (OTLP exporter, \
             provider, loadgen) verifies TLS against the system's roots and cannot be built \
             without any; install the ca-certificates package, or point SSL_CERT_FILE at a PEM \
             bundle",
            if why.is_empty() {
                String::new()
            } else {
                format!(" ({why})")
            }
        );
    }
    Ok(())
}

#[cfg(not(all(unix, not(target_vendor = "apple"), not(target_os = "android"))))]
fn check_system_ca_roots() -> anyhow::Result<()> {
    Ok(())
}

fn main() -> ExitCode {
    let cli = match parse_cli() {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Err(e) = check_system_ca_roots() {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(c)) => serve(*c),
        Some(Command::ProviderSim(c)) => provider_sim(c),
        Some(Command::Loadgen(c)) => loadgen(c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
}

/// Ctrl-C and (on Unix) SIGTERM, received as many times as they come.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Installs the handlers (before the first signal can arrive).
    fn new() -> Self {
        Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    /// The next signal: its name and the conventional exit code (128 + number).
    async fn next(&mut self) -> (&'static str, u8) {
        let ctrl_c = async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        #[cfg(unix)]
        let term = async {
            match &mut self.term {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => ("SIGINT", 130),
            _ = term => ("SIGTERM", 143),
        }
    }
}

async fn shutdown_signal() {
    let (signal, _) = Signals::new().next().await;
    tracing::info!(signal, "shutdown signal received");
}

fn finish_telemetry(guard: otelbricks_telemetry::TelemetryGuard) {
    if let Err(e) = guard.shutdown() {
        eprintln!("telemetry: {e}");
    }
}

fn serve(cfg: ServeConfig) -> anyhow::Result<()> {
    let guard = otelbricks_telemetry::builder("image2model")
        .service_version(env!("CARGO_PKG_VERSION"))
        .with_host_metrics(otelbricks_host_metrics::HostMetrics::builder())
        .install()
        .context("cannot install telemetry")?;
    let rt = runtime()?;
    let result = rt.block_on(async {
        let listen = cfg.listen;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen} (IMAGE2MODEL_LISTEN)"))?;
        let app = App::start(cfg.clone(), AppOptions::default())
            .await
            .with_context(|| {
                format!(
                    "cannot start with data directory {}",
                    cfg.data_dir.display()
                )
            })?;
        tracing::info!(
            addr = %listener.local_addr().unwrap_or(listen),
            admin = ?guard.admin_addr(),
            simulator = ?app.simulator_addr(),
            workers = cfg.workers,
            data_dir = %cfg.data_dir.display(),
            "image2model listening"
        );
        // The signal stops accepting; open requests get the grace period (plus 5 s) to finish.
        // A second signal during the graceful shutdown exits at once: running jobs stay
        // `running` in the database and are requeued by the next start.
        let (signalled_tx, mut signalled) = tokio::sync::watch::channel(false);
        let mut signals = Signals::new();
        tokio::spawn(async move {
            let (signal, _) = signals.next().await;
            tracing::info!(signal, "shutdown signal received; stopping gracefully (send it again to exit at once)");
            let _ = signalled_tx.send(true);
            let (signal, code) = signals.next().await;
            let message = "second shutdown signal: exiting now without waiting for jobs or \
                           flushing telemetry; running jobs are requeued at the next start";
            tracing::warn!(signal, exit_code = code, "{message}");
            // Console logs go through a batching writer that exit() does not flush: say it on
            // stderr too, unbuffered.
            eprintln!("image2model: {message} ({signal}, exit code {code})");
            std::process::exit(i32::from(code));
        });
        let mut graceful = signalled.clone();
        let server = app.serve(listener, async move {
            let _ = graceful.wait_for(|s| *s).await;
        });
        let drain_limit = cfg.shutdown_grace + Duration::from_secs(5);
        let served = tokio::select! {
            r = server => r.context("the HTTP server failed"),
            _ = async {
                let _ = signalled.wait_for(|s| *s).await;
                tokio::time::sleep(drain_limit).await;
            } => {
                tracing::warn!(limit_s = drain_limit.as_secs_f64(), "open requests did not finish in time; closing them");
                Ok(())
            }
        };
        let report = app.shutdown().await;
        tracing::info!(
            finished_in_grace = report.finished_in_grace,
            requeued = report.requeued.len(),
            "image2model stopped"
        );
        served
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    finish_telemetry(guard);
    result
}

fn provider_sim(cfg: SimConfig) -> anyhow::Result<()> {
    let guard = otelbricks_telemetry::builder("image2model-provider-sim")
        .service_version(env!("CARGO_PKG_VERSION"))
        .without_admin()
        .install()
        .context("cannot install telemetry")?;
    let rt = runtime()?;
    let result = rt.block_on(async {
        let addr = cfg
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8090)));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (IMAGE2MODEL_SIM_LISTEN)"))?;
        let h =
            image2model::sim::spawn(cfg, listener, Some(otelbricks_http::HttpServerLayer::new()))
                .context("cannot start the simulator")?;
        tracing::info!(addr = %h.addr, "provider simulator listening");
        shutdown_signal().await;
        h.stop().await;
        anyhow::Ok(())
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    finish_telemetry(guard);
    result
}

fn loadgen(cfg: LoadgenConfig) -> anyhow::Result<()> {
    let rt = runtime()?;
    let summary = rt
        .block_on(image2model::loadgen::run(&cfg, true))
        .context("load generation failed")?;
    println!("{summary}");
    Ok(())
}
