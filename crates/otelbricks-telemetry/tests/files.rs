//! Log files written by `install`: rotation by size with gzip, no line lost or split under
//! concurrent writers; an unwritable directory is an error at init.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::HashSet;
use std::fs;
use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use common::eventually;

fn no_env(_: &str) -> Option<String> {
    None
}

/// Every line of `<stem>.json` and its rotated `.gz` files, in no particular order.
fn all_lines(dir: &Path, stem: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in fs::read_dir(dir).expect("read log dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if !name.starts_with(&format!("{stem}.json")) {
            continue;
        }
        // A plain rotation is deleted once its .gz is written, and that can happen between the
        // directory listing and the open: a file gone by then is read on the next poll.
        let mut text = String::new();
        if name.ends_with(".gz") {
            let Some(file) = open_unless_gone(&path) else {
                continue;
            };
            if flate2::read::MultiGzDecoder::new(file)
                .read_to_string(&mut text)
                .is_err()
            {
                continue; // still being compressed; counted on the next poll
            }
        } else if name.ends_with(".json") || name.chars().last().is_some_and(|c| c.is_ascii_digit())
        {
            let Some(mut file) = open_unless_gone(&path) else {
                continue;
            };
            file.read_to_string(&mut text).expect("read log file");
        } else {
            continue;
        }
        lines.extend(text.lines().map(str::to_owned));
    }
    lines
}

/// Opens `path`, or `None` when it no longer exists (removed after the directory was listed).
fn open_unless_gone(path: &Path) -> Option<fs::File> {
    match fs::File::open(path) {
        Ok(file) => Some(file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("open {}: {e}", path.display()),
    }
}

#[test]
fn an_unwritable_log_directory_is_an_error_at_init_not_a_panic_later() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("not-a-dir");
    fs::write(&file, b"x").expect("write");
    let err = otelbricks_telemetry::builder("svc")
        .env_lookup(no_env)
        .log_dir(file.join("logs"))
        .without_admin()
        .install()
        .expect_err("a log dir under a regular file cannot be created");
    assert!(
        matches!(err, otelbricks_telemetry::TelemetryError::LogDir { .. }),
        "unexpected error: {err}"
    );
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}

#[test]
fn rotation_under_four_writer_threads_loses_and_splits_no_line() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 25_000;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let guard = otelbricks_telemetry::builder("rot")
        .env_lookup(no_env)
        .log_dir(&dir)
        .log_rotation(256 * 1024, 10_000)
        .console(otelbricks_telemetry::ConsoleFormat::Off)
        .without_admin()
        .otlp_endpoint("http://127.0.0.1:9")
        .install()
        .expect("install");

    std::thread::scope(|s| {
        for t in 0..THREADS {
            s.spawn(move || {
                let span = tracing::info_span!("writer", request_id = t as u64);
                let _e = span.enter();
                for i in 0..PER_THREAD {
                    tracing::info!(
                        thread = t as u64,
                        seq = i as u64,
                        pad = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                        "line"
                    );
                }
            });
        }
    });
    guard.shutdown().ok();

    // Compression of the last rotated files may still be finishing: poll, bounded.
    let expected = THREADS * PER_THREAD;
    let ours = |lines: &[String]| {
        lines
            .iter()
            .filter(|l| l.contains("\"message\":\"line\""))
            .count()
    };
    let lines = eventually(Duration::from_secs(30), || {
        Some(all_lines(&dir, "rot")).filter(|lines| ours(lines) >= expected)
    })
    .unwrap_or_else(|| all_lines(&dir, "rot"));

    let mut seen = HashSet::new();
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("split or corrupt line {line:?}: {e}"));
        if v["message"] == "line" {
            let key = (
                v["thread"].as_u64().expect("thread"),
                v["seq"].as_u64().expect("seq"),
            );
            assert!(seen.insert(key), "line {key:?} written twice");
        }
    }
    assert_eq!(seen.len(), expected, "lines lost");
    let rotated = fs::read_dir(&dir)
        .expect("dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".gz"))
        })
        .count();
    assert!(
        rotated >= 5,
        "expected several gzipped rotations, got {rotated}"
    );
    let errors_file = dir.join("rot_errors.json");
    assert!(errors_file.exists(), "the errors file exists");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(dir.join("rot.json"))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o640, "log files are not world-readable");
    }
}
