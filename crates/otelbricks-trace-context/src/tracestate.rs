//! `tracestate` parsing, validation, limits and formatting (W3C Trace Context §3.3).

use std::fmt;

use thiserror::Error;

pub(crate) use crate::key::otel_accepts_key;
pub use crate::key::{KeyError, validate_key, validate_key_level1};

/// Maximum number of list-members (§3.3.2: "There can be a maximum of 32
/// list-members in a list").
pub const MAX_MEMBERS: usize = 32;

/// Default size limit of the combined `tracestate` value, in characters (commas included).
/// The spec asks to propagate at least 512 characters (§3.3.3.1 "tracestate Limits").
pub const DEFAULT_MAX_LEN: usize = 512;

/// Entries longer than this are removed first when truncating to the size limit.
pub const LONG_ENTRY_LEN: usize = 128;

const MAX_VALUE_LEN: usize = 256;
/// Members quoted in errors are cut to this many characters.
const QUOTE_LEN: usize = 64;

/// Why a `tracestate` value is invalid (value grammar, `0*255(chr) nblk-chr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The value is empty (the grammar requires at least one non-blank character).
    #[error("empty value")]
    Empty,
    /// More than 256 characters.
    #[error("value is {0} characters, at most 256 are allowed")]
    TooLong(usize),
    /// A character outside printable ASCII `0x20..=0x7E`, or `,` or `=`.
    #[error("character {0:?} is not allowed in a value")]
    InvalidChar(char),
    /// The value ends with a space.
    #[error("value ends with a space")]
    TrailingSpace,
}

/// Why a `tracestate` list-member (or the whole header) was dropped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TraceStateError {
    /// A non-empty list-member without `=`.
    #[error("list-member {member:?} has no '='")]
    MissingEquals {
        /// The member (cut to 64 characters).
        member: String,
    },
    /// The key does not follow the key grammar.
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey {
        /// The key (cut to 64 characters).
        key: String,
        /// Why.
        reason: KeyError,
    },
    /// The value does not follow the value grammar.
    #[error("invalid value for key {key:?}: {reason}")]
    InvalidValue {
        /// The key (cut to 64 characters).
        key: String,
        /// Why.
        reason: ValueError,
    },
    /// A key seen earlier in the list; the later (right-most) occurrence is dropped.
    #[error("duplicate key {key:?}: later occurrence dropped")]
    DuplicateKey {
        /// The key (cut to 64 characters).
        key: String,
    },
    /// More than 32 valid list-members: the right-most ones beyond the 32nd are dropped
    /// (lenient policy) or the whole header is discarded (strict policy).
    #[error("{count} list-members, at most 32 are allowed")]
    TooManyMembers {
        /// Number of valid, distinct list-members received.
        count: usize,
    },
    /// Removed to fit the size limit (entries over 128 characters first, then from the end).
    #[error("list-member {key:?} ({len} characters) removed to fit the {limit}-character limit")]
    Truncated {
        /// The key (cut to 64 characters).
        key: String,
        /// Length of `key=value`.
        len: usize,
        /// The size limit in force.
        limit: usize,
    },
}

impl TraceStateError {
    /// A short, constant, snake_case name of the reason, for a log field or metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MissingEquals { .. } => "missing_equals",
            Self::InvalidKey { .. } => "invalid_key",
            Self::InvalidValue { .. } => "invalid_value",
            Self::DuplicateKey { .. } => "duplicate_key",
            Self::TooManyMembers { .. } => "too_many_members",
            Self::Truncated { .. } => "truncated",
        }
    }
}

fn quote(s: &str) -> String {
    if s.len() <= QUOTE_LEN {
        return s.to_owned();
    }
    let mut end = QUOTE_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// What to do with a `tracestate` that holds invalid list-members.
///
/// The processing model (Level 2 §4.1.2 step 3, same text in Level 1) leaves the choice
/// to the vendor: "If the tracestate header cannot be parsed the vendor MAY discard the
/// entire header. Invalid tracestate entries MAY also be discarded."
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TraceStatePolicy {
    /// Drop only the invalid list-members and keep the valid ones; beyond 32 members keep
    /// the first 32 (the right-most are removed, as §3.3.2 says for adding a 33rd).
    DropInvalidMembers,
    /// Discard the whole `tracestate` if any list-member is invalid or there are more than
    /// 32 of them. This is what the W3C test suite (`test/test.py`) expects, and the default:
    /// a header that breaks the grammar was not written by a conforming vendor, so none of it
    /// is trusted.
    #[default]
    DiscardOnInvalid,
}

/// Checks a value against the "Value" grammar (§3.3.2):
/// `value = 0*255(chr) nblk-chr`, `nblk-chr = %x21-2B / %x2D-3C / %x3E-7E`,
/// `chr = %x20 / nblk-chr` — 1 to 256 printable ASCII characters except `,` and `=`, not
/// ending with a space. Leading spaces are part of the value.
pub fn validate_value(value: &str) -> Result<(), ValueError> {
    let b = value.as_bytes();
    if b.is_empty() {
        return Err(ValueError::Empty);
    }
    if let Some(pos) = b
        .iter()
        .position(|&c| !(0x20..=0x7e).contains(&c) || c == b',' || c == b'=')
    {
        let ch = value[pos..].chars().next().unwrap_or('?');
        return Err(ValueError::InvalidChar(ch));
    }
    if b.len() > MAX_VALUE_LEN {
        return Err(ValueError::TooLong(b.len()));
    }
    if b[b.len() - 1] == b' ' {
        return Err(ValueError::TrailingSpace);
    }
    Ok(())
}

#[inline]
fn entry_len(k: &str, v: &str) -> usize {
    k.len() + 1 + v.len()
}

fn header_len<K: AsRef<str>, V: AsRef<str>>(members: &[(K, V)]) -> usize {
    members
        .iter()
        .map(|(k, v)| entry_len(k.as_ref(), v.as_ref()))
        .sum::<usize>()
        + members.len().saturating_sub(1)
}

/// A `tracestate` value: `key=value` members joined by `,` with no OWS; empty for no members.
pub(crate) fn join_members<K: AsRef<str>, V: AsRef<str>>(members: &[(K, V)]) -> String {
    let mut s = String::with_capacity(header_len(members));
    for (i, (k, v)) in members.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(k.as_ref());
        s.push('=');
        s.push_str(v.as_ref());
    }
    s
}

