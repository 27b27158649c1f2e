//! Line splitting: the end of a line and its quote bitmap in one pass (SSE2 or AVX2), and the
//! reusable [`LineParser`].

use super::scan::{Scanner, plain_quotes};
use super::{Line, SyntaxError};

/// Reusable parsing state (one per thread): keeps its scratch buffer between lines.
#[derive(Debug, Default)]
pub struct LineParser {
    quotes: Vec<u64>,
    /// After [`LineParser::next_line`]: the line is plain and `quotes` is its bitmap.
    plain: bool,
}

/// For 64 bytes: the bitmaps of `"` and `\n`, and of backslash, control (newline
/// included) and non-ASCII bytes.
#[inline(always)]
fn masks64_nl_sse2(c: &[u8; 64]) -> (u64, u64, u64) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8,
            _mm_or_si128, _mm_set1_epi8,
        };
        let (mut q, mut nl, mut sp) = (0u64, 0u64, 0u64);
        // SAFETY: `c` has 64 bytes, so the 16-byte unaligned loads at `16 * k` (k < 4) stay
        // inside it; SSE2 is part of the x86_64 baseline.
        unsafe {
            let lim = _mm_set1_epi8(0x1f);
            for k in 0..4 {
                let x = _mm_loadu_si128(c.as_ptr().add(16 * k).cast::<__m128i>());
                let ctl = _mm_cmpeq_epi8(_mm_max_epu8(x, lim), lim);
                let special = _mm_or_si128(
                    _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8(b'\\' as i8)), ctl),
                    x, // high bit set = non-ASCII
                );
                let shift = 16 * k;
                q |= u64::from(
                    _mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8(b'"' as i8))) as u16,
                ) << shift;
                nl |= u64::from(
                    _mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8(b'\n' as i8))) as u16,
                ) << shift;
                sp |= u64::from(_mm_movemask_epi8(special) as u16) << shift;
            }
        }
        (opaque(q), nl, sp)
    }
    #[cfg(not(target_arch = "x86_64"))]
    masks64_nl_bytewise(c)
}

/// [`masks64_nl_sse2`] one byte at a time: the fallback off x86-64 and the tests' reference.
#[cfg(any(not(target_arch = "x86_64"), test))]
fn masks64_nl_bytewise(c: &[u8; 64]) -> (u64, u64, u64) {
    let (mut q, mut nl, mut sp) = (0u64, 0u64, 0u64);
    for (k, &x) in c.iter().enumerate() {
        q |= u64::from(x == b'"') << k;
        nl |= u64::from(x == b'\n') << k;
        sp |= u64::from(x == b'\\' || !(0x20..0x80).contains(&x)) << k;
    }
    (q, nl, sp)
}

/// [`masks64_nl_sse2`] with 32-byte AVX2 compares.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn masks64_nl_avx2(c: &[u8; 64]) -> (u64, u64, u64) {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_max_epu8, _mm256_movemask_epi8,
        _mm256_or_si256, _mm256_set1_epi8,
    };
    let (mut q, mut nl, mut sp) = (0u64, 0u64, 0u64);
    for k in 0..2 {
        // SAFETY: `c` has 64 bytes, so the 32-byte unaligned load at `32 * k` (k < 2) stays
        // inside it; this function only runs where AVX2 was detected.
        let x = unsafe { _mm256_loadu_si256(c.as_ptr().add(32 * k).cast::<__m256i>()) };
        let lim = _mm256_set1_epi8(0x1f);
        let ctl = _mm256_cmpeq_epi8(_mm256_max_epu8(x, lim), lim);
        let special = _mm256_or_si256(
            _mm256_or_si256(_mm256_cmpeq_epi8(x, _mm256_set1_epi8(b'\\' as i8)), ctl),
            x,
        );
        let bits = |m| u64::from(_mm256_movemask_epi8(m) as u32) << (32 * k);
        q |= bits(_mm256_cmpeq_epi8(x, _mm256_set1_epi8(b'"' as i8)));
        nl |= bits(_mm256_cmpeq_epi8(x, _mm256_set1_epi8(b'\n' as i8)));
        sp |= bits(special);
    }
    (opaque(q), nl, sp)
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn opaque(x: u64) -> u64 {
    x
}

/// `x`, through an empty `asm!` block that LLVM cannot see into (no instruction). Without
/// it LLVM treats the quote word as 64 one-bit compare results and, where the word is
/// stored, rebuilds it bit by bit (≈ 200 instructions per 64 bytes instead of none).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn opaque(mut x: u64) -> u64 {
    // SAFETY: the assembly is empty: it reads and writes nothing but `x`'s register.
    unsafe {
        std::arch::asm!("/* {0} */", inout(reg) x, options(pure, nomem, nostack, preserves_flags));
    }
    x
}

