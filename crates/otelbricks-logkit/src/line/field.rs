//! Which field a key names: two little-endian words per key looked up in a small table.

use serde::de::{DeserializeSeed, Deserializer, Visitor};
use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Field {
    Timestamp,
    Level,
    Message,
    ErrorType,
    RequestId,
    UserId,
    Path,
    StatusCode,
    Duration,
    Method,
    Other,
}

pub(super) struct FieldSeed;

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

/// Slot of a key in [`KEYS`]: collision-free for the ten field names.
#[inline(always)]
const fn key_slot(k: &[u8]) -> usize {
    (k[0] as usize * 2 + k.len() + k[k.len() - 1] as usize) & 31
}

/// The field names by [`key_slot`]: (field, length, [`key_words`]).
static KEYS: [(Field, usize, u64, u64); 32] = {
    let mut t = [(Field::Other, 0usize, 0u64, 0u64); 32];
    let names: [(&[u8], Field); 10] = [
        (b"path", Field::Path),
        (b"level", Field::Level),
        (b"message", Field::Message),
        (b"user_id", Field::UserId),
        (b"duration", Field::Duration),
        (b"timestamp", Field::Timestamp),
        (b"error_type", Field::ErrorType),
        (b"request_id", Field::RequestId),
        (b"status_code", Field::StatusCode),
        (b"method", Field::Method),
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
pub(super) fn field_of(k: &[u8]) -> Field {
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