/// Applies the size limit (§3.3.3.1 "tracestate Limits"): whole entries are removed, entries
/// longer than 128 characters first (right-most first), then entries from the end, until the
/// combined value (commas included) fits `max_len`.
pub(crate) fn truncate_to<K: AsRef<str>, V: AsRef<str>>(
    members: &mut Vec<(K, V)>,
    max_len: usize,
    mut errors: Option<&mut Vec<TraceStateError>>,
) {
    let mut len = header_len(members);
    if len <= max_len {
        return;
    }
    let mut record = |k: &str, l: usize| {
        if let Some(errs) = errors.as_deref_mut() {
            errs.push(TraceStateError::Truncated {
                key: quote(k),
                len: l,
                limit: max_len,
            });
        }
    };
    let mut i = members.len();
    while len > max_len && i > 0 {
        i -= 1;
        let l = entry_len(members[i].0.as_ref(), members[i].1.as_ref());
        if l > LONG_ENTRY_LEN {
            record(members[i].0.as_ref(), l);
            members.remove(i);
            len = header_len(members);
        }
    }
    while len > max_len {
        let Some((k, v)) = members.pop() else { break };
        record(k.as_ref(), entry_len(k.as_ref(), v.as_ref()));
        len = header_len(members);
    }
}

/// Parses the `tracestate` fields of one message into borrowed `(key, value)` pairs.
///
/// Fields are combined in order as one list (RFC 9110 §5.3), empty and OWS-only members are
/// skipped, OWS (space, tab) around members is ignored, duplicates keep the left-most
/// occurrence, then the member and size limits are applied. With
/// [`TraceStatePolicy::DiscardOnInvalid`] the first problem is returned as `Err`.
pub(crate) fn parse_members<'a>(
    fields: &[&'a str],
    policy: TraceStatePolicy,
    max_len: usize,
    mut errors: Option<&mut Vec<TraceStateError>>,
) -> Result<Vec<(&'a str, &'a str)>, TraceStateError> {
    let strict = policy == TraceStatePolicy::DiscardOnInvalid;
    let mut out: Vec<(&'a str, &'a str)> = Vec::new();
    let mut extra = 0usize;
    for field in fields {
        for raw in field.split(',') {
            let member = raw.trim_matches([' ', '\t']);
            if member.is_empty() {
                continue;
            }
            let err = match member.split_once('=') {
                None => Some(TraceStateError::MissingEquals {
                    member: quote(member),
                }),
                Some((k, v)) => match (validate_key(k), validate_value(v)) {
                    (Err(reason), _) => Some(TraceStateError::InvalidKey {
                        key: quote(k),
                        reason,
                    }),
                    (Ok(()), Err(reason)) => Some(TraceStateError::InvalidValue {
                        key: quote(k),
                        reason,
                    }),
                    (Ok(()), Ok(())) => {
                        if out.iter().any(|(ok, _)| *ok == k) {
                            Some(TraceStateError::DuplicateKey { key: quote(k) })
                        } else if out.len() >= MAX_MEMBERS {
                            extra += 1;
                            None
                        } else {
                            out.push((k, v));
                            None
                        }
                    }
                },
            };
            if let Some(e) = err {
                let duplicate = matches!(e, TraceStateError::DuplicateKey { .. });
                if strict && !duplicate {
                    return Err(e);
                }
                if let Some(errs) = errors.as_deref_mut() {
                    errs.push(e);
                }
            }
        }
    }
    if extra > 0 {
        let e = TraceStateError::TooManyMembers {
            count: MAX_MEMBERS + extra,
        };
        if strict {
            return Err(e);
        }
        if let Some(errs) = errors.as_deref_mut() {
            errs.push(e);
        }
    }
    truncate_to(&mut out, max_len, errors);
    Ok(out)
}