/// The line at the start of `buf` (up to the first `\n` or the end of `buf`): returns its
/// length and whether it is plain (no backslash, control or non-ASCII byte); when plain,
/// `quotes` holds its `"` bitmap (as [`plain_quotes`] builds it). One pass finds the line's
/// end and builds the bitmap.
#[inline(always)]
fn scan_line_with(
    buf: &[u8],
    quotes: &mut Vec<u64>,
    masks: impl Fn(&[u8; 64]) -> (u64, u64, u64),
) -> (usize, bool) {
    quotes.clear();
    let mut i = 0;
    loop {
        let (q, nl, sp) = match buf.get(i..i + 64) {
            Some(c) => match <&[u8; 64]>::try_from(c) {
                Ok(c) => masks(c),
                Err(_) => return (buf.len(), false), // unreachable: `c` has 64 bytes
            },
            None => {
                // The rest of `buf`, padded with spaces (neither quotes nor special).
                let rest = buf.get(i..).unwrap_or(&[]);
                let mut pad = [b' '; 64];
                pad[..rest.len()].copy_from_slice(rest);
                let (q, nl, sp) = masks(&pad);
                if nl == 0 {
                    quotes.push(q);
                    return (buf.len(), sp == 0);
                }
                (q, nl, sp)
            }
        };
        // The quotes past a newline are cleared by the caller.
        quotes.push(q);
        if nl != 0 {
            let below = nl.wrapping_sub(1) & !nl; // the bits below the first newline
            return (i + nl.trailing_zeros() as usize, sp & below == 0);
        }
        if sp != 0 {
            let from = i + 64;
            let end = memchr::memchr(b'\n', buf.get(from..).unwrap_or(&[]))
                .map_or(buf.len(), |p| from + p);
            return (end, false);
        }
        i += 64;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn scan_line_avx2(buf: &[u8], quotes: &mut Vec<u64>) -> (usize, bool) {
    scan_line_with(buf, quotes, |c| masks64_nl_avx2(c))
}

impl LineParser {
    /// The first line of `buf` (up to, not including, the first `\n`; all of `buf` if it
    /// has none), prepared for [`LineParser::parse_next`]. Finding the line's end and
    /// indexing its quotes is one pass over its bytes.
    #[inline]
    pub fn next_line<'a>(&mut self, buf: &'a [u8]) -> &'a [u8] {
        #[cfg(target_arch = "x86_64")]
        let (len, plain) = if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is available (checked just above).
            unsafe { scan_line_avx2(buf, &mut self.quotes) }
        } else {
            scan_line_with(buf, &mut self.quotes, masks64_nl_sse2)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let (len, plain) = scan_line_with(buf, &mut self.quotes, masks64_nl_sse2);
        self.plain = plain;
        if plain {
            // Clear the bits of the next line's quotes in the last word.
            let last = self.quotes.len().saturating_sub(1);
            if let Some(w) = self.quotes.get_mut(last) {
                let keep = len.saturating_sub(64 * last).min(63);
                *w &= (1u64 << keep) - 1;
            }
        }
        &buf[..len]
    }

    /// Whether the line of the last [`LineParser::next_line`] is plain: then every string
    /// [`LineParser::parse_next`] gives is borrowed from it (see [`borrows_only`](super::borrows_only)).
    #[inline]
    pub fn last_was_plain(&self) -> bool {
        self.plain
    }

    /// Parses the line the last [`LineParser::next_line`] returned (`b` must be that
    /// slice); same result as [`parse_bytes`](super::parse_bytes).
    #[inline]
    pub fn parse_next<'a>(&mut self, b: &'a [u8], l: &mut Line<'a>) -> Result<bool, SyntaxError> {
        let fast = self.plain;
        let mut s = Scanner {
            b,
            i: 0,
            quotes: if fast { &self.quotes } else { &[] },
            fast,
        };
        if fast { s.top_fast(l) } else { s.top(l) }
    }

    /// As [`parse_bytes`](super::parse_bytes).
    #[inline]
    pub fn parse<'a>(&mut self, b: &'a [u8], l: &mut Line<'a>) -> Result<bool, SyntaxError> {
        let fast = plain_quotes(b, &mut self.quotes);
        let mut s = Scanner {
            b,
            i: 0,
            quotes: if fast { &self.quotes } else { &[] },
            fast,
        };
        if fast { s.top_fast(l) } else { s.top(l) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::parse_bytes;

    #[test]
    fn vector_masks_equal_the_bytewise_masks() {
        // Bytes around every class boundary, in pseudo-random order.
        let pool: Vec<u8> = (0u8..=255).collect();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let mut c = [0u8; 64];
            for b in &mut c {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Mostly plain text with some quotes, newlines and special bytes.
                *b = match state % 8 {
                    0 => b'"',
                    1 => b'\n',
                    2 => pool[(state >> 8) as usize % 256],
                    _ => b'a' + (state >> 16) as u8 % 26,
                };
            }
            let want = masks64_nl_bytewise(&c);
            assert_eq!(masks64_nl_sse2(&c), want, "{c:?}");
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 is available (checked just above).
                assert_eq!(unsafe { masks64_nl_avx2(&c) }, want, "{c:?}");
            }
        }
    }

    #[test]
    fn next_line_splits_at_newlines_with_either_mask_function() {
        let text = "{\"a\": \"x\"}\n\n{\"b\": 1}\n{\"c\\n\": 2}\r\n{\"path\": \"é\"}\n".repeat(9)
            + &format!("{{\"k\": \"{}\"}}", "v".repeat(130));
        let want: Vec<&[u8]> = text.as_bytes().split(|&b| b == b'\n').collect();
        let mut got = Vec::new();
        let mut p = LineParser::default();
        let mut start = 0;
        while start < text.len() {
            let line = p.next_line(&text.as_bytes()[start..]);
            let (len, plain) =
                scan_line_with(&text.as_bytes()[start..], &mut Vec::new(), masks64_nl_sse2);
            assert_eq!((len, plain), (line.len(), p.plain));
            let mut a = Line::default();
            let mut b = Line::default();
            assert_eq!(p.parse_next(line, &mut a), parse_bytes(line, &mut b));
            assert_eq!(a, b);
            got.push(line);
            start += line.len() + 1;
        }
        assert_eq!(got, want);
    }
}
