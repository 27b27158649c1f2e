//! Extraction and injection through the `TextMapPropagator` implementation, with the SDK.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::HashMap;

use common::Fields;
use http::{HeaderMap, HeaderValue};
use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer,
        TracerProvider as _,
    },
};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use otelbricks_trace_context::{
    HeaderMapExtractor, HeaderMapInjector, TraceStateError, TraceStatePolicy, TraceparentError,
    W3CTraceContextPropagator,
};

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SID: &str = "00f067aa0ba902b7";

fn extract(fields: &[(&str, &str)]) -> Context {
    W3CTraceContextPropagator::new().extract(&Fields::new(fields))
}

fn inject(cx: &Context) -> HashMap<String, String> {
    let mut out = HashMap::new();
    W3CTraceContextPropagator::new().inject_context(cx, &mut out);
    out
}

fn remote(cx: &Context) -> SpanContext {
    cx.span().span_context().clone()
}

#[test]
fn a_valid_traceparent_continues_the_trace_as_a_remote_parent() {
    let cx = extract(&[("traceparent", TP), ("tracestate", "congo=t61rcWkgMzE")]);
    let sc = remote(&cx);
    assert!(sc.is_valid() && sc.is_remote() && sc.is_sampled());
    assert_eq!(sc.trace_id(), TraceId::from_hex(TID).unwrap());
    assert_eq!(sc.span_id(), SpanId::from_hex(SID).unwrap());
    assert_eq!(sc.trace_state().header(), "congo=t61rcWkgMzE");
}

#[test]
fn header_names_are_case_insensitive() {
    for name in ["traceparent", "TRACEPARENT", "TraceParent"] {
        let cx = extract(&[(name, TP), ("TraceState", "foo=1")]);
        assert!(remote(&cx).is_valid(), "{name}");
        assert_eq!(remote(&cx).trace_state().header(), "foo=1");
    }
    let mut h = HeaderMap::new();
    h.insert("TraceParent", HeaderValue::from_static(TP));
    let cx = W3CTraceContextPropagator::new().extract(&HeaderMapExtractor(&h));
    assert!(remote(&cx).is_valid());
}

#[test]
fn an_invalid_traceparent_returns_the_context_unchanged_and_ignores_tracestate() {
    #[derive(Debug, PartialEq)]
    struct Marker(u8);
    let base = Context::new().with_value(Marker(7));
    let p = W3CTraceContextPropagator::new();
    for bad in [
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ] {
        let fields = Fields::new(&[("traceparent", bad), ("tracestate", "Bad=1")]);
        let (cx, report) = p.extract_with_report(&base, &fields);
        assert!(!cx.has_active_span(), "{bad}");
        assert_eq!(cx.get::<Marker>(), Some(&Marker(7)));
        assert!(report.traceparent.is_err());
        assert!(
            report.tracestate_dropped.is_empty(),
            "tracestate not parsed"
        );
    }
}

#[test]
fn two_traceparent_headers_start_a_new_trace() {
    let fields = [
        (
            "traceparent",
            "00-12345678901234567890123456789011-1234567890123456-01",
        ),
        (
            "traceparent",
            "00-12345678901234567890123456789012-1234567890123456-01",
        ),
    ];
    let (cx, report) = W3CTraceContextPropagator::new()
        .extract_with_report(&Context::new(), &Fields::new(&fields));
    assert!(!cx.has_active_span());
    assert_eq!(report.traceparent, Err(TraceparentError::Multiple(2)));
}

#[test]
fn a_non_utf8_second_traceparent_in_a_header_map_still_counts() {
    let mut h = HeaderMap::new();
    h.append("traceparent", HeaderValue::from_static(TP));
    h.append("traceparent", HeaderValue::from_bytes(b"\xff\xfe").unwrap());
    let (cx, report) =
        W3CTraceContextPropagator::new().extract_from_headers_with_report(&Context::new(), &h);
    assert!(!cx.has_active_span());
    assert_eq!(report.traceparent, Err(TraceparentError::Multiple(2)));
}

