//! The three signals and the JSON lines, captured in memory through the same layer stack as
//! `install`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use opentelemetry::KeyValue;
use opentelemetry::trace::TraceContextExt as _;
use otelbricks_telemetry::testing::{Capture, PointValue};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

#[test]
fn spans_become_otel_spans_with_the_service_resource() {
    let capture = Capture::new("checkout");
    {
        let _g = capture.set_default();
        let outer = tracing::info_span!("handle order", order_id = 7);
        let _e = outer.enter();
        tracing::info_span!("charge card").in_scope(|| tracing::info!("charging"));
    }
    let spans = capture.finished_spans();
    assert_eq!(spans.len(), 2, "{spans:?}");
    let charge = spans
        .iter()
        .find(|s| s.name == "charge card")
        .expect("child span");
    let order = spans
        .iter()
        .find(|s| s.name == "handle order")
        .expect("parent span");
    assert_eq!(charge.parent_span_id, order.span_context.span_id());
    assert_eq!(
        charge.span_context.trace_id(),
        order.span_context.trace_id()
    );
    assert!(
        order
            .attributes
            .iter()
            .any(|kv| kv.key.as_str() == "order_id")
    );

    let records = capture.log_records();
    assert_eq!(records.len(), 1);
    let resource = &records[0].resource;
    let get = |k: &str| {
        resource
            .get(&opentelemetry::Key::from(k.to_owned()))
            .map(|v| v.to_string())
    };
    assert_eq!(get("service.name").as_deref(), Some("checkout"));
    for key in [
        "service.instance.id",
        "os.type",
        "process.pid",
        "telemetry.sdk.language",
    ] {
        assert!(get(key).is_some(), "resource lacks {key}");
    }
}

#[test]
fn log_records_carry_the_trace_and_span_of_the_active_span() {
    let capture = Capture::new("svc");
    let (trace_id, span_id) = {
        let _g = capture.set_default();
        let span = tracing::info_span!("work");
        let _e = span.enter();
        tracing::warn!(attempt = 2, "slow upstream");
        let cx = span.context();
        let sc = cx.span().span_context().clone();
        (sc.trace_id(), sc.span_id())
    };
    let records = capture.log_records();
    assert_eq!(records.len(), 1);
    let rec = &records[0].record;
    let tc = rec.trace_context().expect("log record has trace context");
    assert_eq!(tc.trace_id, trace_id);
    assert_eq!(tc.span_id, span_id);
    assert_eq!(rec.severity_text(), Some("WARN"));
}

#[test]
fn json_lines_carry_schema_fields_and_the_span_context_without_the_caller_passing_it() {
    let capture = Capture::new("svc");
    let (trace_id, span_id) = {
        let _g = capture.set_default();
        let request = tracing::info_span!(
            "request",
            request_id = "req-123",
            user_id = "u-9",
            http.route = "/x"
        );
        let _e = request.enter();
        // A nested span inherits the request's context fields.
        let inner = tracing::info_span!("db query", table = "jobs");
        let _i = inner.enter();
        tracing::info!(
            method = "GET",
            path = "/api/v1/jobs/{job_id}",
            status_code = 200_u64,
            duration = 0.0123,
            "Request completed"
        );
        let sc = inner.context().span().span_context().clone();
        (sc.trace_id().to_string(), sc.span_id().to_string())
    };
    let lines = capture.json_lines();
    assert_eq!(lines.len(), 1, "{}", capture.raw_lines());
    let l = &lines[0];
    assert_eq!(l["message"], "Request completed");
    assert_eq!(l["level"], "INFO");
    assert_eq!(l["logger"], "capture");
    assert_eq!(l["trace_id"], trace_id.as_str());
    assert_eq!(l["span_id"], span_id.as_str());
    assert_eq!(l["request_id"], "req-123");
    assert_eq!(l["user_id"], "u-9");
    assert_eq!(l["table"], "jobs");
    assert_eq!(l["method"], "GET");
    assert_eq!(l["status_code"], 200);
    assert_eq!(l["duration"], 0.0123);
    assert!(
        l.get("http.route").is_none(),
        "dotted span attributes stay on the span"
    );
    let ts = l["timestamp"].as_str().expect("timestamp");
    assert!(humantime::parse_rfc3339(ts).is_ok(), "not RFC 3339: {ts}");
    assert!(ts.ends_with('Z'), "timestamps are UTC: {ts}");
}

