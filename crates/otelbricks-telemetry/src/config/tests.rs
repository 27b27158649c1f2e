//! Every variable: defaults, overrides, and an error naming the variable for each invalid value.

use std::collections::BTreeMap;

use super::*;

fn resolve(pairs: &[(&str, &str)]) -> Result<Settings, TelemetryError> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Settings::resolve(
        &Defaults::new("svc"),
        &EnvSource::from_fn(move |k| map.get(k).cloned()),
    )
}

#[track_caller]
fn assert_names(pairs: &[(&str, &str)], var: &str) {
    match resolve(pairs) {
        Err(TelemetryError::InvalidConfig { var: v, value, .. }) => {
            assert_eq!(v, var);
            let given = pairs.iter().find(|(k, _)| *k == var).map(|(_, v)| *v);
            assert_eq!(Some(value.as_str()), given, "error must carry the value");
        }
        other => panic!("expected an InvalidConfig error for {var}, got {other:?}"),
    }
}

#[test]
fn each_invalid_variable_is_an_error_naming_it_and_its_value() {
    let cases: &[(&str, &str)] = &[
        ("OTEL_TRACES_SAMPLER", "banana"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://collector:21"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:99999"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "-1"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "0"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon"),
        ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
        ("OTEL_BSP_SCHEDULE_DELAY", "soon"),
        ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "-5"),
        ("OTEL_SDK_DISABLED", "maybe"),
        ("OTEL_PROPAGATORS", "tracecontext,b3"),
        ("OTEL_PROPAGATORS", "carrier"),
        ("OTEL_RESOURCE_ATTRIBUTES", "team"),
        ("OTEL_TRACES_EXPORTER", "zipkin"),
        ("RUST_LOG", "info,[[["),
        ("TELEMETRY_LOG_MAX_BYTES", "lots"),
        ("TELEMETRY_LOG_MAX_FILES", "0"),
        ("TELEMETRY_ADMIN_ADDR", "9464"),
        ("TELEMETRY_CONSOLE", "fancy"),
        ("TELEMETRY_SHUTDOWN_TIMEOUT", "5s"),
        ("TELEMETRY_LOG_FILE_LOSSY", "sometimes"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli"),
        ("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "zstd"),
    ];
    for (var, value) in cases {
        assert_names(&[(var, value)], var);
    }
    assert_names(
        &[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
        ],
        "OTEL_TRACES_SAMPLER_ARG",
    );
}

#[test]
fn an_invalid_endpoint_is_shown_without_its_credentials() {
    let err = resolve(&[(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "http://user:s3cret@collector:99999/?token=k3y",
    )])
    .expect_err("invalid port");
    let text = format!("{err} {err:?}");
    assert!(text.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{text}");
    assert!(!text.contains("s3cret") && !text.contains("k3y"), "{text}");
}

#[test]
fn invalid_headers_name_the_variable_and_the_header_never_a_value() {
    for (var, value, names) in [
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization=Bearer s3cret,x-api-key",
            "member 2",
        ),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "Authorization Bearer s3cret",
            "member 1",
        ),
        (
            "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
            "x-api-key=s3cret%zz",
            "\"x-api-key\"",
        ),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "=s3cret", "empty key"),
    ] {
        let err = resolve(&[(var, value)]).expect_err("invalid");
        let text = format!("{err} {err:?}");
        assert!(text.contains(var), "{text}");
        assert!(text.contains(names), "{text}");
        assert!(!text.contains("s3cret"), "a header value leaked: {text}");
    }
}

