//! The [`TextMapPropagator`] implementation.

use std::sync::LazyLock;

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator, text_map_propagator::FieldIter},
    trace::{SpanContext, TraceContextExt, TraceFlags, TraceId, TraceState},
};

use crate::traceparent::{
    DEFINED_FLAGS_MASK, RANDOM_TRACE_ID_FLAG, TraceparentError, format_traceparent,
    parse_traceparent,
};
use crate::tracestate::{
    DEFAULT_MAX_LEN, MAX_MEMBERS, TraceStateError, TraceStatePolicy, W3CTraceState, join_members,
    otel_accepts_key, parse_members, truncate_to, validate_key, validate_value,
};

/// `traceparent` header name (lowercase, as §3.2.1 recommends for sending).
pub const TRACEPARENT: &str = "traceparent";
/// `tracestate` header name (lowercase, as §3.3.1 recommends for sending).
pub const TRACESTATE: &str = "tracestate";

static FIELDS: LazyLock<[String; 2]> =
    LazyLock::new(|| [TRACEPARENT.to_owned(), TRACESTATE.to_owned()]);

/// What the propagator remembers in the extracted [`Context`] when the OpenTelemetry types
/// cannot carry it by themselves:
///
/// * the Level 2 random flag of the incoming `traceparent`: the 0.33 SDK gives a span it
///   drops (`SamplingDecision::Drop`) `TraceFlags::default()`, which would clear bit `0x02`
///   on the way out although §3.2.2.5.2 says it MUST stay set for the same trace-id;
/// * list-members that `opentelemetry::trace::TraceState` refuses (a 14-character
///   multi-tenant system-id): the full list is sent out again as long as the span context's
///   trace state is still what was extracted.
#[derive(Debug)]
struct Extracted {
    trace_id: TraceId,
    random: bool,
    /// (full list as received, what the OTel `TraceState` could hold)
    full_state: Option<(W3CTraceState, TraceState)>,
}

/// A W3C Trace Context (Level 1 and 2) propagator for OpenTelemetry.
///
/// See the [crate documentation](crate) for the rules it implements.
#[derive(Debug, Clone)]
pub struct W3CTraceContextPropagator {
    policy: TraceStatePolicy,
    max_len: usize,
}

impl Default for W3CTraceContextPropagator {
    fn default() -> Self {
        Self::new()
    }
}

/// Why the last extraction kept or dropped what it did (see
/// [`W3CTraceContextPropagator::extract_with_report`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractReport {
    /// `Ok` when the `traceparent` was valid and its trace continues, else why a new trace
    /// must start (then `tracestate` was not looked at).
    pub traceparent: Result<(), TraceparentError>,
    /// Set when the whole `tracestate` was discarded
    /// ([`TraceStatePolicy::DiscardOnInvalid`]).
    pub tracestate_discarded: Option<TraceStateError>,
    /// List-members dropped (invalid, duplicate, over 32, over the size limit).
    pub tracestate_dropped: Vec<TraceStateError>,
}

impl W3CTraceContextPropagator {
    /// A propagator with the default policy: a `tracestate` holding an invalid list-member
    /// (or more than 32) is discarded whole, as the W3C test suite expects
    /// ([`TraceStatePolicy::DiscardOnInvalid`]); the combined `tracestate` is kept to 512
    /// characters.
    pub fn new() -> Self {
        Self {
            policy: TraceStatePolicy::DiscardOnInvalid,
            max_len: DEFAULT_MAX_LEN,
        }
    }

