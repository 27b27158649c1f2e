//! The values of one sample. `None` for a source means "not sampled / failed": report nothing.

use std::sync::Arc;

#[derive(Debug, Default, Clone)]
pub(crate) struct Snapshot {
    pub(crate) cpu: Option<CpuSnapshot>,
    pub(crate) memory: Option<MemorySnapshot>,
    pub(crate) filesystems: Option<Vec<FilesystemSnapshot>>,
    pub(crate) network: Option<Vec<NetworkSnapshot>>,
    pub(crate) disks: Option<Vec<DiskSnapshot>>,
    pub(crate) process: Option<ProcessSnapshot>,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct CpuSnapshot {
    /// Machine-wide utilization in 0..=1; `None` on the priming sample or in per-CPU mode.
    pub(crate) total: Option<f64>,
    /// `(cpu.logical_number, utilization)`; empty on the priming sample or in machine-wide mode.
    pub(crate) per_cpu: Vec<(i64, f64)>,
    /// 1m, 5m, 15m load averages (unix only).
    pub(crate) load_average: Option<[f64; 3]>,
}

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct MemorySnapshot {
    pub(crate) total: u64,
    /// total - available.
    pub(crate) used: u64,
    /// Unused memory (MemFree on Linux).
    pub(crate) free: u64,
    /// Reclaimable memory: available - free (page cache, buffers, reclaimable slab).
    pub(crate) cached: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct FilesystemSnapshot {
    pub(crate) device: Arc<str>,
    pub(crate) mountpoint: Arc<str>,
    pub(crate) fs_type: Arc<str>,
    /// `ro` or `rw`.
    pub(crate) mode: &'static str,
    /// Bytes in use (`(blocks - bfree) * frsize`, as df and psutil count them).
    pub(crate) used: u64,
    /// Bytes available to unprivileged users (`bavail`).
    pub(crate) free: u64,
    /// Bytes reserved for root (`bfree - bavail`): neither used nor available.
    pub(crate) reserved: u64,
    /// Size of the filesystem (`used + free + reserved` when statvfs works); read by the tests.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) total: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct NetworkSnapshot {
    pub(crate) interface: Arc<str>,
    pub(crate) received: u64,
    pub(crate) transmitted: u64,
    pub(crate) errors_received: u64,
    pub(crate) errors_transmitted: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct DiskSnapshot {
    pub(crate) device: Arc<str>,
    pub(crate) read: u64,
    pub(crate) written: u64,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct ProcessSnapshot {
    /// `(cpu.mode, utilization)`; mode `None` where the platform gives no user/system split.
    /// Empty on the priming sample.
    pub(crate) cpu_utilization: Vec<(Option<&'static str>, f64)>,
    pub(crate) memory_usage: u64,
    pub(crate) memory_virtual: u64,
    pub(crate) threads: Option<u64>,
    pub(crate) open_fds: Option<u64>,
    pub(crate) uptime_seconds: f64,
}