/// A validated W3C `tracestate` list: at most 32 list-members with valid, distinct keys and
/// valid values, in order (left-most = most recent).
///
/// Unlike `opentelemetry::trace::TraceState` (0.33), it accepts every key of the key
/// grammar, including a 14-character multi-tenant `system-id`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct W3CTraceState {
    members: Vec<(String, String)>,
}

/// The result of [`parse_tracestate`]: what was kept, and why anything was dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedTraceState {
    /// The valid list-members, in order.
    pub state: W3CTraceState,
    /// Why list-members were dropped (empty when nothing was).
    pub dropped: Vec<TraceStateError>,
}

/// Parses the `tracestate` header fields of one message with the per-member policy
/// ([`TraceStatePolicy::DropInvalidMembers`]) and the default size limit (512).
///
/// Never fails: invalid members are dropped and reported in [`ParsedTraceState::dropped`].
pub fn parse_tracestate(fields: &[&str]) -> ParsedTraceState {
    let mut dropped = Vec::new();
    let members = parse_members(
        fields,
        TraceStatePolicy::DropInvalidMembers,
        DEFAULT_MAX_LEN,
        Some(&mut dropped),
    )
    .unwrap_or_default();
    ParsedTraceState {
        state: W3CTraceState::from_valid(members),
        dropped,
    }
}

/// Parses the `tracestate` header fields of one message with an explicit policy and size
/// limit. With [`TraceStatePolicy::DiscardOnInvalid`] the first invalid member (or more than
/// 32 members) is returned as `Err`; duplicate keys and the size limit never fail (the later
/// duplicate and the truncated entries are dropped and listed in `dropped`).
pub fn parse_tracestate_with(
    fields: &[&str],
    policy: TraceStatePolicy,
    max_len: usize,
) -> Result<ParsedTraceState, TraceStateError> {
    let mut dropped = Vec::new();
    let members = parse_members(fields, policy, max_len, Some(&mut dropped))?;
    Ok(ParsedTraceState {
        state: W3CTraceState::from_valid(members),
        dropped,
    })
}

impl W3CTraceState {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn from_valid<K: Into<String>, V: Into<String>>(members: Vec<(K, V)>) -> Self {
        Self {
            members: members
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Builds a list from key/value pairs, validating each one. Fails on the first invalid key
    /// or value, a duplicate key, or more than 32 members. No size limit is applied.
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self, TraceStateError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut members: Vec<(String, String)> = Vec::new();
        for (k, v) in pairs {
            let (k, v) = (k.into(), v.into());
            validate_key(&k).map_err(|reason| TraceStateError::InvalidKey {
                key: quote(&k),
                reason,
            })?;
            validate_value(&v).map_err(|reason| TraceStateError::InvalidValue {
                key: quote(&k),
                reason,
            })?;
            if members.iter().any(|(ok, _)| *ok == k) {
                return Err(TraceStateError::DuplicateKey { key: quote(&k) });
            }
            members.push((k, v));
            if members.len() > MAX_MEMBERS {
                return Err(TraceStateError::TooManyMembers {
                    count: members.len(),
                });
            }
        }
        Ok(Self { members })
    }

    /// Number of list-members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// No list-members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The list-members, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.members.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Adds or updates `key` at the left of the list, as §3.5 ("Mutating the tracestate
    /// Field") requires; a 33rd member pushes out the right-most one.
    pub fn insert(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<(), TraceStateError> {
        let (key, value) = (key.into(), value.into());
        validate_key(&key).map_err(|reason| TraceStateError::InvalidKey {
            key: quote(&key),
            reason,
        })?;
        validate_value(&value).map_err(|reason| TraceStateError::InvalidValue {
            key: quote(&key),
            reason,
        })?;
        self.members.retain(|(k, _)| *k != key);
        self.members.insert(0, (key, value));
        self.members.truncate(MAX_MEMBERS);
        Ok(())
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let i = self.members.iter().position(|(k, _)| k == key)?;
        Some(self.members.remove(i).1)
    }

    /// Removes whole entries until the header fits `max_len` characters (entries over 128
    /// characters first, then from the end), returning why each was removed.
    pub fn truncate_to(&mut self, max_len: usize) -> Vec<TraceStateError> {
        let mut errs = Vec::new();
        truncate_to(&mut self.members, max_len, Some(&mut errs));
        errs
    }

    /// The header value: `key=value` members joined by `,` with no OWS. Empty for an empty
    /// list (then no header should be sent).
    pub fn header(&self) -> String {
        join_members(&self.members)
    }
}

impl fmt::Display for W3CTraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.header())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_removes_long_entries_first_then_from_the_end() {
        let long = "x".repeat(200);
        let mut m = vec![("a", long.as_str()), ("b", "1"), ("c", &long), ("d", "2")];
        truncate_to(&mut m, 210, None);
        assert_eq!(m, vec![("a", long.as_str()), ("b", "1"), ("d", "2")]);
        truncate_to(&mut m, 5, None);
        assert_eq!(m, vec![("b", "1")]);
    }
}