#[test]
fn hostile_field_values_keep_every_line_valid_json() {
    let capture = Capture::new("svc");
    let hostile = "quote\" backslash\\ newline\n tab\t nul\u{0} bell\u{7} emoji 🚀 \u{2028}";
    {
        let _g = capture.set_default();
        let span = tracing::info_span!("r", request_id = hostile);
        let _e = span.enter();
        tracing::error!(error = hostile, timestamp = "spoofed", message_extra = ?hostile, "{hostile}");
        tracing::info!(
            nan = f64::NAN,
            inf = f64::INFINITY,
            big = u128::MAX,
            "numbers"
        );
    }
    let lines = capture.json_lines();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["message"], hostile);
    assert_eq!(lines[0]["request_id"], hostile);
    assert_eq!(lines[0]["error"], hostile);
    assert_eq!(
        lines[0]["field.timestamp"], "spoofed",
        "a field cannot overwrite the line's own keys"
    );
    assert_ne!(lines[0]["timestamp"], "spoofed");
    assert_eq!(lines[1]["nan"], "NaN");
    assert_eq!(lines[1]["inf"], "inf");
    assert!(
        capture
            .raw_lines()
            .contains(&format!("\"big\":{}", u128::MAX)),
        "integers are written exactly"
    );
}

#[test]
fn fields_recorded_later_on_a_span_reach_later_lines() {
    let capture = Capture::new("svc");
    {
        let _g = capture.set_default();
        let span = tracing::info_span!(
            "request",
            request_id = "r1",
            user_id = tracing::field::Empty
        );
        let _e = span.enter();
        tracing::info!("before");
        span.record("user_id", "alice-hash");
        tracing::info!("after");
    }
    let lines = capture.json_lines();
    assert!(lines[0].get("user_id").is_none());
    assert_eq!(lines[1]["user_id"], "alice-hash");
    assert_eq!(lines[1]["request_id"], "r1");
}

#[test]
fn events_outside_spans_have_no_trace_fields() {
    let capture = Capture::new("svc");
    {
        let _g = capture.set_default();
        tracing::info!("startup");
    }
    let l = &capture.json_lines()[0];
    assert!(
        l.get("trace_id").is_none() && l.get("span_id").is_none(),
        "{l}"
    );
}

#[test]
fn metrics_use_explicit_second_buckets_for_http_durations() {
    let capture = Capture::new("svc");
    let meter = capture.meter("test");
    let h = meter
        .f64_histogram("http.server.request.duration")
        .with_unit("s")
        .build();
    h.record(0.2, &[KeyValue::new("http.route", "/a")]);
    let c = meter.u64_counter("models_generated").build();
    c.add(3, &[KeyValue::new("status", "success")]);
    let points = capture.metric_points(Some("http.server.request.duration"));
    assert_eq!(points.len(), 1);
    match &points[0].value {
        PointValue::Histogram { count, bounds, .. } => {
            assert_eq!(*count, 1);
            assert_eq!(
                bounds.as_slice(),
                otelbricks_telemetry::HTTP_DURATION_BUCKETS
            );
        }
        other => panic!("expected a histogram, got {other:?}"),
    }
    let counter = capture.metric_points(Some("models_generated"));
    assert_eq!(counter[0].value, PointValue::Number(3.0));
    assert_eq!(counter[0].attr("status").as_deref(), Some("success"));
}

#[test]
fn cardinality_is_limited_per_instrument() {
    let capture = Capture::new("svc");
    let c = capture.meter("test").u64_counter("requests").build();
    for i in 0..5000 {
        c.add(1, &[KeyValue::new("path", format!("/random/{i}"))]);
    }
    let points = capture.metric_points(Some("requests"));
    assert!(
        points.len() <= 2001,
        "{} series: the limit must fold the rest",
        points.len()
    );
    let total: f64 = points
        .iter()
        .map(|p| match p.value {
            PointValue::Number(n) => n,
            _ => 0.0,
        })
        .sum();
    assert_eq!(
        total, 5000.0,
        "no measurement is lost, the overflow series keeps the rest"
    );
}
