//! Parsers of single values (booleans, durations, sizes, key=value lists, URLs); every error
//! names the variable and the value (header values excepted: they are secrets).

use std::time::Duration;

use super::invalid;
use crate::TelemetryError;

pub(crate) fn parse_bool(var: &str, v: &str) -> Result<bool, TelemetryError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(invalid(var, v, "expected true or false")),
    }
}

/// A non-negative integer of milliseconds, as the OTel spec gives durations.
pub(super) fn parse_millis(var: &str, v: &str) -> Result<Duration, TelemetryError> {
    v.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| invalid(var, v, "expected a whole number of milliseconds >= 0"))
}

pub(super) fn parse_positive_millis(var: &str, v: &str) -> Result<Duration, TelemetryError> {
    let d = parse_millis(var, v)?;
    if d.is_zero() {
        return Err(invalid(var, v, "must be greater than 0"));
    }
    Ok(d)
}

pub(super) fn parse_positive<T: std::str::FromStr + PartialOrd + Default>(
    var: &str,
    v: &str,
) -> Result<T, TelemetryError> {
    match v.parse::<T>() {
        Ok(n) if n > T::default() => Ok(n),
        _ => Err(invalid(var, v, "expected a whole number greater than 0")),
    }
}

/// A byte size: a plain number of bytes or a number with a KB/MB/GB (or KiB/MiB/GiB) suffix.
pub(super) fn parse_bytes(var: &str, v: &str) -> Result<u64, TelemetryError> {
    let lower = v.to_ascii_lowercase();
    let (num, mult) = [
        ("kib", 1024u64),
        ("mib", 1024 * 1024),
        ("gib", 1024 * 1024 * 1024),
        ("kb", 1000),
        ("mb", 1000 * 1000),
        ("gb", 1000 * 1000 * 1000),
        ("k", 1024),
        ("m", 1024 * 1024),
        ("g", 1024 * 1024 * 1024),
        ("b", 1),
    ]
    .iter()
    .find_map(|(suffix, mult)| lower.strip_suffix(suffix).map(|n| (n.trim(), *mult)))
    .unwrap_or((lower.as_str(), 1));
    match num.parse::<u64>().ok().and_then(|n| n.checked_mul(mult)) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(invalid(
            var,
            v,
            "expected a size in bytes greater than 0, e.g. 52428800 or 50MiB",
        )),
    }
}

/// Percent-decodes `%XX` sequences (W3C baggage octets), as the spec asks for OTEL_RESOURCE_ATTRIBUTES
/// and OTEL_EXPORTER_OTLP_HEADERS.
pub(super) fn percent_decode(s: &str) -> Result<String, &'static str> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("bad percent-encoding")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent-decoded text is not UTF-8")
}

/// Whether a list's values may appear in error messages: header values carry credentials.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Values {
    Shown,
    Secret,
}

/// `key1=value1,key2=value2` (W3C baggage-like list), percent-decoded. With [`Values::Secret`]
/// an error names the variable and the key, never a value nor the variable's text.
pub(crate) fn parse_key_values(
    var: &str,
    v: &str,
    values: Values,
) -> Result<Vec<(String, String)>, TelemetryError> {
    let err = |reason: String| match values {
        Values::Shown => invalid(var, v, reason),
        Values::Secret => invalid(var, "<not shown: header values are secret>", reason),
    };
    let mut out = Vec::new();
    for (n, member) in v.split(',').enumerate() {
        let member = member.trim();
        if member.is_empty() {
            continue;
        }
        let Some((k, val)) = member.split_once('=') else {
            return Err(err(match values {
                Values::Shown => format!("member {member:?} is not key=value"),
                Values::Secret => format!("member {} is not key=value", n + 1),
            }));
        };
        let k = percent_decode(k.trim()).map_err(|e| err(format!("{e} in a key")))?;
        if k.is_empty() {
            return Err(err(format!("member {} has an empty key", n + 1)));
        }
        let val =
            percent_decode(val.trim()).map_err(|e| err(format!("{e} in the value of {k:?}")))?;
        out.push((k, val));
    }
    Ok(out)
}

/// An OTLP endpoint URL. Errors show it without user information and query, which may hold
/// credentials.
pub(super) fn parse_endpoint(var: &str, v: &str) -> Result<String, TelemetryError> {
    let shown = crate::export::redact_url(v);
    let Some((scheme, rest)) = v.split_once("://") else {
        return Err(invalid(var, &shown, "expected an http:// or https:// URL"));
    };
    if scheme != "http" && scheme != "https" {
        return Err(invalid(var, &shown, "expected an http:// or https:// URL"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once(':')
        .filter(|(_, port)| !port.contains(']'))
        .map_or(
            authority,
            |(h, port)| {
                if port.parse::<u16>().is_err() { "" } else { h }
            },
        );
    if host.is_empty() || authority.contains(char::is_whitespace) {
        return Err(invalid(var, &shown, "the URL has no valid host[:port]"));
    }
    Ok(v.to_owned())
}
