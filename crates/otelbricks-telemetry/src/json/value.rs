//! JSON values: strings escaped (RFC 8259), floats, and `Debug`/`Display` values, each cut at a
//! byte limit on a character boundary.

use std::fmt::{self, Write as _};

pub(super) fn json_string(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    write_json_str(&mut out, s);
    // `write_json_str` writes valid UTF-8: the input is UTF-8 and escapes are ASCII.
    String::from_utf8(out).unwrap_or_default()
}

/// Finite floats as JSON numbers (shortest round-trip form); NaN and infinities as strings,
/// since JSON has no literal for them.
pub(super) fn write_f64(buf: &mut Vec<u8>, value: f64) {
    if value.is_finite() {
        buf.extend_from_slice(zmij::Buffer::new().format_finite(value).as_bytes());
    } else {
        write_json_str(buf, &value.to_string());
    }
}

/// Writes `s` as a JSON string literal, quotes included.
pub(super) fn write_json_str(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    write_escaped_inner(buf, s);
    buf.push(b'"');
}

/// JSON string escaping (RFC 8259): quote, backslash and control characters; everything else,
/// including non-ASCII UTF-8, is copied as is. Unchanged runs are copied in one slice.
pub(super) fn write_escaped_inner(buf: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    // Most strings need no escaping: skip 8 bytes at a time while none of them does, then find
    // the first byte that does, if any, with a plain loop; a clean string is one copy.
    let clean = clean_prefix(bytes);
    let Some(first) = bytes[clean..].iter().position(|&b| needs_escape(b)) else {
        buf.extend_from_slice(bytes);
        return;
    };
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate().skip(clean + first) {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => {
                buf.extend_from_slice(&bytes[start..i]);
                buf.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 0xf) as usize],
                ]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        buf.extend_from_slice(esc);
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
}

/// A control character, `"` or `\`.
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Length of the longest prefix of `bytes`, rounded down to whole 8-byte words, in which no byte
/// needs escaping (control characters, `"` and `\\`); the rest is scanned byte by byte.
fn clean_prefix(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut n = 0;
    for chunk in bytes.chunks_exact(8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // A high bit marks a byte < 0x20, equal to `"`, or equal to `\` (the classic "has zero
        // byte" test on x, x ^ '"' and x ^ '\\'; bytes >= 0x80 are masked out by `!x`).
        let control = x.wrapping_sub(ONES * 0x20) & !x;
        let quote =
            (x ^ (ONES * u64::from(b'"'))).wrapping_sub(ONES) & !(x ^ (ONES * u64::from(b'"')));
        let backslash =
            (x ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES) & !(x ^ (ONES * u64::from(b'\\')));
        if (control | quote | backslash) & HIGH != 0 {
            break;
        }
        n += 8;
    }
    n
}

/// A `fmt::Write` that escapes as it goes, so `Debug`/`Display` values need no temporary String,
/// and stops after `left` bytes (cut on a character boundary).
struct Escaper<'a> {
    buf: &'a mut Vec<u8>,
    left: usize,
}

impl fmt::Write for Escaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let part = crate::processors::truncate_str(s, self.left);
        write_escaped_inner(self.buf, part);
        self.left -= part.len();
        if part.len() < s.len() {
            // Stop formatting: the rest would be thrown away.
            self.left = 0;
            return Err(fmt::Error);
        }
        Ok(())
    }
}

pub(super) fn write_debug_str(buf: &mut Vec<u8>, value: &dyn fmt::Debug, max: usize) {
    buf.push(b'"');
    let _ = write!(Escaper { buf, left: max }, "{value:?}");
    buf.push(b'"');
}

pub(super) fn write_display_str(buf: &mut Vec<u8>, value: &dyn fmt::Display, max: usize) {
    buf.push(b'"');
    let _ = write!(Escaper { buf, left: max }, "{value}");
    buf.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finite_floats_are_written_as_serde_json_writes_them_and_the_others_as_strings() {
        for v in [
            0.0,
            -0.0,
            1.0,
            0.1,
            0.000_123_456,
            1.5e-7,
            12_345.678,
            1e21,
            -3.25,
            f64::MAX,
            f64::MIN_POSITIVE,
        ] {
            let mut ours = Vec::new();
            write_f64(&mut ours, v);
            assert_eq!(
                String::from_utf8(ours).expect("utf-8"),
                serde_json::to_string(&v).expect("serde_json"),
                "{v:?}"
            );
        }
        for (v, text) in [
            (f64::NAN, "\"NaN\""),
            (f64::INFINITY, "\"inf\""),
            (f64::NEG_INFINITY, "\"-inf\""),
        ] {
            let mut ours = Vec::new();
            write_f64(&mut ours, v);
            assert_eq!(String::from_utf8(ours).expect("utf-8"), text);
        }
    }

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_escapes_them() {
        // Every byte class at every position of the 8-byte words, plus non-ASCII text.
        let alphabet: Vec<char> = (0u8..0x80)
            .map(char::from)
            .chain(['é', '€', '😀', '\u{7f}', '\u{2028}'])
            .collect();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..40 {
            for _ in 0..200 {
                let s: String = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        // Mostly plain letters, so long clean runs occur.
                        if seed.is_multiple_of(4) {
                            alphabet[(seed >> 8) as usize % alphabet.len()]
                        } else {
                            char::from(b'a' + (seed >> 8) as u8 % 26)
                        }
                    })
                    .collect();
                let mut ours = Vec::new();
                write_json_str(&mut ours, &s);
                assert_eq!(
                    String::from_utf8(ours).expect("utf-8"),
                    serde_json::to_string(&s).expect("serde_json"),
                    "{s:?}"
                );
            }
        }
    }
}
