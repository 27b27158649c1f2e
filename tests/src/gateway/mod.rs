//! The agent/gateway tier on loopback: one agent (`otel-collector/agent.yaml`) routing spans by trace id to
//! gateways (`otel-collector/gateway.yaml`) that compute span metrics and tail-sample into Jaeger, with a
//! Prometheus scraping the gateways. Every component is a real process on free loopback ports, stopped when
//! the [`Tier`] is dropped.
//!
//! [`TraceMix`] (in `traces.rs`) builds OTLP requests of traces whose ids, spans, durations and status the
//! caller knows, so a test can tell exactly which traces the tier had to keep.

mod traces;

pub use traces::{MIX, SPANS_PER_TRACE, SentTrace, TraceKind, TraceMix, mix_kinds, post_traces};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::bins::Binaries;
use crate::error::StackError;
use crate::paths::repo_root;
use crate::process::{Process, free_port, listener_port, wait_ready};
use crate::stack::{Ports, spawn_jaeger};

/// How to bring the tier up.
#[derive(Debug, Clone)]
pub struct TierOptions {
    /// Where configs, data and logs go (created if missing).
    pub dir: PathBuf,
    /// How many gateways (at least one).
    pub gateways: usize,
    /// `OTELCOL_SAMPLE_PERCENT`: share of the ordinary traces kept, in percent.
    pub sample_percent: f64,
    /// `OTELCOL_SLOW_TRACE_MS`: traces at least this long are kept.
    pub slow_trace_ms: u64,
    /// `OTELCOL_DECISION_WAIT`: how long a gateway buffers a trace before deciding.
    pub decision_wait: Duration,
    /// `OTELCOL_GATEWAY_RETRY_MAX`: how long the agent retries a batch against a dead gateway.
    pub gateway_retry_max: Duration,
    /// Whether to start the agent (a throughput run feeds one gateway directly).
    pub agent: bool,
    /// How long each component may take to become ready.
    pub ready_timeout: Duration,
}

impl TierOptions {
    /// Two gateways behind an agent, 25 % of the ordinary traces kept, traces of 500 ms or more kept, 2 s
    /// decision wait, 2 s of retries against a dead gateway, 60 s to become ready.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        TierOptions {
            dir: dir.into(),
            gateways: 2,
            sample_percent: 25.0,
            slow_trace_ms: 500,
            decision_wait: Duration::from_secs(2),
            gateway_retry_max: Duration::from_secs(2),
            agent: true,
            ready_timeout: Duration::from_secs(60),
        }
    }
}

/// Ports of one collector of the tier (all on 127.0.0.1).
#[derive(Debug, Clone, Copy)]
pub struct CollectorPorts {
    /// OTLP/gRPC receiver.
    pub otlp_grpc: u16,
    /// OTLP/HTTP receiver.
    pub otlp_http: u16,
    /// health_check extension.
    pub health: u16,
    /// Prometheus exporter (gateways only).
    pub exporter: u16,
    /// The collector's own metrics.
    pub self_metrics: u16,
}

impl CollectorPorts {
    fn allocate() -> Result<CollectorPorts, StackError> {
        Ok(CollectorPorts {
            otlp_grpc: listener_port()?,
            otlp_http: listener_port()?,
            health: listener_port()?,
            exporter: listener_port()?,
            self_metrics: listener_port()?,
        })
    }

    /// `http://127.0.0.1:<self_metrics>/metrics`.
    pub fn self_metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.self_metrics)
    }

    /// `http://127.0.0.1:<otlp_http>/v1/traces`.
    pub fn otlp_traces_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/traces", self.otlp_http)
    }
}

/// The running tier. Dropping it stops the agent, the gateways, Prometheus and Jaeger, in that order.
pub struct Tier {
    bins: Binaries,
    opts: TierOptions,
    agent_ports: CollectorPorts,
    gateway_ports: Vec<CollectorPorts>,
    jaeger_ports: Ports,
    prometheus_port: u16,
    agent: Option<Process>,
    gateways: Vec<Option<Process>>,
    prometheus: Option<Process>,
    jaeger: Option<Process>,
}

