//! The shipped binary has log archival: `TELEMETRY_LOG_ARCHIVE=true` is accepted, and an old
//! compressed rotation in the log directory moves into `archive/`.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use common::eventually_blocking;

const BIN: &str = env!("CARGO_BIN_EXE_image2model");

#[test]
fn the_binary_accepts_log_archival_and_archives_old_rotations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).expect("logs dir");
    let old = logs.join("image2model.json.1.gz");
    std::fs::write(&old, b"").expect("rotation");
    std::fs::File::options()
        .write(true)
        .open(&old)
        .and_then(|f| f.set_modified(SystemTime::now() - Duration::from_secs(40 * 86_400)))
        .expect("age the rotation");
    let mut child = Command::new(BIN)
        .env("IMAGE2MODEL_LISTEN", "127.0.0.1:0")
        .env("IMAGE2MODEL_DATA_DIR", dir.path().join("data"))
        .env("TELEMETRY_ADMIN_ADDR", "127.0.0.1:0")
        .env("TELEMETRY_LOG_DIR", &logs)
        .env("TELEMETRY_LOG_ARCHIVE", "true")
        .env("TELEMETRY_LOG_ARCHIVE_AFTER", "30d")
        .env("TELEMETRY_SHUTDOWN_TIMEOUT", "1000")
        // Nothing listens on the discard port: exports fail quietly.
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
        .env_remove("OTEL_SDK_DISABLED")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let outcome = eventually_blocking(Duration::from_secs(20), || {
        let found: Vec<_> = std::fs::read_dir(logs.join("archive"))
            .map(|rd| rd.filter_map(Result::ok).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        if !found.is_empty() {
            return Some(Ok(found));
        }
        child.try_wait().expect("wait").map(Err)
    });
    let archived = match outcome.expect("nothing archived within 20 s") {
        Ok(found) => found,
        Err(status) => {
            let out = child.wait_with_output().expect("output");
            panic!(
                "exited with {status} before archiving: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(archived.len(), 1, "{archived:?}");
    let name = archived[0].to_string_lossy().into_owned();
    assert!(
        name.starts_with("image2model.json.") && name.ends_with(".gz"),
        "{name}"
    );
    assert!(!old.exists(), "the rotation was moved, not copied");
}
