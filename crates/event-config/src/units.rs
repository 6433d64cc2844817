//! Human-written times in config files: durations, paces and instants.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use timing_core::{Elapsed, Timestamp};

/// `H:MM:SS`, `MM:SS` or `SS`, each with an optional fraction (`1:02:03.5`).
pub fn parse_duration(s: &str) -> Result<Elapsed, String> {
    let s = s.trim();
    let bad = || format!("invalid duration {s:?}: expected H:MM:SS, MM:SS or SS (with an optional .fraction)");
    let (whole, frac_us) = match s.split_once('.') {
        Some((w, f)) => {
            if f.is_empty() || f.len() > 6 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            (w, f.parse::<i64>().map_err(|_| bad())? * 10i64.pow(6 - f.len() as u32))
        }
        None => (s, 0),
    };
    let parts: Vec<&str> = whole.split(':').collect();
    if parts.is_empty()
        || parts.len() > 3
        || parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    let nums: Vec<i64> = parts.iter().map(|p| p.parse::<i64>()).collect::<Result<_, _>>().map_err(|_| bad())?;
    if nums.iter().skip(1).any(|&n| n >= 60) {
        return Err(bad());
    }
    let secs = nums.iter().fold(0i64, |acc, &n| acc * 60 + n);
    Ok(Elapsed::from_micros(secs * 1_000_000 + frac_us))
}

/// A pace per kilometre, `M:SS` (the same syntax as a duration).
pub fn parse_pace(s: &str) -> Result<Elapsed, String> {
    parse_duration(s).map_err(|e| format!("{e} (a pace per km, like 4:30)"))
}

/// An instant: RFC 3339 with a zone (`2024-08-10T21:00:00+02:00`, `…Z`), or a local date-time
/// (`2024-08-10T21:00:00`, `2024-08-10 21:00:00.25`) read in the event's time zone.
pub fn parse_instant(s: &str, zone: Tz) -> Result<Timestamp, String> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Ok(Timestamp::from_micros(dt.timestamp_micros()));
    }
    let naive = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .ok_or_else(|| {
            format!("invalid date-time {s:?}: expected 2024-08-10T21:00:00 (local) or RFC 3339 with an offset")
        })?;
    local_to_utc(naive, zone)
}

/// A local wall-clock time in `zone` as a UTC instant; ambiguous or skipped times (DST changes)
/// are refused rather than guessed.
pub fn local_to_utc(naive: NaiveDateTime, zone: Tz) -> Result<Timestamp, String> {
    match zone.from_local_datetime(&naive) {
        chrono::LocalResult::Single(dt) => Ok(Timestamp::from_micros(dt.timestamp_micros())),
        chrono::LocalResult::Ambiguous(a, b) => Err(format!(
            "local time {naive} is ambiguous in {zone} (daylight-saving change: {} or {}); write it with an offset",
            a.to_rfc3339(),
            b.to_rfc3339()
        )),
        chrono::LocalResult::None => {
            Err(format!("local time {naive} does not exist in {zone} (daylight-saving change)"))
        }
    }
}

pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| format!("invalid date {s:?}: expected YYYY-MM-DD"))
}

/// Formats a UTC instant as RFC 3339 in UTC with microseconds (`2024-08-10T19:00:00.000000Z`).
pub fn format_utc(t: Timestamp) -> String {
    DateTime::from_timestamp_micros(t.as_micros())
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .unwrap_or_else(|| format!("{}us", t.as_micros()))
}

/// Formats a UTC instant as local wall-clock time of day in `zone` (`23:41:07.250`).
pub fn format_local_time(t: Timestamp, zone: Tz) -> String {
    DateTime::from_timestamp_micros(t.as_micros())
        .map(|d| d.with_timezone(&zone).format("%H:%M:%S%.3f").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("6:30:00").unwrap(), Elapsed::from_secs(6 * 3600 + 1800));
        assert_eq!(parse_duration("2:30").unwrap(), Elapsed::from_secs(150));
        assert_eq!(parse_duration("45").unwrap(), Elapsed::from_secs(45));
        assert_eq!(parse_duration("1:00:00.25").unwrap(), Elapsed::from_micros(3_600_250_000));
        for bad in ["", "1:60", "a:00", "1::0", "1:00:00:00", "1.", "-5"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn instants_local_and_utc() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let a = parse_instant("2024-08-10T21:00:00", paris).unwrap();
        let b = parse_instant("2024-08-10T19:00:00Z", paris).unwrap();
        assert_eq!(a, b);
        assert_eq!(format_utc(a), "2024-08-10T19:00:00.000000Z");
        assert_eq!(format_local_time(a, paris), "21:00:00.000");
        // The autumn change: 02:30 happens twice in Paris on 2024-10-27.
        assert!(parse_instant("2024-10-27T02:30:00", paris).unwrap_err().contains("ambiguous"));
        assert!(parse_instant("2024-03-31T02:30:00", paris).unwrap_err().contains("does not exist"));
    }
}
