//! `tracestate` keys: the Level 2 grammar (the default), Level 1's structured grammar, and what
//! `opentelemetry::trace::TraceState` accepts (W3C Trace Context §3.3.2.2.1 "Key").

use thiserror::Error;

const MAX_KEY_LEN: usize = 256;
const MAX_TENANT_LEN: usize = 241;
const MAX_SYSTEM_LEN: usize = 14;

/// Why a `tracestate` key is invalid ([`validate_key`], Level 2; the tenant and system variants
/// come from Level 1's `simple-key / multi-tenant-key`, [`validate_key_level1`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key is empty.
    #[error("empty key")]
    Empty,
    /// More than 256 characters.
    #[error("key is {0} characters, at most 256 are allowed")]
    TooLong(usize),
    /// A key must start with a lowercase letter or a digit (Level 1: a simple key with a
    /// lowercase letter).
    #[error(
        "a key must start with a lowercase letter or a digit (Level 1: a simple key with a lowercase letter)"
    )]
    InvalidFirstChar,
    /// A character outside `a-z 0-9 _ - * / @` (Level 1: one `@` at most).
    #[error("character {0:?} is not allowed in a key")]
    InvalidChar(char),
    /// More than one `@`.
    #[error("more than one '@' in a key")]
    MultipleAt,
    /// Empty tenant id before `@`.
    #[error("empty tenant-id before '@'")]
    EmptyTenant,
    /// Tenant id longer than 241 characters.
    #[error("tenant-id is {0} characters, at most 241 are allowed")]
    TenantTooLong(usize),
    /// A tenant id must start with a lowercase letter or a digit.
    #[error("tenant-id must start with a lowercase letter or a digit")]
    InvalidTenantFirstChar,
    /// Empty system id after `@`.
    #[error("empty system-id after '@'")]
    EmptySystem,
    /// System id longer than 14 characters.
    #[error("system-id is {0} characters, at most 14 are allowed")]
    SystemTooLong(usize),
    /// A system id must start with a lowercase letter.
    #[error("system-id must start with a lowercase letter")]
    InvalidSystemFirstChar,
}

#[inline]
fn is_keychar(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/')
}

fn check_keychars(part: &[u8]) -> Result<(), KeyError> {
    match part.iter().find(|&&b| !is_keychar(b)) {
        Some(&b) => Err(KeyError::InvalidChar(b as char)),
        None => Ok(()),
    }
}

/// The checks both key grammars share: not empty, ASCII, at most 256 characters.
fn key_bytes(key: &str) -> Result<&[u8], KeyError> {
    let b = key.as_bytes();
    if b.is_empty() {
        return Err(KeyError::Empty);
    }
    if !key.is_ascii() {
        let ch = key.chars().find(|c| !c.is_ascii()).unwrap_or('?');
        return Err(KeyError::InvalidChar(ch));
    }
    if b.len() > MAX_KEY_LEN {
        return Err(KeyError::TooLong(b.len()));
    }
    Ok(b)
}

/// Checks a key against the "Key" grammar of Level 2 (§3.3.2.2.1 "Key"), which the W3C test
/// suite checks (`test_tracestate_key_illegal_vendor_format`, `test_tracestate_key_length_limit`):
///
/// ```text
/// key = ( lcalpha / DIGIT ) 0*255 ( keychar )
/// keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"
/// ```
///
/// Every key of the Level 1 grammar ([`validate_key_level1`]) is valid here too; Level 2 also
/// admits keys such as `foo@`, `foo@@bar` or `1abc`. `@foo` (a leading `@`) is invalid.
///
/// ```
/// use otelbricks_trace_context::{validate_key, validate_key_level1};
///
/// assert!(validate_key("foo@bar@baz").is_ok());
/// assert!(validate_key_level1("foo@bar@baz").is_err());
/// assert!(validate_key("@foo").is_err());
/// ```
pub fn validate_key(key: &str) -> Result<(), KeyError> {
    let b = key_bytes(key)?;
    let first = b[0];
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return if is_keychar(first) || first == b'@' {
            Err(KeyError::InvalidFirstChar)
        } else {
            Err(KeyError::InvalidChar(first as char))
        };
    }
    match b[1..].iter().find(|&&c| !(is_keychar(c) || c == b'@')) {
        Some(&c) => Err(KeyError::InvalidChar(c as char)),
        None => Ok(()),
    }
}

/// Checks a key against the structured "Key" grammar of Level 1 (stricter than
/// [`validate_key`]):
///
/// ```text
/// key = simple-key / multi-tenant-key
/// simple-key = lcalpha 0*255( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
/// multi-tenant-key = tenant-id "@" system-id
/// tenant-id = ( lcalpha / DIGIT ) 0*240( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
/// system-id = lcalpha 0*13( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
/// ```
pub fn validate_key_level1(key: &str) -> Result<(), KeyError> {
    let b = key_bytes(key)?;
    match b.iter().position(|&c| c == b'@') {
        None => {
            if !b[0].is_ascii_lowercase() {
                return if is_keychar(b[0]) {
                    Err(KeyError::InvalidFirstChar)
                } else {
                    Err(KeyError::InvalidChar(b[0] as char))
                };
            }
            check_keychars(&b[1..])
        }
        Some(at) => {
            let (tenant, system) = (&b[..at], &b[at + 1..]);
            if system.contains(&b'@') {
                return Err(KeyError::MultipleAt);
            }
            if tenant.is_empty() {
                return Err(KeyError::EmptyTenant);
            }
            if tenant.len() > MAX_TENANT_LEN {
                return Err(KeyError::TenantTooLong(tenant.len()));
            }
            if !(tenant[0].is_ascii_lowercase() || tenant[0].is_ascii_digit()) {
                return if is_keychar(tenant[0]) {
                    Err(KeyError::InvalidTenantFirstChar)
                } else {
                    Err(KeyError::InvalidChar(tenant[0] as char))
                };
            }
            check_keychars(tenant)?;
            if system.is_empty() {
                return Err(KeyError::EmptySystem);
            }
            if system.len() > MAX_SYSTEM_LEN {
                return Err(KeyError::SystemTooLong(system.len()));
            }
            if !system[0].is_ascii_lowercase() {
                return if is_keychar(system[0]) {
                    Err(KeyError::InvalidSystemFirstChar)
                } else {
                    Err(KeyError::InvalidChar(system[0] as char))
                };
            }
            check_keychars(system)
        }
    }
}

/// Whether `opentelemetry::trace::TraceState` (0.33) accepts `key`. It rejects keys the Level 2
/// grammar allows: a system-id of 14 characters (its check allows 13), a second `@`, and a
/// character after `@` that is not a lowercase letter or a digit.
pub(crate) fn otel_accepts_key(key: &str) -> bool {
    // For a key that passed `validate_key`, what `opentelemetry` 0.33's `TraceState::valid_key`
    // adds: at most one `@`, at most 13 characters after it, the first of them a lowercase
    // letter or a digit.
    let b = key.as_bytes();
    let mut at = None;
    for (i, &c) in b.iter().enumerate() {
        if c == b'@' {
            if at.is_some() || i + 14 < b.len() {
                return false;
            }
            at = Some(i);
        } else if at == Some(i.wrapping_sub(1)) && !(c.is_ascii_lowercase() || c.is_ascii_digit()) {
            return false;
        }
    }
    true
}
