//! Observable instruments. Callbacks only read the latest snapshot: no sysinfo, no I/O.

use std::sync::Arc;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{AsyncInstrument, Meter};
use opentelemetry_semantic_conventions::attribute::{
    CPU_LOGICAL_NUMBER, CPU_MODE, DISK_IO_DIRECTION, NETWORK_INTERFACE_NAME, NETWORK_IO_DIRECTION,
    SYSTEM_DEVICE, SYSTEM_FILESYSTEM_MODE, SYSTEM_FILESYSTEM_MOUNTPOINT, SYSTEM_FILESYSTEM_STATE,
    SYSTEM_FILESYSTEM_TYPE, SYSTEM_MEMORY_STATE,
};
use opentelemetry_semantic_conventions::metric::{
    PROCESS_CPU_UTILIZATION, PROCESS_MEMORY_USAGE, PROCESS_MEMORY_VIRTUAL, PROCESS_THREAD_COUNT,
    PROCESS_UNIX_FILE_DESCRIPTOR_COUNT, PROCESS_UPTIME, SYSTEM_CPU_UTILIZATION, SYSTEM_DISK_IO,
    SYSTEM_FILESYSTEM_USAGE, SYSTEM_FILESYSTEM_UTILIZATION, SYSTEM_MEMORY_LIMIT,
    SYSTEM_MEMORY_USAGE, SYSTEM_MEMORY_UTILIZATION, SYSTEM_NETWORK_ERRORS, SYSTEM_NETWORK_IO,
};

use crate::snapshot::{FilesystemSnapshot, Snapshot};
use crate::{Config, Shared};

// Not (yet) in the semantic conventions crate; names and unit as the collector's hostmetrics
// receiver reports them.
pub(crate) const SYSTEM_CPU_LOAD_AVERAGE_1M: &str = "system.cpu.load_average.1m";
pub(crate) const SYSTEM_CPU_LOAD_AVERAGE_5M: &str = "system.cpu.load_average.5m";
pub(crate) const SYSTEM_CPU_LOAD_AVERAGE_15M: &str = "system.cpu.load_average.15m";

/// Wraps a snapshot reader into an instrument callback.
fn reading<T, F>(shared: &Shared, f: F) -> impl Fn(&dyn AsyncInstrument<T>) + Send + Sync + 'static
where
    F: Fn(&Snapshot, &dyn AsyncInstrument<T>) + Send + Sync + 'static,
{
    let shared = Arc::clone(shared);
    move |observer| f(&crate::load(&shared), observer)
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn fraction(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        (part as f64 / total as f64).clamp(0.0, 1.0)
    }
}

fn filesystem_attributes(fs: &FilesystemSnapshot, state: &'static str) -> [KeyValue; 5] {
    [
        KeyValue::new(SYSTEM_DEVICE, Arc::clone(&fs.device)),
        KeyValue::new(SYSTEM_FILESYSTEM_MOUNTPOINT, Arc::clone(&fs.mountpoint)),
        KeyValue::new(SYSTEM_FILESYSTEM_TYPE, Arc::clone(&fs.fs_type)),
        KeyValue::new(SYSTEM_FILESYSTEM_MODE, fs.mode),
        KeyValue::new(SYSTEM_FILESYSTEM_STATE, state),
    ]
}

/// Registers every instrument of the enabled sources. The handles are markers only: the SDK keeps
/// the callbacks for the provider's lifetime.
pub(crate) fn register(meter: &Meter, config: &Config, shared: &Shared) {
    register_cpu(meter, shared);
    register_memory(meter, shared);
    if config.filesystems {
        register_filesystems(meter, shared);
    }
    if config.network {
        register_network(meter, shared);
    }
    if config.disk_io {
        register_disk(meter, shared);
    }
    if config.process {
        register_process(meter, shared);
    }
}

