//! Instants and durations as integer microseconds.
//!
//! All instants are UTC microseconds since the Unix epoch.
//! Durations are differences of instants, never differences of wall-clock times, so a 21:00 start
//! finishing at 01:30 the next day is 4:30:00 and no elapsed time can come out negative by a date
//! roll-over.
//! Floating point never appears: publication rounding works on integer ticks (see [`Elapsed::publish`]).

use std::fmt;
use std::ops::{Add, Neg, Sub};

/// Microseconds in one second.
pub const MICROS_PER_SEC: i64 = 1_000_000;

/// A UTC instant in integer microseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const MIN: Timestamp = Timestamp(i64::MIN);
    pub const MAX: Timestamp = Timestamp(i64::MAX);

    pub const fn from_micros(us: i64) -> Timestamp {
        Timestamp(us)
    }
    pub const fn as_micros(self) -> i64 {
        self.0
    }
    pub const fn from_secs(s: i64) -> Timestamp {
        Timestamp(s * MICROS_PER_SEC)
    }
    /// Elapsed time from `earlier` to `self` (negative if `earlier` is later).
    pub const fn since(self, earlier: Timestamp) -> Elapsed {
        Elapsed(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T{}", self.0)
    }
}

impl Add<Elapsed> for Timestamp {
    type Output = Timestamp;
    fn add(self, rhs: Elapsed) -> Timestamp {
        Timestamp(self.0.saturating_add(rhs.0))
    }
}

impl Sub<Elapsed> for Timestamp {
    type Output = Timestamp;
    fn sub(self, rhs: Elapsed) -> Timestamp {
        Timestamp(self.0.saturating_sub(rhs.0))
    }
}

/// A signed duration in integer microseconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Elapsed(i64);

impl Elapsed {
    pub const ZERO: Elapsed = Elapsed(0);

    pub const fn from_micros(us: i64) -> Elapsed {
        Elapsed(us)
    }
    pub const fn from_millis(ms: i64) -> Elapsed {
        Elapsed(ms * 1_000)
    }
    pub const fn from_secs(s: i64) -> Elapsed {
        Elapsed(s * MICROS_PER_SEC)
    }
    pub const fn as_micros(self) -> i64 {
        self.0
    }
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// Scales a per-kilometre pace to a distance in metres, rounding towards zero.
    pub const fn pace_over(self, distance_m: u32) -> Elapsed {
        Elapsed(((self.0 as i128 * distance_m as i128) / 1000) as i64)
    }

    /// The published value: rounded *up* to the next whole unit of `precision`
    /// (World Athletics TR 19.24.5: "the next longer whole second").
    /// Works on integer ticks, so an exact whole second stays itself and nothing is ever shortened.
    pub const fn publish(self, precision: Precision) -> Elapsed {
        let unit = precision.unit_micros();
        Elapsed(ceil_div(self.0, unit) * unit)
    }
}

const fn ceil_div(a: i64, b: i64) -> i64 {
    let q = a.div_euclid(b);
    if a.rem_euclid(b) == 0 { q } else { q + 1 }
}

impl Add for Elapsed {
    type Output = Elapsed;
    fn add(self, rhs: Elapsed) -> Elapsed {
        Elapsed(self.0.saturating_add(rhs.0))
    }
}

impl Sub for Elapsed {
    type Output = Elapsed;
    fn sub(self, rhs: Elapsed) -> Elapsed {
        Elapsed(self.0.saturating_sub(rhs.0))
    }
}

impl Neg for Elapsed {
    type Output = Elapsed;
    fn neg(self) -> Elapsed {
        Elapsed(self.0.saturating_neg())
    }
}

impl fmt::Debug for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}us", self.0)
    }
}

/// Formats as `H:MM:SS` with the fraction the value carries (`H:MM:SS.ffffff` trimmed to
/// milliseconds when the value is a whole millisecond). Hours are not wrapped at 24.
impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let us = self.0.unsigned_abs();
        let secs = us / 1_000_000;
        let frac = us % 1_000_000;
        let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
        write!(f, "{sign}{h}:{m:02}:{s:02}")?;
        if frac == 0 {
            Ok(())
        } else if frac.is_multiple_of(1000) {
            write!(f, ".{:03}", frac / 1000)
        } else {
            write!(f, ".{frac:06}")
        }
    }
}

/// The resolution times are published at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Precision {
    /// Whole seconds, rounded up (the World Athletics rule).
    #[default]
    Seconds,
    /// Whole milliseconds, rounded up.
    Millis,
}

impl Precision {
    pub const fn unit_micros(self) -> i64 {
        match self {
            Precision::Seconds => MICROS_PER_SEC,
            Precision::Millis => 1_000,
        }
    }
}

/// The source of "now" for code that needs one (the shell passes it in; race logic never calls it).
pub trait Clock {
    fn now(&self) -> Timestamp;
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_rounds_up_to_the_next_longer_second() {
        // The rule's own example: 2:09:44.3 is recorded as 2:09:45.
        let t = Elapsed::from_micros((2 * 3600 + 9 * 60 + 44) * MICROS_PER_SEC + 300_000);
        assert_eq!(t.publish(Precision::Seconds).to_string(), "2:09:45");
        // A whole second is not lengthened; one microsecond more is.
        assert_eq!(Elapsed::from_secs(44).publish(Precision::Seconds), Elapsed::from_secs(44));
        assert_eq!(Elapsed::from_micros(44 * MICROS_PER_SEC + 1).publish(Precision::Seconds), Elapsed::from_secs(45));
        assert_eq!(Elapsed::from_micros(1_234_001).publish(Precision::Millis).to_string(), "0:00:01.235");
    }

    #[test]
    fn display_does_not_wrap_hours() {
        assert_eq!(Elapsed::from_secs(27 * 3600 + 61).to_string(), "27:01:01");
        assert_eq!(Elapsed::from_micros(1_500).to_string(), "0:00:00.001500");
    }

    #[test]
    fn elapsed_across_midnight_is_an_instant_difference() {
        // 2024-08-10T19:00:00Z (21:00 in Paris) to 2024-08-10T23:30:00Z (01:30 next day in Paris).
        let gun = Timestamp::from_secs(1_723_316_400);
        let finish = Timestamp::from_secs(1_723_316_400 + 4 * 3600 + 30 * 60);
        assert_eq!(finish.since(gun).to_string(), "4:30:00");
    }

    proptest::proptest! {
        #[test]
        fn rounding_never_shortens_and_adds_less_than_one_unit(us in 0i64..10_000_000_000_000) {
            let t = Elapsed::from_micros(us);
            for p in [Precision::Seconds, Precision::Millis] {
                let r = t.publish(p);
                proptest::prop_assert!(r >= t);
                proptest::prop_assert!(r.as_micros() - t.as_micros() < p.unit_micros());
                proptest::prop_assert_eq!(r.as_micros() % p.unit_micros(), 0);
            }
        }
    }
}
