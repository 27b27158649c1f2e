//! Sampling with sysinfo, one source at a time, each behind `catch_unwind`.

use std::any::Any;
use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sysinfo::{
    CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, Networks, Pid, ProcessRefreshKind,
    ProcessesToUpdate, System,
};

use crate::snapshot::{
    CpuSnapshot, DiskSnapshot, FilesystemSnapshot, MemorySnapshot, NetworkSnapshot,
    ProcessSnapshot, Snapshot,
};
use crate::{Config, HostMetricsError, Shared, Source};

/// Filesystem types that describe no storage (sysinfo already drops most of them; this list is
/// applied on top, also on platforms where sysinfo does not filter).
pub(crate) const PSEUDO_FILESYSTEMS: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "pstore",
    "ramfs",
    "rootfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
];

type SourceResult<T> = Result<T, String>;

pub(crate) struct Sampler {
    config: Config,
    system: System,
    disks: Option<Disks>,
    networks: Option<Networks>,
    pid: Option<Pid>,
    cpu_primed: bool,
    prev_process_cpu: Option<(Instant, CpuTimes)>,
    /// CPUs available to this process (affinity / quota aware), the divisor of process CPU.
    parallelism: f64,
    /// Sources already warned about (each source warns once).
    pub(crate) warned: Vec<Source>,
}

impl Sampler {
    pub(crate) fn new(config: Config) -> Result<Self, HostMetricsError> {
        let system = System::new().map_err(|e| HostMetricsError::Unsupported(e.to_string()))?;
        let disks = if config.filesystems || config.disk_io {
            Disks::new().ok()
        } else {
            None
        };
        let networks = if config.network {
            Networks::new().ok()
        } else {
            None
        };
        let parallelism = std::thread::available_parallelism()
            .map(|n| n.get() as f64)
            .unwrap_or(1.0);
        Ok(Self {
            pid: sysinfo::get_current_pid().ok(),
            config,
            system,
            disks,
            networks,
            cpu_primed: false,
            prev_process_cpu: None,
            parallelism,
            warned: Vec::new(),
        })
    }

    /// Takes one sample of every enabled source and publishes it.
    pub(crate) fn sample_into(&mut self, shared: &Shared) {
        let snapshot = self.sample();
        crate::store(shared, snapshot);
    }

    /// One sample of every enabled source.
    pub(crate) fn sample(&mut self) -> Snapshot {
        let mut snapshot = Snapshot {
            cpu: self.run(Source::Cpu, Self::sample_cpu),
            memory: self.run(Source::Memory, Self::sample_memory),
            ..Snapshot::default()
        };
        if self.config.filesystems {
            snapshot.filesystems = self.run(Source::Filesystem, Self::sample_filesystems);
        }
        if self.config.disk_io {
            snapshot.disks = self.run(Source::Disk, Self::sample_disks);
        }
        if self.config.network {
            snapshot.network = self.run(Source::Network, Self::sample_network);
        }
        if self.config.process {
            snapshot.process = self.run(Source::Process, Self::sample_process);
        }
        snapshot
    }

    /// Runs one source; a panic or an error drops it from this sample and is logged once.
    fn run<T>(&mut self, source: Source, f: fn(&mut Self) -> SourceResult<T>) -> Option<T> {
        let result = catch_unwind(AssertUnwindSafe(|| {
            #[cfg(test)]
            if self.config.panic_in == Some(source) {
                panic!("injected panic in the {} source", source.name());
            }
            f(self)
        }));
        let error = match result {
            Ok(Ok(value)) => return Some(value),
            Ok(Err(error)) => error,
            Err(payload) => format!("panicked: {}", panic_message(payload.as_ref())),
        };
        if !self.warned.contains(&source) {
            self.warned.push(source);
            tracing::warn!(
                source = source.name(),
                error = %error,
                "host-metrics: skipping this source (further failures are not logged)"
            );
        }
        None
    }

