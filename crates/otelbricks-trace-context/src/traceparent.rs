//! `traceparent` parsing and formatting (W3C Trace Context Level 2, §3.2).

use opentelemetry::trace::{SpanId, TraceFlags, TraceId};
use thiserror::Error;

/// Length of a version `00` `traceparent` value: `2 + 1 + 32 + 1 + 16 + 1 + 2`.
pub const TRACEPARENT_LEN: usize = 55;

/// The Level 2 `random-trace-id` flag (bit `0x02`, §3.2.2.5.2). `opentelemetry` 0.33 only
/// names the sampled bit.
pub const RANDOM_TRACE_ID_FLAG: TraceFlags = TraceFlags::new(0x02);

/// The flags defined by version `00` (sampled `0x01` and random `0x02`). Every other bit is
/// written as zero (§3.2.2.5.3 "Other Flags").
pub const DEFINED_FLAGS_MASK: u8 = 0x03;

/// Why a `traceparent` was rejected. Any of these means: start a new trace and ignore
/// `tracestate` (§3.3: "If the vendor failed to parse traceparent, it MUST NOT attempt to
/// parse tracestate").
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TraceparentError {
    /// No `traceparent` header.
    #[error("no traceparent header")]
    Missing,
    /// More than one `traceparent` header field: the pair is ambiguous, so it is invalid.
    #[error("{0} traceparent headers (exactly one is allowed)")]
    Multiple(usize),
    /// The version prefix is not 2 lowercase hex characters followed by `-` (§3.2.4).
    #[error("version prefix is not 2 lowercase hex characters followed by '-'")]
    InvalidVersion,
    /// Version `ff` is forbidden (§3.2.2.1).
    #[error("version ff is forbidden")]
    ForbiddenVersion,
    /// Shorter than 55 characters (§3.2.4: "If the size of the header is shorter than 55
    /// characters, the vendor should not parse the header").
    #[error("traceparent is {0} characters, at least 55 are required")]
    TooShort(usize),
    /// Version `00` with anything after the flags (version 00 is exactly 55 characters).
    #[error("version 00 traceparent is {0} characters, exactly 55 are required")]
    TrailingData(usize),
    /// A higher version whose flags are not followed by `-` or the end (§3.2.4).
    #[error("trace-flags of a future-version traceparent are not followed by '-' or the end")]
    InvalidFutureVersionSuffix,
    /// A `-` delimiter is missing at the given character offset.
    #[error("missing '-' delimiter at offset {0}")]
    MissingDelimiter(usize),
    /// `trace-id` is not 32 lowercase hex characters.
    #[error("trace-id is not 32 lowercase hex characters")]
    InvalidTraceId,
    /// `trace-id` is all zeros (§3.2.2.3).
    #[error("trace-id is all zeros")]
    ZeroTraceId,
    /// `parent-id` is not 16 lowercase hex characters.
    #[error("parent-id is not 16 lowercase hex characters")]
    InvalidParentId,
    /// `parent-id` is all zeros (§3.2.2.4).
    #[error("parent-id is all zeros")]
    ZeroParentId,
    /// `trace-flags` is not 2 lowercase hex characters.
    #[error("trace-flags is not 2 lowercase hex characters")]
    InvalidTraceFlags,
}

impl TraceparentError {
    /// A short, constant, snake_case name of the reason, for a log field or metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Multiple(_) => "multiple",
            Self::InvalidVersion => "invalid_version",
            Self::ForbiddenVersion => "forbidden_version",
            Self::TooShort(_) => "too_short",
            Self::TrailingData(_) => "trailing_data",
            Self::InvalidFutureVersionSuffix => "invalid_future_version_suffix",
            Self::MissingDelimiter(_) => "missing_delimiter",
            Self::InvalidTraceId => "invalid_trace_id",
            Self::ZeroTraceId => "zero_trace_id",
            Self::InvalidParentId => "invalid_parent_id",
            Self::ZeroParentId => "zero_parent_id",
            Self::InvalidTraceFlags => "invalid_trace_flags",
        }
    }
}

/// Lowercase hex digit values; `0xff` for every other byte (uppercase included).
static HEX_LC: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

#[inline]
fn hex_val(b: u8) -> Option<u8> {
    let v = HEX_LC[b as usize];
    (v != 0xff).then_some(v)
}

/// Decodes lowercase hex (`HEXDIGLC`, uppercase is rejected) into `out`; `hex.len()` must be
/// `2 * out.len()`.
#[inline]
fn decode_hex_lc(hex: &[u8], out: &mut [u8]) -> bool {
    debug_assert_eq!(hex.len(), out.len() * 2);
    let mut bad = 0u8;
    for (pair, o) in hex.chunks_exact(2).zip(out.iter_mut()) {
        let (h, l) = (HEX_LC[pair[0] as usize], HEX_LC[pair[1] as usize]);
        bad |= h | l;
        *o = (h << 4) | (l & 0x0f);
    }
    bad & 0xf0 == 0
}