impl Tier {
    /// Builds the binaries if needed, starts Jaeger, the gateways, the agent (routing to every gateway)
    /// and Prometheus, and waits until each is ready.
    pub fn up(opts: TierOptions) -> Result<Tier, StackError> {
        let bins = Binaries::ensure()?;
        std::fs::create_dir_all(&opts.dir)
            .map_err(StackError::io(format!("creating {}", opts.dir.display())))?;
        let jaeger_ports = jaeger_ports()?;
        let mut jaeger = spawn_jaeger(&bins, &opts.dir, &jaeger_ports)?;
        wait_ready(
            &mut jaeger,
            &format!(
                "http://127.0.0.1:{}/api/v3/services",
                jaeger_ports.jaeger_query
            ),
            opts.ready_timeout,
        )?;
        let mut tier = Tier {
            agent_ports: CollectorPorts::allocate()?,
            gateway_ports: (0..opts.gateways.max(1))
                .map(|_| CollectorPorts::allocate())
                .collect::<Result<_, _>>()?,
            jaeger_ports,
            prometheus_port: listener_port()?,
            agent: None,
            gateways: Vec::new(),
            prometheus: None,
            jaeger: Some(jaeger),
            bins,
            opts,
        };
        for i in 0..tier.gateway_ports.len() {
            let gateway = tier.spawn_gateway(i)?;
            tier.gateways.push(Some(gateway));
        }
        if tier.opts.agent {
            let all: Vec<usize> = (0..tier.gateway_ports.len()).collect();
            tier.start_agent(&all)?;
        }
        tier.start_prometheus()?;
        Ok(tier)
    }

    /// The agent's ports.
    pub fn agent(&self) -> &CollectorPorts {
        &self.agent_ports
    }

    /// Gateway `i`'s ports.
    pub fn gateway(&self, i: usize) -> &CollectorPorts {
        &self.gateway_ports[i]
    }

    /// Jaeger's query base URL.
    pub fn jaeger_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.jaeger_ports.jaeger_query)
    }

    /// Jaeger's own metrics URL.
    pub fn jaeger_metrics_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/metrics",
            self.jaeger_ports.jaeger_metrics
        )
    }

    /// Prometheus' base URL.
    pub fn prometheus_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.prometheus_port)
    }

    /// Pid of gateway `i` (0 once killed).
    pub fn gateway_pid(&self, i: usize) -> u32 {
        self.gateways[i].as_ref().map(Process::pid).unwrap_or(0)
    }

    /// Kills gateway `i` with SIGKILL: a crash, with whatever it held in memory lost.
    pub fn kill_gateway(&mut self, i: usize) {
        if let Some(mut g) = self.gateways[i].take() {
            g.kill();
        }
    }

    /// Stops the agent (SIGTERM: it drains its queue first) and starts it again on the same ports with
    /// `OTELCOL_GATEWAY_ENDPOINTS` naming only the gateways in `gateways`: how a static list loses a dead
    /// gateway. Returns how long it took to become ready.
    pub fn start_agent(&mut self, gateways: &[usize]) -> Result<Duration, StackError> {
        if let Some(mut old) = self.agent.take() {
            old.stop(Duration::from_secs(10));
        }
        let list: Vec<String> = gateways
            .iter()
            .map(|&i| format!("127.0.0.1:{}", self.gateway_ports[i].otlp_grpc))
            .collect();
        let mut cmd = Command::new(&self.bins.otelcol);
        cmd.arg(config_arg("agent.yaml"));
        for (k, v) in listener_env(&self.agent_ports) {
            cmd.env(k, v);
        }
        cmd.env(
            "OTELCOL_GATEWAY_ENDPOINTS",
            format!("[{}]", list.join(", ")),
        )
        .env(
            "OTELCOL_GATEWAY_RETRY_MAX",
            go_duration(self.opts.gateway_retry_max),
        );
        let mut agent = Process::spawn("agent", &mut cmd, &self.opts.dir.join("agent.log"))?;
        let took = wait_ready(
            &mut agent,
            &format!("http://127.0.0.1:{}/", self.agent_ports.health),
            self.opts.ready_timeout,
        )?;
        self.agent = Some(agent);
        Ok(took)
    }

    /// Log files of every component, for failure messages.
    pub fn logs(&self) -> Vec<PathBuf> {
        let mut names = vec!["agent".to_string(), "jaeger".into(), "prometheus".into()];
        names.extend((0..self.gateway_ports.len()).map(|i| format!("gateway-{i}")));
        names
            .iter()
            .map(|n| self.opts.dir.join(format!("{n}.log")))
            .collect()
    }

    fn spawn_gateway(&self, i: usize) -> Result<Process, StackError> {
        let ports = self.gateway_ports[i];
        let mut cmd = Command::new(&self.bins.otelcol);
        cmd.arg(config_arg("gateway.yaml"));
        for (k, v) in listener_env(&ports) {
            cmd.env(k, v);
        }
        cmd.env(
            "OTELCOL_PROMETHEUS_ENDPOINT",
            format!("127.0.0.1:{}", ports.exporter),
        )
        .env(
            "OTELCOL_JAEGER_ENDPOINT",
            format!("127.0.0.1:{}", self.jaeger_ports.jaeger_otlp_grpc),
        )
        .env(
            "OTELCOL_LOKI_ENDPOINT",
            format!("http://127.0.0.1:{}/otlp", free_port()?),
        )
        .env(
            "OTELCOL_SAMPLE_PERCENT",
            self.opts.sample_percent.to_string(),
        )
        .env("OTELCOL_SLOW_TRACE_MS", self.opts.slow_trace_ms.to_string())
        .env(
            "OTELCOL_DECISION_WAIT",
            go_duration(self.opts.decision_wait),
        )
        .env("OTELCOL_SPAN_METRICS_FLUSH", "1s");
        let name = format!("gateway-{i}");
        let mut gateway =
            Process::spawn(&name, &mut cmd, &self.opts.dir.join(format!("{name}.log")))?;
        wait_ready(
            &mut gateway,
            &format!("http://127.0.0.1:{}/", ports.health),
            self.opts.ready_timeout,
        )?;
        Ok(gateway)
    }

    fn start_prometheus(&mut self) -> Result<(), StackError> {
        let targets: Vec<String> = self
            .gateway_ports
            .iter()
            .map(|p| format!("'127.0.0.1:{}'", p.exporter))
            .collect();
        let config = self.opts.dir.join("prometheus.yml");
        let text = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: gateways\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        std::fs::write(&config, text)
            .map_err(StackError::io(format!("writing {}", config.display())))?;
        let data = self.opts.dir.join("prometheus-data");
        std::fs::create_dir_all(&data).map_err(StackError::io("creating prometheus-data"))?;
        let mut cmd = Command::new(&self.bins.prometheus);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!(
                "--web.listen-address=127.0.0.1:{}",
                self.prometheus_port
            ));
        let mut prometheus = Process::spawn(
            "prometheus",
            &mut cmd,
            &self.opts.dir.join("prometheus.log"),
        )?;
        wait_ready(
            &mut prometheus,
            &format!("{}/-/ready", self.prometheus_url()),
            self.opts.ready_timeout,
        )?;
        self.prometheus = Some(prometheus);
        Ok(())
    }
}