    fn sample_cpu(&mut self) -> SourceResult<CpuSnapshot> {
        self.system
            .refresh_cpu_specifics(CpuRefreshKind::nothing().with_usage());
        let mut cpu = CpuSnapshot {
            load_average: load_average(),
            ..CpuSnapshot::default()
        };
        // sysinfo computes usage from the /proc/stat deltas since the previous refresh: the first
        // refresh only primes them.
        if !self.cpu_primed {
            self.cpu_primed = true;
            return Ok(cpu);
        }
        if self.config.per_cpu {
            cpu.per_cpu = self
                .system
                .cpus()
                .iter()
                .enumerate()
                .map(|(i, c)| (i as i64, ratio(f64::from(c.usage()) / 100.0)))
                .collect();
        } else {
            cpu.total = Some(ratio(f64::from(self.system.global_cpu_usage()) / 100.0));
        }
        Ok(cpu)
    }

    fn sample_memory(&mut self) -> SourceResult<MemorySnapshot> {
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        let total = self.system.total_memory();
        if total == 0 {
            return Err("total memory reads as 0".into());
        }
        let available = self.system.available_memory().min(total);
        let free = self.system.free_memory().min(available);
        Ok(MemorySnapshot {
            total,
            used: total - available,
            free,
            cached: available - free,
        })
    }

    fn refresh_disks(&mut self) -> SourceResult<&Disks> {
        let storage = self.config.filesystems;
        let io = self.config.disk_io;
        let disks = self.disks.as_mut().ok_or("disks are not supported")?;
        let mut kind = DiskRefreshKind::nothing();
        if storage {
            kind = kind.with_storage();
        }
        if io {
            kind = kind.with_io_usage();
        }
        disks.refresh_specifics(true, kind);
        Ok(disks)
    }

    fn sample_filesystems(&mut self) -> SourceResult<Vec<FilesystemSnapshot>> {
        // Refreshes storage and (if enabled) I/O counters in one pass over /proc/mounts.
        let disks = self.refresh_disks()?;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for disk in disks.iter() {
            let fs_type = disk.file_system().to_string_lossy();
            if PSEUDO_FILESYSTEMS.contains(&fs_type.as_ref()) {
                continue;
            }
            let total = disk.total_space();
            // statvfs failed (e.g. permission denied) or no storage: skip, as the Python design does.
            if total == 0 {
                continue;
            }
            let device = disk.name().to_string_lossy();
            let mountpoint = disk.mount_point().to_string_lossy();
            if !seen.insert((device.clone(), mountpoint.clone())) {
                continue;
            }
            // used / free / reserved as df and psutil count them, from statvfs; sysinfo alone only knows
            // total and available, which would count root-reserved blocks as used.
            let (used, free, reserved) = space(disk.mount_point()).unwrap_or_else(|| {
                let free = disk.available_space().min(total);
                (total - free, free, 0)
            });
            out.push(FilesystemSnapshot {
                device: Arc::from(device.as_ref()),
                mountpoint: Arc::from(mountpoint.as_ref()),
                fs_type: Arc::from(fs_type.as_ref()),
                mode: if disk.is_read_only() { "ro" } else { "rw" },
                used,
                free,
                reserved,
                total,
            });
        }
        Ok(out)
    }

    fn sample_disks(&mut self) -> SourceResult<Vec<DiskSnapshot>> {
        let disks = if self.config.filesystems {
            // Refreshed by the filesystem source in this same sample.
            self.disks.as_ref().ok_or("disks are not supported")?
        } else {
            self.refresh_disks()?
        };
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for disk in disks.iter() {
            let name = disk.name().to_string_lossy();
            if !name.starts_with("/dev/") {
                continue; // no block device behind it (overlay, tmpfs, ...)
            }
            let device = name.trim_start_matches("/dev/");
            if !seen.insert(device.to_owned()) {
                continue; // the same device mounted at several places
            }
            let usage = disk.usage();
            out.push(DiskSnapshot {
                device: Arc::from(device),
                read: usage.total_read_bytes,
                written: usage.total_written_bytes,
            });
        }
        Ok(out)
    }

