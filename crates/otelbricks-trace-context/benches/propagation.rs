//! Extract + inject of a typical traceparent + tracestate: this crate vs the SDK 0.33
//! `TraceContextPropagator`, over the same `http::HeaderMap` carrier.
//!
//! cargo bench -p otelbricks-trace-context --bench propagation -- --warm-up-time 1 --measurement-time 3

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue};
use opentelemetry::{Context, propagation::TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use otelbricks_trace_context::{HeaderMapExtractor, HeaderMapInjector, W3CTraceContextPropagator};

fn incoming() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "traceparent",
        HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    );
    h.insert(
        "tracestate",
        HeaderValue::from_static("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
    );
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert("accept", HeaderValue::from_static("*/*"));
    h
}

fn run<P: TextMapPropagator>(c: &mut Criterion, name: &str, p: &P) {
    let h = incoming();
    let mut g = c.benchmark_group(name);
    g.bench_function("extract", |b| {
        b.iter(|| {
            black_box(p.extract_with_context(&Context::new(), &HeaderMapExtractor(black_box(&h))))
        })
    });
    let cx = p.extract_with_context(&Context::new(), &HeaderMapExtractor(&h));
    g.bench_function("inject", |b| {
        b.iter(|| {
            let mut out = HeaderMap::with_capacity(4);
            p.inject_context(black_box(&cx), &mut HeaderMapInjector(&mut out));
            black_box(out)
        })
    });
    g.bench_function("extract+inject", |b| {
        b.iter(|| {
            let cx = p.extract_with_context(&Context::new(), &HeaderMapExtractor(black_box(&h)));
            let mut out = HeaderMap::with_capacity(4);
            p.inject_context(&cx, &mut HeaderMapInjector(&mut out));
            black_box(out)
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    run(c, "w3c_trace_context", &W3CTraceContextPropagator::new());
    run(c, "sdk_trace_context", &TraceContextPropagator::new());
}

criterion_group!(propagation, benches);
criterion_main!(propagation);
