//! Field parsing and formatting shared by the text protocols: integers, times of day, civil dates.
//!
//! Everything parses from byte slices without allocating, because the decoders run per tag read.
//! Civil-date arithmetic is Howard Hinnant's `days_from_civil`, so no time-zone library is involved:
//! readers report local wall-clock values and the edge applies the zone.

use std::io::Write;

pub(crate) const MICROS_PER_SEC: u64 = 1_000_000;
pub(crate) const MICROS_PER_DAY: u64 = 86_400 * MICROS_PER_SEC;

/// Splits a line into fields at `sep`, without allocating.
pub(crate) fn fields(line: &[u8], sep: u8) -> impl Iterator<Item = &[u8]> {
    line.split(move |&b| b == sep)
}

/// Unsigned decimal; no sign, no spaces, at least one digit, no overflow.
pub(crate) fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(v)
}

pub(crate) fn parse_u32(s: &[u8]) -> Option<u32> {
    parse_u64(s).and_then(|v| u32::try_from(v).ok())
}

pub(crate) fn parse_u16(s: &[u8]) -> Option<u16> {
    parse_u64(s).and_then(|v| u16::try_from(v).ok())
}

pub(crate) fn parse_u8(s: &[u8]) -> Option<u8> {
    parse_u64(s).and_then(|v| u8::try_from(v).ok())
}

/// Signed decimal with an optional leading `-` or `+`.
pub(crate) fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, s),
    };
    let v = i64::try_from(parse_u64(digits)?).ok()?;
    Some(if neg { -v } else { v })
}

pub(crate) fn parse_i32(s: &[u8]) -> Option<i32> {
    parse_i64(s).and_then(|v| i32::try_from(v).ok())
}

/// Hexadecimal, either case, at least one digit.
pub(crate) fn parse_hex_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        v = (v << 4) | u64::from(hex_digit(b)?);
    }
    Some(v)
}

pub(crate) fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Exactly `n` decimal digits.
pub(crate) fn fixed_digits(s: &[u8], n: usize) -> Option<u32> {
    if s.len() != n {
        return None;
    }
    parse_u32(s)
}

/// A time of day `H:MM:SS[.f]` as microseconds since midnight.
///
/// Hours, minutes and seconds take one or two digits (some readers do not pad), the fraction one
/// to nine digits (digits past the sixth are dropped, not rounded).
pub(crate) fn parse_time_of_day(s: &[u8]) -> Option<u64> {
    let (hms, frac) = match s.iter().position(|&b| b == b'.') {
        Some(p) => (&s[..p], Some(&s[p + 1..])),
        None => (s, None),
    };
    let mut parts = fields(hms, b':');
    let h = parse_small(parts.next()?)?;
    let m = parse_small(parts.next()?)?;
    let sec = parse_small(parts.next()?)?;
    if parts.next().is_some() || h > 23 || m > 59 || sec > 59 {
        return None;
    }
    let frac_us = match frac {
        Some(f) => parse_fraction(f)?,
        None => 0,
    };
    Some((u64::from(h) * 3600 + u64::from(m) * 60 + u64::from(sec)) * MICROS_PER_SEC + frac_us)
}

/// One or two decimal digits.
fn parse_small(s: &[u8]) -> Option<u8> {
    if s.is_empty() || s.len() > 2 {
        return None;
    }
    parse_u8(s)
}

/// Decimal fraction digits after the point, as microseconds.
pub(crate) fn parse_fraction(f: &[u8]) -> Option<u64> {
    if f.is_empty() || f.len() > 9 || !f.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut us = 0u64;
    for i in 0..6 {
        us = us * 10 + f.get(i).map_or(0, |&b| u64::from(b - b'0'));
    }
    Some(us)
}

/// Writes `HH:MM:SS.f…` with `digits` fraction digits, or six when that would lose precision.
pub(crate) fn write_time_of_day(out: &mut Vec<u8>, micros: u64, digits: u32) {
    let secs = micros / MICROS_PER_SEC;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let _ = write!(out, "{h:02}:{m:02}:{s:02}");
    write_fraction(out, micros % MICROS_PER_SEC, digits);
}

/// Writes `.f…` for the microseconds within a second, with `digits` digits when exact, else six.
pub(crate) fn write_fraction(out: &mut Vec<u8>, us: u64, digits: u32) {
    let unit = 10u64.pow(6 - digits);
    if us.is_multiple_of(unit) {
        let _ = write!(out, ".{:0width$}", us / unit, width = digits as usize);
    } else {
        let _ = write!(out, ".{us:06}");
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(crate) fn is_valid_date(year: i64, month: u32, day: u32) -> bool {
    if !(1..=12).contains(&month) || day == 0 {
        return false;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    day <= days
}

/// Microseconds since 1970-01-01T00:00 of a wall-clock date and time (no zone applied).
pub(crate) fn local_micros(year: i64, month: u32, day: u32, micros_of_day: u64) -> i64 {
    days_from_civil(year, month, day) * MICROS_PER_DAY as i64 + micros_of_day as i64
}

/// Bytes as text: UTF-8 when valid, otherwise ISO-8859-1 (what RACE RESULT decoders send).
pub(crate) fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_i64(b"-71"), Some(-71));
        assert_eq!(parse_i64(b"-"), None);
        assert_eq!(parse_hex_u64(b"0001A"), Some(26));
    }

    #[test]
    fn times_of_day() {
        assert_eq!(parse_time_of_day(b"00:00:02.773"), Some(2_773_000));
        assert_eq!(parse_time_of_day(b"10:11:16.443300"), Some(36_676_443_300));
        assert_eq!(parse_time_of_day(b"9:5:1"), Some(32_701_000_000));
        assert_eq!(parse_time_of_day(b"24:00:00"), None);
        assert_eq!(parse_time_of_day(b"10:11"), None);
        let mut out = Vec::new();
        write_time_of_day(&mut out, 36_676_443_300, 4);
        assert_eq!(out, b"10:11:16.4433");
        out.clear();
        write_time_of_day(&mut out, 36_676_443_301, 3);
        assert_eq!(out, b"10:11:16.443301");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1980, 1, 1), 3652);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert!(is_valid_date(2024, 2, 29));
        assert!(!is_valid_date(2023, 2, 29));
        assert_eq!(text(&[b'M', 0xfc, b'n']), "Mün");
    }
}
