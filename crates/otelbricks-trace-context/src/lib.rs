//! A W3C Trace Context propagator for OpenTelemetry Rust that follows
//! [Trace Context Level 1](https://www.w3.org/TR/trace-context/) and
//! [Level 2](https://www.w3.org/TR/trace-context-2/) where `opentelemetry_sdk` 0.33's
//! `TraceContextPropagator` does not.
//!
//! [`W3CTraceContextPropagator`] implements [`opentelemetry::propagation::TextMapPropagator`],
//! so it installs globally like any other propagator:
//!
//! ```
//! use opentelemetry::global;
//! use otelbricks_trace_context::W3CTraceContextPropagator;
//!
//! global::set_text_map_propagator(W3CTraceContextPropagator::new());
//! ```
//!
//! Extracting from an [`http::HeaderMap`](::http::HeaderMap) (feature `http`, on by default) and injecting into
//! the headers of an outgoing request:
//!
//! ```
//! # #[cfg(feature = "http")] {
//! use http::HeaderMap;
//! use opentelemetry::Context;
//! use opentelemetry::propagation::TextMapPropagator;
//! use opentelemetry::trace::TraceContextExt;
//! use otelbricks_trace_context::{HeaderMapExtractor, HeaderMapInjector, W3CTraceContextPropagator};
//!
//! let propagator = W3CTraceContextPropagator::new();
//! let mut incoming = HeaderMap::new();
//! incoming.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03".parse().unwrap());
//! incoming.append("tracestate", "congo=t61rcWkgMzE".parse().unwrap());
//! incoming.append("tracestate", "rojo=00f067aa0ba902b7".parse().unwrap());
//!
//! // Why something was rejected, for a log line:
//! let (cx, report) = propagator.extract_with_report(&Context::new(), &HeaderMapExtractor(&incoming));
//! assert!(report.traceparent.is_ok());
//! let remote = cx.span().span_context().clone();
//! assert!(remote.is_remote() && remote.is_sampled());
//! assert_eq!(remote.trace_state().header(), "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
//!
//! let mut outgoing = HeaderMap::new();
//! propagator.inject_context(&cx, &mut HeaderMapInjector(&mut outgoing));
//! assert_eq!(outgoing["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03");
//! assert_eq!(outgoing["tracestate"], "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
//! # }
//! ```
//!
//! Any [`Extractor`](opentelemetry::propagation::Extractor) works; all header fields of a name
//! are read with `Extractor::get_all` (a provided method of the trait in `opentelemetry` 0.33,
//! which by default returns only `get`'s single value). Carriers that hold repeated fields
//! must override it: [`HeaderMapExtractor`] does, and so does
//! `opentelemetry_http::HeaderExtractor` 0.33 (which skips values that are not visible
//! ASCII). Header-name case-insensitivity is the carrier's job: `http::HeaderMap` is
//! case-insensitive, and OpenTelemetry's `HashMap` carrier lowercases names.
//!
//! # Rules implemented
//!
//! Section numbers are those of Trace Context Level 2 (W3C Candidate Recommendation Draft,
//! 2024), headings in quotes.
//!
//! ## `traceparent` (§3.2 "Traceparent Header")
//! * §3.2.1 "Header Name": read through the carrier case-insensitively, written lowercase.
//! * §3.2.2 "traceparent Header Field Values": `version "-" trace-id "-" parent-id "-"
//!   trace-flags`, every field lowercase hex (`HEXDIGLC`) of exactly 2/32/16/2 characters;
//!   uppercase, short or long fields are rejected (so `0`, `000`, flags `1` or `001`, a
//!   15-character parent-id are all invalid). OWS (spaces, tabs) around the whole value is
//!   ignored, as HTTP field parsing does.
//! * §3.2.2.1 "version": version `ff` is invalid.
//! * §3.2.2.3 "trace-id", §3.2.2.4 "parent-id": all zeros is invalid; invalid means ignore
//!   the header and start a new trace.
//! * §3.2.2.5 "trace-flags": all 8 bits are kept in the extracted `SpanContext`;
//!   §3.2.2.5.1 sampled (`0x01`) and §3.2.2.5.2 random-trace-id (`0x02`) are written out as
//!   the span context carries them; §3.2.2.5.3 "Other Flags": every other bit is written as 0.
//!   §3.2.2.5.2 also says the random flag MUST stay set on outgoing headers with the same
//!   trace-id: the SDK 0.33 keeps the parent's flags on child spans
//!   (`trace_flags.with_sampled(..)`) but gives a *dropped* span `TraceFlags::default()`, so
//!   the propagator remembers the incoming random flag in the `Context` and sets it again on
//!   injection for the same trace-id.
//! * §3.2.4 "Versioning of traceparent": a version prefix that is not 2 hex characters
//!   followed by `-` restarts the trace; version `00` must be exactly 55 characters; a higher
//!   version needs at least 55 characters, is parsed with the `00` field layout, and the flags
//!   must be followed by `-` or the end; what follows is ignored; the outgoing header is
//!   version `00`.
//! * More than one `traceparent` field is invalid: a new trace starts (W3C test suite
//!   `test_traceparent_duplicated`). On any `traceparent` problem `extract` returns the
//!   context unchanged and `tracestate` is not parsed (§3.3: "If the vendor failed to parse
//!   traceparent, it MUST NOT attempt to parse tracestate").
//!
//! ## `tracestate` (§3.3 "Tracestate Header")
//! * §3.3.1 "Header Name": as for `traceparent`.
//! * §3.3.2 "tracestate Header Field Values": every field is read and the fields are combined
//!   in order into one list (RFC 9110 §5.3), so a later field's members are kept and an empty
//!   first field hides nothing. Empty and OWS-only list-members are allowed and skipped;
//!   spaces and tabs around list-members are ignored; a value's leading spaces are kept.
//! * "Key": the Level 2 grammar, `key = (lcalpha / DIGIT) 0*255(keychar)` with `keychar =
//!   lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"`, which the W3C test suite checks
//!   (`test_tracestate_key_illegal_vendor_format`: `foo@`, `foo@@bar`, `foo@bar@baz` are kept,
//!   `@foo` is invalid; `test_tracestate_key_length_limit`: 256 characters at most). It admits
//!   every key of Level 1's structured grammar (`simple-key / multi-tenant-key`), which
//!   [`validate_key_level1`] checks for callers that want it.
//! * "Value": 1–256 printable ASCII characters (`0x20..=0x7E`) except `,` and `=`, not ending
//!   in a space.
//! * Invalid list-members: the processing model (§4.1.2 "A traceparent is Received", step 3;
//!   informative in Level 2) says "If the tracestate header cannot be parsed the vendor MAY
//!   discard the entire header. Invalid tracestate entries MAY also be discarded." Neither is
//!   a MUST; by default ([`TraceStatePolicy::DiscardOnInvalid`]) the whole header is
//!   discarded, as the W3C test suite expects (a header that breaks the grammar was not
//!   written by a conforming vendor); [`TraceStatePolicy::DropInvalidMembers`] drops only the
//!   invalid member and keeps the others.
//! * Duplicate keys: Level 2 §3.3.3 "Combined Header Value" says tools "are not supposed to
//!   add the same header multiple times" and §3.5 that vendors "MAY also discard duplicate
//!   keys that were not generated by them"; nothing requires discarding the whole header,
//!   and the W3C test suite (`test_tracestate_duplicated_keys`) requires the key to survive.
//!   The left-most occurrence (the most recent position) is kept, later ones are dropped.
//! * At most 32 list-members (§3.3.2): beyond the 32nd valid member the right-most are
//!   dropped (as §3.3.2 says when adding a 33rd) with `DropInvalidMembers`; by default the
//!   header is discarded (W3C test suite `test_tracestate_member_count_limit`).
//! * §3.3.3.1 "tracestate Limits": the combined value (commas included) is kept to 512
//!   characters by default (configurable); whole entries are removed, those longer than 128
//!   characters first, then from the end.
//! * §3.3.5 "Versioning of tracestate": `tracestate` is parsed for every version of
//!   `traceparent` this crate accepts.
//! * §4.1.1 step 3: a `tracestate` without a valid `traceparent` is discarded.
//! * Sending: members are joined with `,` and no OWS; the header is written only when there
//!   is at least one member ("Vendors ... SHOULD avoid sending" empty headers). Members that
//!   `opentelemetry::trace::TraceState` holds but the grammar forbids are not sent.
//! * §3.5 "Mutating the tracestate Field": [`W3CTraceState::insert`] adds or updates a key at
//!   the left and drops the right-most member past 32.
//!
//! `opentelemetry::trace::TraceState` 0.33 refuses some keys the Level 2 grammar allows (a
//! 14-character system-id after `@`, a second `@`, `@` followed by a character other than a
//! lowercase letter or digit). Such members are kept: the propagator stores the full list in
//! the `Context` and sends it out again while the span context's trace state is still the
//! one extracted (same trace-id, not modified by a sampler).

#![warn(missing_docs)]

mod fields;
#[cfg(feature = "http")]
mod http;
mod key;
mod propagator;
mod traceparent;
mod tracestate;

pub use crate::fields::LogFields;
#[cfg(feature = "http")]
pub use crate::http::{HeaderMapExtractor, HeaderMapInjector};
pub use crate::propagator::{ExtractReport, TRACEPARENT, TRACESTATE, W3CTraceContextPropagator};
pub use crate::traceparent::{
    DEFINED_FLAGS_MASK, RANDOM_TRACE_ID_FLAG, TRACEPARENT_LEN, TraceparentError,
    format_traceparent, parse_traceparent, parse_traceparent_value,
};
pub use crate::tracestate::{
    DEFAULT_MAX_LEN, KeyError, LONG_ENTRY_LEN, MAX_MEMBERS, ParsedTraceState, TraceStateError,
    TraceStatePolicy, ValueError, W3CTraceState, parse_tracestate, parse_tracestate_with,
    validate_key, validate_key_level1, validate_value,
};
