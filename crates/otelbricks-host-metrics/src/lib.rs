//! Host and process metrics for OpenTelemetry, named and unitised as the semantic conventions say.
//!
//! A dedicated, named thread (`host-metrics`) samples the machine with [`sysinfo`] at a fixed
//! interval (15 s by default) and stores the result in a snapshot. The observable instruments
//! registered on your [`Meter`] only read the latest snapshot, so a metric reader never waits on
//! `/proc` and the async runtime is never blocked. Each source (cpu, memory, filesystems,
//! network, disk I/O, process) is sampled on its own: an error or a panic in one of them drops
//! that source from the snapshot, is logged once with `tracing::warn!`, and leaves the others
//! reporting.
//!
//! Instruments (names, units, kinds and attributes from `opentelemetry-semantic-conventions`
//! 0.33; counters are cumulative totals; the Prometheus name is what the
//! `opentelemetry-prometheus` exporter makes of it):
//!
//! | instrument | unit | kind | attributes | Prometheus |
//! |---|---|---|---|---|
//! | `system.cpu.utilization` | `1` | gauge | none, or `cpu.logical_number` with [`with_per_cpu`](HostMetricsBuilder::with_per_cpu) | `system_cpu_utilization_ratio` |
//! | `system.cpu.load_average.1m` / `.5m` / `.15m` (unix) | `{thread}` | gauge | | `system_cpu_load_average_1m` … |
//! | `system.memory.usage` | `By` | up-down counter | `system.memory.state` = `used` / `free` / `cached` | `system_memory_usage_bytes` |
//! | `system.memory.utilization` | `1` | gauge | `system.memory.state` | `system_memory_utilization_ratio` |
//! | `system.memory.limit` | `By` | up-down counter | | `system_memory_limit_bytes` |
//! | `system.filesystem.usage` | `By` | up-down counter | `system.device`, `system.filesystem.mountpoint`, `.type`, `.mode`, `.state` = `used` / `free` (available to users) / `reserved` (root-only), from statvfs | `system_filesystem_usage_bytes` |
//! | `system.filesystem.utilization` | `1` | gauge | as above, state `used`: used / (used + free), as df's Use% and psutil | `system_filesystem_utilization_ratio` |
//! | `system.network.io` | `By` | counter | `network.interface.name`, `network.io.direction` | `system_network_io_bytes_total` |
//! | `system.network.errors` | `{error}` | counter | as above | `system_network_errors_total` |
//! | `system.disk.io` | `By` | counter | `system.device`, `disk.io.direction` | `system_disk_io_bytes_total` |
//! | `process.cpu.utilization` | `1` | gauge | `cpu.mode` = `user` / `system` | `process_cpu_utilization_ratio` |
//! | `process.memory.usage` (RSS) | `By` | up-down counter | | `process_memory_usage_bytes` |
//! | `process.memory.virtual` | `By` | up-down counter | | `process_memory_virtual_bytes` |
//! | `process.thread.count` (Linux) | `{thread}` | up-down counter | | `process_thread_count` |
//! | `process.unix.file_descriptor.count` (unix) | `{file_descriptor}` | up-down counter | | `process_unix_file_descriptor_count` |
//! | `process.uptime` | `s` | gauge | | `process_uptime_seconds` |
//!
//! `used` memory is total minus available, `cached` is available minus free (page cache, buffers,
//! reclaimable slab), so the three states add up to `system.memory.limit`. Utilizations are
//! clamped to 0..=1; `process.cpu.utilization` is divided by the CPUs available to the process.
//! `process.unix.file_descriptor.count` is the current name of the deprecated
//! `process.open_file_descriptor.count`. The load averages are not in semconv 0.33; their names
//! and unit follow the collector's hostmetrics receiver. Pseudo filesystems (proc, sysfs, tmpfs,
//! overlay, devtmpfs, cgroup, squashfs, …) and filesystems that cannot be read (permission
//! denied) are skipped.
//!
//! Host identity (`os.type`, `os.description`, `os.name`, `os.version`, `host.name`,
//! `host.arch`) belongs on the resource, not on a metric: see [`resource_attributes`].
//!
//! ```
//! use std::time::Duration;
//! use opentelemetry::metrics::MeterProvider as _;
//! use opentelemetry_sdk::{metrics::SdkMeterProvider, Resource};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = SdkMeterProvider::builder()
//!     .with_resource(
//!         Resource::builder()
//!             .with_attributes(otelbricks_host_metrics::resource_attributes())
//!             .build(),
//!     )
//!     .build();
//! let meter = provider.meter("host-metrics");
//!
//! let handle = otelbricks_host_metrics::HostMetrics::builder()
//!     .with_interval(Duration::from_secs(15))
//!     .with_per_cpu(false)
//!     .build()
//!     .start(&meter)?;
//!
//! // ... run the service; dropping the handle also stops the sampler.
//! handle.shutdown()?;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod instruments;
mod resource;
mod sampler;
mod snapshot;

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use opentelemetry::metrics::Meter;

