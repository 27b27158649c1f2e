//! Borrowed, lazy parsing of one log line: only the fields the analysis needs are
//! materialised (strings borrowed from the input unless they contain escapes); every
//! other value is validated and skipped.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// A JSON value of one of the fields we read.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(Cow<'a, str>),
    /// An array (`true` when non-empty).
    Seq(bool),
    /// An object (`true` when non-empty).
    Map(bool),
}

impl Val<'_> {
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

    /// Python truthiness, as the seed's `if user_id:`.
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

    /// A display key, as the seed's dict keys would print through `json.dumps`.
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
/// `Some(Val::Null)`; an absent field is `None` (the seed distinguishes the two).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Line<'a> {
    pub timestamp: Option<Val<'a>>,
    pub level: Option<Val<'a>>,
    pub message: Option<Val<'a>>,
    pub error_type: Option<Val<'a>>,
    pub request_id: Option<Val<'a>>,
    pub user_id: Option<Val<'a>>,
    pub path: Option<Val<'a>>,
    pub status_code: Option<Val<'a>>,
    pub duration: Option<Val<'a>>,
}

impl<'a> Line<'a> {
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
            Field::Other => return None,
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Field {
    Timestamp,
    Level,
    Message,
    ErrorType,
    RequestId,
    UserId,
    Path,
    StatusCode,
    Duration,
    Other,
}

struct FieldSeed;

impl<'de> DeserializeSeed<'de> for FieldSeed {
    type Value = Field;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Field, D::Error> {
        d.deserialize_str(FieldVisitor)
    }
}

struct FieldVisitor;

impl Visitor<'_> for FieldVisitor {
    type Value = Field;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E>(self, v: &str) -> Result<Field, E> {
        Ok(field_of(v.as_bytes()))
    }
}

/// A key as two integers: its first and last 4 bytes (4..=7 bytes long) or 8 bytes
/// (8..=16 bytes long), overlapping when shorter than twice that. `None` for other lengths.
#[inline(always)]
const fn key_words(k: &[u8]) -> Option<(u64, u64)> {
    let n = k.len();
    if n >= 8 && n <= 16 {
        Some((le_word(k, 0, 8), le_word(k, n - 8, 8)))
    } else if n >= 4 && n < 8 {
        Some((le_word(k, 0, 4), le_word(k, n - 4, 4)))
    } else {
        None
    }
}

/// `len` bytes of `k` from `at`, little-endian, as an integer.
#[inline(always)]
const fn le_word(k: &[u8], at: usize, len: usize) -> u64 {
    let mut w = 0u64;
    let mut i = 0;
    while i < len {
        w |= (k[at + i] as u64) << (8 * i);
        i += 1;
    }
    w
}

/// Slot of a key in [`KEYS`]: collision-free for the nine field names.
#[inline(always)]
const fn key_slot(k: &[u8]) -> usize {
    (k[0] as usize * 2 + k.len() + k[k.len() - 1] as usize) & 31
}

/// The field names by [`key_slot`]: (field, length, [`key_words`]).
static KEYS: [(Field, usize, u64, u64); 32] = {
    let mut t = [(Field::Other, 0usize, 0u64, 0u64); 32];
    let names: [(&[u8], Field); 9] = [
        (b"path", Field::Path),
        (b"level", Field::Level),
        (b"message", Field::Message),
        (b"user_id", Field::UserId),
        (b"duration", Field::Duration),
        (b"timestamp", Field::Timestamp),
        (b"error_type", Field::ErrorType),
        (b"request_id", Field::RequestId),
        (b"status_code", Field::StatusCode),
    ];
    let mut i = 0;
    while i < names.len() {
        let (k, f) = names[i];
        let slot = key_slot(k);
        assert!(t[slot].1 == 0, "key_slot collides");
        let Some((a, b)) = key_words(k) else {
            panic!("field name length")
        };
        t[slot] = (f, k.len(), a, b);
        i += 1;
    }
    t
};

