//! Turning a reader's own time base into a UTC instant.
//!
//! Readers report UTC (LLRP), their local wall clock with a date (RACE RESULT, Ultra), or only a
//! time of day (JChip, some IPICO records).
//! A local wall-clock time is read in the reader's IANA zone; a time of day gets the date that
//! puts it nearest to a reference instant (the wave's gun), which must be within ±12 h, so a
//! 00:41 finish of a 21:00 start lands on the next day and nothing breaks at midnight.
//! Clock offsets are not applied here: that is the edge's measurement, added afterwards.

use chrono::{DateTime, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use timing_core::{Elapsed, Timestamp};

use crate::ReaderTime;

const DAY_US: i64 = 86_400_000_000;
const HALF_DAY_US: i64 = DAY_US / 2;

/// Why a reader time has no UTC instant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("local time {0} does not exist in {1} (skipped by a daylight-saving change)")]
    Nonexistent(String, Tz),
    #[error("time {0} is out of range")]
    OutOfRange(i64),
}

/// Resolves a reader time. `reference` is the instant a time of day is attached near (the gun of
/// the read's wave, or the event's first start); it also picks between the two meanings of a local
/// time that happens twice when clocks go back.
pub fn resolve(time: ReaderTime, zone: Tz, reference: Timestamp) -> Result<Timestamp, TimeError> {
    match time {
        ReaderTime::Utc(t) => Ok(t),
        ReaderTime::LocalDateTime(local_us) => local_to_utc(local_us, zone, reference),
        ReaderTime::TimeOfDay(us) => {
            // Day counters (a decoder's days since it started) reduce to a time of day.
            let tod = us.rem_euclid(DAY_US);
            let ref_local = local_micros(reference, zone).ok_or(TimeError::OutOfRange(reference.as_micros()))?;
            let ref_day_start = ref_local - ref_local.rem_euclid(DAY_US);
            // Candidates on the reference's local day and either side; the nearest wins.
            let mut best: Option<Timestamp> = None;
            for day in [-1i64, 0, 1] {
                let local = ref_day_start + day * DAY_US + tod;
                let Ok(t) = local_to_utc(local, zone, reference) else { continue };
                if best.is_none_or(|b| distance(t, reference) < distance(b, reference)) {
                    best = Some(t);
                }
            }
            let t = best.ok_or(TimeError::OutOfRange(us))?;
            debug_assert!(distance(t, reference) <= HALF_DAY_US + 3_600_000_000, "within ±12 h (±1 h around DST)");
            Ok(t)
        }
    }
}

fn distance(a: Timestamp, b: Timestamp) -> i64 {
    a.since(b).as_micros().abs()
}

/// Microseconds since 1970-01-01T00:00 on the local wall clock of `zone` at instant `t`.
pub fn local_micros(t: Timestamp, zone: Tz) -> Option<i64> {
    let utc = DateTime::from_timestamp_micros(t.as_micros())?;
    Some(utc.with_timezone(&zone).naive_local().and_utc().timestamp_micros())
}

fn local_to_utc(local_us: i64, zone: Tz, reference: Timestamp) -> Result<Timestamp, TimeError> {
    let naive: NaiveDateTime =
        DateTime::from_timestamp_micros(local_us).ok_or(TimeError::OutOfRange(local_us))?.naive_utc();
    match zone.from_local_datetime(&naive) {
        chrono::LocalResult::Single(dt) => Ok(Timestamp::from_micros(dt.timestamp_micros())),
        chrono::LocalResult::Ambiguous(a, b) => {
            let (a, b) = (Timestamp::from_micros(a.timestamp_micros()), Timestamp::from_micros(b.timestamp_micros()));
            Ok(if distance(a, reference) <= distance(b, reference) { a } else { b })
        }
        chrono::LocalResult::None => {
            // A decoder whose clock was not moved forward still says 02:30 on the spring night:
            // say so instead of guessing.
            Err(TimeError::Nonexistent(naive.to_string(), zone))
        }
    }
}