    /// What to do with a `tracestate` holding invalid list-members.
    pub fn with_tracestate_policy(mut self, policy: TraceStatePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Size limit of the combined `tracestate`, in characters (default 512; the spec asks
    /// to propagate at least 512). Applied on extraction and injection.
    pub fn with_tracestate_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// Like [`TextMapPropagator::extract_with_context`], and also says why anything was
    /// rejected, so an HTTP layer can log why an upstream context was dropped.
    pub fn extract_with_report(
        &self,
        cx: &Context,
        extractor: &dyn Extractor,
    ) -> (Context, ExtractReport) {
        let mut report = ExtractReport {
            traceparent: Ok(()),
            tracestate_discarded: None,
            tracestate_dropped: Vec::new(),
        };
        let out = self.extract_inner(cx, extractor, Some(&mut report));
        (out, report)
    }

    fn extract_inner(
        &self,
        cx: &Context,
        extractor: &dyn Extractor,
        mut report: Option<&mut ExtractReport>,
    ) -> Context {
        let tp = extractor.get_all(TRACEPARENT).unwrap_or_default();
        let (trace_id, span_id, flags) = match parse_traceparent(&tp) {
            Ok(v) => v,
            Err(e) => {
                if let Some(r) = report {
                    r.traceparent = Err(e);
                }
                return cx.clone();
            }
        };
        let ts = extractor.get_all(TRACESTATE).unwrap_or_default();
        let members = match parse_members(
            &ts,
            self.policy,
            self.max_len,
            report.as_deref_mut().map(|r| &mut r.tracestate_dropped),
        ) {
            Ok(m) => m,
            Err(e) => {
                if let Some(r) = report {
                    r.tracestate_discarded = Some(e);
                }
                Vec::new()
            }
        };
        let all_fit = members.iter().all(|(k, _)| otel_accepts_key(k));
        let otel_state = if members.is_empty() {
            TraceState::NONE
        } else {
            // Every member passed the stricter W3C checks; OTel only refuses the keys
            // filtered here, so this cannot fail.
            TraceState::from_key_value(members.iter().filter(|(k, _)| otel_accepts_key(k)).copied())
                .unwrap_or_default()
        };
        let full_state =
            (!all_fit).then(|| (W3CTraceState::from_valid(members), otel_state.clone()));
        let random = flags.to_u8() & RANDOM_TRACE_ID_FLAG.to_u8() != 0;
        let sc = SpanContext::new(trace_id, span_id, flags, true, otel_state);
        let cx = cx.with_remote_span_context(sc);
        if random || full_state.is_some() || cx.get::<Extracted>().is_some() {
            cx.with_value(Extracted {
                trace_id,
                random,
                full_state,
            })
        } else {
            cx
        }
    }

    fn tracestate_header(&self, cx: &Context, sc: &SpanContext) -> String {
        if let Some(Extracted {
            trace_id,
            full_state: Some((full, view)),
            ..
        }) = cx.get::<Extracted>()
            && *trace_id == sc.trace_id()
            && view == sc.trace_state()
        {
            let mut full = full.clone();
            full.truncate_to(self.max_len);
            return full.header();
        }
        // The OTel TraceState may hold what the W3C grammar forbids (digit-first simple keys,
        // control characters, empty values, duplicates): send only valid members.
        let mut members: Vec<(&str, &str)> = Vec::with_capacity(sc.trace_state().into_iter().len());
        for (k, v) in sc.trace_state() {
            if validate_key(k).is_ok()
                && validate_value(v).is_ok()
                && !members.iter().any(|(ok, _)| *ok == k)
                && members.len() < MAX_MEMBERS
            {
                members.push((k, v));
            }
        }
        truncate_to(&mut members, self.max_len, None);
        join_members(&members)
    }
}

impl TextMapPropagator for W3CTraceContextPropagator {
    /// Writes `traceparent` (version 00; sampled and random bits as the span context carries
    /// them, the random bit restored if the SDK dropped it for a trace that arrived with it,
    /// all other bits zero) and, when there is state to send, `tracestate`. Nothing is written
    /// for an invalid span context.
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return;
        }
        let mut flags = sc.trace_flags().to_u8() & DEFINED_FLAGS_MASK;
        if let Some(x) = cx.get::<Extracted>()
            && x.random
            && x.trace_id == sc.trace_id()
        {
            flags |= RANDOM_TRACE_ID_FLAG.to_u8();
        }
        injector.set(
            TRACEPARENT,
            format_traceparent(sc.trace_id(), sc.span_id(), TraceFlags::new(flags)),
        );
        let ts = self.tracestate_header(cx, sc);
        if !ts.is_empty() {
            injector.set(TRACESTATE, ts);
        }
    }

    /// Reads every `traceparent` and `tracestate` field via [`Extractor::get_all`]. On any
    /// `traceparent` problem (including more than one field) returns `cx` unchanged.
    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        self.extract_inner(cx, extractor, None)
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(FIELDS.as_slice())
    }
}
