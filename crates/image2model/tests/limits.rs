//! Cost and disk: per-client rate limit and job quota (429 + `Retry-After`), the bounded queue
//! (503 + `Retry-After`), `options` and file-name limits (413), retention and the disk check —
//! each refusal counted in `requests_rejected_total{reason}`; and what clients see stays small
//! and free of internals (bounded echoes, 5xx with a code and the request id).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use common::*;
use http::{Request, StatusCode};
use image2model::app::AppOptions;
use image2model::sim::{Fault, SimConfig};
use otelbricks_telemetry::testing::{Capture, PointValue};

/// `req` as if it came from `ip` over a connection.
fn from(ip: [u8; 4], mut req: Request<Body>) -> Request<Body> {
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((ip, 40000))));
    req
}

fn rejected(capture: &Capture, reason: &str) -> f64 {
    capture
        .metric_points(Some("requests_rejected"))
        .iter()
        .filter(|p| p.attr("reason").as_deref() == Some(reason))
        .map(|p| match &p.value {
            PointValue::Number(n) => *n,
            PointValue::Histogram { count, .. } => *count as f64,
        })
        .sum()
}

const SOME_JOB: &str = "/api/v1/jobs/0190b1e4-0000-7000-8000-000000000001";

#[tokio::test]
async fn a_client_over_its_request_rate_gets_429_with_retry_after_and_others_do_not() {
    let capture = Capture::new("image2model");
    let _g = capture.set_default();
    let t = start_cfg(
        |c| {
            c.limits.rate_limit = 1;
            c.limits.rate_burst = 5;
        },
        SimConfig::fast(10),
        options_of(&capture),
    )
    .await;
    for _ in 0..5 {
        let (status, _) = send_json(&t.router, from([10, 0, 0, 1], get(SOME_JOB))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, headers, body) = send(&t.router, from([10, 0, 0, 1], get(SOME_JOB))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["error"]["code"], "rate_limited", "{v}");
    let retry: u64 = headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=2).contains(&retry), "{retry}");
    let (status, _) = send_json(&t.router, from([10, 0, 0, 2], get(SOME_JOB))).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another client has its own bucket"
    );
    let (status, v) = send_json(&t.router, from([10, 0, 0, 1], get("/health"))).await;
    assert_eq!(status, StatusCode::OK, "probes are never rate limited: {v}");
    t.app.shutdown().await;
    assert_eq!(rejected(&capture, "rate_limited"), 1.0);
}

