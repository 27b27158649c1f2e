//! Numbers: digits read eight at a time, then Clinger's fast path or Eisel-Lemire, with
//! `str::parse` as the correctly rounded fallback.

use super::scan::{R, Scanner};
use super::{SyntaxError, Val};

/// The Clinger fast path: `m * 10^e10` when `m <= 2^53` and `|e10| <= 22`, where both are
/// exact doubles, so one IEEE multiplication or division rounds correctly. `None` otherwise
/// (then the general, correctly rounded `str::parse` is used).
#[inline]
fn clinger(m: u64, e10: i64, neg: bool) -> Option<f64> {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    if m > 1 << 53 || !(-22..=22).contains(&e10) {
        return None;
    }
    let v = m as f64;
    let v = if e10 >= 0 {
        v * POW10[e10 as usize]
    } else {
        v / POW10[(-e10) as usize]
    };
    Some(if neg { -v } else { v })
}

/// `m * 10^e10`, correctly rounded, by the Eisel-Lemire algorithm (lexical's, the one
/// `str::parse` also uses) on the digits the scanner has already read (`m` must hold them
/// all, i.e. at most 19); `None` in the rare cases it cannot decide the rounding (then the
/// general `str::parse` is used).
#[inline]
fn eisel_lemire(m: u64, e10: i64, neg: bool) -> Option<f64> {
    use lexical_parse_float::float::extended_to_float;
    let fp = lexical_parse_float::lemire::compute_float::<f64>(e10, m, false);
    if fp.exp < 0 {
        return None;
    }
    let v: f64 = extended_to_float(fp);
    Some(if neg { -v } else { v })
}

/// The eight ASCII digits of `b[..8]` as a number; `None` unless all eight are digits.
/// SWAR, as in fast_float's `parse_eight_digits_unrolled` (also used by `str::parse`).
#[inline(always)]
fn eight_digits(b: &[u8]) -> Option<u64> {
    let v = u64::from_le_bytes(b.get(..8)?.try_into().ok()?);
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    // Every high nibble is 3 (0x30..=0x3F), and adding 6 keeps it 3 (not 0x3A..=0x3F);
    // no carry crosses bytes since each byte is at most 0x3F.
    if v & HIGH != ZEROS || v.wrapping_add(0x0606_0606_0606_0606) & HIGH != ZEROS {
        return None;
    }
    let mut x = v - ZEROS;
    x = x.wrapping_mul(10) + (x >> 8); // pairs
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 0x000F_4240_0000_0064; // 100 + (1_000_000 << 32)
    const MUL2: u64 = 0x0000_2710_0000_0001; // 1 + (10_000 << 32)
    Some(((x & MASK).wrapping_mul(MUL1)).wrapping_add(((x >> 16) & MASK).wrapping_mul(MUL2)) >> 32)
}

/// Reads the run of digits at `b[i..]`: each digit is counted in `nd`, and appended to `m`
/// while fewer than 19 digits have been (so `m` is exact when `nd <= 19`); eight at a time
/// while that keeps under the limit. Returns the end of the run and the digits appended.
#[inline(always)]
fn digits_into(b: &[u8], mut i: usize, m: &mut u64, nd: &mut u32) -> (usize, u32) {
    let mut kept = 0;
    while *nd + 8 <= 19 {
        let Some(v) = b.get(i..).and_then(eight_digits) else {
            break;
        };
        *m = *m * 100_000_000 + v; // *m < 10^11 here, so no overflow
        *nd += 8;
        kept += 8;
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if !c.is_ascii_digit() {
            break;
        }
        if *nd < 19 {
            *m = *m * 10 + u64::from(c - b'0');
            kept += 1;
        }
        *nd += 1;
        i += 1;
    }
    (i, kept)
}

impl<'a> Scanner<'a, '_> {
    pub(super) fn digits(&mut self) -> usize {
        let st = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - st
    }
    /// A number, validated and converted in one pass: integers of up to 19 digits and
    /// floats on the Clinger fast path are computed here, the rest by `str::parse`.
    pub(super) fn number(&mut self) -> R<Val<'a>> {
        let b = self.b;
        let st = self.i;
        let mut i = st;
        let neg = b.get(i) == Some(&b'-');
        if neg {
            i += 1;
        }
        // All digits (integer and fraction part) as one integer, while it has <= 19.
        let mut m: u64 = 0;
        let mut nd = 0u32;
        let mut frac = 0i64;
        match b.get(i) {
            Some(b'0') => {
                i += 1;
                nd = 1;
            }
            Some(b'1'..=b'9') => {
                i = digits_into(b, i, &mut m, &mut nd).0;
            }
            _ => {
                self.i = i;
                return self.err();
            }
        }
        let mut float = false;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let fs = i;
            let (end, kept) = digits_into(b, i, &mut m, &mut nd);
            i = end;
            frac += i64::from(kept);
            if i == fs {
                self.i = i;
                return self.err();
            }
            float = true;
        }
        let mut e10 = 0i64;
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            let eneg = match b.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let es = i;
            while let Some(&c) = b.get(i) {
                if !c.is_ascii_digit() {
                    break;
                }
                if e10 < 1_000_000 {
                    e10 = e10 * 10 + i64::from(c - b'0');
                }
                i += 1;
            }
            if i == es {
                self.i = i;
                return self.err();
            }
            if eneg {
                e10 = -e10;
            }
            float = true;
        }
        self.i = i;
        if nd <= 19 {
            // `m` holds every digit exactly.
            if !float {
                if !neg {
                    return Ok(Val::UInt(m));
                }
                if let Ok(v) = i64::try_from(m) {
                    return Ok(Val::Int(-v));
                }
            } else if let Some(f) = clinger(m, e10 - frac, neg) {
                return Ok(Val::Float(f));
            } else if let Some(f) = eisel_lemire(m, e10 - frac, neg) {
                return Ok(Val::Float(f));
            }
        }
        let t = self.text(st, i);
        if !float {
            if let Ok(u) = t.parse::<u64>() {
                return Ok(Val::UInt(u));
            }
            if let Ok(i) = t.parse::<i64>() {
                return Ok(Val::Int(i));
            }
        }
        t.parse::<f64>()
            .map(Val::Float)
            .map_err(|_| SyntaxError(st))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_digits_reads_exactly_eight_ascii_digits() {
        assert_eq!(eight_digits(b"12345678"), Some(12_345_678));
        assert_eq!(eight_digits(b"00000000x"), Some(0));
        assert_eq!(eight_digits(b"99999999"), Some(99_999_999));
        assert_eq!(eight_digits(b"1234567"), None);
        for bad in [b'/', b':', b'.', b'e', b'-', b' ', b'?', 0x3f, 0x20, 0xb0] {
            for at in 0..8 {
                let mut d = *b"13572468";
                d[at] = bad;
                assert_eq!(eight_digits(&d), None, "{d:?}");
            }
        }
        let mut state = 7u64;
        for _ in 0..100_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let n = (state >> 20) % 100_000_000;
            assert_eq!(eight_digits(format!("{n:08}").as_bytes()), Some(n));
        }
    }
}