#[test]
fn tracestate_fields_are_all_read_and_combined() {
    let cx = extract(&[
        ("traceparent", TP),
        ("tracestate", ""),
        ("tracestate", "foo=1,bar=2"),
        ("tracestate", "rojo=1"),
    ]);
    assert_eq!(remote(&cx).trace_state().header(), "foo=1,bar=2,rojo=1");
    assert_eq!(inject(&cx)["tracestate"], "foo=1,bar=2,rojo=1");
}

#[test]
fn tracestate_without_a_traceparent_is_discarded() {
    let cx = extract(&[("tracestate", "foo=1")]);
    assert!(!cx.has_active_span());
    assert!(inject(&cx).is_empty());
}

#[test]
fn one_invalid_tracestate_member_discards_the_header_by_default_or_only_itself_per_member() {
    let f = Fields::new(&[("traceparent", TP), ("tracestate", "foo=1,Bad=2,bar=3")]);
    let per_member = W3CTraceContextPropagator::new()
        .with_tracestate_policy(TraceStatePolicy::DropInvalidMembers);
    let (cx, report) = per_member.extract_with_report(&Context::new(), &f);
    assert_eq!(remote(&cx).trace_state().header(), "foo=1,bar=3");
    assert_eq!(report.tracestate_dropped.len(), 1);
    assert!(matches!(
        report.tracestate_dropped[0],
        TraceStateError::InvalidKey { .. }
    ));
    let strict = W3CTraceContextPropagator::new();
    let (cx, report) = strict.extract_with_report(&Context::new(), &f);
    assert!(
        remote(&cx).is_valid(),
        "traceparent unaffected by tracestate"
    );
    assert_eq!(remote(&cx).trace_state(), &TraceState::NONE);
    assert!(report.tracestate_discarded.is_some());
}

#[test]
fn a_fourteen_char_system_id_survives_extract_and_inject_although_otel_tracestate_refuses_it() {
    let key = "tenant@abcdefghijklmn";
    assert!(
        TraceState::from_key_value([(key, "1")]).is_err(),
        "OTel 0.33 limitation"
    );
    let ts = format!("{key}=1,foo=2");
    let cx = extract(&[("traceparent", TP), ("tracestate", &ts)]);
    assert_eq!(remote(&cx).trace_state().header(), "foo=2", "OTel view");
    assert_eq!(inject(&cx)["tracestate"], ts, "full list sent");

    // Through an SDK child span (ParentBased(AlwaysOn) keeps the parent's trace state).
    let provider = SdkTracerProvider::builder().build();
    let span = provider.tracer("t").start_with_context("child", &cx);
    let child = cx.with_span(span);
    let out = inject(&child);
    assert_eq!(out["tracestate"], ts);
    assert_ne!(out["traceparent"], TP, "new parent-id");

    // A modified trace state falls back to what the span context carries.
    let modified = remote(&cx).trace_state().insert("new", "x").unwrap();
    let sc = SpanContext::new(
        remote(&cx).trace_id(),
        SpanId::from(7),
        TraceFlags::SAMPLED,
        false,
        modified,
    );
    let changed = cx.with_remote_span_context(sc);
    assert_eq!(inject(&changed)["tracestate"], "new=x,foo=2");
}

#[test]
fn flags_are_written_as_the_span_context_carries_them_with_only_defined_bits() {
    let t = TraceId::from_hex(TID).unwrap();
    let s = SpanId::from_hex(SID).unwrap();
    for (flags, out) in [
        (0x00u8, "00"),
        (0x01, "01"),
        (0x02, "02"),
        (0x03, "03"),
        (0xff, "03"),
        (0x05, "01"),
    ] {
        let sc = SpanContext::new(t, s, TraceFlags::new(flags), false, TraceState::NONE);
        let cx = Context::new().with_remote_span_context(sc);
        assert_eq!(inject(&cx)["traceparent"], format!("00-{TID}-{SID}-{out}"));
    }
}

#[test]
fn the_random_flag_received_is_sent_on_from_an_sdk_child_span() {
    let cx = extract(&[(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
    )]);
    let provider = SdkTracerProvider::builder().build();
    let child = cx.with_span(provider.tracer("t").start_with_context("child", &cx));
    assert_eq!(
        remote(&child).trace_flags().to_u8(),
        0x03,
        "SDK 0.33 keeps the parent's flags on a sampled child"
    );
    assert!(inject(&child)["traceparent"].ends_with("-03"));
}