    fn sample_network(&mut self) -> SourceResult<Vec<NetworkSnapshot>> {
        let networks = self
            .networks
            .as_mut()
            .ok_or("network statistics are not supported")?;
        networks.refresh(true);
        Ok(networks
            .iter()
            .map(|(name, data)| NetworkSnapshot {
                interface: Arc::from(name.to_string_lossy().as_ref()),
                received: data.total_received(),
                transmitted: data.total_transmitted(),
                errors_received: data.total_errors_on_received(),
                errors_transmitted: data.total_errors_on_transmitted(),
            })
            .collect())
    }

    fn sample_process(&mut self) -> SourceResult<ProcessSnapshot> {
        let pid = self.pid.ok_or("cannot determine the current pid")?;
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            true,
            process_refresh_kind(),
        );
        let process = self
            .system
            .process(pid)
            .ok_or("the current process is not visible")?;
        let mut snap = ProcessSnapshot {
            memory_usage: process.memory(),
            memory_virtual: process.virtual_memory(),
            threads: thread_count(),
            open_fds: process.open_files().map(|n| n as u64),
            uptime_seconds: precise_uptime().unwrap_or(process.run_time() as f64),
            cpu_utilization: Vec::new(),
        };
        let now = Instant::now();
        let times = process_cpu_times(process);
        if let (Some((then, prev)), Some(times)) = (self.prev_process_cpu, times) {
            let elapsed = now.duration_since(then).as_secs_f64() * self.parallelism;
            if elapsed > 0.0 {
                snap.cpu_utilization = times.utilization_since(&prev, elapsed);
            }
        }
        self.prev_process_cpu = times.map(|t| (now, t));
        Ok(snap)
    }
}

fn ratio(value: f64) -> f64 {
    if value.is_finite() {
        value.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "non-string panic payload"
    }
}

#[cfg(unix)]
fn load_average() -> Option<[f64; 3]> {
    sysinfo::System::load_average()
        .ok()
        .map(|l| [l.one, l.five, l.fifteen])
}

#[cfg(not(unix))]
fn load_average() -> Option<[f64; 3]> {
    None // Windows has no load average; sysinfo reports zeros there.
}

/// Process uptime with sub-second precision: system uptime (/proc/uptime, 10 ms) minus the
/// process start time (/proc/self/stat field 22, clock ticks since boot). Linux only.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn precise_uptime() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may contain spaces).
    let after_comm = stat.get(stat.rfind(')')? + 1..)?;
    // Field 3 (state) is the first one after the name; starttime is field 22.
    let start_ticks: f64 = after_comm.split_whitespace().nth(22 - 3)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks_per_second <= 0 {
        return None;
    }
    let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
    let system_uptime: f64 = uptime.split_whitespace().next()?.parse().ok()?;
    let value = system_uptime - start_ticks / ticks_per_second as f64;
    (value.is_finite() && value >= 0.0).then_some(value)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn precise_uptime() -> Option<f64> {
    None
}

/// Threads of this process: entries of /proc/self/task (Linux), else unknown.
fn thread_count() -> Option<u64> {
    if cfg!(any(target_os = "linux", target_os = "android")) {
        std::fs::read_dir("/proc/self/task")
            .ok()
            .map(|entries| entries.count() as u64)
    } else {
        None
    }
}

/// Cumulative CPU time of this process.
#[derive(Debug, Clone, Copy)]
enum CpuTimes {
    /// user and system time (getrusage on unix).
    Split { user: Duration, system: Duration },
    /// Only the sum is known.
    #[cfg_attr(unix, allow(dead_code))]
    Total(Duration),
}

impl CpuTimes {
    fn utilization_since(&self, prev: &CpuTimes, elapsed: f64) -> Vec<(Option<&'static str>, f64)> {
        let delta =
            |now: Duration, then: Duration| ratio(now.saturating_sub(then).as_secs_f64() / elapsed);
        match (self, prev) {
            (
                CpuTimes::Split { user, system },
                CpuTimes::Split {
                    user: prev_user,
                    system: prev_system,
                },
            ) => vec![
                (Some("user"), delta(*user, *prev_user)),
                (Some("system"), delta(*system, *prev_system)),
            ],
            (CpuTimes::Total(now), CpuTimes::Total(then)) => vec![(None, delta(*now, *then))],
            _ => Vec::new(),
        }
    }
}

