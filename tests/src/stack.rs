//! The stack itself: start, readiness, restart of the collector, stop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::bins::Binaries;
use crate::error::StackError;
use crate::paths::repo_root;
use crate::process::{Process, free_port, listener_port, wait_ready};
use crate::render;

/// How to bring the stack up.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Where rendered configs, data and logs go (created if missing).
    pub dir: PathBuf,
    /// Prometheus scrape and rule evaluation interval (`None`: the file's own, 15 s).
    pub interval: Option<Duration>,
    /// Where the collector sends logs (Loki's OTLP endpoint); `None`: a port nothing listens on.
    pub loki_endpoint: Option<String>,
    /// Alertmanager's webhook URL; `None`: a port nothing listens on.
    pub webhook_url: Option<String>,
    /// How long each component may take to become ready.
    pub ready_timeout: Duration,
}

impl StackOptions {
    /// Defaults for `dir`: file intervals, no Loki, no webhook receiver, 60 s to become ready.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StackOptions {
            dir: dir.into(),
            interval: None,
            loki_endpoint: None,
            webhook_url: None,
            ready_timeout: Duration::from_secs(60),
        }
    }
}

/// Every port the stack listens on (all on 127.0.0.1), plus the one reserved for the app's admin listener
/// that Prometheus scrapes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ports {
    /// Collector OTLP/gRPC receiver: point the app here.
    pub otlp_grpc: u16,
    /// Collector OTLP/HTTP receiver.
    pub otlp_http: u16,
    /// Collector health_check extension.
    pub collector_health: u16,
    /// Collector Prometheus exporter (app metrics + span metrics).
    pub collector_exporter: u16,
    /// Collector's own metrics.
    pub collector_self: u16,
    /// Jaeger OTLP/gRPC receiver (the collector exports here).
    pub jaeger_otlp_grpc: u16,
    /// Jaeger OTLP/HTTP receiver.
    pub jaeger_otlp_http: u16,
    /// Jaeger UI + HTTP API.
    pub jaeger_query: u16,
    /// Jaeger query gRPC API.
    pub jaeger_query_grpc: u16,
    /// Jaeger's own metrics.
    pub jaeger_metrics: u16,
    /// Prometheus.
    pub prometheus: u16,
    /// Alertmanager.
    pub alertmanager: u16,
    /// The app's admin listener (`TELEMETRY_ADMIN_ADDR=127.0.0.1:<this>`): Prometheus scrapes it.
    pub app_admin: u16,
}

impl Ports {
    fn allocate() -> Result<Ports, StackError> {
        Ok(Ports {
            // Below the ephemeral range, so no outgoing connection takes a port before its component binds
            // it (or binds it again: `start_collector` after a kill).
            otlp_grpc: listener_port()?,
            otlp_http: listener_port()?,
            collector_health: listener_port()?,
            collector_exporter: listener_port()?,
            collector_self: listener_port()?,
            jaeger_otlp_grpc: listener_port()?,
            jaeger_otlp_http: listener_port()?,
            jaeger_query: listener_port()?,
            jaeger_query_grpc: listener_port()?,
            jaeger_metrics: listener_port()?,
            prometheus: listener_port()?,
            alertmanager: listener_port()?,
            app_admin: listener_port()?,
        })
    }
}

/// How long each component took to become ready.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StartTimes {
    /// Collector.
    pub collector: Duration,
    /// Jaeger.
    pub jaeger: Duration,
    /// Prometheus.
    pub prometheus: Duration,
    /// Alertmanager.
    pub alertmanager: Duration,
}

/// The running stack. Dropping it stops every component (SIGTERM, then SIGKILL).
pub struct Stack {
    bins: Binaries,
    opts: StackOptions,
    ports: Ports,
    start_times: StartTimes,
    // Stop order on drop: the collector first (it flushes to Jaeger), then the rest.
    collector: Option<Process>,
    jaeger: Process,
    prometheus: Process,
    alertmanager: Process,
}

