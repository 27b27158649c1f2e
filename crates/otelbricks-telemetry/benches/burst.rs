//! Burst: 1,000,000 log lines from 4 threads through `install()` to the rotating files (lossless
//! writer), then count the lines that reached disk across the live, rotated and gzipped files.
//! Prints lines written, lines found, lines dropped (self-metric) and the wall time.
//!
//! `cargo bench -p otelbricks-telemetry --bench burst` (LINES=… THREADS=… to change the size).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::fs;
use std::io::{BufRead as _, BufReader};
use std::time::{Duration, Instant};

fn count_lines(dir: &std::path::Path) -> usize {
    let mut n = 0;
    for entry in fs::read_dir(dir).expect("dir").flatten() {
        let path = entry.path();
        let name = path
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        if !name.starts_with("burst.json") {
            continue;
        }
        let Ok(file) = fs::File::open(&path) else {
            continue;
        };
        let reader: Box<dyn std::io::Read> = if name.ends_with(".gz") {
            Box::new(flate2::read::MultiGzDecoder::new(file))
        } else {
            Box::new(file)
        };
        n += BufReader::new(reader)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.contains("\"message\":\"burst\""))
            .count();
    }
    n
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let lines: usize = std::env::var("LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let threads: usize = std::env::var("THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let tmp = tempfile::tempdir().expect("tempdir");
    let guard = otelbricks_telemetry::builder("burst")
        .env_lookup(|_| None)
        .log_dir(tmp.path())
        .log_rotation(50 * 1024 * 1024, 1000)
        .console(otelbricks_telemetry::ConsoleFormat::Off)
        .without_admin()
        .otlp_endpoint("http://127.0.0.1:9")
        .install()
        .expect("install");

    let per = lines / threads;
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                let span = tracing::info_span!("worker", request_id = t as u64);
                let _e = span.enter();
                for i in 0..per {
                    tracing::info!(thread = t as u64, seq = i as u64, "burst");
                }
            });
        }
    });
    let emitted = start.elapsed();
    let _ = guard.shutdown();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut found = count_lines(tmp.path());
    while found < per * threads && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        found = count_lines(tmp.path());
    }
    let total = per * threads;
    println!(
        "burst: {total} lines from {threads} threads emitted in {:.2?} ({:.0} lines/s, {:.0} ns/line/thread); on disk: {found}; lost: {}",
        emitted,
        total as f64 / emitted.as_secs_f64(),
        emitted.as_nanos() as f64 * threads as f64 / total as f64,
        total - found.min(total)
    );
}
