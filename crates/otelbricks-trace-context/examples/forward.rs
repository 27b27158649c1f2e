//! Continue a caller's trace: extract the W3C context of an incoming request's headers and inject it
//! into the headers of an outgoing one. `cargo run -p otelbricks-trace-context --example forward`.

use http::{HeaderMap, HeaderValue};
use opentelemetry::propagation::TextMapPropagator as _;
use otelbricks_trace_context::{HeaderMapExtractor, HeaderMapInjector, W3CTraceContextPropagator};

fn main() {
    let mut incoming = HeaderMap::new();
    incoming.insert(
        "traceparent",
        HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    );
    incoming.insert(
        "tracestate",
        HeaderValue::from_static("rojo=00f067aa0ba902b7"),
    );

    let propagator = W3CTraceContextPropagator::new();
    // A malformed traceparent gives an empty context: the service then starts a new trace.
    let cx = propagator.extract(&HeaderMapExtractor(&incoming));
    // (A service starts its own server span here, a child of `cx`: the HTTP layers do.)
    let mut outgoing = HeaderMap::new();
    propagator.inject_context(&cx, &mut HeaderMapInjector(&mut outgoing));
    for (name, value) in &outgoing {
        println!("{name}: {}", value.to_str().unwrap_or("<not text>"));
    }
}