#[test]
fn the_random_flag_is_restored_when_the_sdk_drops_the_span() {
    let cx = extract(&[(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
    )]);
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOff)
        .build();
    let child = cx.with_span(provider.tracer("t").start_with_context("child", &cx));
    assert_eq!(
        remote(&child).trace_flags().to_u8(),
        0x00,
        "SDK 0.33 gives a dropped span TraceFlags::default(), clearing the random bit"
    );
    let tp = &inject(&child)["traceparent"];
    assert!(tp.starts_with(&format!("00-{TID}-")));
    assert!(tp.ends_with("-02"), "random kept, not sampled: {tp}");
}

#[test]
fn the_random_flag_is_not_added_to_other_traces_or_to_traces_that_arrived_without_it() {
    let cx = extract(&[(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
    )]);
    let other = SpanContext::new(
        TraceId::from(5),
        SpanId::from(6),
        TraceFlags::SAMPLED,
        false,
        TraceState::NONE,
    );
    assert!(inject(&cx.with_remote_span_context(other))["traceparent"].ends_with("-01"));
    let cx = extract(&[("traceparent", TP)]);
    let provider = SdkTracerProvider::builder().build();
    let child = cx.with_span(provider.tracer("t").start_with_context("child", &cx));
    assert!(inject(&child)["traceparent"].ends_with("-01"));
}

#[test]
fn nothing_is_injected_for_an_invalid_span_context() {
    assert!(inject(&Context::new()).is_empty());
}

#[test]
fn tracestate_is_written_only_when_there_is_state_to_send() {
    let cx = extract(&[("traceparent", TP), ("tracestate", " , ")]);
    let out = inject(&cx);
    assert!(out.contains_key("traceparent"));
    assert!(!out.contains_key("tracestate"));
}

#[test]
fn members_otel_accepts_but_the_grammar_forbids_are_not_sent() {
    // OTel's TraceState accepts an empty value and a control character.
    let ts = TraceState::from_key_value([("foo", ""), ("bar", "a\u{1}"), ("ok", "1")]).unwrap();
    let sc = SpanContext::new(
        TraceId::from(1),
        SpanId::from(1),
        TraceFlags::SAMPLED,
        false,
        ts,
    );
    let out = inject(&Context::new().with_remote_span_context(sc));
    assert_eq!(out["tracestate"], "ok=1");
    let ts = TraceState::from_key_value([("foo", "")]).unwrap();
    let sc = SpanContext::new(
        TraceId::from(1),
        SpanId::from(1),
        TraceFlags::SAMPLED,
        false,
        ts,
    );
    assert!(!inject(&Context::new().with_remote_span_context(sc)).contains_key("tracestate"));
}

#[test]
fn injected_tracestate_respects_the_size_limit() {
    let v = "v".repeat(200);
    let ts = TraceState::from_key_value([
        ("a", v.as_str()),
        ("b", "1"),
        ("c", v.as_str()),
        ("d", v.as_str()),
    ])
    .unwrap();
    let sc = SpanContext::new(
        TraceId::from(1),
        SpanId::from(1),
        TraceFlags::SAMPLED,
        false,
        ts,
    );
    let out = inject(&Context::new().with_remote_span_context(sc));
    assert_eq!(out["tracestate"], format!("a={v},b=1,c={v}"));
}

#[test]
fn header_map_injector_replaces_earlier_fields() {
    let cx = extract(&[("traceparent", TP), ("tracestate", "foo=1")]);
    let mut h = HeaderMap::new();
    h.append("tracestate", HeaderValue::from_static("old=1"));
    h.append("tracestate", HeaderValue::from_static("old=2"));
    W3CTraceContextPropagator::new().inject_into_headers(&cx, &mut h);
    let all: Vec<_> = h.get_all("tracestate").iter().collect();
    assert_eq!(all, vec!["foo=1"]);
    assert_eq!(h["traceparent"], TP);
    let mut inj = HeaderMapInjector(&mut h);
    inj.set("TraceParent", "x".into());
    assert_eq!(h["traceparent"], "x");
}

