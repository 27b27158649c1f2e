//! Borrowed, lazy parsing of one log line: only the fields the analysis needs are
//! materialised (strings borrowed from the input unless they contain escapes); every
//! other value is validated and skipped.
//!
//! Modules by concern: `field` (which key is which field), `scan` (the validating scanner),
//! `numbers` (number parsing), `split` (finding line ends and quote bitmaps, SIMD).

mod field;
mod numbers;
mod scan;
mod split;

pub use split::LineParser;

use field::{Field, FieldSeed};
use scan::Scanner;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// A JSON value of one of the fields we read.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A negative integer.
    Int(i64),
    /// A non-negative integer.
    UInt(u64),
    /// A number with a fraction or exponent, or outside the integer ranges.
    Float(f64),
    /// A string, borrowed from the line unless it had escapes.
    Str(Cow<'a, str>),
    /// An array (`true` when non-empty).
    Seq(bool),
    /// An object (`true` when non-empty).
    Map(bool),
}

impl Val<'_> {
    /// The string, if the value is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The number, when the value is one (booleans are not).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Val::Int(i) => Some(i as f64),
            Val::UInt(u) => Some(u as f64),
            Val::Float(f) => Some(f),
            _ => None,
        }
    }

    /// Python truthiness, as the Python design's `if user_id:`.
    pub fn truthy(&self) -> bool {
        match self {
            Val::Null => false,
            Val::Bool(b) => *b,
            Val::Int(i) => *i != 0,
            Val::UInt(u) => *u != 0,
            Val::Float(f) => *f != 0.0,
            Val::Str(s) => !s.is_empty(),
            Val::Seq(n) | Val::Map(n) => *n,
        }
    }

    /// A display key, as the Python design's dict keys would print through `json.dumps`.
    pub fn key(&self) -> Cow<'_, str> {
        match self {
            Val::Null => Cow::Borrowed("null"),
            Val::Bool(true) => Cow::Borrowed("true"),
            Val::Bool(false) => Cow::Borrowed("false"),
            Val::Int(i) => Cow::Owned(i.to_string()),
            Val::UInt(u) => Cow::Owned(u.to_string()),
            Val::Float(f) => Cow::Owned(format!("{f:?}")),
            Val::Str(s) => Cow::Borrowed(s),
            Val::Seq(_) => Cow::Borrowed("[array]"),
            Val::Map(_) => Cow::Borrowed("[object]"),
        }
    }
}

struct ValVisitor;

impl<'de> Visitor<'de> for ValVisitor {
    type Value = Val<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Val::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Val::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Val::UInt(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Val::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Val::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Val::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Val::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Val::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Val::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let nonempty = seq.next_element::<IgnoredAny>()?.is_some();
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Val::Seq(nonempty))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let nonempty = map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some();
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Val::Map(nonempty))
    }
}

impl<'de> de::Deserialize<'de> for Val<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValVisitor)
    }
}

/// The fields of one log line that the analysis reads. A field present with `null` is
/// `Some(Val::Null)`; an absent field is `None` (the Python design distinguishes the two).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Line<'a> {
    /// `timestamp`: RFC 3339 (or the Python design's `isoformat()` without offset).
    pub timestamp: Option<Val<'a>>,
    /// `level`: `INFO`, `ERROR`, ...
    pub level: Option<Val<'a>>,
    /// `message`.
    pub message: Option<Val<'a>>,
    /// `error_type`: the error class of an error line.
    pub error_type: Option<Val<'a>>,
    /// `request_id`.
    pub request_id: Option<Val<'a>>,
    /// `user_id`.
    pub user_id: Option<Val<'a>>,
    /// `path`: the route of a request line.
    pub path: Option<Val<'a>>,
    /// `status_code`: the HTTP status of a request line.
    pub status_code: Option<Val<'a>>,
    /// `duration`: the request's duration in seconds.
    pub duration: Option<Val<'a>>,
    /// `method`: the HTTP method of a request line.
    pub method: Option<Val<'a>>,
}