impl Stack {
    /// [`Stack::up_with`] the binaries `scripts/test.sh` provisioned ([`Binaries::provisioned`]): errs at
    /// once, building nothing, when they are not there.
    pub fn up(opts: StackOptions) -> Result<Stack, StackError> {
        Stack::up_with(Binaries::provisioned()?, opts)
    }

    /// Renders the configs into `opts.dir`, starts Jaeger, the collector, Alertmanager and Prometheus from
    /// `bins` on free loopback ports, and waits until each is ready.
    pub fn up_with(bins: Binaries, opts: StackOptions) -> Result<Stack, StackError> {
        std::fs::create_dir_all(&opts.dir)
            .map_err(StackError::io(format!("creating {}", opts.dir.display())))?;
        let ports = Ports::allocate()?;
        let mut times = StartTimes::default();

        let mut jaeger = spawn_jaeger(&bins, &opts.dir, &ports)?;
        times.jaeger = wait_ready(
            &mut jaeger,
            &format!("http://127.0.0.1:{}/api/v3/services", ports.jaeger_query),
            opts.ready_timeout,
        )?;

        let mut collector = spawn_collector(&bins, &opts, &ports)?;
        times.collector = wait_ready(
            &mut collector,
            &format!("http://127.0.0.1:{}/", ports.collector_health),
            opts.ready_timeout,
        )?;

        let mut alertmanager = spawn_alertmanager(&bins, &opts, &ports)?;
        times.alertmanager = wait_ready(
            &mut alertmanager,
            &format!("http://127.0.0.1:{}/-/ready", ports.alertmanager),
            opts.ready_timeout,
        )?;

        let mut prometheus = spawn_prometheus(&bins, &opts, &ports)?;
        times.prometheus = wait_ready(
            &mut prometheus,
            &format!("http://127.0.0.1:{}/-/ready", ports.prometheus),
            opts.ready_timeout,
        )?;

        Ok(Stack {
            bins,
            opts,
            ports,
            start_times: times,
            collector: Some(collector),
            jaeger,
            prometheus,
            alertmanager,
        })
    }

    /// The ports.
    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    /// How long each component took to become ready.
    pub fn start_times(&self) -> &StartTimes {
        &self.start_times
    }

    /// The binaries in use.
    pub fn binaries(&self) -> &Binaries {
        &self.bins
    }

    /// `http://127.0.0.1:<otlp_grpc>`: the app's `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn otlp_grpc_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.otlp_grpc)
    }

    /// `127.0.0.1:<app_admin>`: the app's `TELEMETRY_ADMIN_ADDR`, scraped by Prometheus.
    pub fn app_admin_addr(&self) -> String {
        format!("127.0.0.1:{}", self.ports.app_admin)
    }

    /// Prometheus' base URL.
    pub fn prometheus_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.prometheus)
    }

    /// Jaeger's query base URL.
    pub fn jaeger_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.jaeger_query)
    }

    /// Alertmanager's base URL.
    pub fn alertmanager_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.alertmanager)
    }

    /// The collector's own metrics URL.
    pub fn collector_metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.ports.collector_self)
    }

    /// The collector's Prometheus exporter URL.
    pub fn collector_exporter_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.ports.collector_exporter)
    }

    /// Kills the collector with SIGKILL (a crash, as the app sees it).
    pub fn kill_collector(&mut self) {
        if let Some(mut c) = self.collector.take() {
            c.kill();
        }
    }

    /// Starts the collector again on the same ports and waits until it is ready; returns how long that took.
    pub fn start_collector(&mut self) -> Result<Duration, StackError> {
        self.kill_collector();
        let mut collector = spawn_collector(&self.bins, &self.opts, &self.ports)?;
        let took = wait_ready(
            &mut collector,
            &format!("http://127.0.0.1:{}/", self.ports.collector_health),
            self.opts.ready_timeout,
        )?;
        self.collector = Some(collector);
        Ok(took)
    }

    /// Log files of every component, for failure messages.
    pub fn logs(&self) -> Vec<PathBuf> {
        ["collector", "jaeger", "prometheus", "alertmanager"]
            .iter()
            .map(|n| self.opts.dir.join(format!("{n}.log")))
            .collect()
    }

    /// Leaves every component running and returns their pids and the ports (for `stack up`).
    pub fn detach(mut self) -> Detached {
        let bins = self.bins.clone();
        let pids = vec![
            (
                "collector".to_string(),
                self.collector.take().map(Process::detach).unwrap_or(0),
                bins.otelcol,
            ),
            (
                "jaeger".to_string(),
                self.jaeger_take().detach(),
                bins.jaeger,
            ),
            (
                "prometheus".to_string(),
                self.prometheus_take().detach(),
                bins.prometheus,
            ),
            (
                "alertmanager".to_string(),
                self.alertmanager_take().detach(),
                bins.alertmanager,
            ),
        ];
        Detached {
            pids,
            ports: self.ports.clone(),
            dir: self.opts.dir.clone(),
            start_times: self.start_times.clone(),
        }
    }

    fn jaeger_take(&mut self) -> Process {
        std::mem::replace(&mut self.jaeger, placeholder())
    }
    fn prometheus_take(&mut self) -> Process {
        std::mem::replace(&mut self.prometheus, placeholder())
    }
    fn alertmanager_take(&mut self) -> Process {
        std::mem::replace(&mut self.alertmanager, placeholder())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(mut c) = self.collector.take() {
            c.stop(Duration::from_secs(5));
        }
        self.prometheus.stop(Duration::from_secs(5));
        self.alertmanager.stop(Duration::from_secs(5));
        self.jaeger.stop(Duration::from_secs(5));
    }
}

