//! Sets and indexes of byte strings for the per-request aggregation: strings of up to 32
//! bytes (user ids, endpoint paths) are kept inline as a few words, so that a lookup hashes
//! and compares integers, with no `memcmp` call and no pointer to a heap copy to follow;
//! longer strings are kept as heap copies. Both are exact: equal keys are equal strings.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::hash::{Hash, Hasher};

/// A byte string of at most 32 bytes: its length and up to four words loaded from it. For a
/// given length the loads are at fixed offsets and together cover every byte (overlapping
/// where the string is shorter than the words), so two strings of the same length with the
/// same words are the same string.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct ShortKey {
    w: [u64; 4],
    len: u8,
}

#[inline(always)]
fn word(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .map_or(0, u64::from_le_bytes)
}

#[inline(always)]
fn half(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map_or(0, |a| u64::from(u32::from_le_bytes(a)))
}

impl ShortKey {
    /// `None` for strings longer than 32 bytes.
    #[inline]
    pub(crate) fn new(b: &[u8]) -> Option<ShortKey> {
        let n = b.len();
        let byte = |i: usize| b.get(i).map_or(0, |&x| u64::from(x));
        let w = match n {
            0 => [0; 4],
            1..=3 => [byte(0), byte(n / 2), byte(n - 1), 0],
            4..=7 => [half(b, 0), half(b, n - 4), 0, 0],
            8..=16 => [word(b, 0), word(b, n - 8), 0, 0],
            17..=32 => [word(b, 0), word(b, 8), word(b, n - 16), word(b, n - 8)],
            _ => return None,
        };
        Some(ShortKey { w, len: n as u8 })
    }
}

impl Hash for ShortKey {
    #[inline]
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.w[0] ^ u64::from(self.len));
        h.write_u64(self.w[1]);
        if self.len > 16 {
            h.write_u64(self.w[2]);
            h.write_u64(self.w[3]);
        }
    }
}

/// A set of byte strings.
#[derive(Clone, Default)]
pub(crate) struct StrSet {
    short: HashSet<ShortKey>,
    long: HashSet<Box<[u8]>>,
}

impl StrSet {
    #[inline]
    pub(crate) fn insert(&mut self, b: &[u8]) {
        match ShortKey::new(b) {
            Some(k) => {
                self.short.insert(k);
            }
            None => {
                if !self.long.contains(b) {
                    self.long.insert(b.into());
                }
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.short.len() + self.long.len()
    }

    pub(crate) fn extend(&mut self, o: StrSet) {
        self.short.extend(o.short);
        self.long.extend(o.long);
    }
}

/// A map from byte strings to indexes.
#[derive(Clone, Default)]
pub(crate) struct StrIndex {
    short: HashMap<ShortKey, u32>,
    long: HashMap<Box<[u8]>, u32>,
}

impl StrIndex {
    #[inline]
    pub(crate) fn get(&self, b: &[u8]) -> Option<u32> {
        match ShortKey::new(b) {
            Some(k) => self.short.get(&k).copied(),
            None => self.long.get(b).copied(),
        }
    }

    pub(crate) fn insert(&mut self, b: &[u8], i: u32) {
        match ShortKey::new(b) {
            Some(k) => self.short.insert(k, i),
            None => self.long.insert(b.into(), i),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings of every length up to 40 in several variants that differ in one byte, in
    /// trailing zero bytes, or only in their length.
    fn strings() -> Vec<Vec<u8>> {
        let mut all = Vec::new();
        for n in 0..=40usize {
            let s: Vec<u8> = (0..n).map(|i| (i * 37 + n * 11 + 1) as u8).collect();
            for i in 0..n {
                let mut t = s.clone();
                t[i] ^= 0x40;
                all.push(t);
            }
            let mut z = s.clone();
            z.push(0);
            all.push(z);
            all.push(vec![0; n]);
            all.push(s);
        }
        all
    }

    #[test]
    fn short_keys_are_equal_exactly_for_equal_strings() {
        let all = strings();
        for a in &all {
            for b in &all {
                let (ka, kb) = (ShortKey::new(a), ShortKey::new(b));
                if a.len() <= 32 && b.len() <= 32 {
                    assert_eq!(ka == kb, a == b, "{a:?} {b:?}");
                } else {
                    assert_eq!(ka.is_none(), a.len() > 32);
                }
            }
        }
    }

    #[test]
    fn set_and_index_count_distinct_strings() {
        let all = strings();
        let mut distinct: Vec<&Vec<u8>> = all.iter().collect();
        distinct.sort();
        distinct.dedup();
        let mut set = StrSet::default();
        let mut index = StrIndex::default();
        for (i, s) in all.iter().enumerate() {
            set.insert(s);
            if index.get(s).is_none() {
                index.insert(s, i as u32);
            }
        }
        assert_eq!(set.len(), distinct.len());
        for s in &all {
            let first = all.iter().position(|t| t == s).map(|p| p as u32);
            assert_eq!(index.get(s), first, "{s:?}");
        }
        // Merging two halves gives the same count.
        let (mut a, mut b) = (StrSet::default(), StrSet::default());
        for (i, s) in all.iter().enumerate() {
            if i % 2 == 0 { a.insert(s) } else { b.insert(s) }
        }
        a.extend(b);
        assert_eq!(a.len(), distinct.len());
    }
}
