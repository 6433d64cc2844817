//! Reader wall-clock time: most decoders show local time in their configured zone, not UTC.
//!
//! A reader timestamp is a UTC instant as the reader's (wrong) clock sees it; these helpers turn
//! it into the local date and time the protocols print, and back for clock-set commands.

use chrono::{DateTime, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use timing_core::Timestamp;

/// The local wall-clock date and time of `at` in `tz`.
pub(crate) fn to_local(tz: Tz, at: Timestamp) -> NaiveDateTime {
    let utc = DateTime::<Utc>::from_timestamp_micros(at.as_micros()).unwrap_or_default();
    utc.with_timezone(&tz).naive_local()
}

/// Microseconds since 1970-01-01T00:00 *local*: the base of `reader_protocol::ReaderTime::LocalDateTime`.
pub(crate) fn local_micros(tz: Tz, at: Timestamp) -> i64 {
    to_local(tz, at).and_utc().timestamp_micros()
}

/// Microseconds since local midnight.
pub(crate) fn micros_of_day(local: NaiveDateTime) -> u64 {
    u64::from(local.num_seconds_from_midnight()) * 1_000_000 + u64::from(local.nanosecond() / 1000)
}

/// The instant at which the local wall clock in `tz` shows `local` (the earlier one in a DST fold;
/// `None` in a DST gap).
pub(crate) fn from_local(tz: Tz, local: NaiveDateTime) -> Option<Timestamp> {
    tz.from_local_datetime(&local).earliest().map(|d| Timestamp::from_micros(d.timestamp_micros()))
}

/// `at` rounded down to a multiple of `unit_us` (a protocol's time resolution).
pub(crate) fn floor(at: Timestamp, unit_us: i64) -> Timestamp {
    Timestamp::from_micros(at.as_micros().div_euclid(unit_us) * unit_us)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn paris_summer_time_round_trip() {
        let tz: Tz = "Europe/Paris".parse().unwrap();
        // 2024-08-10T07:00:00.123456Z is 09:00:00.123456 in Paris (UTC+2).
        let at = Timestamp::from_micros(1_723_273_200_123_456);
        let local = to_local(tz, at);
        assert_eq!(local, NaiveDate::from_ymd_opt(2024, 8, 10).unwrap().and_hms_micro_opt(9, 0, 0, 123_456).unwrap());
        assert_eq!(micros_of_day(local), 9 * 3_600_000_000 + 123_456);
        assert_eq!(local_micros(tz, at), at.as_micros() + 2 * 3_600_000_000);
        assert_eq!(from_local(tz, local), Some(at));
        assert_eq!(floor(at, 1000), Timestamp::from_micros(1_723_273_200_123_000));
    }
}