fn register_cpu(meter: &Meter, shared: &Shared) {
    meter
        .f64_observable_gauge(SYSTEM_CPU_UTILIZATION)
        .with_unit("1")
        .with_description("Fraction of CPU time spent not idle over the last sampling interval")
        .with_callback(reading(shared, |snap, o| {
            let Some(cpu) = &snap.cpu else { return };
            if let Some(total) = cpu.total {
                o.observe(total, &[]);
            }
            for &(cpu_number, value) in &cpu.per_cpu {
                o.observe(value, &[KeyValue::new(CPU_LOGICAL_NUMBER, cpu_number)]);
            }
        }))
        .build();
    for (index, name, description) in [
        (
            0,
            SYSTEM_CPU_LOAD_AVERAGE_1M,
            "Average CPU load over 1 minute",
        ),
        (
            1,
            SYSTEM_CPU_LOAD_AVERAGE_5M,
            "Average CPU load over 5 minutes",
        ),
        (
            2,
            SYSTEM_CPU_LOAD_AVERAGE_15M,
            "Average CPU load over 15 minutes",
        ),
    ] {
        meter
            .f64_observable_gauge(name)
            .with_unit("{thread}")
            .with_description(description)
            .with_callback(reading(shared, move |snap, o| {
                if let Some(load) = snap.cpu.as_ref().and_then(|c| c.load_average) {
                    o.observe(load[index], &[]);
                }
            }))
            .build();
    }
}

fn register_memory(meter: &Meter, shared: &Shared) {
    meter
        .i64_observable_up_down_counter(SYSTEM_MEMORY_USAGE)
        .with_unit("By")
        .with_description("Reports memory in use by state")
        .with_callback(reading(shared, |snap, o| {
            let Some(m) = snap.memory else { return };
            for (state, value) in [("used", m.used), ("free", m.free), ("cached", m.cached)] {
                o.observe(to_i64(value), &[KeyValue::new(SYSTEM_MEMORY_STATE, state)]);
            }
        }))
        .build();
    meter
        .f64_observable_gauge(SYSTEM_MEMORY_UTILIZATION)
        .with_unit("1")
        .with_description("Fraction of memory bytes in each state")
        .with_callback(reading(shared, |snap, o| {
            let Some(m) = snap.memory else { return };
            for (state, value) in [("used", m.used), ("free", m.free), ("cached", m.cached)] {
                o.observe(
                    fraction(value, m.total),
                    &[KeyValue::new(SYSTEM_MEMORY_STATE, state)],
                );
            }
        }))
        .build();
    meter
        .i64_observable_up_down_counter(SYSTEM_MEMORY_LIMIT)
        .with_unit("By")
        .with_description("Total memory available in the system")
        .with_callback(reading(shared, |snap, o| {
            if let Some(m) = snap.memory {
                o.observe(to_i64(m.total), &[]);
            }
        }))
        .build();
}

fn register_filesystems(meter: &Meter, shared: &Shared) {
    meter
        .i64_observable_up_down_counter(SYSTEM_FILESYSTEM_USAGE)
        .with_unit("By")
        .with_description("Filesystem space usage by state")
        .with_callback(reading(shared, |snap, o| {
            for fs in snap.filesystems.iter().flatten() {
                o.observe(to_i64(fs.used), &filesystem_attributes(fs, "used"));
                o.observe(to_i64(fs.free), &filesystem_attributes(fs, "free"));
                o.observe(to_i64(fs.reserved), &filesystem_attributes(fs, "reserved"));
            }
        }))
        .build();
    meter
        .f64_observable_gauge(SYSTEM_FILESYSTEM_UTILIZATION)
        .with_unit("1")
        .with_description("Fraction of filesystem bytes used")
        .with_callback(reading(shared, |snap, o| {
            for fs in snap.filesystems.iter().flatten() {
                // As df's Use% and psutil's percent: reserved blocks are left out of the base.
                o.observe(
                    fraction(fs.used, fs.used.saturating_add(fs.free)),
                    &filesystem_attributes(fs, "used"),
                );
            }
        }))
        .build();
}