/// A stack left running by `stack up`: what `stack down|status` need.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Detached {
    /// (component, pid, executable): `stack down` signals a pid only while it still runs that executable,
    /// never a process that reused the pid.
    pub pids: Vec<(String, u32, PathBuf)>,
    /// The ports.
    pub ports: Ports,
    /// Its directory (configs, data, logs).
    pub dir: PathBuf,
    /// Readiness times.
    pub start_times: StartTimes,
}

fn placeholder() -> Process {
    // A handle with no child: `Process::stop` on it does nothing.
    Process::none("stopped")
}

/// Starts Jaeger with the repository's config on the `jaeger_*` ports of `ports`, logging to `dir/jaeger.log`.
pub fn spawn_jaeger(bins: &Binaries, dir: &Path, ports: &Ports) -> Result<Process, StackError> {
    let mut cmd = Command::new(&bins.jaeger);
    cmd.arg("--config")
        .arg(repo_root().join("jaeger/config.yaml"))
        .env("JAEGER_LISTEN_HOST", "127.0.0.1")
        .env("JAEGER_OTLP_GRPC_PORT", ports.jaeger_otlp_grpc.to_string())
        .env("JAEGER_OTLP_HTTP_PORT", ports.jaeger_otlp_http.to_string())
        .env("JAEGER_QUERY_HTTP_PORT", ports.jaeger_query.to_string())
        .env(
            "JAEGER_QUERY_GRPC_PORT",
            ports.jaeger_query_grpc.to_string(),
        )
        .env("JAEGER_METRICS_PORT", ports.jaeger_metrics.to_string());
    Process::spawn("jaeger", &mut cmd, &dir.join("jaeger.log"))
}

fn spawn_collector(
    bins: &Binaries,
    opts: &StackOptions,
    ports: &Ports,
) -> Result<Process, StackError> {
    let loki = opts
        .loki_endpoint
        .clone()
        .unwrap_or_else(|| format!("http://127.0.0.1:{}/otlp", unused_port()));
    let mut cmd = Command::new(&bins.otelcol);
    cmd.arg(format!(
        "--config={}",
        repo_root().join("otel-collector/config.yaml").display()
    ));
    for (key, value) in collector_env(ports, &loki) {
        cmd.env(key, value);
    }
    Process::spawn("collector", &mut cmd, &opts.dir.join("collector.log"))
}