#[test]
fn a_non_loopback_admin_listener_needs_a_token_or_an_explicit_yes() {
    let wide = ("TELEMETRY_ADMIN_ADDR", "0.0.0.0:9464");
    match resolve(&[wide]) {
        Err(e @ TelemetryError::InvalidConfig { .. }) => {
            let text = e.to_string();
            assert!(text.contains("TELEMETRY_ADMIN_ADDR"), "{text}");
            assert!(text.contains("TELEMETRY_ADMIN_TOKEN"), "{text}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(resolve(&[wide, ("TELEMETRY_ADMIN_TOKEN", "t")]).is_ok());
    let s = resolve(&[wide, ("TELEMETRY_ADMIN_ALLOW_UNAUTHENTICATED", "true")]).expect("allowed");
    assert!(s.admin_unauthenticated);
    assert!(
        resolve(&[("TELEMETRY_ADMIN_ADDR", "[::1]:9464")]).is_ok(),
        "loopback needs nothing"
    );
    let mut d = Defaults::new("svc");
    d.admin_addr = Some(SocketAddr::from(([0, 0, 0, 0], 9464)));
    assert!(Settings::resolve(&d, &EnvSource::from_fn(|_| None)).is_err());
    d.admin_unauthenticated = true;
    assert!(
        Settings::resolve(&d, &EnvSource::from_fn(|_| None)).is_ok(),
        "the builder's opt-in counts too"
    );
    assert_names(
        &[wide, ("TELEMETRY_ADMIN_ALLOW_UNAUTHENTICATED", "perhaps")],
        "TELEMETRY_ADMIN_ALLOW_UNAUTHENTICATED",
    );
}

#[test]
fn attribute_limits_default_to_4_kib_values_and_128_attributes() {
    let s = resolve(&[]).expect("valid");
    assert_eq!(
        s.limits,
        Limits {
            span_value_len: 4096,
            span_count: 128,
            log_value_len: 4096,
            log_count: 128
        }
    );
    let s = resolve(&[
        ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "100"),
        ("OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT", "50"),
        ("OTEL_ATTRIBUTE_COUNT_LIMIT", "10"),
        ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "20"),
    ])
    .expect("valid");
    assert_eq!(
        s.limits,
        Limits {
            span_value_len: 100,
            span_count: 20,
            log_value_len: 50,
            log_count: 10
        }
    );
    assert_names(
        &[("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "0")],
        "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    );
}

#[test]
fn defaults_without_environment_use_otlp_http_on_localhost() {
    let s = resolve(&[]).expect("defaults are valid");
    assert_eq!(s.traces.endpoint, "http://localhost:4318/v1/traces");
    assert_eq!(s.metrics.endpoint, "http://localhost:4318/v1/metrics");
    assert_eq!(s.logs.endpoint, "http://localhost:4318/v1/logs");
    assert_eq!(s.sampler, SamplerConfig::ParentBasedAlwaysOn);
    assert_eq!(
        s.propagators,
        vec![PropagatorKind::TraceContext, PropagatorKind::Baggage]
    );
    assert_eq!(s.admin_addr, Some(SocketAddr::from(([127, 0, 0, 1], 9464))));
    assert_eq!(s.console, ConsoleFormat::Json);
    assert!(!s.sdk_disabled);
    assert_eq!(s.metric_export_interval, Duration::from_secs(15));
    assert_eq!(
        s.traces.compression, None,
        "no compression unless asked for"
    );
    let s = resolve(&[("OTEL_METRIC_EXPORT_INTERVAL", "60000")]).expect("valid");
    assert_eq!(s.metric_export_interval, Duration::from_secs(60));
}

#[test]
fn per_signal_variables_override_the_general_ones() {
    let s = resolve(&[
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
        ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "http/protobuf"),
        (
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
            "http://loki-gw:4318/custom",
        ),
        ("OTEL_EXPORTER_OTLP_HEADERS", "a=1,b=two%20words"),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "b=3"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "700"),
        ("OTEL_METRICS_EXPORTER", "none"),
    ])
    .expect("valid");
    assert_eq!(s.traces.protocol, OtlpProtocol::Grpc);
    assert_eq!(s.traces.endpoint, "http://collector:4317");
    assert_eq!(s.logs.protocol, OtlpProtocol::HttpProtobuf);
    assert_eq!(s.logs.endpoint, "http://loki-gw:4318/custom");
    assert_eq!(
        s.metrics.headers.get("b").map(String::as_str),
        Some("two words")
    );
    assert_eq!(s.traces.headers.get("b").map(String::as_str), Some("3"));
    assert_eq!(s.traces.headers.get("a").map(String::as_str), Some("1"));
    assert_eq!(s.traces.timeout, Duration::from_millis(2500));
    assert_eq!(s.metrics.timeout, Duration::from_millis(700));
    assert!(!s.metrics.enabled);
    assert!(s.traces.enabled);
    let s = resolve(&[
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "none"),
    ])
    .expect("valid");
    assert_eq!(s.traces.compression, Some(Compression::Gzip));
    assert_eq!(s.logs.compression, None);
}

#[test]
fn service_name_variable_wins_over_resource_attributes() {
    let s = resolve(&[
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=from-attrs,team=core",
        ),
        ("OTEL_SERVICE_NAME", "from-var"),
    ])
    .expect("valid");
    assert_eq!(s.service_name, "from-var");
    assert_eq!(s.resource_attributes, vec![("team".into(), "core".into())]);
    let s = resolve(&[("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs")]).expect("valid");
    assert_eq!(s.service_name, "from-attrs");
}

#[test]
fn sampler_ratio_and_batch_settings_are_read() {
    let s = resolve(&[
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "512"),
        ("OTEL_BLRP_SCHEDULE_DELAY", "250"),
    ])
    .expect("valid");
    assert_eq!(s.sampler, SamplerConfig::ParentBasedTraceIdRatio(0.25));
    assert_eq!(s.bsp.max_queue_size, 100);
    assert_eq!(
        s.bsp.max_export_batch_size, 100,
        "batch is capped by the queue"
    );
    assert_eq!(s.blrp.schedule_delay, Duration::from_millis(250));
}

#[test]
fn batch_export_timeouts_cap_the_exporter_timeout() {
    let s = resolve(&[
        ("OTEL_BSP_EXPORT_TIMEOUT", "1500"),
        ("OTEL_BLRP_EXPORT_TIMEOUT", "60000"),
    ])
    .expect("valid");
    assert_eq!(s.traces.timeout, Duration::from_millis(1500));
    assert_eq!(
        s.logs.timeout,
        Duration::from_secs(10),
        "the smaller bound wins"
    );
}

#[test]
fn development_environment_selects_the_readable_console() {
    let s = resolve(&[("ENVIRONMENT", "development")]).expect("valid");
    assert_eq!(s.console, ConsoleFormat::Pretty);
    let s = resolve(&[
        ("ENVIRONMENT", "development"),
        ("TELEMETRY_CONSOLE", "json"),
    ])
    .expect("valid");
    assert_eq!(s.console, ConsoleFormat::Json);
}

#[test]
fn byte_sizes_accept_suffixes() {
    assert_eq!(parse_bytes("X", "1024").ok(), Some(1024));
    assert_eq!(parse_bytes("X", "50MiB").ok(), Some(50 * 1024 * 1024));
    assert_eq!(parse_bytes("X", "2mb").ok(), Some(2_000_000));
    assert!(parse_bytes("X", "0").is_err());
}