impl<'a> Line<'a> {
    /// Whether this is a request line (the schema in the repository's `docs/log-schema.md`):
    /// it has `method`, `path`, `status_code` and `duration`, whatever its `message` and
    /// level, or its `message` is exactly `Request completed` (the Python design's lines).
    #[inline]
    pub fn is_request(&self) -> bool {
        (self.method.is_some()
            && self.path.is_some()
            && self.status_code.is_some()
            && self.duration.is_some())
            || self
                .message
                .as_ref()
                .and_then(Val::as_str)
                .is_some_and(|m| {
                    <&[u8; 17]>::try_from(m.as_bytes()).is_ok_and(|a| a == b"Request completed")
                })
    }

    /// The slot a known field is stored in; `None` for [`Field::Other`] (skipped).
    #[inline]
    fn slot(&mut self, field: Field) -> Option<&mut Option<Val<'a>>> {
        Some(match field {
            Field::Timestamp => &mut self.timestamp,
            Field::Level => &mut self.level,
            Field::Message => &mut self.message,
            Field::ErrorType => &mut self.error_type,
            Field::RequestId => &mut self.request_id,
            Field::UserId => &mut self.user_id,
            Field::Path => &mut self.path,
            Field::StatusCode => &mut self.status_code,
            Field::Duration => &mut self.duration,
            Field::Method => &mut self.method,
            Field::Other => return None,
        })
    }
}

/// Outcome of parsing one line.
#[derive(Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // built once per line on the stack, never stored
pub enum Parsed<'a> {
    /// A JSON object, with the fields read.
    Object(Line<'a>),
    /// Valid JSON, but not an object.
    NotObject,
}

struct LineVisitor;

macro_rules! not_object {
    ($($name:ident: $t:ty),*) => {$(
        fn $name<E>(self, _v: $t) -> Result<Self::Value, E> { Ok(Parsed::NotObject) }
    )*};
}

impl<'de> Visitor<'de> for LineVisitor {
    type Value = Parsed<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    not_object!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Parsed::NotObject)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Parsed::NotObject)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut l = Line::default();
        while let Some(field) = map.next_key_seed(FieldSeed)? {
            let slot = match l.slot(field) {
                Some(slot) => slot,
                None => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            // Duplicate keys: the last one wins, as in Python's json.loads.
            *slot = Some(map.next_value::<Val<'de>>()?);
        }
        Ok(Parsed::Object(l))
    }
}

/// Why a line is not valid JSON (position of the first offending byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntaxError(pub usize);

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "invalid JSON at byte {}", self.0)
    }
}

/// Whether no field of `l` owns heap memory (every string is borrowed).
pub fn borrows_only(l: &Line<'_>) -> bool {
    [
        &l.timestamp,
        &l.level,
        &l.message,
        &l.error_type,
        &l.request_id,
        &l.user_id,
        &l.path,
        &l.status_code,
        &l.duration,
        &l.method,
    ]
    .iter()
    .all(|v| !matches!(v, Some(Val::Str(Cow::Owned(_)))))
}

/// Parses one line (already valid UTF-8, without its newline).
pub fn parse(s: &str) -> Result<Parsed<'_>, SyntaxError> {
    let mut l = Line::default();
    Ok(if parse_into(s, &mut l)? {
        Parsed::Object(l)
    } else {
        Parsed::NotObject
    })
}

/// As [`parse`], filling a caller-provided (empty) `Line` in place; returns whether the
/// line is a JSON object.
#[inline]
pub fn parse_into<'a>(s: &'a str, l: &mut Line<'a>) -> Result<bool, SyntaxError> {
    parse_bytes(s.as_bytes(), l)
}

/// As [`parse_into`], on raw bytes: UTF-8 is validated inside strings, so a line with
/// invalid UTF-8 is a `SyntaxError` (tell it apart with `str::from_utf8` if needed).
#[inline]
pub fn parse_bytes<'a>(b: &'a [u8], l: &mut Line<'a>) -> Result<bool, SyntaxError> {
    LineParser::default().parse(b, l)
}

/// As [`parse_bytes`], always with the byte-by-byte string scan (no quote index): the
/// reference the fast mode is tested against.
pub fn parse_bytes_slow<'a>(b: &'a [u8], l: &mut Line<'a>) -> Result<bool, SyntaxError> {
    Scanner {
        b,
        i: 0,
        quotes: &[],
        fast: false,
    }
    .top(l)
}

