//! Minimal, allocation-free RFC 3339 / ISO 8601 timestamp parsing.
//!
//! Accepts `YYYY-MM-DD[T| ]HH:MM[:SS[.fraction]][Z|z|±HH:MM|±HHMM]`. A timestamp without an
//! offset (the Python design's `datetime.isoformat()` output) is taken as UTC.

/// Microseconds since the Unix epoch (UTC).
pub type Micros = i64;

/// Microseconds per minute.
pub const MICROS_PER_MINUTE: i64 = 60_000_000;
/// Microseconds per day.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

#[inline]
fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let s = b.get(at..at + n)?;
    let mut v = 0i64;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day number since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn date(b: &[u8]) -> Option<i64> {
    let year = digits(b, 0, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day) * MICROS_PER_DAY)
}

/// `YYYY-MM-DDTHH:MM` (the first 16 bytes): the start of that minute, before any offset.
fn head(b: &[u8]) -> Option<Micros> {
    let d = date(b)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) || b.get(13) != Some(&b':') {
        return None;
    }
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    if hour > 23 || minute > 59 {
        return None;
    }
    Some(d + (hour * 60 + minute) * MICROS_PER_MINUTE)
}

/// What follows the minute: `[:SS[.fraction]][Z|±HH:MM|±HHMM]`.
fn tail(b: &[u8], mut micros: Micros) -> Option<Micros> {
    let mut i = 16;
    if b.get(i) == Some(&b':') {
        let second = digits(b, 17, 2)?;
        if second > 60 {
            return None;
        }
        micros += second * 1_000_000;
        i = 19;
        if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
            i += 1;
            let start = i;
            let mut frac = 0i64;
            let mut scale = 0;
            while let Some(&c) = b.get(i) {
                if !c.is_ascii_digit() {
                    break;
                }
                if scale < 6 {
                    frac = frac * 10 + i64::from(c - b'0');
                    scale += 1;
                }
                i += 1;
            }
            if i == start {
                return None;
            }
            while scale < 6 {
                frac *= 10;
                scale += 1;
            }
            micros += frac;
        }
    }
    match b.get(i) {
        None => Some(micros),
        Some(b'Z' | b'z') if i + 1 == b.len() => Some(micros),
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(b, i + 1, 2)?;
            let om = match (b.get(i + 3), b.len() - i) {
                (Some(b':'), 6) => digits(b, i + 4, 2)?,
                (Some(_), 5) => digits(b, i + 3, 2)?,
                (None, 3) => 0,
                _ => return None,
            };
            let off = (oh * 60 + om) * MICROS_PER_MINUTE;
            Some(if sign == b'+' {
                micros - off
            } else {
                micros + off
            })
        }
        _ => None,
    }
}