/// `at` as a time of day on the local clock of `zone` (microseconds since local midnight).
pub fn time_of_day(at: Timestamp, zone: Tz) -> Option<i64> {
    local_micros(at, zone).map(|l| l.rem_euclid(DAY_US))
}

/// `at` on the local wall clock of `zone`, as [`ReaderTime::LocalDateTime`] micros.
pub fn local_date_time(at: Timestamp, zone: Tz) -> Option<i64> {
    local_micros(at, zone)
}

/// Twelve hours, the furthest a time of day is attached from its reference.
pub const ATTACH_WINDOW: Elapsed = Elapsed::from_micros(HALF_DAY_US);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn paris() -> Tz {
        "Europe/Paris".parse().unwrap()
    }

    /// 2024-08-10T19:00:00Z: 21:00 in Paris, the marathon gun.
    const GUN: Timestamp = Timestamp::from_secs(1_723_316_400);

    fn tod(h: i64, m: i64, s: i64) -> ReaderTime {
        ReaderTime::TimeOfDay(((h * 60 + m) * 60 + s) * 1_000_000)
    }

    #[test]
    fn a_time_of_day_after_midnight_lands_on_the_next_day() {
        // 00:41:07 Paris on 2024-08-11 is 22:41:07 UTC on the 10th.
        assert_eq!(resolve(tod(0, 41, 7), paris(), GUN).unwrap(), Timestamp::from_secs(1_723_329_667));
        // 20:55 before the 21:00 gun stays on the 10th; 08:59 next morning is 11h59 after it.
        assert_eq!(resolve(tod(20, 55, 0), paris(), GUN).unwrap(), GUN - Elapsed::from_secs(300));
        assert_eq!(resolve(tod(8, 59, 0), paris(), GUN).unwrap(), GUN + Elapsed::from_secs(11 * 3600 + 59 * 60));
        // A day counter from a decoder without a date reduces to a time of day.
        assert_eq!(
            resolve(ReaderTime::TimeOfDay(86_400_000_000 + 3_600_000_000), paris(), GUN).unwrap(),
            resolve(tod(1, 0, 0), paris(), GUN).unwrap()
        );
    }

    #[test]
    fn local_date_times_use_the_zone_and_dst_is_handled() {
        let local = local_date_time(GUN, paris()).unwrap();
        assert_eq!(resolve(ReaderTime::LocalDateTime(local), paris(), GUN).unwrap(), GUN);
        // 2024-10-27 02:30 happens twice in Paris: the one nearer the reference wins.
        let twice = NaiveDateTime::parse_from_str("2024-10-27 02:30:00", "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc()
            .timestamp_micros();
        let first = Timestamp::from_secs(1_729_989_000); // 00:30 UTC (CEST)
        let second = Timestamp::from_secs(1_729_992_600); // 01:30 UTC (CET)
        assert_eq!(resolve(ReaderTime::LocalDateTime(twice), paris(), first).unwrap(), first);
        assert_eq!(resolve(ReaderTime::LocalDateTime(twice), paris(), second).unwrap(), second);
        let skipped = NaiveDateTime::parse_from_str("2024-03-31 02:30:00", "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc()
            .timestamp_micros();
        assert!(matches!(resolve(ReaderTime::LocalDateTime(skipped), paris(), GUN), Err(TimeError::Nonexistent(..))));
        assert_eq!(resolve(ReaderTime::Utc(GUN), paris(), Timestamp::from_secs(0)).unwrap(), GUN);
    }

    proptest! {
        #[test]
        fn time_of_day_round_trips_within_twelve_hours(offset_s in -43_000i64..43_000, frac in 0i64..1_000_000) {
            let at = GUN + Elapsed::from_micros(offset_s * 1_000_000 + frac);
            let t = time_of_day(at, paris()).unwrap();
            prop_assert_eq!(resolve(ReaderTime::TimeOfDay(t), paris(), GUN).unwrap(), at);
        }
    }
}