fn register_network(meter: &Meter, shared: &Shared) {
    meter
        .u64_observable_counter(SYSTEM_NETWORK_IO)
        .with_unit("By")
        .with_description("Bytes transmitted and received, cumulative")
        .with_callback(reading(shared, |snap, o| {
            for n in snap.network.iter().flatten() {
                for (direction, value) in [("receive", n.received), ("transmit", n.transmitted)] {
                    o.observe(
                        value,
                        &[
                            KeyValue::new(NETWORK_INTERFACE_NAME, Arc::clone(&n.interface)),
                            KeyValue::new(NETWORK_IO_DIRECTION, direction),
                        ],
                    );
                }
            }
        }))
        .build();
    meter
        .u64_observable_counter(SYSTEM_NETWORK_ERRORS)
        .with_unit("{error}")
        .with_description("Network errors detected, cumulative")
        .with_callback(reading(shared, |snap, o| {
            for n in snap.network.iter().flatten() {
                for (direction, value) in [
                    ("receive", n.errors_received),
                    ("transmit", n.errors_transmitted),
                ] {
                    o.observe(
                        value,
                        &[
                            KeyValue::new(NETWORK_INTERFACE_NAME, Arc::clone(&n.interface)),
                            KeyValue::new(NETWORK_IO_DIRECTION, direction),
                        ],
                    );
                }
            }
        }))
        .build();
}

fn register_disk(meter: &Meter, shared: &Shared) {
    meter
        .u64_observable_counter(SYSTEM_DISK_IO)
        .with_unit("By")
        .with_description("Disk bytes transferred, cumulative")
        .with_callback(reading(shared, |snap, o| {
            for d in snap.disks.iter().flatten() {
                for (direction, value) in [("read", d.read), ("write", d.written)] {
                    o.observe(
                        value,
                        &[
                            KeyValue::new(SYSTEM_DEVICE, Arc::clone(&d.device)),
                            KeyValue::new(DISK_IO_DIRECTION, direction),
                        ],
                    );
                }
            }
        }))
        .build();
}

fn register_process(meter: &Meter, shared: &Shared) {
    meter
        .f64_observable_gauge(PROCESS_CPU_UTILIZATION)
        .with_unit("1")
        .with_description(
            "CPU time of this process over the last interval, divided by the elapsed time and \
             the CPUs available to the process",
        )
        .with_callback(reading(shared, |snap, o| {
            let Some(p) = &snap.process else { return };
            for &(mode, value) in &p.cpu_utilization {
                match mode {
                    Some(mode) => o.observe(value, &[KeyValue::new(CPU_MODE, mode)]),
                    None => o.observe(value, &[]),
                }
            }
        }))
        .build();
    meter
        .i64_observable_up_down_counter(PROCESS_MEMORY_USAGE)
        .with_unit("By")
        .with_description("The amount of physical memory in use (RSS)")
        .with_callback(reading(shared, |snap, o| {
            if let Some(p) = &snap.process {
                o.observe(to_i64(p.memory_usage), &[]);
            }
        }))
        .build();
    meter
        .i64_observable_up_down_counter(PROCESS_MEMORY_VIRTUAL)
        .with_unit("By")
        .with_description("The amount of committed virtual memory")
        .with_callback(reading(shared, |snap, o| {
            if let Some(p) = &snap.process {
                o.observe(to_i64(p.memory_virtual), &[]);
            }
        }))
        .build();
    meter
        .i64_observable_up_down_counter(PROCESS_THREAD_COUNT)
        .with_unit("{thread}")
        .with_description("Process threads count")
        .with_callback(reading(shared, |snap, o| {
            if let Some(threads) = snap.process.as_ref().and_then(|p| p.threads) {
                o.observe(to_i64(threads), &[]);
            }
        }))
        .build();
    if cfg!(unix) {
        meter
            .i64_observable_up_down_counter(PROCESS_UNIX_FILE_DESCRIPTOR_COUNT)
            .with_unit("{file_descriptor}")
            .with_description("Number of unix file descriptors in use by the process")
            .with_callback(reading(shared, |snap, o| {
                if let Some(fds) = snap.process.as_ref().and_then(|p| p.open_fds) {
                    o.observe(to_i64(fds), &[]);
                }
            }))
            .build();
    }
    meter
        .f64_observable_gauge(PROCESS_UPTIME)
        .with_unit("s")
        .with_description("The time the process has been running")
        .with_callback(reading(shared, |snap, o| {
            if let Some(p) = &snap.process {
                o.observe(p.uptime_seconds, &[]);
            }
        }))
        .build();
}
