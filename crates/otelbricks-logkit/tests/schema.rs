//! The request-line schema (docs/log-schema.md): every line with `method`, `path`, `status_code`
//! and `duration` is a request, whatever its message and level; the Python design's
//! `Request completed` lines still are.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use common::*;

const LINES: &[&str] = &[
    // The HTTP server layer: completed 2xx and 4xx, failed 5xx (an error status and a panic).
    r#"{"timestamp":"2026-12-01T10:00:00.000001Z","level":"INFO","logger":"otelbricks_http::server","message":"Request completed","method":"GET","path":"/api/v1/jobs","status_code":200,"duration":0.010,"trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":"b7ad6b7169203331","request_id":"r1","user_id":"u1"}"#,
    r#"{"timestamp":"2026-12-01T10:00:01Z","level":"INFO","message":"Request completed","method":"GET","path":"/api/v1/jobs/{id}","status_code":404,"duration":0.002,"request_id":"r2"}"#,
    r#"{"timestamp":"2026-12-01T10:00:02Z","level":"ERROR","message":"Request failed","method":"POST","path":"/api/v1/jobs","status_code":503,"duration":0.250,"error":"Service Unavailable","error_type":"Service Unavailable","request_id":"r3","user_id":"u2"}"#,
    r#"{"timestamp":"2026-12-01T10:00:03Z","level":"ERROR","message":"Request failed","method":"POST","path":"/api/v1/upload","status_code":500,"duration":0.100,"error":"boom","error_type":"panic","request_id":"r4"}"#,
    // The Python design: `Request completed` without method counts; its `Request failed` line
    // (no status_code) is an error line, not a request.
    r#"{"timestamp":"2026-12-01T10:00:04Z","level":"INFO","message":"Request completed","path":"/health","status_code":200,"duration":0.001}"#,
    r#"{"timestamp":"2026-12-01T10:00:05Z","level":"ERROR","message":"Request failed","method":"POST","path":"/api/v1/jobs","error":"boom","error_type":"KeyError","duration":1.5}"#,
    // Not request lines: some request fields only.
    r#"{"timestamp":"2026-12-01T10:00:06Z","level":"DEBUG","message":"Request started","method":"GET","path":"/api/v1/jobs"}"#,
    r#"{"timestamp":"2026-12-01T10:00:07Z","level":"INFO","message":"job done","path":"/api/v1/jobs","duration":3.0}"#,
];

#[test]
fn failed_5xx_lines_count_as_requests_with_their_status_and_latency() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("app.json");
    write_lines(&p, &LINES.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let rep = analyze(&[&p]);
    let s = &rep.overall;
    assert_eq!(
        (s.total_requests, s.successful_requests, s.failed_requests),
        (5, 2, 3)
    );
    let status: Vec<(&str, u64)> = s
        .status_codes
        .iter()
        .map(|c| (c.status_code.as_str(), c.count))
        .collect();
    assert_eq!(status, vec![("200", 2), ("404", 1), ("500", 1), ("503", 1)]);
    let latency: Vec<(&str, u64)> = s
        .performance
        .endpoint_stats
        .iter()
        .map(|e| (e.path.as_str(), e.count))
        .collect();
    for (path, count) in [
        ("/api/v1/jobs", 2),
        ("/api/v1/jobs/{id}", 1),
        ("/api/v1/upload", 1),
        ("/health", 1),
    ] {
        assert!(
            latency.contains(&(path, count)),
            "{path}: {count} in {latency:?}"
        );
    }
    let jobs = s
        .performance
        .endpoint_stats
        .iter()
        .find(|e| e.path == "/api/v1/jobs")
        .unwrap();
    assert_eq!(
        jobs.max, 0.25,
        "the failed request's duration is in the latency"
    );
    assert_eq!(s.unique_users, 2);
    // Error lines are counted as before: the two 5xx and the Python design's failure.
    assert_eq!(s.errors.total, 3);
}

#[test]
fn logkit_and_the_reference_model_agree_on_the_schema_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("app.json");
    let lines: Vec<String> = LINES.iter().map(|s| s.to_string()).collect();
    write_lines(&p, &lines);
    let s = analyze(&[&p]).overall;
    let r = reference(&lines.join("\n"));
    assert_eq!(
        (s.total_requests, s.successful_requests, s.failed_requests),
        (r.total, r.successful, r.failed)
    );
    let status: std::collections::HashMap<String, u64> = s
        .status_codes
        .iter()
        .map(|c| (c.status_code.clone(), c.count))
        .collect();
    assert_eq!(status, r.status);
}