#[test]
fn header_map_extractor_returns_every_field_in_order() {
    let mut h = HeaderMap::new();
    h.append("tracestate", HeaderValue::from_static("a=1"));
    h.append("TRACESTATE", HeaderValue::from_static("b=2"));
    let e = HeaderMapExtractor(&h);
    assert_eq!(e.get_all("tracestate"), Some(vec!["a=1", "b=2"]));
    assert_eq!(e.get_all("traceparent"), None);
    assert_eq!(e.get("tracestate"), Some("a=1"));
    assert_eq!(e.keys(), vec!["tracestate"]);
}

#[test]
fn fields_are_traceparent_and_tracestate() {
    let p = W3CTraceContextPropagator::new();
    assert_eq!(
        p.fields().collect::<Vec<_>>(),
        vec!["traceparent", "tracestate"]
    );
}

#[test]
fn installs_as_the_global_propagator() {
    opentelemetry::global::set_text_map_propagator(W3CTraceContextPropagator::new());
    let f = Fields::new(&[
        ("traceparent", TP),
        ("tracestate", ""),
        ("tracestate", "foo=1"),
    ]);
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&f));
    assert_eq!(remote(&cx).trace_state().header(), "foo=1");
    let mut out = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut out));
    assert_eq!(out["traceparent"], TP);
}

/// Documents where `opentelemetry_sdk::propagation::TraceContextPropagator` 0.33 differs.
#[test]
fn sdk_propagator_accepts_malformed_input_that_ours_rejects() {
    let sdk = opentelemetry_sdk::propagation::TraceContextPropagator::new();
    let ours = W3CTraceContextPropagator::new();
    for bad in [
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0f067aa0ba902b7-01", // 15-hex parent id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1", // flags "1"
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-001", // flags "001"
        "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version "0"
        "000-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version "000"
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", // 00 with trailing dash
    ] {
        let f = Fields::new(&[("traceparent", bad)]);
        assert!(remote(&sdk.extract(&f)).is_valid(), "SDK accepts {bad}");
        assert!(!remote(&ours.extract(&f)).is_valid(), "we reject {bad}");
    }

    // Two traceparent headers: the SDK continues the first one.
    let f = Fields::new(&[
        (
            "traceparent",
            "00-12345678901234567890123456789011-1234567890123456-01",
        ),
        (
            "traceparent",
            "00-12345678901234567890123456789012-1234567890123456-01",
        ),
    ]);
    assert!(remote(&sdk.extract(&f)).is_valid());
    assert!(!remote(&ours.extract(&f)).is_valid());

    // An empty first tracestate header hides the rest from the SDK.
    let f = Fields::new(&[
        ("traceparent", TP),
        ("tracestate", ""),
        ("tracestate", "foo=1"),
    ]);
    assert_eq!(remote(&sdk.extract(&f)).trace_state().header(), "");
    assert_eq!(remote(&ours.extract(&f)).trace_state().header(), "foo=1");

    // Later tracestate headers are lost by the SDK.
    let f = Fields::new(&[
        ("traceparent", TP),
        ("tracestate", "foo=1"),
        ("tracestate", "bar=2"),
    ]);
    assert_eq!(remote(&sdk.extract(&f)).trace_state().header(), "foo=1");
    assert_eq!(
        remote(&ours.extract(&f)).trace_state().header(),
        "foo=1,bar=2"
    );

    // A valid 14-character system-id makes the SDK drop the whole tracestate.
    {
        let ts = "foo=1,t@abcdefghijklmn=2,bar=3";
        let f = Fields::new(&[("traceparent", TP), ("tracestate", ts)]);
        assert_eq!(remote(&sdk.extract(&f)).trace_state().header(), "", "{ts}");
        assert!(
            remote(&ours.extract(&f))
                .trace_state()
                .header()
                .contains("foo=1,")
        );
    }

    // The SDK clears the random flag (and keeps only the sampled bit) on the way through.
    let f = Fields::new(&[(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
    )]);
    let mut out = HashMap::new();
    sdk.inject_context(&sdk.extract(&f), &mut out);
    assert!(out["traceparent"].ends_with("-01"));
    let mut out = HashMap::new();
    ours.inject_context(&ours.extract(&f), &mut out);
    assert!(out["traceparent"].ends_with("-03"));
}
