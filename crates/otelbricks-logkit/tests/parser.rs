//! The hand-written line scanner agrees with serde_json on valid and broken lines.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use otelbricks_logkit::line::{
    Line, LineParser, borrows_only, parse, parse_bytes, parse_bytes_slow, parse_with_serde,
};
use proptest::prelude::*;

fn json_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 _/{}.:-]{0,20}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        // escapes, unicode, and characters that need escaping
        any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just(r#""a\"b\\c\/d\n\u00e9\ud83d\ude00""#.to_string()),
    ]
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        (-1e12f64..1e12).prop_map(|f| format!("{f:?}")),
        (0u32..1000, 0u32..100).prop_map(|(a, e)| format!("{a}.5e-{e}")),
        // Durations as Python prints them (15-17 significant digits) and arbitrary digit
        // strings with exponents: both sides of the float fast path's limits.
        (0f64..30.0).prop_map(|f| format!("{f:?}")),
        "-?(0|[1-9][0-9]{0,21})\\.[0-9]{1,22}([eE][+-]?[0-9]{1,3})?",
        "-?[1-9][0-9]{0,20}[eE][+-]?[0-9]{1,2}",
        Just("123456789012345678901234567890".into()),
    ]
}

fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        json_string(),
        number(),
        Just("true".to_string()),
        Just("false".to_string()),
        Just("null".to_string()),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec((key(), inner), 0..5).prop_map(|v| format!(
                "{{{}}}",
                v.into_iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            )),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "timestamp",
            "level",
            "message",
            "error_type",
            "request_id",
            "user_id",
            "path",
            "status_code",
            "duration",
            "logger",
            "other",
        ])
        .prop_map(|k| format!("\"{k}\"")),
        Just(r#""le\u0076el""#.to_string()),
        json_string(),
    ]
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec((key(), value()), 0..12).prop_map(|v| {
            format!("{{{}}}", v.into_iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(", "))
        }),
        1 => value(),
    ]
}

fn same(s: &str) {
    // The quote-index fast mode and the byte-by-byte scan agree exactly.
    let (mut fast, mut slow) = (Line::default(), Line::default());
    let a = parse_bytes(s.as_bytes(), &mut fast);
    let b = parse_bytes_slow(s.as_bytes(), &mut slow);
    assert_eq!(
        a.is_ok(),
        b.is_ok(),
        "fast/slow disagree on {s:?}: {a:?} vs {b:?}"
    );
    if a.is_ok() {
        assert_eq!((a, fast), (b, slow), "fast/slow disagree on {s:?}");
    }
    match (parse(s), parse_with_serde(s)) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "line {s:?}"),
        (Err(_), Err(_)) => {}
        // Python's json.loads (which the Python design uses) accepts lone UTF-16 surrogates, as the
        // scanner does; serde_json rejects them.
        (Ok(_), Err(e))
            if e.to_string().contains("surrogate") || e.to_string().contains("hex escape") => {}
        // Python's float() turns a number beyond f64's range into ±inf, as the scanner
        // does; serde_json rejects it.
        (Ok(_), Err(e)) if e.to_string().contains("number out of range") => {}
        (a, b) => panic!("disagree on {s:?}: scanner {a:?}, serde {b:?}"),
    }
}

/// Splitting a block with `LineParser::next_line` and parsing with `parse_next` gives the
/// lines `split(b'\n')` gives, each parsed as `parse_bytes` parses it alone.
fn same_when_split(block: &[u8]) {
    let mut want: Vec<&[u8]> = block.split(|&b| b == b'\n').collect();
    if block.last() == Some(&b'\n') || block.is_empty() {
        want.pop(); // no line after the last newline
    }
    let mut p = LineParser::default();
    let mut start = 0;
    let mut got = Vec::new();
    while start < block.len() {
        let line = p.next_line(&block[start..]);
        let (mut a, mut b) = (Line::default(), Line::default());
        let ra = p.parse_next(line, &mut a);
        let rb = parse_bytes(line, &mut b);
        assert_eq!(ra.is_ok(), rb.is_ok(), "{line:?}: {ra:?} vs {rb:?}");
        if p.last_was_plain() {
            // What lets the analysis skip dropping the parsed line.
            assert!(borrows_only(&a), "{line:?}");
        }
        if ra.is_ok() {
            assert_eq!((ra, a), (rb, b), "{line:?}");
        }
        got.push(line);
        start += line.len() + 1;
    }
    assert_eq!(got, want);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn line_splitting_scanner_equals_splitting_then_parsing(
        lines in prop::collection::vec(line(), 0..6),
        cut in any::<prop::sample::Index>(),
        b in prop::sample::select(vec![b'"', b'\\', b'\n', b'\r', b'x', 0x01, 0xc3]),
        trailing in any::<bool>(),
    ) {
        let mut block = lines.join("\n").into_bytes();
        if trailing {
            block.push(b'\n');
        }
        same_when_split(&block);
        let i = cut.index(block.len() + 1);
        block.insert(i, b);
        same_when_split(&block);
    }

    #[test]
    fn scanner_equals_serde_json_on_valid_lines(l in line(), pad in " {0,2}") {
        same(&format!("{pad}{l}{pad}"));
    }

    #[test]
    fn scanner_equals_serde_json_on_mutated_lines(l in line(), cut in any::<prop::sample::Index>(), b in prop::sample::select(vec![b'"', b'\\', b'{', b'}', b',', b':', b'x', b'1', b'\t', 0x01])) {
        let mut bytes = l.into_bytes();
        let i = cut.index(bytes.len() + 1);
        let mut truncated = bytes.clone();
        truncated.truncate(i);
        if let Ok(s) = String::from_utf8(truncated) { same(&s); }
        bytes.insert(i, b);
        if let Ok(s) = String::from_utf8(bytes) { same(&s); }
    }
}

#[test]
fn scanner_rejects_what_json_loads_rejects() {
    for s in [
        "",
        "{",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "{'a':1}",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":.5}",
        "{\"a\":tru}",
        "{\"a\":\"\t\"}",
        "{\"a\":\"\\x\"}",
        "{\"a\":1}{",
        "[1,]",
        "{\"a\":NaN}",
    ] {
        assert!(parse(s).is_err(), "{s:?}");
        assert!(parse_with_serde(s).is_err(), "{s:?}");
    }
}
