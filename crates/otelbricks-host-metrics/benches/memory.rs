//! Memory and CPU of the collector over many collections, with a counting global allocator.
//!
//! cargo bench -p otelbricks-host-metrics --bench memory            (10,000 collections)
//! HOST_METRICS_COLLECTIONS=1000 cargo bench -p otelbricks-host-metrics --bench memory
//!
//! Prints live heap bytes (allocated - freed) and RSS after a warm-up and after all collections,
//! the CPU time per collection (getrusage) and the steady cost at the default 15 s interval.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use otelbricks_host_metrics::{__bench::Collector, DEFAULT_INTERVAL, HostMetrics};

struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4)
}

fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the zeroed struct we own.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let n: u32 = std::env::var("HOST_METRICS_COLLECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let mut collector = Collector::new(&HostMetrics::builder().build()).expect("collector");
    for _ in 0..100 {
        black_box(collector.collect());
    }
    let (live0, rss0, allocs0) = (
        LIVE.load(Ordering::Relaxed),
        rss_kib(),
        ALLOCATIONS.load(Ordering::Relaxed),
    );
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    for i in 1..=n {
        black_box(collector.collect());
        if i % (n / 4).max(1) == 0 {
            println!(
                "after {:>6} collections: live heap {:>9} B, RSS {:>7} KiB",
                i,
                LIVE.load(Ordering::Relaxed),
                rss_kib()
            );
        }
    }
    let (cpu, wall) = (cpu_time() - cpu0, wall0.elapsed());
    let (live1, rss1, allocs1) = (
        LIVE.load(Ordering::Relaxed),
        rss_kib(),
        ALLOCATIONS.load(Ordering::Relaxed),
    );
    let per = cpu / n;
    println!("collections: {n} (after 100 warm-up)");
    println!(
        "live heap: {live0} B -> {live1} B (delta {} B); RSS {rss0} KiB -> {rss1} KiB",
        live1 - live0
    );
    println!(
        "allocations per collection: {:.1}",
        (allocs1 - allocs0) as f64 / f64::from(n)
    );
    println!(
        "CPU per collection: {:.1} us (wall {:.1} us)",
        per.as_secs_f64() * 1e6,
        wall.as_secs_f64() * 1e6 / f64::from(n)
    );
    println!(
        "steady cost at {:?}: {:.5}% of one core",
        DEFAULT_INTERVAL,
        per.as_secs_f64() / DEFAULT_INTERVAL.as_secs_f64() * 100.0
    );

    // The real sampler thread at a 100 ms interval for 5 s (no reader attached: the process is
    // otherwise idle), to check the thread costs what one collection costs.
    let provider = SdkMeterProvider::builder().build();
    let interval = Duration::from_millis(100);
    let cpu0 = cpu_time();
    let handle = HostMetrics::builder()
        .with_interval(interval)
        .build()
        .start(&provider.meter("bench"))
        .expect("start");
    std::thread::sleep(Duration::from_secs(5));
    handle.shutdown().expect("shutdown");
    let thread_cpu = cpu_time() - cpu0;
    let samples = 5_000 / interval.as_millis() as u32;
    let per_sample = thread_cpu / samples;
    println!(
        "sampler thread at {interval:?} for 5 s: {:.1} ms CPU, ~{:.1} us per sample, \
         i.e. {:.5}% of one core at {:?}",
        thread_cpu.as_secs_f64() * 1e3,
        per_sample.as_secs_f64() * 1e6,
        per_sample.as_secs_f64() / DEFAULT_INTERVAL.as_secs_f64() * 100.0,
        DEFAULT_INTERVAL
    );
}