/// Parses one `traceparent` field value (OWS around it is ignored, as HTTP does).
///
/// Returns the flags exactly as received (all 8 bits); the injector writes only the defined
/// bits. Use [`parse_traceparent`] when the carrier may hold several header fields.
pub fn parse_traceparent_value(
    value: &str,
) -> Result<(TraceId, SpanId, TraceFlags), TraceparentError> {
    let b = value.trim_matches([' ', '\t']).as_bytes();
    // version: 2 HEXDIGLC followed by '-'
    if b.len() < 3 {
        return Err(TraceparentError::InvalidVersion);
    }
    let version = match (hex_val(b[0]), hex_val(b[1])) {
        (Some(h), Some(l)) if b[2] == b'-' => (h << 4) | l,
        _ => return Err(TraceparentError::InvalidVersion),
    };
    if version == 0xff {
        return Err(TraceparentError::ForbiddenVersion);
    }
    if b.len() < TRACEPARENT_LEN {
        return Err(TraceparentError::TooShort(b.len()));
    }
    if version == 0 && b.len() != TRACEPARENT_LEN {
        return Err(TraceparentError::TrailingData(b.len()));
    }
    let mut trace_id = [0u8; 16];
    if !decode_hex_lc(&b[3..35], &mut trace_id) {
        return Err(TraceparentError::InvalidTraceId);
    }
    if b[35] != b'-' {
        return Err(TraceparentError::MissingDelimiter(35));
    }
    let mut span_id = [0u8; 8];
    if !decode_hex_lc(&b[36..52], &mut span_id) {
        return Err(TraceparentError::InvalidParentId);
    }
    if b[52] != b'-' {
        return Err(TraceparentError::MissingDelimiter(52));
    }
    let mut flags = [0u8; 1];
    if !decode_hex_lc(&b[53..55], &mut flags) {
        return Err(TraceparentError::InvalidTraceFlags);
    }
    if b.len() > TRACEPARENT_LEN && b[TRACEPARENT_LEN] != b'-' {
        return Err(TraceparentError::InvalidFutureVersionSuffix);
    }
    if trace_id == [0; 16] {
        return Err(TraceparentError::ZeroTraceId);
    }
    if span_id == [0; 8] {
        return Err(TraceparentError::ZeroParentId);
    }
    Ok((
        TraceId::from_bytes(trace_id),
        SpanId::from_bytes(span_id),
        TraceFlags::new(flags[0]),
    ))
}

/// Parses the `traceparent` header fields of one message.
///
/// `values` holds every `traceparent` field received (for instance from
/// [`Extractor::get_all`](opentelemetry::propagation::Extractor::get_all)): none is
/// [`TraceparentError::Missing`], more than one is [`TraceparentError::Multiple`] (the message
/// must start a new trace), exactly one is checked with [`parse_traceparent_value`].
pub fn parse_traceparent(
    values: &[&str],
) -> Result<(TraceId, SpanId, TraceFlags), TraceparentError> {
    match values {
        [] => Err(TraceparentError::Missing),
        [one] => parse_traceparent_value(one),
        more => Err(TraceparentError::Multiple(more.len())),
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[inline]
fn encode_hex(bytes: &[u8], out: &mut [u8]) {
    for (b, o) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        o[0] = HEX[(b >> 4) as usize];
        o[1] = HEX[(b & 0x0f) as usize];
    }
}

/// Formats a version `00` `traceparent`. Only the defined flag bits (sampled `0x01`, random
/// `0x02`) are written; all others are cleared (§3.2.2.5.3).
pub fn format_traceparent(trace_id: TraceId, span_id: SpanId, flags: TraceFlags) -> String {
    let mut buf = [0u8; TRACEPARENT_LEN];
    buf[0] = b'0';
    buf[1] = b'0';
    buf[2] = b'-';
    encode_hex(&trace_id.to_bytes(), &mut buf[3..35]);
    buf[35] = b'-';
    encode_hex(&span_id.to_bytes(), &mut buf[36..52]);
    buf[52] = b'-';
    encode_hex(&[flags.to_u8() & DEFINED_FLAGS_MASK], &mut buf[53..55]);
    // Every byte written above is ASCII, so each byte is one char.
    buf.iter().copied().map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_then_parse_is_identity_for_defined_flags() {
        let t = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        let s = SpanId::from_hex("00f067aa0ba902b7").unwrap();
        for f in 0..=3u8 {
            let v = format_traceparent(t, s, TraceFlags::new(f));
            assert_eq!(parse_traceparent_value(&v), Ok((t, s, TraceFlags::new(f))));
        }
    }
}
