//! Every route and every bad input, through the router in-process, with the provider simulator
//! on a real loopback port.

mod common;

use std::time::Duration;

use common::*;
use http::StatusCode;
use image2model::sim::SimConfig;

#[tokio::test]
async fn upload_accepts_png_jpeg_and_webp_and_answers_201_with_a_file_id() {
    let t = start(SimConfig::fast(10)).await;
    for (name, bytes, mime) in [
        ("a.png", PNG, "image/png"),
        ("b.jpg", JPEG, "image/jpeg"),
        ("c.webp", WEBP, "image/webp"),
    ] {
        let (status, v) = send_json(&t.router, multipart("file", name, bytes)).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        assert_eq!(v["content_type"], mime);
        assert_eq!(v["size"], bytes.len());
        assert!(v["file_id"].as_str().is_some_and(|s| !s.is_empty()));
    }
    t.app.shutdown().await;
}

#[tokio::test]
async fn upload_with_a_non_multipart_content_type_is_415() {
    let t = start(SimConfig::fast(10)).await;
    let (status, v) = send_json(&t.router, post_json("/api/v1/upload", "{}")).await;
    assert_error(
        status,
        &v,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    t.app.shutdown().await;
}

#[tokio::test]
async fn upload_of_non_image_bytes_named_like_an_image_is_415() {
    let t = start(SimConfig::fast(10)).await;
    let (status, v) = send_json(
        &t.router,
        multipart("file", "holiday.png", b"#!/bin/sh\necho not an image\n"),
    )
    .await;
    assert_error(
        status,
        &v,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("holiday.png"))
    );
    t.app.shutdown().await;
}

#[tokio::test]
async fn upload_of_an_empty_file_is_400() {
    let t = start(SimConfig::fast(10)).await;
    let (status, v) = send_json(&t.router, multipart("file", "empty.png", b"")).await;
    assert_error(status, &v, StatusCode::BAD_REQUEST, "bad_request");
    t.app.shutdown().await;
}