/// `:SS.ffffff` and nothing after (the Python design's `isoformat()` with microseconds, 26 bytes
/// in all): the microseconds into the minute, as [`tail`] computes them. `None` for any
/// other shape (then [`tail`] decides).
#[inline]
fn seconds_micros(b: &[u8]) -> Option<Micros> {
    let t: &[u8; 10] = b.get(16..)?.try_into().ok()?;
    if t[0] != b':' || t[3] != b'.' {
        return None;
    }
    let mut v = 0i64;
    for &c in t[1..3].iter().chain(&t[4..]) {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    // v = SSffffff
    let second = v / 1_000_000;
    if second > 60 {
        return None;
    }
    Some(second * 1_000_000 + v % 1_000_000)
}

/// Parses a timestamp into microseconds since the epoch (UTC). `None` when it is not one.
pub fn parse(s: &str) -> Option<Micros> {
    let b = s.as_bytes();
    if b.len() == 10 {
        return date(b);
    }
    tail(b, head(b)?)
}

/// Remembers the last `YYYY-MM-DDTHH:MM` prefix, so consecutive lines of the same minute
/// only parse their seconds.
#[derive(Debug, Clone, Default)]
pub struct Cache {
    prefix: [u8; 16],
    base: Micros,
    valid: bool,
}

/// [`parse`] with a [`Cache`].
#[inline]
pub fn parse_cached(s: &str, c: &mut Cache) -> Option<Micros> {
    let b = s.as_bytes();
    let Some(p) = b.get(..16).and_then(|p| <&[u8; 16]>::try_from(p).ok()) else {
        return parse(s);
    };
    if c.valid && *p == c.prefix {
        return seconds_micros(b)
            .map(|t| c.base + t)
            .or_else(|| tail(b, c.base));
    }
    let base = head(b)?;
    c.prefix.copy_from_slice(p);
    c.base = base;
    c.valid = true;
    tail(b, base)
}

/// `YYYY-MM-DD` of a day number.
pub fn format_day(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DDTHH:MMZ` of a minute number.
pub fn format_minute(minute: i64) -> String {
    use std::fmt::Write as _;
    let (y, m, d) = civil_from_days(minute.div_euclid(1440));
    let rem = minute.rem_euclid(1440);
    // One allocation, sized for the usual four-digit year.
    let mut s = String::with_capacity(17);
    let _ = write!(s, "{y:04}-{m:02}-{d:02}T{:02}:{:02}Z", rem / 60, rem % 60);
    s
}

/// RFC 3339 (UTC, microseconds) of a timestamp.
pub fn format_micros(t: Micros) -> String {
    let day = t.div_euclid(MICROS_PER_DAY);
    let rem = t.rem_euclid(MICROS_PER_DAY);
    let secs = rem / 1_000_000;
    format!(
        "{}T{:02}:{:02}:{:02}.{:06}Z",
        format_day(day),
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        rem % 1_000_000
    )
}

/// Parses a `--since/--until` argument: an RFC 3339 timestamp, a date, or a duration ago
/// (`2h`, `30min`, `7days`, via humantime) relative to `now`.
pub fn parse_bound(s: &str, now: Micros) -> Option<Micros> {
    if let Some(t) = parse(s.trim()) {
        return Some(t);
    }
    let d = humantime::parse_duration(s.trim()).ok()?;
    Some(now - i64::try_from(d.as_micros()).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_python_naive_isoformat_as_utc() {
        let t = parse("2026-11-27T00:00:01.500000").unwrap();
        assert_eq!(format_micros(t), "2026-11-27T00:00:01.500000Z");
        assert_eq!(parse("2026-11-27T00:00:00"), parse("2026-11-27T00:00:00Z"));
    }

    #[test]
    fn applies_offsets() {
        assert_eq!(
            parse("2026-11-27T02:00:00+02:00"),
            parse("2026-11-27T00:00:00Z")
        );
        assert_eq!(
            parse("2026-11-26T22:00:00-0200"),
            parse("2026-11-27T00:00:00Z")
        );
        assert_eq!(
            parse("2026-11-27T00:00:00.123456789Z").unwrap() % 1_000_000,
            123_456
        );
    }

    #[test]
    fn cached_parse_equals_parse() {
        let mut c = Cache::default();
        for s in [
            "2026-11-27T00:00:01.5",
            "2026-11-27T00:00:59Z",
            "2026-11-27T00:00:30+01:00",
            "2026-11-27T00:00x",
            "2026-11-27T00:01:00",
            "2026-11-27",
            "2026-11-27T00:01:00.123456789-0130",
            "2026-11-27T00:01:07.250000",
            "2026-11-27T00:01:61.250000",
            "2026-11-27T00:01:60.999999",
            "2026-11-27T00:01:0x.250000",
            "2026-11-27T00:01:07,250000",
            "2026-11-27T00:01:07.25000Z",
        ] {
            assert_eq!(parse_cached(s, &mut c), parse(s), "{s}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "broken",
            "",
            "2026-13-01T00:00:00",
            "2026-11-27T00:00:00Q",
            "2026-11-27T0",
        ] {
            assert_eq!(parse(s), None, "{s}");
        }
    }

    #[test]
    fn civil_round_trip() {
        for z in [-800_000, -1, 0, 1, 20_000, 3_000_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn format_minute_is_the_day_then_hour_and_minute() {
        let minutes = (-3000i64..3000)
            .chain((29_000_000..29_010_000).step_by(7))
            .chain([-1_000_000_000, 1_000_000_000]);
        for m in minutes {
            let rem = m.rem_euclid(1440);
            let expected = format!(
                "{}T{:02}:{:02}Z",
                format_day(m.div_euclid(1440)),
                rem / 60,
                rem % 60
            );
            assert_eq!(format_minute(m), expected, "{m}");
        }
        assert_eq!(format_minute(29_399_040 + 61), "2025-11-24T01:01Z");
    }
}
