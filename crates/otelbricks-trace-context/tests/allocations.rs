//! Heap allocations of one extract + inject (typical traceparent + 2-member tracestate),
//! this crate vs the SDK 0.33 `TraceContextPropagator`: a figure that, unlike timings, does
//! not depend on machine load. Print with `-- --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use http::{HeaderMap, HeaderValue};
use opentelemetry::{Context, propagation::TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use otelbricks_trace_context::{HeaderMapExtractor, HeaderMapInjector, W3CTraceContextPropagator};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn count<P: TextMapPropagator>(p: &P, h: &HeaderMap) -> (usize, usize) {
    let before = ALLOCS.load(Ordering::Relaxed);
    let cx = p.extract_with_context(&Context::new(), &HeaderMapExtractor(h));
    let mid = ALLOCS.load(Ordering::Relaxed);
    let mut out = HeaderMap::with_capacity(4);
    let after_map = ALLOCS.load(Ordering::Relaxed);
    p.inject_context(&cx, &mut HeaderMapInjector(&mut out));
    let after = ALLOCS.load(Ordering::Relaxed);
    assert_eq!(out.len(), 2);
    (mid - before, after - after_map)
}

#[test]
fn extract_and_inject_allocate_no_more_than_the_sdk() {
    let mut h = HeaderMap::new();
    h.insert(
        "traceparent",
        HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    );
    h.insert(
        "tracestate",
        HeaderValue::from_static("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
    );
    let ours = W3CTraceContextPropagator::new();
    let sdk = TraceContextPropagator::new();
    // warm up lazies
    count(&ours, &h);
    count(&sdk, &h);
    let o = count(&ours, &h);
    let s = count(&sdk, &h);
    println!("allocations (extract, inject): trace-context {o:?}, sdk {s:?}");
    assert!(o.0 + o.1 <= s.0 + s.1, "ours {o:?} sdk {s:?}");
}