fn process_refresh_kind() -> ProcessRefreshKind {
    let kind = ProcessRefreshKind::nothing().with_memory();
    // Without getrusage the CPU time comes from sysinfo.
    if cfg!(unix) { kind } else { kind.with_cpu() }
}

#[cfg(unix)]
fn process_cpu_times(_process: &sysinfo::Process) -> Option<CpuTimes> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage only writes into the struct we own; RUSAGE_SELF is always valid.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: zero-initialised and filled by a successful getrusage call.
    let usage = unsafe { usage.assume_init() };
    let tv = |tv: libc::timeval| {
        Duration::from_secs(tv.tv_sec.max(0) as u64)
            + Duration::from_micros(tv.tv_usec.max(0) as u64)
    };
    Some(CpuTimes::Split {
        user: tv(usage.ru_utime),
        system: tv(usage.ru_stime),
    })
}

#[cfg(not(unix))]
fn process_cpu_times(process: &sysinfo::Process) -> Option<CpuTimes> {
    Some(CpuTimes::Total(Duration::from_millis(
        process.accumulated_cpu_time(),
    )))
}

/// `(used, free, reserved)` bytes of the filesystem mounted at `path`, from statvfs(3): used =
/// `(blocks - bfree) * frsize`, free = `bavail * frsize` (what unprivileged users can still write),
/// reserved = `(bfree - bavail) * frsize`. `None` when statvfs fails.
#[cfg(unix)]
// The statvfs fields are u64 on 64-bit Linux but narrower elsewhere.
#[allow(clippy::unnecessary_cast)]
fn space(path: &std::path::Path) -> Option<(u64, u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: c_path is a valid NUL-terminated string and st points to writable memory of the right size;
    // statvfs initialises it when it returns 0.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so st is initialised.
    let st = unsafe { st.assume_init() };
    Some(statvfs_space(
        st.f_blocks as u64,
        st.f_bfree as u64,
        st.f_bavail as u64,
        st.f_frsize as u64,
    ))
}

#[cfg(not(unix))]
fn space(_path: &std::path::Path) -> Option<(u64, u64, u64)> {
    None
}

/// The arithmetic of [`space`], saturating where a filesystem reports inconsistent counts.
fn statvfs_space(blocks: u64, bfree: u64, bavail: u64, frsize: u64) -> (u64, u64, u64) {
    let bfree = bfree.min(blocks);
    let bavail = bavail.min(bfree);
    (
        (blocks - bfree).saturating_mul(frsize),
        bavail.saturating_mul(frsize),
        (bfree - bavail).saturating_mul(frsize),
    )
}

#[cfg(test)]
mod space_tests {
    use super::*;

    #[test]
    fn root_reserved_blocks_are_neither_used_nor_free() {
        // The numbers of this machine's root filesystem: 66M blocks, 46M free, 3.9M available.
        let (used, free, reserved) = statvfs_space(66_053_021, 46_119_843, 3_942_138, 4096);
        assert_eq!(used, (66_053_021 - 46_119_843) * 4096);
        assert_eq!(free, 3_942_138 * 4096);
        assert_eq!(reserved, (46_119_843 - 3_942_138) * 4096);
        // df's Use%: used / (used + free) = 83.5%, not the 94% that counting reserved as used gives.
        let pct = used as f64 / (used + free) as f64;
        assert!((pct - 0.835).abs() < 0.001, "{pct}");
    }

    #[test]
    fn inconsistent_statvfs_counts_do_not_underflow() {
        assert_eq!(statvfs_space(10, 20, 30, 1), (0, 10, 0));
    }

    #[cfg(unix)]
    #[test]
    fn the_root_filesystem_adds_up_to_its_size() {
        let (used, free, reserved) = space(std::path::Path::new("/")).expect("statvfs /");
        assert!(used > 0 && used + free + reserved > 0);
    }
}