#[tokio::test]
async fn a_burst_of_batches_is_cut_by_the_job_quota() {
    let capture = Capture::new("image2model");
    let _g = capture.set_default();
    let t = start_cfg(
        |c| {
            c.limits.job_rate_limit = 1;
            c.limits.job_burst = 20;
            c.max_batch_size = 20;
        },
        SimConfig {
            fault: Fault::Hang,
            ..SimConfig::fast(10)
        },
        options_of(&capture),
    )
    .await;
    let f = upload(&t.router).await;
    let body = serde_json::json!({"file_ids": vec![f; 20]}).to_string();
    let mut accepted = 0;
    for _ in 0..15 {
        let (status, v) = send_json(
            &t.router,
            from([10, 0, 0, 1], post_json("/api/v1/batches", &body)),
        )
        .await;
        match status {
            StatusCode::ACCEPTED => accepted += 1,
            StatusCode::TOO_MANY_REQUESTS => assert_eq!(v["error"]["code"], "rate_limited"),
            other => panic!("{other}: {v}"),
        }
    }
    assert_eq!(accepted, 1, "20 jobs of quota: one batch of 20, not 15");
    t.app.shutdown_with_grace(Duration::ZERO).await;
    assert_eq!(rejected(&capture, "job_quota"), 14.0);
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after() {
    let capture = Capture::new("image2model");
    let _g = capture.set_default();
    let t = start_cfg(
        |c| {
            c.workers = 1;
            c.limits.max_queued_jobs = 3;
        },
        // The provider never answers: the one worker holds one job, the queue holds the rest.
        SimConfig {
            fault: Fault::Hang,
            ..SimConfig::fast(10)
        },
        options_of(&capture),
    )
    .await;
    let f = upload(&t.router).await;
    let first = create_job(&t.router, &f).await;
    // Wait until the worker holds it, so that the queue is empty.
    eventually(Duration::from_secs(5), async || {
        let (_, v) = send_json(&t.router, get(&format!("/api/v1/jobs/{first}"))).await;
        (v["status"] == "running").then_some(())
    })
    .await
    .expect("the first job runs");
    let three = serde_json::json!({"file_ids": [f, f, f]}).to_string();
    let (status, _) = send_json(&t.router, post_json("/api/v1/batches", &three)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "3 jobs fit in the queue");
    let (status, headers, body) = send(
        &t.router,
        post_json(
            "/api/v1/models",
            &serde_json::json!({"file_id": f}).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key("retry-after"));
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["error"]["code"], "queue_full", "{v}");
    t.app.shutdown_with_grace(Duration::ZERO).await;
    assert_eq!(rejected(&capture, "queue_full"), 1.0);
}

#[tokio::test]
async fn oversized_options_and_file_names_are_413_and_counted() {
    let capture = Capture::new("image2model");
    let _g = capture.set_default();
    let t = start_cfg(|_| {}, SimConfig::fast(10), options_of(&capture)).await;
    let f = upload(&t.router).await;
    let big = serde_json::json!({"file_id": f, "options": {"prompt": "x".repeat(17 * 1024)}});
    let (status, v) = send_json(&t.router, post_json("/api/v1/models", &big.to_string())).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["error"]["code"], "payload_too_large");
    let keys: serde_json::Map<String, serde_json::Value> =
        (0..33).map(|i| (format!("k{i}"), 1.into())).collect();
    let many = serde_json::json!({"file_ids": [f], "options": keys});
    let (status, v) = send_json(&t.router, post_json("/api/v1/batches", &many.to_string())).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    // A whole body far past the options limit is refused before it is parsed.
    let huge = serde_json::json!({"file_id": f, "options": {"p": "y".repeat(2_000_000)}});
    let (status, v) = send_json(&t.router, post_json("/api/v1/models", &huge.to_string())).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    let name = "n".repeat(300) + ".png";
    let (status, v) = send_json(&t.router, multipart("file", &name, PNG)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(v.to_string().len() < 1024, "the name is not echoed: {v}");
    t.app.shutdown().await;
    assert_eq!(rejected(&capture, "options_too_large"), 2.0);
    assert_eq!(rejected(&capture, "payload_too_large"), 1.0);
    assert_eq!(rejected(&capture, "filename_too_long"), 1.0);
}

#[tokio::test]
async fn old_uploads_jobs_and_models_are_deleted_by_the_retention_sweep() {
    let (t, f, job, v) = one_job(
        |c| {
            c.limits.retention = Duration::from_millis(300);
            c.limits.sweep_interval = Duration::from_millis(100);
        },
        SimConfig::fast(10),
    )
    .await;
    assert_eq!(v["status"], "succeeded", "{v}");
    let files_in = |sub: &str| {
        std::fs::read_dir(t.dir.path().join(sub))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let gone = eventually(Duration::from_secs(10), async || {
        let (status, _) = send_json(&t.router, get(&format!("/api/v1/jobs/{job}"))).await;
        (status == StatusCode::NOT_FOUND && files_in("uploads") == 0 && files_in("results") == 0)
            .then_some(())
    })
    .await;
    assert!(
        gone.is_some(),
        "job, upload and model deleted: uploads {} results {}",
        files_in("uploads"),
        files_in("results")
    );
    let (status, _) = send_json(
        &t.router,
        post_json(
            "/api/v1/models",
            &serde_json::json!({"file_id": f}).to_string(),
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the upload's row is gone too"
    );
    t.app.shutdown().await;
}

#[tokio::test]
async fn a_short_disk_fails_ready_and_refuses_uploads() {
    let t = start_cfg(
        |c| c.limits.min_free_disk_bytes = u64::MAX,
        SimConfig::fast(10),
        AppOptions::default(),
    )
    .await;
    let (status, v) = send_json(&t.router, get("/ready")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["checks"]["disk"], false, "{v}");
    let (status, v) = send_json(&t.router, multipart("file", "cat.png", PNG)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["error"]["code"], "insufficient_storage");
    t.app.shutdown().await;
}

#[tokio::test]
async fn client_controlled_ids_and_names_are_bounded_in_answers_and_log_lines() {
    let capture = Capture::new("image2model");
    let _g = capture.set_default();
    let t = start_cfg(
        |c| c.limits.max_filename_bytes = 4096,
        SimConfig::fast(10),
        options_of(&capture),
    )
    .await;
    let long_id = "z".repeat(1500);
    let (status, v) = send_json(&t.router, get(&format!("/api/v1/jobs/{long_id}"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(v.to_string().len() < 600, "{}", v.to_string().len());
    // Longer than any route needs: refused before the HTTP layer records it.
    let huge = "q".repeat(60_000);
    let (status, _, body) = send(&t.router, get(&format!("/api/v1/jobs/{huge}"))).await;
    assert_eq!(status, StatusCode::URI_TOO_LONG);
    assert!(body.len() < 600);
    let name = "n".repeat(4000) + ".txt";
    let (status, v) = send_json(&t.router, multipart("file", &name, b"not an image at all")).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{v}");
    assert!(v.to_string().len() < 1024, "{}", v.to_string().len());
    t.app.shutdown().await;
    let longest = capture.raw_lines().lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 4000, "longest log line {longest} bytes");
}

#[tokio::test]
async fn a_5xx_answer_has_a_stable_code_and_the_request_id_but_no_internals() {
    let t = start(SimConfig::fast(10)).await;
    // Break the uploads directory: writing an upload fails inside the app.
    let uploads = t.dir.path().join("uploads");
    std::fs::remove_dir_all(&uploads).expect("rm");
    std::fs::write(&uploads, b"not a directory").expect("file");
    let (status, v) = send_json(&t.router, multipart("file", "cat.png", PNG)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
    assert_eq!(v["error"]["code"], "internal_error");
    assert!(
        v["error"]["request_id"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{v}"
    );
    let text = v.to_string();
    let root = t.dir.path().display().to_string();
    assert!(
        !text.contains(&root) && !text.contains("uploads") && !text.contains("directory"),
        "{text}"
    );
    t.app.shutdown().await;
}