pub use resource::resource_attributes;

use sampler::Sampler;
use snapshot::Snapshot;

/// Default sampling interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);

/// Delay between the priming sample and the first full one (CPU utilization needs two samples).
const PRIME_DELAY: Duration = Duration::from_secs(1);

/// How long [`HostMetricsHandle::shutdown`] (and drop) waits for the sampler thread to finish.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// Errors from [`HostMetrics::start`] and [`HostMetricsHandle::shutdown`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostMetricsError {
    /// The sampling interval was zero.
    #[error("host-metrics: the sampling interval must be greater than zero")]
    ZeroInterval,
    /// sysinfo cannot read this platform.
    #[error("host-metrics: system information is not available on this platform: {0}")]
    Unsupported(String),
    /// The sampler thread could not be spawned.
    #[error("host-metrics: cannot spawn the sampler thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// The sampler thread did not stop in time (a source is stuck, e.g. a hung network mount).
    #[error("host-metrics: the sampler thread did not stop within {0:?}")]
    ShutdownTimeout(Duration),
}

/// The metric sources that can be sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Cpu,
    Memory,
    Filesystem,
    Network,
    Disk,
    Process,
}

impl Source {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Source::Cpu => "cpu",
            Source::Memory => "memory",
            Source::Filesystem => "filesystem",
            Source::Network => "network",
            Source::Disk => "disk",
            Source::Process => "process",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) interval: Duration,
    pub(crate) per_cpu: bool,
    pub(crate) filesystems: bool,
    pub(crate) network: bool,
    pub(crate) disk_io: bool,
    pub(crate) process: bool,
    /// Test hook: this source panics on every sample.
    #[cfg(test)]
    pub(crate) panic_in: Option<Source>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
            per_cpu: false,
            filesystems: true,
            network: true,
            disk_io: true,
            process: true,
            #[cfg(test)]
            panic_in: None,
        }
    }
}

/// Builder for [`HostMetrics`]; see [`HostMetrics::builder`].
#[derive(Debug, Clone, Default)]
pub struct HostMetricsBuilder {
    config: Config,
}

impl HostMetricsBuilder {
    /// Sampling interval (default 15 s). Observations between samples repeat the last sample.
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.config.interval = interval;
        self
    }

    /// Report `system.cpu.utilization` per logical CPU (attribute `cpu.logical_number`) instead
    /// of one machine-wide series (default `false`). The two are never mixed, so `avg()` over the
    /// series is the machine-wide utilization in both modes.
    pub fn with_per_cpu(mut self, per_cpu: bool) -> Self {
        self.config.per_cpu = per_cpu;
        self
    }

    /// Report `system.filesystem.*` (default `true`). Pseudo filesystems are always skipped.
    pub fn with_filesystems(mut self, enabled: bool) -> Self {
        self.config.filesystems = enabled;
        self
    }

    /// Report `system.network.io` and `system.network.errors` (default `true`).
    pub fn with_network(mut self, enabled: bool) -> Self {
        self.config.network = enabled;
        self
    }

    /// Report `system.disk.io` (default `true`).
    pub fn with_disk_io(mut self, enabled: bool) -> Self {
        self.config.disk_io = enabled;
        self
    }

    /// Report the `process.*` metrics of the current process (default `true`).
    pub fn with_process(mut self, enabled: bool) -> Self {
        self.config.process = enabled;
        self
    }

    #[cfg(test)]
    pub(crate) fn with_panic_in(mut self, source: Source) -> Self {
        self.config.panic_in = Some(source);
        self
    }

    /// Finishes the configuration.
    pub fn build(self) -> HostMetrics {
        HostMetrics {
            config: self.config,
        }
    }
}

/// Host and process metrics configuration; [`start`](HostMetrics::start) it on a [`Meter`].
#[derive(Debug, Clone, Default)]
pub struct HostMetrics {
    config: Config,
}

/// Latest snapshot shared between the sampler thread and the instrument callbacks.
pub(crate) type Shared = Arc<RwLock<Arc<Snapshot>>>;

impl HostMetrics {
    /// A builder with the defaults: 15 s interval, machine-wide CPU, every source enabled.
    pub fn builder() -> HostMetricsBuilder {
        HostMetricsBuilder::default()
    }