/// [`key_words`] with plain loads (the `const fn` builds the table).
#[inline(always)]
fn key_words_rt(k: &[u8]) -> Option<(u64, u64)> {
    let n = k.len();
    if (8..=16).contains(&n) {
        let a = u64::from_le_bytes(k[..8].try_into().ok()?);
        let b = u64::from_le_bytes(k[n - 8..].try_into().ok()?);
        Some((a, b))
    } else if (4..8).contains(&n) {
        let a = u32::from_le_bytes(k[..4].try_into().ok()?);
        let b = u32::from_le_bytes(k[n - 4..].try_into().ok()?);
        Some((u64::from(a), u64::from(b)))
    } else {
        None
    }
}

/// Key dispatch without a branch per name: a table slot from the key's length and end
/// bytes, then one comparison of two integers.
#[inline]
fn field_of(k: &[u8]) -> Field {
    let Some((a, b)) = key_words_rt(k) else {
        return Field::Other;
    };
    let (f, n, ka, kb) = KEYS[key_slot(k)];
    if n == k.len() && a == ka && b == kb {
        f
    } else {
        Field::Other
    }
}

/// Outcome of parsing one line.
#[derive(Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // built once per line on the stack, never stored
pub enum Parsed<'a> {
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

/// Nesting deeper than this is rejected (as serde_json does).
const MAX_DEPTH: u32 = 128;

/// A validating single-pass scanner over one line: strict JSON (RFC 8259) like
/// `json.loads`, except that NaN/Infinity are rejected. Only the fields of [`Line`] are
/// materialised; strings are borrowed unless they contain escapes.
struct Scanner<'a, 'q> {
    b: &'a [u8],
    i: usize,
    /// Fast mode: the line has no backslash, control or non-ASCII byte, so every string is
    /// plain ASCII and ends at the next `"`; `quotes` has one bit per byte of the line
    /// (64 bytes per word) set at each `"`, so a string's end is found without scanning its
    /// content. Empty in slow mode.
    quotes: &'q [u64],
    fast: bool,
}

/// Sets `out` to the `"` bitmap of `b` (bit `i % 64` of word `i / 64` for byte `i`);
/// `false` (and `out` unusable) when `b` holds a backslash, a control byte (tabs and
/// newlines included) or a non-ASCII byte: such lines are scanned the slow way.
#[inline]
fn plain_quotes(b: &[u8], out: &mut Vec<u64>) -> bool {
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

type R<T> = Result<T, SyntaxError>;

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
    fn err<T>(&self) -> R<T> {
        Err(SyntaxError(self.i))
    }
    #[inline]
    fn peek(&self) -> Option<u8> {
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
    fn text(&self, st: usize, en: usize) -> &'a str {
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
    fn digits(&mut self) -> usize {
        let st = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - st
    }
    /// A number, validated and converted in one pass: integers of up to 19 digits and
    /// floats on the Clinger fast path are computed here, the rest by `str::parse`.
    fn number(&mut self) -> R<Val<'a>> {
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
    /// At a key's opening quote: recognises the keys of our schema (and the seed's) without
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
            b'm' if is(rest, b"method") => (Field::Other, 6),
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
    fn top_fast(&mut self, l: &mut Line<'a>) -> R<bool> {
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
    fn top(&mut self, l: &mut Line<'a>) -> R<bool> {
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
    ]
    .iter()
    .all(|v| !matches!(v, Some(Val::Str(Cow::Owned(_)))))
}

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
    /// [`LineParser::parse_next`] gives is borrowed from it (see [`borrows_only`]).
    #[inline]
    pub fn last_was_plain(&self) -> bool {
        self.plain
    }

    /// Parses the line the last [`LineParser::next_line`] returned (`b` must be that
    /// slice); same result as [`parse_bytes`].
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

    /// As [`parse_bytes`].
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
}