#[tokio::test]
async fn upload_over_the_size_limit_is_413() {
    let t = start_cfg(
        |c| c.max_upload_bytes = 1024,
        SimConfig::fast(10),
        Default::default(),
    )
    .await;
    // Just over the limit: rejected by our check.
    let mut big = PNG.to_vec();
    big.resize(1025, 0);
    let (status, v) = send_json(&t.router, multipart("file", "big.png", &big)).await;
    assert_error(
        status,
        &v,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    // Far over the limit: rejected by the body limit while streaming.
    big.resize(200 * 1024, 0);
    let (status, v) = send_json(&t.router, multipart("file", "huge.png", &big)).await;
    assert_error(
        status,
        &v,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    t.app.shutdown().await;
}

#[tokio::test]
async fn upload_without_a_file_field_is_400() {
    let t = start(SimConfig::fast(10)).await;
    let (status, v) = send_json(&t.router, multipart("picture", "a.png", PNG)).await;
    assert_error(status, &v, StatusCode::BAD_REQUEST, "bad_request");
    t.app.shutdown().await;
}

#[tokio::test]
async fn create_model_with_malformed_json_is_400() {
    let t = start(SimConfig::fast(10)).await;
    for body in [
        "{\"file_id\": ",
        "[1,2]",
        "{\"file_id\": 42}",
        "{}",
        "{\"file_id\":\"x\",\"options\":3}",
    ] {
        let (status, v) = send_json(&t.router, post_json("/api/v1/models", body)).await;
        assert_error(status, &v, StatusCode::BAD_REQUEST, "bad_request");
    }
    t.app.shutdown().await;
}

#[tokio::test]
async fn create_model_without_a_json_content_type_is_415() {
    let t = start(SimConfig::fast(10)).await;
    let req = http::Request::post("/api/v1/models")
        .header("content-type", "text/plain")
        .body(axum::body::Body::from("{\"file_id\":\"x\"}"))
        .expect("request");
    let (status, v) = send_json(&t.router, req).await;
    assert_error(
        status,
        &v,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    t.app.shutdown().await;
}

#[tokio::test]
async fn unknown_file_job_batch_and_model_ids_are_404() {
    let t = start(SimConfig::fast(10)).await;
    let (status, v) = send_json(
        &t.router,
        post_json("/api/v1/models", "{\"file_id\":\"nope\"}"),
    )
    .await;
    assert_error(status, &v, StatusCode::NOT_FOUND, "not_found");
    for uri in [
        "/api/v1/jobs/nope",
        "/api/v1/batches/nope",
        "/api/v1/models/nope/download",
        "/api/v1/does-not-exist",
    ] {
        let (status, v) = send_json(&t.router, get(uri)).await;
        assert_error(status, &v, StatusCode::NOT_FOUND, "not_found");
    }
    t.app.shutdown().await;
}

#[tokio::test]
async fn a_wrong_method_is_a_json_405() {
    let t = start(SimConfig::fast(10)).await;
    let req = http::Request::delete("/api/v1/upload")
        .body(axum::body::Body::empty())
        .expect("req");
    let (status, v) = send_json(&t.router, req).await;
    assert_error(
        status,
        &v,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    t.app.shutdown().await;
}

#[tokio::test]
async fn empty_and_oversized_batches_are_422_and_create_nothing() {
    let t = start_cfg(
        |c| c.max_batch_size = 3,
        SimConfig::fast(10),
        Default::default(),
    )
    .await;
    let f = upload(&t.router).await;
    let (status, v) = send_json(&t.router, post_json("/api/v1/batches", "{\"file_ids\":[]}")).await;
    assert_error(
        status,
        &v,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    );
    let four = serde_json::json!({"file_ids": [f, f, f, f]}).to_string();
    let (status, v) = send_json(&t.router, post_json("/api/v1/batches", &four)).await;
    assert_error(
        status,
        &v,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
    );
    let unknown = serde_json::json!({"file_ids": [f, "missing"]}).to_string();
    let (status, v) = send_json(&t.router, post_json("/api/v1/batches", &unknown)).await;
    assert_error(status, &v, StatusCode::NOT_FOUND, "not_found");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("missing"))
    );
    let report = t.app.shutdown().await;
    assert!(report.requeued.is_empty());
}

#[tokio::test]
async fn a_job_runs_end_to_end_against_the_simulator_and_its_model_downloads() {
    let t = start(SimConfig::fast(50)).await;
    let f = upload(&t.router).await;
    let job = create_job(&t.router, &f).await;
    let v = wait_job(&t.router, &job, Duration::from_secs(10)).await;
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(v["attempts"], 1);
    assert!(v["error"].is_null());
    assert!(v["run_seconds"].as_f64().is_some_and(|s| s > 0.0));
    assert_eq!(v["download_url"], format!("/api/v1/models/{job}/download"));
    let (status, headers, body) =
        send(&t.router, get(&format!("/api/v1/models/{job}/download"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "model/gltf-binary");
    assert!(image2model::files::is_valid_glb(&body));
    t.app.shutdown().await;
}

#[tokio::test]
async fn downloading_a_model_that_is_not_ready_is_409() {
    let t = start(SimConfig::fast(5_000)).await;
    let f = upload(&t.router).await;
    let job = create_job(&t.router, &f).await;
    let (status, v) = send_json(&t.router, get(&format!("/api/v1/models/{job}/download"))).await;
    assert_error(status, &v, StatusCode::CONFLICT, "conflict");
    wait_for(
        &t.router,
        &format!("/api/v1/jobs/{job}"),
        Duration::from_secs(5),
        |v| v["status"] == "running",
    )
    .await;
    let report = t.app.shutdown_with_grace(Duration::ZERO).await;
    assert_eq!(
        report.requeued,
        vec![job],
        "the running job goes back to the queue"
    );
}

#[tokio::test]
async fn a_batch_runs_every_job_and_reports_a_per_job_summary() {
    let t = start(SimConfig::fast(30)).await;
    let mut files = Vec::new();
    for _ in 0..4 {
        files.push(upload(&t.router).await);
    }
    let (batch, jobs) = create_batch(&t.router, &files).await;
    assert_eq!(jobs.len(), 4);
    let v = wait_batch(&t.router, &batch, Duration::from_secs(10)).await;
    assert_eq!(v["size"], 4);
    assert_eq!(v["counts"]["succeeded"], 4, "{v}");
    assert_eq!(v["counts"]["failed"], 0);
    assert!(v["finished_at"].as_f64().is_some());
    let listed: Vec<&str> = v["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["job_id"].as_str().expect("id"))
        .collect();
    assert_eq!(listed, jobs.iter().map(String::as_str).collect::<Vec<_>>());
    t.app.shutdown().await;
}

#[tokio::test]
async fn health_is_ok_and_ready_reports_storage_and_workers() {
    let t = start(SimConfig::fast(10)).await;
    let (status, v) = send_json(&t.router, get("/health")).await;
    assert_eq!((status, v["status"].as_str()), (StatusCode::OK, Some("ok")));
    // The dispatcher marks the workers alive once it runs.
    let ready = eventually(Duration::from_secs(5), async || {
        let (status, v) = send_json(&t.router, get("/ready")).await;
        (status == StatusCode::OK).then_some(v)
    })
    .await;
    let v = ready.expect("ready once the dispatcher runs");
    assert_eq!(v["checks"]["storage"], true);
    assert_eq!(v["checks"]["workers"], true);
    let router = t.router.clone();
    t.app.shutdown().await;
    let (status, v) = send_json(&router, get("/ready")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["checks"]["workers"], false);
    let (status, v) = send_json(&router, post_json("/api/v1/models", "{\"file_id\":\"x\"}")).await;
    assert_error(status, &v, StatusCode::SERVICE_UNAVAILABLE, "unavailable");
}
