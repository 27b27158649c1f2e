//! The validating scanner: strings, literals, containers and the top-level object, in a fast
//! mode (quote bitmap) and a byte-by-byte mode.

use super::field::{Field, field_of};
use super::{Line, SyntaxError, Val};
use std::borrow::Cow;

/// Nesting deeper than this is rejected (as serde_json does).
const MAX_DEPTH: u32 = 128;

/// A validating single-pass scanner over one line: strict JSON (RFC 8259) like
/// `json.loads`, except that NaN/Infinity are rejected. Only the fields of [`Line`] are
/// materialised; strings are borrowed unless they contain escapes.
pub(super) struct Scanner<'a, 'q> {
    pub(super) b: &'a [u8],
    pub(super) i: usize,
    /// Fast mode: the line has no backslash, control or non-ASCII byte, so every string is
    /// plain ASCII and ends at the next `"`; `quotes` has one bit per byte of the line
    /// (64 bytes per word) set at each `"`, so a string's end is found without scanning its
    /// content. Empty in slow mode.
    pub(super) quotes: &'q [u64],
    pub(super) fast: bool,
}

/// Sets `out` to the `"` bitmap of `b` (bit `i % 64` of word `i / 64` for byte `i`);
/// `false` (and `out` unusable) when `b` holds a backslash, a control byte (tabs and
/// newlines included) or a non-ASCII byte: such lines are scanned the slow way.
#[inline]
pub(super) fn plain_quotes(b: &[u8], out: &mut Vec<u64>) -> bool {
    out.clear();
    let mut blocks = b.chunks_exact(64);
    for c in &mut blocks {
        let Some((q, special)) = masks64(c) else {
            return false;
        };
        if special {
            return false;
        }
        out.push(q);
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        // Padded with spaces (neither quotes nor special).
        let mut pad = [b' '; 64];
        pad[..rest.len()].copy_from_slice(rest);
        let Some((q, special)) = masks64(&pad) else {
            return false;
        };
        if special {
            return false;
        }
        out.push(q);
    }
    true
}

/// For 64 bytes: the bitmap of `"` and whether any byte is a backslash, a control byte or
/// non-ASCII. `None` when `c` is not 64 bytes long.
#[inline(always)]
fn masks64(c: &[u8]) -> Option<(u64, bool)> {
    let c: &[u8; 64] = c.try_into().ok()?;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8,
            _mm_or_si128, _mm_set1_epi8,
        };
        // SAFETY: `c` has 64 bytes, so the four unaligned 16-byte loads stay inside it;
        // SSE2 is part of the x86_64 baseline.
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let bs = _mm_set1_epi8(b'\\' as i8);
            let lim = _mm_set1_epi8(0x1f);
            let mut q = 0u64;
            let mut sp = _mm_set1_epi8(0);
            for k in 0..4 {
                let x = _mm_loadu_si128(c.as_ptr().add(16 * k).cast::<__m128i>());
                q |= u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(x, quote)) as u16) << (16 * k);
                let ctl = _mm_cmpeq_epi8(_mm_max_epu8(x, lim), lim);
                // High bit set = non-ASCII byte.
                sp = _mm_or_si128(
                    sp,
                    _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, bs), ctl), x),
                );
            }
            Some((q, _mm_movemask_epi8(sp) != 0))
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut q = 0u64;
        let mut special = false;
        for (k, &x) in c.iter().enumerate() {
            q |= u64::from(x == b'"') << k;
            special |= x == b'\\' || x < 0x20 || x >= 0x80;
        }
        Some((q, special))
    }
}

