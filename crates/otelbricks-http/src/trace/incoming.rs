//! What the server does with the trace context a request brings: [`IncomingTraceContext`].

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, TraceContextExt as _, TraceFlags};

/// What the server span does with an incoming `traceparent` (and `tracestate`), extracted with
/// the global propagator.
///
/// The default, [`Continue`](Self::Continue), continues the caller's trace (same trace id, the
/// caller's span as parent, `tracestate` passed on: what W3C Trace Context asks and what the W3C
/// test suite checks) but ignores the caller's *unsampled* flag: a request arriving with
/// `traceparent: …-00` is still traced (our sampler decides, as for a request without context),
/// so no client can hide its requests from traces and from the span metrics alerts are computed
/// on. That is the choice of a service whose callers are its own services or a gateway: the
/// caller's trace stays whole, and sampling is decided where the spans are.
///
/// An edge facing untrusted clients can [`Restart`](Self::Restart) instead: the request starts a
/// new trace and the caller's context is kept as a span link, so a client can neither choose
/// our trace ids nor attach our spans to its trace, and the link still leads to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IncomingTraceContext {
    /// Continue the caller's trace; the caller's sampled flag is ignored (the span is sampled as
    /// if the caller had sampled it). The default.
    #[default]
    Continue,
    /// Continue the caller's trace and honour its sampled flag: `-00` means the request is not
    /// recorded (the SDK's parent-based sampling; what the server layer did before this option).
    ContinueHonouringSampled,
    /// Start a new trace at this server; the caller's span context, when valid, becomes a link
    /// of the server span.
    Restart,
}

/// What to set as the server span's parent, and what to link to.
pub(crate) fn resolve(
    policy: IncomingTraceContext,
    extracted: Context,
) -> (Context, Option<SpanContext>) {
    let remote = extracted.span().span_context().clone();
    if !remote.is_valid() {
        return (Context::new(), None);
    }
    match policy {
        IncomingTraceContext::ContinueHonouringSampled => (extracted, None),
        IncomingTraceContext::Continue => {
            if remote.is_sampled() {
                return (extracted, None);
            }
            let sampled = SpanContext::new(
                remote.trace_id(),
                remote.span_id(),
                remote.trace_flags() | TraceFlags::SAMPLED,
                true,
                remote.trace_state().clone(),
            );
            // Keeps whatever else the propagator stored in the context (baggage, the W3C
            // propagator's full tracestate and random flag).
            (extracted.with_remote_span_context(sampled), None)
        }
        IncomingTraceContext::Restart => (Context::new(), Some(remote)),
    }
}
