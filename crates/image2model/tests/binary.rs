//! The binary as a user runs it: no collector, graceful shutdown on SIGTERM, a second signal that
//! exits at once, one instance per data directory, configuration errors that name the variable.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{eventually_blocking, eventually_every};
use image2model::store::{JobStatus, Store};

const BIN: &str = env!("CARGO_BIN_EXE_image2model");

#[test]
fn an_invalid_environment_value_names_the_variable_and_exits_2() {
    let out = Command::new(BIN)
        .env("IMAGE2MODEL_WORKERS", "many")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("IMAGE2MODEL_WORKERS"), "{stderr}");
    assert!(stderr.contains("many"), "{stderr}");
}

#[cfg(target_os = "linux")]
#[test]
fn a_system_without_ca_certificates_is_named_at_start() {
    // rustls-native-certs reads only these when they are set: as if `ca-certificates` were missing.
    let out = Command::new(BIN)
        .env("SSL_CERT_FILE", "/nonexistent/ca.pem")
        .env("SSL_CERT_DIR", "/nonexistent/certs")
        .env("IMAGE2MODEL_LISTEN", "127.0.0.1:0")
        .env("IMAGE2MODEL_DATA_DIR", "/nonexistent/data")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no CA certificates found on this system")
            && stderr.contains("ca-certificates")
            && stderr.contains("SSL_CERT_FILE"),
        "{stderr}"
    );
}

fn multipart(content: &[u8]) -> (String, Vec<u8>) {
    let b = "binTestBoundary";
    let mut body = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

/// A running `image2model serve` with its JSON console lines.
struct Served {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<serde_json::Value>,
    stderr: std::sync::mpsc::Receiver<String>,
    addr: String,
}

/// Starts the binary on `data` (logs under `logs`), with a 60 s simulated generation so that a
/// job stays running, and waits for "image2model listening".
fn serve(data: &std::path::Path, logs: &std::path::Path, grace: &str) -> Served {
    let mut child = Command::new(BIN)
        .env("IMAGE2MODEL_LISTEN", "127.0.0.1:0")
        .env("IMAGE2MODEL_DATA_DIR", data)
        .env("IMAGE2MODEL_SHUTDOWN_GRACE", grace)
        .env("IMAGE2MODEL_SIM_PROCESSING_MIN", "60s")
        .env("IMAGE2MODEL_SIM_PROCESSING_MAX", "60s")
        .env("IMAGE2MODEL_SIM_FAILURE_RATE", "0")
        .env("IMAGE2MODEL_SIM_ERROR_RATE", "0")
        .env("IMAGE2MODEL_POLL_INTERVAL", "50ms")
        .env("TELEMETRY_ADMIN_ADDR", "127.0.0.1:0")
        .env("TELEMETRY_LOG_DIR", logs)
        .env("TELEMETRY_SHUTDOWN_TIMEOUT", "1000")
        // Nothing listens on the discard port: the embedded default, with exports failing quietly.
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
        .env_remove("OTEL_SDK_DISABLED")
        .env_remove("ENVIRONMENT")
        .env_remove("OTEL_SERVICE_NAME")
        .env("TELEMETRY_CONSOLE", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = std::sync::mpsc::channel::<serde_json::Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let err = child.stderr.take().expect("stderr");
    let (tx, stderr) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let addr = wait_log(&lines, "image2model listening")["addr"]
        .as_str()
        .expect("addr")
        .to_owned();
    Served {
        child,
        lines,
        stderr,
        addr,
    }
}

/// The next console line with `message` (panics after 20 s).
fn wait_log(
    lines: &std::sync::mpsc::Receiver<serde_json::Value>,
    message: &str,
) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let left = Duration::from_secs(20).saturating_sub(start.elapsed());
        let v = lines
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("no log line {message:?}: {e}"));
        if v["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(message))
        {
            return v;
        }
    }
}

fn signal(child: &std::process::Child, sig: &str) {
    let sent = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
}

/// Waits for the exit (panics after `limit`); returns the status and the time it took.
fn wait_exit(
    child: &mut std::process::Child,
    limit: Duration,
) -> (std::process::ExitStatus, Duration) {
    let start = Instant::now();
    let status = eventually_blocking(limit, || child.try_wait().expect("wait"));
    let status = status.unwrap_or_else(|| panic!("did not exit within {limit:?}"));
    (status, start.elapsed())
}