/// The collector's environment for the loopback stack (every `OTELCOL_*` variable config.yaml reads).
pub fn collector_env(ports: &Ports, loki_endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "OTELCOL_OTLP_GRPC_ENDPOINT",
            format!("127.0.0.1:{}", ports.otlp_grpc),
        ),
        (
            "OTELCOL_OTLP_HTTP_ENDPOINT",
            format!("127.0.0.1:{}", ports.otlp_http),
        ),
        (
            "OTELCOL_HEALTH_ENDPOINT",
            format!("127.0.0.1:{}", ports.collector_health),
        ),
        (
            "OTELCOL_PROMETHEUS_ENDPOINT",
            format!("127.0.0.1:{}", ports.collector_exporter),
        ),
        ("OTELCOL_SELF_METRICS_HOST", "127.0.0.1".to_string()),
        (
            "OTELCOL_SELF_METRICS_PORT",
            ports.collector_self.to_string(),
        ),
        ("OTELCOL_LOKI_ENDPOINT", loki_endpoint.to_string()),
        (
            "OTELCOL_JAEGER_ENDPOINT",
            format!("127.0.0.1:{}", ports.jaeger_otlp_grpc),
        ),
        ("OTELCOL_LOG_LEVEL", "info".to_string()),
    ]
}

fn spawn_alertmanager(
    bins: &Binaries,
    opts: &StackOptions,
    ports: &Ports,
) -> Result<Process, StackError> {
    let src = read(&repo_root().join("alertmanager/alertmanager.yml"))?;
    let webhook = opts
        .webhook_url
        .clone()
        .unwrap_or_else(|| format!("http://127.0.0.1:{}/alerts", unused_port()));
    let config = opts.dir.join("alertmanager.yml");
    write(&config, &render::alertmanager(&src, &webhook)?)?;
    let data = opts.dir.join("alertmanager-data");
    std::fs::create_dir_all(&data).map_err(StackError::io("creating alertmanager-data"))?;
    let mut cmd = Command::new(&bins.alertmanager);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", data.display()))
        .arg(format!(
            "--web.listen-address=127.0.0.1:{}",
            ports.alertmanager
        ))
        // An empty cluster address turns gossip off (it would bind 0.0.0.0:9094).
        .arg("--cluster.listen-address=");
    Process::spawn("alertmanager", &mut cmd, &opts.dir.join("alertmanager.log"))
}

fn spawn_prometheus(
    bins: &Binaries,
    opts: &StackOptions,
    ports: &Ports,
) -> Result<Process, StackError> {
    let src = read(&repo_root().join("prometheus/prometheus.yml"))?;
    let targets = render::PrometheusTargets {
        prometheus: format!("127.0.0.1:{}", ports.prometheus),
        collector_exporter: format!("127.0.0.1:{}", ports.collector_exporter),
        collector_self: format!("127.0.0.1:{}", ports.collector_self),
        app_admin: format!("127.0.0.1:{}", ports.app_admin),
        jaeger: format!("127.0.0.1:{}", ports.jaeger_metrics),
        alertmanager: format!("127.0.0.1:{}", ports.alertmanager),
    };
    let interval = opts
        .interval
        .map(|d| humantime::format_duration(d).to_string());
    let rendered = render::prometheus(
        &src,
        &targets,
        &repo_root().join("prometheus/rules"),
        interval.as_deref(),
    )?;
    let config = opts.dir.join("prometheus.yml");
    write(&config, &rendered)?;
    let data = opts.dir.join("prometheus-data");
    std::fs::create_dir_all(&data).map_err(StackError::io("creating prometheus-data"))?;
    let mut cmd = Command::new(&bins.prometheus);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!(
            "--web.listen-address=127.0.0.1:{}",
            ports.prometheus
        ))
        .arg("--enable-feature=exemplar-storage")
        .arg("--web.enable-lifecycle");
    Process::spawn("prometheus", &mut cmd, &opts.dir.join("prometheus.log"))
}

/// A loopback port with nothing behind it (bound and released at once).
fn unused_port() -> u16 {
    free_port().unwrap_or(9)
}

fn read(path: &Path) -> Result<String, StackError> {
    std::fs::read_to_string(path).map_err(StackError::io(format!("reading {}", path.display())))
}

fn write(path: &Path, text: &str) -> Result<(), StackError> {
    std::fs::write(path, text).map_err(StackError::io(format!("writing {}", path.display())))
}