/// The same result through serde_json (the reference the scanner is tested against).
pub fn parse_with_serde(s: &str) -> Result<Parsed<'_>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(s);
    let v = de::Deserializer::deserialize_any(&mut de, LineVisitor)?;
    de.end()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(s: &str) -> Line<'_> {
        match parse(s) {
            Ok(Parsed::Object(l)) => l,
            _ => panic!("not an object: {s}"),
        }
    }

    #[test]
    fn reads_needed_fields_and_skips_the_rest() {
        let l = obj(
            r#"{"timestamp":"2026-11-27T00:00:00","x":{"a":[1,2]},"level":"INFO","duration":0.5,"status_code":200,"user_id":null,"path":"/a\/b"}"#,
        );
        assert_eq!(l.level, Some(Val::Str("INFO".into())));
        assert_eq!(l.duration, Some(Val::Float(0.5)));
        assert_eq!(l.status_code, Some(Val::UInt(200)));
        assert_eq!(l.user_id, Some(Val::Null));
        assert_eq!(l.path.unwrap().as_str(), Some("/a/b"));
        assert_eq!(l.message, None);
    }

    #[test]
    fn utf8_is_validated_inside_strings_and_rejected_outside() {
        let mut l = Line::default();
        assert!(parse_bytes("{\"path\":\"/é/😀\",\"x\":\"ü\"}".as_bytes(), &mut l).unwrap());
        assert_eq!(
            l.path.and_then(|p| p.as_str().map(String::from)).as_deref(),
            Some("/é/😀")
        );
        for bad in [
            &b"{\"path\":\"\xff\"}"[..],
            b"{\"x\":\"a\xc3\"}",
            b"{\"x\":1\xc3\xa9}",
            b"{\"\xed\xa0\x80\":1}",
        ] {
            assert!(parse_bytes(bad, &mut Line::default()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn last_duplicate_key_wins() {
        assert_eq!(
            obj(r#"{"level":"INFO","level":"ERROR"}"#).level,
            Some(Val::Str("ERROR".into()))
        );
    }

    #[test]
    fn malformed_and_non_objects_are_told_apart() {
        assert!(parse(r#"{"timestamp": "broken"#).is_err());
        assert!(parse(r#"{"a":1} x"#).is_err());
        assert!(parse("").is_err());
        assert!(matches!(parse("[1,2]"), Ok(Parsed::NotObject)));
        assert!(matches!(parse("\"s\""), Ok(Parsed::NotObject)));
        assert!(matches!(parse(" {} "), Ok(Parsed::Object(_))));
    }

    #[test]
    fn floats_equal_str_parse_bit_for_bit() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut cases: Vec<String> = vec![
            "0.08930773733007410".into(),
            "9007199254740993.0".into(), // 2^53 + 1: a tie, rounds to even
            "9007199254740995".into(),
            "1.7976931348623157e308".into(),
            "1.7976931348623159e308".into(),  // overflows to infinity
            "2.4703282292062328e-324".into(), // just above half the smallest subnormal
            "2.4703282292062327e-324".into(), // just below: zero
            "-0.0e400".into(),
            "1e-400".into(),
        ];
        for _ in 0..200_000 {
            let digits = 1 + next() % 25;
            let mut m = String::new();
            for i in 0..digits {
                let d = next() % 10;
                m.push(char::from(
                    b'0' + if i == 0 { d.max(1) as u8 } else { d as u8 },
                ));
            }
            let split = (next() % digits) as usize + 1;
            let (int, frac) = m.split_at(split);
            let mut t = if frac.is_empty() {
                int.to_owned()
            } else {
                format!("{int}.{frac}")
            };
            match next() % 4 {
                0 => t = format!("0.{}{m}", "0".repeat((next() % 4) as usize)),
                1 => t.push_str(&format!("e{}", (next() % 700) as i64 - 350)),
                _ => {}
            }
            if next() % 2 == 0 {
                t.insert(0, '-');
            }
            cases.push(t);
        }
        for t in cases {
            let want: f64 = t.parse().unwrap();
            let line = format!("{{\"duration\": {t}}}");
            let got = match obj(&line).duration {
                Some(Val::Float(f)) => f,
                Some(Val::UInt(u)) => u as f64,
                Some(Val::Int(i)) => i as f64,
                other => panic!("{t}: {other:?}"),
            };
            if t.contains(['.', 'e']) {
                assert_eq!(got.to_bits(), want.to_bits(), "{t}");
            }
        }
    }
}
