//! Runs N extract + inject round trips of a typical traceparent + tracestate, for
//! instruction counting under valgrind (load-independent, unlike timings):
//!
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!   target/release/examples/extract_inject_loop ours 10000
//!
//! Argument 1: `ours` or `sdk`; argument 2: iterations.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::hint::black_box;

use http::{HeaderMap, HeaderValue};
use opentelemetry::{Context, propagation::TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use otelbricks_trace_context::{HeaderMapExtractor, HeaderMapInjector, W3CTraceContextPropagator};

fn run(p: &dyn TextMapPropagator, h: &HeaderMap, n: usize) {
    for _ in 0..n {
        let cx = p.extract_with_context(&Context::new(), &HeaderMapExtractor(black_box(h)));
        let mut out = HeaderMap::with_capacity(4);
        p.inject_context(&cx, &mut HeaderMapInjector(&mut out));
        black_box(out);
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "ours".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let mut h = HeaderMap::new();
    h.insert(
        "traceparent",
        HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    );
    h.insert(
        "tracestate",
        HeaderValue::from_static("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
    );
    match which.as_str() {
        "sdk" => run(&TraceContextPropagator::new(), &h, n),
        _ => run(&W3CTraceContextPropagator::new(), &h, n),
    }
}
