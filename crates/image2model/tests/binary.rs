//! The binary as a user runs it: no collector, graceful shutdown on SIGTERM, configuration errors
//! that name the variable.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

#[cfg(unix)]
#[tokio::test]
async fn sigterm_stops_accepting_requeues_the_running_job_and_exits_0_without_a_collector() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut child = Command::new(BIN)
        .env("IMAGE2MODEL_LISTEN", "127.0.0.1:0")
        .env("IMAGE2MODEL_DATA_DIR", &data)
        .env("IMAGE2MODEL_SHUTDOWN_GRACE", "100ms")
        .env("IMAGE2MODEL_SIM_PROCESSING_MIN", "60s")
        .env("IMAGE2MODEL_SIM_PROCESSING_MAX", "60s")
        .env("IMAGE2MODEL_SIM_FAILURE_RATE", "0")
        .env("IMAGE2MODEL_SIM_ERROR_RATE", "0")
        .env("IMAGE2MODEL_POLL_INTERVAL", "50ms")
        .env("TELEMETRY_ADMIN_ADDR", "127.0.0.1:0")
        .env("TELEMETRY_LOG_DIR", dir.path().join("logs"))
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
    let (tx, rx) = std::sync::mpsc::channel::<serde_json::Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let start = Instant::now();
    let addr = loop {
        let v = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("a log line");
        if v["message"] == "image2model listening" {
            break v["addr"].as_str().expect("addr").to_owned();
        }
        assert!(start.elapsed() < Duration::from_secs(20));
    };
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    let health = http
        .get(format!("{base}/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
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
    loop {
        let v: serde_json::Value = http
            .get(format!("{base}/api/v1/jobs/{job_id}"))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        if v["status"] == "running" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let stopped = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(stopped.elapsed() < Duration::from_secs(15), "did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
    assert!(stopped.elapsed() < Duration::from_secs(8));
    let store = Store::open(&data.join("image2model.sqlite3")).expect("db");
    let job = store.job(&job_id).expect("get").expect("exists");
    assert_eq!(
        job.status,
        JobStatus::Queued,
        "the running job was requeued"
    );
    assert!(dir.path().join("logs").join("image2model.json").exists());
}
