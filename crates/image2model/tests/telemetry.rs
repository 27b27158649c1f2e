//! What the app reports: one trace from the API request through the job to the provider calls,
//! the Python design's metric names in Prometheus, and no secret anywhere.

mod common;

use std::time::Duration;

use common::*;
use image2model::app::AppOptions;
use image2model::sim::SimConfig;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::SpanId;
use otelbricks_telemetry::testing::{Capture, PointValue};

// `Capture` sets a thread-local subscriber: the default `#[tokio::test]` runtime is
// current-thread, so the workers and the simulator run on this thread and are captured too.

#[tokio::test]
async fn one_trace_links_the_api_request_the_job_and_the_provider_calls() {
    let capture = Capture::new("image2model");
    let _guard = capture.set_default();
    let t = start_cfg(|_| {}, SimConfig::fast(30), options_of(&capture)).await;
    let f = upload(&t.router).await;
    let job = create_job(&t.router, &f).await;
    let v = wait_job(&t.router, &job, Duration::from_secs(10)).await;
    assert_eq!(v["status"], "succeeded", "{v}");
    t.app.shutdown().await;

    let spans = capture.finished_spans();
    let find = |name: &str| {
        spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
            panic!(
                "no span {name}: {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        })
    };
    let api = find("POST /api/v1/models");
    let job_span = find("generate_model");
    let trace = api.span_context.trace_id();
    assert_eq!(
        job_span.span_context.trace_id(),
        trace,
        "job joins the request's trace"
    );
    assert_eq!(
        job_span.parent_span_id,
        api.span_context.span_id(),
        "job is a child of the request"
    );

    let calls: Vec<_> = spans
        .iter()
        .filter(|s| s.name.starts_with("fal "))
        .collect();
    for endpoint in ["fal submit", "fal status", "fal result", "fal download"] {
        assert!(
            calls.iter().any(|s| s.name == endpoint),
            "no {endpoint} span"
        );
    }
    for c in &calls {
        assert_eq!(c.span_context.trace_id(), trace);
        assert_eq!(c.parent_span_id, job_span.span_context.span_id());
    }
    // The client middleware's HTTP spans (one per attempt) are children of the provider calls.
    let call_ids: Vec<SpanId> = calls.iter().map(|c| c.span_context.span_id()).collect();
    let http_attempts: Vec<_> = spans
        .iter()
        .filter(|s| {
            call_ids.contains(&s.parent_span_id)
                && s.span_kind == opentelemetry::trace::SpanKind::Client
        })
        .collect();
    assert!(http_attempts.len() >= calls.len(), "{http_attempts:?}");
    assert!(
        http_attempts
            .iter()
            .all(|s| s.span_context.trace_id() == trace)
    );

    // The job's log lines carry the trace id without the code passing it.
    let lines = capture.json_lines();
    let done = lines
        .iter()
        .find(|l| l["message"] == "job succeeded")
        .expect("job log line");
    assert_eq!(done["trace_id"], trace.to_string());
    // ... and the request id of the request that created the job.
    let queued = lines
        .iter()
        .find(|l| l["message"] == "model generation queued")
        .expect("API log line");
    assert!(
        queued["request_id"].as_str().is_some_and(|r| !r.is_empty()),
        "{queued}"
    );
    assert_eq!(done["request_id"], queued["request_id"]);
    assert_eq!(v["request_id"], queued["request_id"]);
}

#[tokio::test]
async fn the_provider_key_never_reaches_a_span_log_or_metric() {
    let capture = Capture::new("image2model");
    let _guard = capture.set_default();
    let secret = "fal-key-5ecr3t-value";
    let sim = SimConfig {
        api_key: Some(secret.into()),
        ..SimConfig::fast(10)
    };
    let t = start_cfg(
        |c| c.provider_key = Some(secret.into()),
        sim,
        options_of(&capture),
    )
    .await;
    let f = upload(&t.router).await;
    let job = create_job(&t.router, &f).await;
    let v = wait_job(&t.router, &job, Duration::from_secs(10)).await;
    assert_eq!(v["status"], "succeeded", "the key was sent: {v}");
    t.app.shutdown().await;
    assert!(!capture.everything_as_text().contains(secret));
}

#[tokio::test]
async fn business_metrics_have_sane_values_after_a_small_load() {
    let capture = Capture::new("image2model");
    let _guard = capture.set_default();
    let sim = SimConfig {
        failure_rate: 0.0,
        error_rate: 0.2,
        ..SimConfig::fast(20)
    };
    let t = start_cfg(|c| c.provider_max_retries = 20, sim, options_of(&capture)).await;
    let mut files = Vec::new();
    for _ in 0..3 {
        files.push(upload(&t.router).await);
    }
    let (batch, _) = create_batch(&t.router, &files).await;
    let single = create_job(&t.router, &files[0]).await;
    wait_batch(&t.router, &batch, Duration::from_secs(15)).await;
    wait_job(&t.router, &single, Duration::from_secs(15)).await;
    t.app.shutdown().await;

    let sum = |name: &str, key: &str, val: &str| -> f64 {
        capture
            .metric_points(Some(name))
            .iter()
            .filter(|p| p.attr(key).as_deref() == Some(val))
            .map(|p| match &p.value {
                PointValue::Number(n) => *n,
                PointValue::Histogram { count, .. } => *count as f64,
            })
            .sum()
    };
    assert_eq!(sum("models_generated", "status", "success"), 4.0);
    assert_eq!(sum("tasks", "task_name", "generate_model"), 4.0);
    assert_eq!(sum("tasks", "task_name", "process_batch"), 1.0);
    assert_eq!(sum("task_duration", "task_name", "generate_model"), 4.0);
    assert_eq!(sum("batch_processing_duration", "batch_size", "2-5"), 1.0);
    assert!(sum("fal_api_calls", "endpoint", "submit") >= 4.0);
    assert!(sum("fal_api_duration", "endpoint", "download") >= 4.0);
    assert_eq!(
        sum("task_queue_length", "queue_name", "model_generation"),
        0.0
    );
    let hist = capture.metric_points(Some("model_generation_duration"));
    match &hist[0].value {
        PointValue::Histogram { count, bounds, .. } => {
            assert_eq!(*count, 4);
            assert_eq!(
                bounds,
                &image2model::metrics::MODEL_GENERATION_BUCKETS.to_vec()
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(hist[0].unit, "s");
}

#[tokio::test]
async fn prometheus_shows_the_python_design_metric_names() {
    let registry = prometheus::Registry::new();
    let exporter = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .build()
        .expect("exporter");
    let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_reader(exporter)
        .build();
    // The simulator rate-limits hard so that `fal_rate_limits_total` shows too.
    let sim = SimConfig {
        rate_limit: 2.0,
        ..SimConfig::fast(10)
    };
    let t = start_cfg(
        |c| {
            c.provider_max_retries = 1000;
            c.poll_interval = Duration::from_millis(100);
            c.retry_max = Duration::from_millis(50);
        },
        sim,
        AppOptions {
            meter: Some(provider.meter("image2model")),
            ..AppOptions::default()
        },
    )
    .await;
    let mut files = Vec::new();
    for _ in 0..2 {
        files.push(upload(&t.router).await);
    }
    let (batch, _) = create_batch(&t.router, &files).await;
    wait_batch(&t.router, &batch, Duration::from_secs(20)).await;
    t.app.shutdown().await;

    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .expect("encode");
    for name in [
        "models_generated_total{status=\"success\"",
        "model_generation_duration_seconds_bucket{",
        "model_generation_duration_seconds_bucket{otel_scope_name=\"image2model\",le=\"1800\"}",
        "batch_processing_duration_seconds_count{batch_size=\"2-5\"",
        "tasks_total{status=\"success\",task_name=\"generate_model\"",
        "task_duration_seconds_count{task_name=\"generate_model\"",
        "task_queue_length{queue_name=\"model_generation\"",
        "fal_api_calls_total{endpoint=\"submit\",status=\"200\"",
        "fal_api_calls_total{endpoint=\"status\",status=\"429\"",
        "fal_api_duration_seconds_count{endpoint=\"result\"",
        "fal_rate_limits_total{",
        "http_server_request_duration_seconds_bucket{",
        "http_client_request_duration_seconds_bucket{",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
}

#[tokio::test]
async fn the_queue_length_gauge_follows_the_backlog() {
    let capture = Capture::new("image2model");
    let _guard = capture.set_default();
    let t = start_cfg(
        |c| c.workers = 1,
        SimConfig::fast(5_000),
        options_of(&capture),
    )
    .await;
    let mut files = Vec::new();
    for _ in 0..4 {
        files.push(upload(&t.router).await);
    }
    create_batch(&t.router, &files).await;
    // One worker takes the first job; three wait.
    let queue_length = || -> f64 {
        capture
            .metric_points(Some("task_queue_length"))
            .iter()
            .filter(|p| p.attr("queue_name").as_deref() == Some("model_generation"))
            .map(|p| match p.value {
                PointValue::Number(n) => n,
                PointValue::Histogram { .. } => f64::NAN,
            })
            .sum()
    };
    let queued = eventually(Duration::from_secs(5), async || {
        (queue_length() == 3.0).then_some(())
    })
    .await;
    assert!(queued.is_some(), "queue length {}, not 3", queue_length());
    let report = t.app.shutdown_with_grace(Duration::ZERO).await;
    assert_eq!(report.requeued.len(), 1);
}

/// Trust at the edge: a job stores only the server span's `traceparent`, so the provider sees
/// the server's trace (whatever the HTTP layer decided about the client's header) with our spans
/// as parents, and never the client's `tracestate`.
#[tokio::test]
async fn the_provider_gets_the_server_spans_context_and_never_the_clients_tracestate() {
    let capture = Capture::new("image2model");
    let _g = capture.set_default();
    opentelemetry::global::set_text_map_propagator(capture.propagator());
    let provider = common::fake::start(common::fake::provider("/files/r1.glb".into())).await;
    let url = provider.url();
    let t = start_cfg(
        move |c| c.provider_url = Some(url),
        SimConfig::fast(10),
        options_of(&capture),
    )
    .await;
    let f = upload(&t.router).await;
    let client_span = "00f067aa0ba902b7";
    let mut req = post_json(
        "/api/v1/models",
        &serde_json::json!({"file_id": f}).to_string(),
    );
    req.headers_mut().insert(
        "traceparent",
        format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{client_span}-01")
            .parse()
            .expect("value"),
    );
    req.headers_mut()
        .insert("tracestate", "evil=payload".parse().expect("value"));
    let (status, v) = send_json(&t.router, req).await;
    assert_eq!(status, http::StatusCode::ACCEPTED, "{v}");
    let job = v["job_id"].as_str().expect("job").to_owned();
    let v = wait_job(&t.router, &job, Duration::from_secs(10)).await;
    assert_eq!(v["status"], "succeeded", "{v}");
    t.app.shutdown().await;

    let server = capture
        .finished_spans()
        .into_iter()
        .find(|s| s.name == "POST /api/v1/models")
        .expect("server span");
    let trace = server.span_context.trace_id().to_string();
    let seen = provider.seen();
    assert!(!seen.is_empty());
    for s in &seen {
        assert_eq!(s.header("tracestate"), None, "{}: {:?}", s.path, s.headers);
        let tp = s
            .header("traceparent")
            .unwrap_or_else(|| panic!("{}: {:?}", s.path, s.headers));
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!(parts[1], trace, "the server span's trace");
        assert_ne!(parts[2], client_span, "never the client's span as parent");
    }
}