    /// Registers the instruments on `meter` and starts the sampler thread.
    ///
    /// Works with any `MeterProvider`. The first values appear about one second after start
    /// (CPU utilization needs a priming sample), then every interval. Sampling stops when the
    /// returned handle is dropped or shut down; from then on the instruments report nothing.
    pub fn start(&self, meter: &Meter) -> Result<HostMetricsHandle, HostMetricsError> {
        if self.config.interval.is_zero() {
            return Err(HostMetricsError::ZeroInterval);
        }
        let mut sampler = Sampler::new(self.config.clone())?;
        let shared: Shared = Arc::new(RwLock::new(Arc::new(Snapshot::default())));
        instruments::register(meter, &self.config, &shared);

        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let interval = self.config.interval;
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("host-metrics".into())
            .spawn(move || {
                let mut wait = interval.min(PRIME_DELAY);
                loop {
                    sampler.sample_into(&thread_shared);
                    match stop_rx.recv_timeout(wait) {
                        Err(RecvTimeoutError::Timeout) => wait = interval,
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                let _ = done_tx.send(());
            })
            .map_err(HostMetricsError::Spawn)?;

        Ok(HostMetricsHandle {
            stop: Some(stop_tx),
            done: Mutex::new(done_rx),
            thread: Some(thread),
            shared,
        })
    }
}

/// Keeps the sampler thread running; dropping it (or [`shutdown`](Self::shutdown)) stops it.
#[derive(Debug)]
pub struct HostMetricsHandle {
    stop: Option<mpsc::Sender<()>>,
    /// Behind a mutex only so the handle is `Sync` (it can live in a static or a shared guard).
    done: Mutex<mpsc::Receiver<()>>,
    thread: Option<JoinHandle<()>>,
    shared: Shared,
}

impl HostMetricsHandle {
    /// Stops the sampler thread and waits (at most 2 s) for it to finish. The instruments stay
    /// registered on the meter (the API cannot unregister them) but report no data afterwards.
    pub fn shutdown(mut self) -> Result<(), HostMetricsError> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), HostMetricsError> {
        // Dropping the sender disconnects the channel: the thread's recv_timeout returns at once.
        let Some(stop) = self.stop.take() else {
            return Ok(());
        };
        drop(stop);
        // Stop reporting right away, even if the thread is inside a slow sample.
        store(&self.shared, Snapshot::default());
        let finished = match self.done.get_mut() {
            Ok(done) => done.recv_timeout(SHUTDOWN_WAIT),
            Err(poisoned) => poisoned.into_inner().recv_timeout(SHUTDOWN_WAIT),
        };
        // A finished thread may have stored one last snapshot after ours.
        store(&self.shared, Snapshot::default());
        match finished {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                if let Some(thread) = self.thread.take() {
                    let _ = thread.join();
                }
                Ok(())
            }
            // Leave the thread detached; it exits after its current sample.
            Err(RecvTimeoutError::Timeout) => Err(HostMetricsError::ShutdownTimeout(SHUTDOWN_WAIT)),
        }
    }
}

impl Drop for HostMetricsHandle {
    fn drop(&mut self) {
        if let Err(err) = self.stop_inner() {
            tracing::warn!(error = %err, "host-metrics sampler did not stop");
        }
    }
}

/// Replaces the shared snapshot (tolerates a poisoned lock: the data is replaced wholesale).
pub(crate) fn store(shared: &Shared, snapshot: Snapshot) {
    let snapshot = Arc::new(snapshot);
    match shared.write() {
        Ok(mut guard) => *guard = snapshot,
        Err(poisoned) => *poisoned.into_inner() = snapshot,
    }
}

/// The latest snapshot (cheap: a read lock and an `Arc` clone).
pub(crate) fn load(shared: &Shared) -> Arc<Snapshot> {
    match shared.read() {
        Ok(guard) => Arc::clone(&guard),
        Err(poisoned) => Arc::clone(&poisoned.into_inner()),
    }
}

/// Not public API: one collection without the thread, for the benchmarks.
#[doc(hidden)]
pub mod __bench {
    use crate::{HostMetrics, HostMetricsError, sampler::Sampler};

    /// Samples every enabled source on the calling thread.
    pub struct Collector(Sampler);

    impl Collector {
        /// A collector with `metrics`' configuration.
        pub fn new(metrics: &HostMetrics) -> Result<Self, HostMetricsError> {
            Sampler::new(metrics.config.clone()).map(Self)
        }

        /// One full collection; returns the number of filesystems, interfaces and disks seen.
        pub fn collect(&mut self) -> usize {
            let s = self.0.sample();
            s.filesystems.map_or(0, |v| v.len())
                + s.network.map_or(0, |v| v.len())
                + s.disks.map_or(0, |v| v.len())
        }
    }
}

#[cfg(test)]
mod tests;