pub(super) type R<T> = Result<T, SyntaxError>;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Offset of the first `"`, `\\`, control or non-ASCII byte: eight bytes at a time (SWAR), then bytewise.
/// The bit tricks can flag bytes after a real match (borrows), never before one, so the
/// lowest flagged byte is exact.
#[inline]
fn find_stop(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8,
            _mm_or_si128, _mm_set1_epi8,
        };
        // Sixteen bytes at a time while sixteen remain.
        while i + 16 <= b.len() {
            // SAFETY: `i + 16 <= b.len()`, so the unaligned 16-byte load stays inside `b`;
            // SSE2 is part of the x86_64 baseline, so the intrinsics are always available.
            let mask = unsafe {
                let x = _mm_loadu_si128(b.as_ptr().add(i).cast::<__m128i>());
                let q = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'"' as i8));
                let s = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\\' as i8));
                let lim = _mm_set1_epi8(0x1f);
                let c = _mm_cmpeq_epi8(_mm_max_epu8(x, lim), lim);
                // High bit set = non-ASCII byte: also a stop (UTF-8 is checked there).
                _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(_mm_or_si128(q, s), c), x)) as u32
            };
            if mask != 0 {
                return Some(i + mask.trailing_zeros() as usize);
            }
            i += 16;
        }
    }
    while let Some(w) = b.get(i..i + 8) {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        let x = u64::from_le_bytes(a);
        let q = x ^ (ONES * u64::from(b'"'));
        let s = x ^ (ONES * u64::from(b'\\'));
        let hit = (q.wrapping_sub(ONES) & !q)
            | (s.wrapping_sub(ONES) & !s)
            | (x.wrapping_sub(ONES * 0x20) & !x)
            | x;
        let hit = hit & HIGHS;
        if hit != 0 {
            return Some(i + (hit.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..].iter().position(|&c| STOP[c as usize]).map(|p| p + i)
}

/// Bytes that end a run of plain string content: `"`, `\\` and control characters.
static STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    let mut h = 0x80;
    while h < 256 {
        t[h] = true;
        h += 1;
    }
    t
};

impl<'a> Scanner<'a, '_> {
    #[inline]
    pub(super) fn err<T>(&self) -> R<T> {
        Err(SyntaxError(self.i))
    }
    #[inline]
    pub(super) fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }
    #[inline]
    fn expect(&mut self, c: u8) -> R<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            self.err()
        }
    }
    /// A span the scanner has validated as UTF-8: a string's content (checked in
    /// `string_raw`) or a number (ASCII).
    #[inline]
    pub(super) fn text(&self, st: usize, en: usize) -> &'a str {
        let span = &self.b[st..en];
        // SAFETY: `string_raw` rejects string content that is not valid UTF-8 (non-ASCII
        // bytes are checked with `str::from_utf8`; all other bytes are ASCII), and numbers
        // consist of ASCII digits, signs, `.` and `e`; so `span` is valid UTF-8.
        debug_assert!(std::str::from_utf8(span).is_ok());
        unsafe { std::str::from_utf8_unchecked(span) }
    }

    /// At a `"`: scans the string; returns (start, end, has_escape) of its content.
    #[inline(always)]
    fn string_raw(&mut self) -> R<(usize, usize, bool)> {
        if self.fast {
            // No escapes in fast mode: the string ends at the next quote.
            self.expect(b'"')?;
            let open = self.i;
            let close = self
                .next_quote(open)
                .inspect_err(|_| self.i = self.b.len())?;
            self.i = close + 1;
            return Ok((open, close, false));
        }
        self.string_slow()
    }

    fn string_slow(&mut self) -> R<(usize, usize, bool)> {
        self.expect(b'"')?;
        let start = self.i;
        let mut esc = false;
        let mut non_ascii = false;
        let b = self.b;
        let mut i = self.i;
        loop {
            // Advance to the next quote, backslash, control or non-ASCII byte.
            let Some(off) = find_stop(&b[i..]) else {
                return self.err();
            };
            i += off;
            match b[i] {
                b'"' => break,
                b'\\' => {}
                0x80..=0xff => {
                    non_ascii = true;
                    i += 1;
                    continue;
                }
                _ => {
                    self.i = i;
                    return self.err();
                }
            }
            esc = true;
            match b.get(i + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                Some(b'u') => {
                    let hex = b.get(i + 2..i + 6);
                    if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                        self.i = i;
                        return self.err();
                    }
                    i += 6;
                }
                _ => {
                    self.i = i;
                    return self.err();
                }
            }
        }
        // UTF-8 is validated here, only for strings with non-ASCII bytes (outside strings
        // any non-ASCII byte is a syntax error anyway).
        if non_ascii && std::str::from_utf8(&b[start..i]).is_err() {
            self.i = start;
            return self.err();
        }
        self.i = i + 1;
        Ok((start, i, esc))
    }
    fn string_val(&mut self) -> R<Cow<'a, str>> {
        let at = self.i;
        let (st, en, esc) = self.string_raw()?;
        if !esc {
            return Ok(Cow::Borrowed(self.text(st, en)));
        }
        serde_json::from_slice::<String>(&self.b[st - 1..=en])
            .map(Cow::Owned)
            .map_err(|_| SyntaxError(at))
    }
    fn literal(&mut self, word: &[u8]) -> R<()> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            self.err()
        }
    }
    /// A value; containers are validated and skipped (reported as empty or not).
    fn value(&mut self, depth: u32) -> R<Val<'a>> {
        match self.peek() {
            Some(b'"') => self.string_val().map(Val::Str),
            Some(b'{') => self.container(depth, b'}').map(Val::Map),
            Some(b'[') => self.container(depth, b']').map(Val::Seq),
            Some(b't') => self.literal(b"true").map(|_| Val::Bool(true)),
            Some(b'f') => self.literal(b"false").map(|_| Val::Bool(false)),
            Some(b'n') => self.literal(b"null").map(|_| Val::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => self.err(),
        }
    }
    /// Skips a value without materialising it.
    #[inline]
    fn skip(&mut self, depth: u32) -> R<()> {
        match self.peek() {
            Some(b'"') => self.string_raw().map(|_| ()),
            Some(b'{') => self.container(depth, b'}').map(|_| ()),
            Some(b'[') => self.container(depth, b']').map(|_| ()),
            Some(b'-' | b'0'..=b'9') => {
                // Validate the grammar without converting.
                let st = self.i;
                if self.peek() == Some(b'-') {
                    self.i += 1;
                }
                match self.peek() {
                    Some(b'0') => self.i += 1,
                    Some(b'1'..=b'9') => {
                        self.digits();
                    }
                    _ => return Err(SyntaxError(st)),
                }
                if self.peek() == Some(b'.') {
                    self.i += 1;
                    if self.digits() == 0 {
                        return self.err();
                    }
                }
                if let Some(b'e' | b'E') = self.peek() {
                    self.i += 1;
                    if let Some(b'+' | b'-') = self.peek() {
                        self.i += 1;
                    }
                    if self.digits() == 0 {
                        return self.err();
                    }
                }
                Ok(())
            }
            _ => self.value(depth).map(|_| ()),
        }
    }
    /// At `{` or `[`: validates and skips the container; returns whether it is non-empty.
    fn container(&mut self, depth: u32, close: u8) -> R<bool> {
        if depth >= MAX_DEPTH {
            return self.err();
        }
        self.i += 1;
        self.ws();
        if self.peek() == Some(close) {
            self.i += 1;
            return Ok(false);
        }
        loop {
            if close == b'}' {
                self.string_raw()?;
                self.ws();
                self.expect(b':')?;
                self.ws();
            }
            self.skip(depth + 1)?;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.ws();
                }
                Some(c) if c == close => {
                    self.i += 1;
                    return Ok(true);
                }
                _ => return self.err(),
            }
        }
    }
    /// At a key's opening quote: recognises the keys of our schema (and the Python design's) without
    /// a general string scan; `None` for anything else (then scanned normally).
    #[inline]
    fn known_key(&mut self) -> Option<Field> {
        #[inline(always)]
        fn is<const N: usize>(rest: &[u8], k: &[u8; N]) -> bool {
            rest.get(..=N)
                .is_some_and(|r| r[N] == b'"' && r[..N] == k[..])
        }
        let rest = self.b.get(self.i + 1..)?;
        if self.b.get(self.i) != Some(&b'"') {
            return None;
        }
        let (f, n) = match rest.first()? {
            b't' if is(rest, b"timestamp") => (Field::Timestamp, 9),
            b't' if is(rest, b"trace_id") => (Field::Other, 8),
            b'l' if is(rest, b"level") => (Field::Level, 5),
            b'l' if is(rest, b"logger") => (Field::Other, 6),
            b'm' if is(rest, b"message") => (Field::Message, 7),
            b'm' if is(rest, b"method") => (Field::Method, 6),
            b'r' if is(rest, b"request_id") => (Field::RequestId, 10),
            b'p' if is(rest, b"path") => (Field::Path, 4),
            b's' if is(rest, b"status_code") => (Field::StatusCode, 11),
            b's' if is(rest, b"span_id") => (Field::Other, 7),
            b'd' if is(rest, b"duration") => (Field::Duration, 8),
            b'u' if is(rest, b"user_id") => (Field::UserId, 7),
            b'e' if is(rest, b"error_type") => (Field::ErrorType, 10),
            b'e' if is(rest, b"error") => (Field::Other, 5),
            _ => return None,
        };
        self.i += n + 2;
        Some(f)
    }

    #[inline]
    fn field(&self, st: usize, en: usize, esc: bool) -> Field {
        if !esc {
            return field_of(&self.b[st..en]);
        }
        match serde_json::from_slice::<String>(&self.b[st - 1..=en]) {
            Ok(k) => field_of(k.as_bytes()),
            Err(_) => Field::Other,
        }
    }
    /// Fast mode: the first `"` at or after `from` (strings hold no escapes).
    #[inline(always)]
    fn next_quote(&self, from: usize) -> R<usize> {
        let mut w = from / 64;
        let mut m = match self.quotes.get(w) {
            Some(m) => m & (!0u64 << (from % 64)),
            None => 0,
        };
        while m == 0 {
            w += 1;
            match self.quotes.get(w) {
                Some(&x) => m = x,
                None => return Err(SyntaxError(self.b.len())),
            }
        }
        Ok(w * 64 + m.trailing_zeros() as usize)
    }

    /// Fast mode, at a byte that is not whitespace: the top-level object with the string
    /// members handled inline (no escapes, no whitespace but spaces); everything else goes
    /// through the general value/skip code. Same result as [`Self::top`].
    pub(super) fn top_fast(&mut self, l: &mut Line<'a>) -> R<bool> {
        let b = self.b;
        #[inline(always)]
        fn spaces(b: &[u8], mut i: usize) -> usize {
            while b.get(i) == Some(&b' ') {
                i += 1;
            }
            i
        }
        let mut i = spaces(b, 0);
        if b.get(i) != Some(&b'{') {
            return self.top(l);
        }
        i = spaces(b, i + 1);
        if b.get(i) == Some(&b'}') {
            i += 1;
        } else {
            loop {
                if b.get(i) != Some(&b'"') {
                    return Err(SyntaxError(i));
                }
                let close = self.next_quote(i + 1)?;
                let field = field_of(&b[i + 1..close]);
                i = spaces(b, close + 1);
                if b.get(i) != Some(&b':') {
                    return Err(SyntaxError(i));
                }
                i = spaces(b, i + 1);
                let slot = match l.slot(field) {
                    Some(slot) => slot,
                    None => {
                        if b.get(i) == Some(&b'"') {
                            i = self.next_quote(i + 1)? + 1;
                        } else {
                            self.i = i;
                            self.skip(1)?;
                            i = self.i;
                        }
                        i = spaces(b, i);
                        match b.get(i) {
                            Some(b',') => {
                                i = spaces(b, i + 1);
                                continue;
                            }
                            Some(b'}') => {
                                i += 1;
                                break;
                            }
                            _ => return Err(SyntaxError(i)),
                        }
                    }
                };
                let v = if b.get(i) == Some(&b'"') {
                    let close = self.next_quote(i + 1)?;
                    let s = self.text(i + 1, close);
                    i = close + 1;
                    Val::Str(Cow::Borrowed(s))
                } else {
                    self.i = i;
                    let v = self.value(1)?;
                    i = self.i;
                    v
                };
                // Duplicate keys: the last one wins, as in Python's json.loads.
                *slot = Some(v);
                i = spaces(b, i);
                match b.get(i) {
                    Some(b',') => i = spaces(b, i + 1),
                    Some(b'}') => {
                        i += 1;
                        break;
                    }
                    _ => return Err(SyntaxError(i)),
                }
            }
        }
        i = spaces(b, i);
        if i != b.len() {
            return Err(SyntaxError(i));
        }
        self.i = i;
        Ok(true)
    }

    /// Parses into `l` (which must be empty); returns whether the line is an object.
    pub(super) fn top(&mut self, l: &mut Line<'a>) -> R<bool> {
        self.ws();
        let out = if self.peek() == Some(b'{') {
            self.i += 1;
            self.ws();
            if self.peek() == Some(b'}') {
                self.i += 1;
            } else {
                loop {
                    let known = if self.fast { None } else { self.known_key() };
                    let field = match known {
                        Some(f) => f,
                        None => {
                            let (st, en, esc) = self.string_raw()?;
                            self.field(st, en, esc)
                        }
                    };
                    self.ws();
                    self.expect(b':')?;
                    self.ws();
                    let slot = match l.slot(field) {
                        Some(slot) => slot,
                        None => {
                            self.skip(1)?;
                            self.ws();
                            if self.after_member()? {
                                continue;
                            }
                            break;
                        }
                    };
                    *slot = Some(self.value(1)?);
                    self.ws();
                    if !self.after_member()? {
                        break;
                    }
                }
            }
            true
        } else {
            self.skip(0)?;
            false
        };
        self.ws();
        if self.i != self.b.len() {
            return self.err();
        }
        Ok(out)
    }
    /// After an object member: `,` (true, more follow) or `}` (false).
    #[inline]
    fn after_member(&mut self) -> R<bool> {
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                self.ws();
                Ok(true)
            }
            Some(b'}') => {
                self.i += 1;
                Ok(false)
            }
            _ => self.err(),
        }
    }
}
