//! Table-driven tests of `traceparent` parsing and formatting (§3.2).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use opentelemetry::trace::{SpanId, TraceFlags, TraceId};
use otelbricks_trace_context::{
    TraceparentError as E, format_traceparent, parse_traceparent, parse_traceparent_value,
};

const TID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SID: &str = "00f067aa0ba902b7";

fn ids() -> (TraceId, SpanId) {
    (
        TraceId::from_hex(TID).unwrap(),
        SpanId::from_hex(SID).unwrap(),
    )
}

#[test]
fn valid_traceparents_are_accepted_with_flags_as_received() {
    let (t, s) = ids();
    #[rustfmt::skip]
    let table: &[(&str, u8, &str)] = &[
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 0x01, "sampled"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", 0x00, "not sampled"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02", 0x02, "random, not sampled"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03", 0x03, "random and sampled"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff", 0xff, "unknown bits kept on extraction"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09", 0x09, "unknown bit 0x08"),
        (" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 0x01, "leading space (OWS)"),
        ("\t00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 0x01, "leading tab (OWS)"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ", 0x01, "trailing space (OWS)"),
        ("\t 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 \t", 0x01, "OWS both sides"),
        ("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 0x01, "future version 01, exactly 55 chars"),
        ("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 0x01, "future version cc"),
        ("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-will-be-like", 0x01, "future version with extra fields"),
        ("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-", 0x09, "future version, dash then end"),
        ("fe-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-XYZ", 0x03, "highest allowed version fe"),
    ];
    for (input, flags, why) in table {
        assert_eq!(
            parse_traceparent(&[input]),
            Ok((t, s, TraceFlags::new(*flags))),
            "{why}: {input:?}"
        );
    }
}

#[test]
fn invalid_traceparents_are_rejected_with_the_reason() {
    #[rustfmt::skip]
    let table: &[(&str, E, &str)] = &[
        // The SDK 0.33 accepts these:
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0f067aa0ba902b7-01", E::TooShort(54), "15-hex parent id (SDK accepts)"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1", E::TooShort(54), "flags '1' (SDK accepts)"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-001", E::TrailingData(56), "flags '001' (SDK accepts)"),
        ("0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", E::InvalidVersion, "version '0' (SDK accepts)"),
        ("000-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", E::InvalidVersion, "version '000' (SDK accepts)"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", E::TrailingData(56), "version 00 with a trailing dash (SDK accepts)"),
        ("00-4bf92f3577b34da6a3ce929d0e0e473-000f067aa0ba902b7-01", E::InvalidTraceId, "31-hex trace id, 17-hex parent id"),
        // version
        ("0000-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", E::InvalidVersion, "version too long"),
        (".0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", E::InvalidVersion, "illegal version char"),
        ("0.-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", E::InvalidVersion, "illegal version char 2"),
        ("A0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", E::InvalidVersion, "uppercase version"),
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", E::ForbiddenVersion, "version ff"),
        ("", E::InvalidVersion, "empty"),
        ("   ", E::InvalidVersion, "only OWS"),
        ("00", E::InvalidVersion, "version only"),
        ("00-", E::TooShort(3), "version and dash only"),
        // version 00 length
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.", E::TrailingData(56), "00 with a trailing char"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-will-be-like", E::TrailingData(84), "00 with extra fields"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", E::TooShort(52), "missing flags"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-", E::TooShort(53), "empty flags"),
        // trace id
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", E::ZeroTraceId, "all-zero trace id"),
        ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", E::InvalidTraceId, "uppercase trace id"),
        ("00-.bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", E::InvalidTraceId, "illegal trace id char"),
        ("00-4bf92f3577b34da6a3ce929d0e0e473.-00f067aa0ba902b7-01", E::InvalidTraceId, "illegal trace id char at end"),
        ("00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01", E::TrailingData(56), "33-hex trace id"),
        ("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", E::TooShort(54), "31-hex trace id"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01", E::MissingDelimiter(35), "wrong delimiter after trace id"),
        // parent id
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", E::ZeroParentId, "all-zero parent id"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01", E::InvalidParentId, "uppercase parent id"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-.0f067aa0ba902b7-01", E::InvalidParentId, "illegal parent id char"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7a-01", E::TrailingData(56), "17-hex parent id"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01", E::MissingDelimiter(52), "wrong delimiter after parent id"),
        // flags
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-.0", E::InvalidTraceFlags, "illegal flags char"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0.", E::InvalidTraceFlags, "illegal flags char 2"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-A1", E::InvalidTraceFlags, "uppercase flags"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-qw", E::InvalidTraceFlags, "non-hex flags"),
        // future versions
        ("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.what-the-future-will-be-like", E::InvalidFutureVersionSuffix, "future version, flags followed by '.'"),
        ("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011", E::InvalidFutureVersionSuffix, "future version, 3-char flags"),
        ("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1", E::TooShort(54), "future version shorter than 55"),
        ("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", E::TooShort(52), "future version without flags"),
        ("cc-00000000000000000000000000000000-00f067aa0ba902b7-01", E::ZeroTraceId, "future version, zero trace id"),
        ("cc-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", E::InvalidTraceId, "future version, uppercase trace id"),
        // non-ASCII
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0é", E::TrailingData(56), "non-ASCII flags"),
        ("00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01", E::InvalidTraceId, "non-ASCII trace id"),
    ];
    for (input, err, why) in table {
        assert_eq!(
            parse_traceparent(&[input]),
            Err(err.clone()),
            "{why}: {input:?}"
        );
    }
}

#[test]
fn no_traceparent_field_is_missing() {
    assert_eq!(parse_traceparent(&[]), Err(E::Missing));
}

#[test]
fn two_traceparent_fields_are_invalid_even_when_both_are_valid() {
    let a = "00-12345678901234567890123456789011-1234567890123456-01";
    let b = "00-12345678901234567890123456789012-1234567890123456-01";
    assert_eq!(parse_traceparent(&[a, b]), Err(E::Multiple(2)));
    assert_eq!(parse_traceparent(&[a, a]), Err(E::Multiple(2)));
    assert_eq!(parse_traceparent(&[a, ""]), Err(E::Multiple(2)));
}

#[test]
fn a_single_field_holding_two_comma_joined_values_is_invalid() {
    let a = "00-12345678901234567890123456789011-1234567890123456-01";
    assert_eq!(
        parse_traceparent(&[&format!("{a}, {a}")]),
        Err(E::TrailingData(112))
    );
    let c = "cc-12345678901234567890123456789011-1234567890123456-01";
    assert_eq!(
        parse_traceparent_value(&format!("{c},{c}")),
        Err(E::InvalidFutureVersionSuffix)
    );
}

#[test]
fn formatting_writes_version_00_lowercase_and_only_the_sampled_and_random_bits() {
    let (t, s) = ids();
    #[rustfmt::skip]
    let table: &[(u8, &str)] = &[
        (0x00, "00"), (0x01, "01"), (0x02, "02"), (0x03, "03"),
        (0xff, "03"), (0x04, "00"), (0x09, "01"), (0xfe, "02"),
    ];
    for (flags, out) in table {
        assert_eq!(
            format_traceparent(t, s, TraceFlags::new(*flags)),
            format!("00-{TID}-{SID}-{out}"),
            "flags {flags:#04x}"
        );
    }
}

#[test]
fn errors_say_why_in_words() {
    assert_eq!(E::ZeroParentId.to_string(), "parent-id is all zeros");
    assert_eq!(E::Multiple(2).kind(), "multiple");
    assert_eq!(E::ZeroTraceId.kind(), "zero_trace_id");
    assert_eq!(
        E::Multiple(2).to_string(),
        "2 traceparent headers (exactly one is allowed)"
    );
}