/// Uploads an image, creates a job and waits until it runs; returns the job id.
async fn running_job(base: &str) -> String {
    let http = reqwest::Client::new();
    let (ct, body) = multipart(image2model::files::TINY_PNG);
    let up: serde_json::Value = http
        .post(format!("{base}/api/v1/upload"))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("json");
    let job: serde_json::Value = http
        .post(format!("{base}/api/v1/models"))
        .header("content-type", "application/json")
        .body(serde_json::json!({"file_id": up["file_id"]}).to_string())
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let job_id = job["job_id"].as_str().expect("job_id").to_owned();
    let mut last = serde_json::Value::Null;
    let running = eventually_every(
        Duration::from_secs(20),
        Duration::from_millis(20),
        async || {
            let v: serde_json::Value = http
                .get(format!("{base}/api/v1/jobs/{job_id}"))
                .send()
                .await
                .expect("get")
                .json()
                .await
                .expect("json");
            last = v.clone();
            (v["status"] == "running").then_some(())
        },
    )
    .await;
    assert!(running.is_some(), "{last}");
    job_id
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_stops_accepting_requeues_the_running_job_and_exits_0_without_a_collector() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let Served {
        mut child, addr, ..
    } = serve(&data, &dir.path().join("logs"), "100ms");
    let base = format!("http://{addr}");
    let health = reqwest::get(format!("{base}/health"))
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    let job_id = running_job(&base).await;

    signal(&child, "-TERM");
    let (status, took) = wait_exit(&mut child, Duration::from_secs(15));
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(8), "took {took:?}");
    let store = Store::open(&data.join("image2model.sqlite3")).expect("db");
    let job = store.job(&job_id).await.expect("get").expect("exists");
    assert_eq!(
        job.status,
        JobStatus::Queued,
        "the running job was requeued"
    );
    assert!(dir.path().join("logs").join("image2model.json").exists());
}

#[cfg(unix)]
#[tokio::test]
async fn a_second_signal_during_the_graceful_shutdown_exits_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // A minute of grace: without the second signal the shutdown would wait for the job.
    let mut served = serve(&data, &dir.path().join("logs"), "60s");
    let job_id = running_job(&format!("http://{}", served.addr)).await;

    signal(&served.child, "-TERM");
    wait_log(&served.lines, "shutdown signal received");
    // A window in which it must not exit: the absence of an exit is what is checked, so it takes time.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        served.child.try_wait().expect("wait").is_none(),
        "the first signal waits for the running job"
    );
    signal(&served.child, "-INT");
    let (status, took) = wait_exit(&mut served.child, Duration::from_secs(10));
    assert!(took < Duration::from_secs(2), "exited in {took:?}");
    assert_eq!(status.code(), Some(130), "128 + SIGINT: {status:?}");
    let stderr: Vec<String> = served.stderr.try_iter().collect();
    assert!(
        stderr
            .iter()
            .any(|l| l.contains("second shutdown signal") && l.contains("SIGINT")),
        "{stderr:?}"
    );
    let store = Store::open(&data.join("image2model.sqlite3")).expect("db");
    let job = store.job(&job_id).await.expect("get").expect("exists");
    assert_eq!(
        job.status,
        JobStatus::Running,
        "left running, for the next start to requeue"
    );
}

#[tokio::test]
async fn a_second_instance_on_the_same_data_dir_fails_at_start_naming_the_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut first = serve(&data, &dir.path().join("logs-1"), "100ms");

    let out = Command::new(BIN)
        .env("IMAGE2MODEL_LISTEN", "127.0.0.1:0")
        .env("IMAGE2MODEL_DATA_DIR", &data)
        .env("TELEMETRY_ADMIN_ADDR", "127.0.0.1:0")
        .env("TELEMETRY_LOG_DIR", dir.path().join("logs-2"))
        .env("OTEL_SDK_DISABLED", "true")
        .output()
        .expect("second instance runs");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("data directory {} is in use", data.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("(pid {})", first.child.id())),
        "{stderr}"
    );

    signal(&first.child, "-TERM");
    let (status, _) = wait_exit(&mut first.child, Duration::from_secs(15));
    assert!(status.success(), "{status:?}");
}