impl Drop for Tier {
    fn drop(&mut self) {
        let grace = Duration::from_secs(5);
        if let Some(mut a) = self.agent.take() {
            a.stop(grace);
        }
        for mut g in self.gateways.iter_mut().filter_map(Option::take) {
            g.stop(grace);
        }
        for mut p in [self.prometheus.take(), self.jaeger.take()]
            .into_iter()
            .flatten()
        {
            p.stop(grace);
        }
    }
}

fn config_arg(file: &str) -> String {
    format!(
        "--config={}",
        repo_root().join("otel-collector").join(file).display()
    )
}

/// The variables agent.yaml and gateway.yaml share: listeners, own metrics, log level.
fn listener_env(p: &CollectorPorts) -> Vec<(&'static str, String)> {
    vec![
        (
            "OTELCOL_OTLP_GRPC_ENDPOINT",
            format!("127.0.0.1:{}", p.otlp_grpc),
        ),
        (
            "OTELCOL_OTLP_HTTP_ENDPOINT",
            format!("127.0.0.1:{}", p.otlp_http),
        ),
        ("OTELCOL_HEALTH_ENDPOINT", format!("127.0.0.1:{}", p.health)),
        ("OTELCOL_SELF_METRICS_HOST", "127.0.0.1".to_string()),
        ("OTELCOL_SELF_METRICS_PORT", p.self_metrics.to_string()),
        ("OTELCOL_LOG_LEVEL", "info".to_string()),
    ]
}

/// Jaeger's ports, in the stack's [`Ports`] (the collector fields are unused).
fn jaeger_ports() -> Result<Ports, StackError> {
    Ok(Ports {
        otlp_grpc: 0,
        otlp_http: 0,
        collector_health: 0,
        collector_exporter: 0,
        collector_self: 0,
        jaeger_otlp_grpc: listener_port()?,
        jaeger_otlp_http: listener_port()?,
        jaeger_query: listener_port()?,
        jaeger_query_grpc: listener_port()?,
        jaeger_metrics: listener_port()?,
        prometheus: 0,
        alertmanager: 0,
        app_admin: 0,
    })
}

/// A duration as Go's time.ParseDuration reads it (whole milliseconds).
fn go_duration(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// A directory's log files joined for a failure message: the last `lines` lines of each.
pub fn log_tails(logs: &[PathBuf], lines: usize) -> String {
    logs.iter()
        .map(|p: &PathBuf| {
            format!(
                "--- {} ---\n{}",
                p.display(),
                crate::process::log_tail(Path::new(p), lines)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
