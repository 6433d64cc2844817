//! A reader's clock against the edge's: offset, drift and alarms.
//!
//! Each [`ClockSample`] says what the reader's clock showed, rounded down to its resolution,
//! somewhere between two readings of the edge clock. That bounds the offset to an interval,
//! `[reader - received, reader + resolution - sent)`; the estimate intersects the intervals of the
//! recent samples (newest first, stopping before the intersection would be empty, so a drifting
//! or stepped clock starts a new one) and takes its lower end: a clock shows the true time
//! rounded down, so the truth sits at the lower end of each sample's bounds whenever the answer
//! was read as it was given, and the lower end converges as samples land at different phases of
//! the clock's step (a midpoint would keep half a step of bias). When zero lies inside it the
//! reader's clock is as right as the edge can tell, and nothing is corrected: a well-set reader
//! with a coarse clock (Ultra answers in whole seconds) is never "corrected" by rounding noise.
//! Drift is the slope of the samples' midpoints over edge time. Reads are corrected by
//! subtracting the offset.
//! A sample whose answer came "before" its question (the edge clock stepped back) or that took
//! over [`MAX_RTT`] is discarded; a step of the edge clock therefore shows as an offset change
//! on the next good sample, never as lost or reordered reads (reads keep their arrival order in
//! the outbox whatever their times).

use std::collections::VecDeque;

use chrono_tz::Tz;
use reader_protocol::time::resolve;
use timing_core::{Elapsed, Timestamp};

use crate::link::ClockSample;

/// Samples kept.
const WINDOW: usize = 16;
/// Samples the offset is chosen among (the most recent ones).
const RECENT: usize = 6;
/// A query that took longer than this says little about the clock.
pub const MAX_RTT: Elapsed = Elapsed::from_secs(2);
/// Drift is only estimated over at least this much edge time.
const DRIFT_SPAN: Elapsed = Elapsed::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq)]
struct Point {
    mid: Timestamp,
    /// The offset lies in `[low, high)`.
    low: Elapsed,
    high: Elapsed,
}

impl Point {
    fn center(&self) -> Elapsed {
        self.low + Elapsed::from_micros((self.high - self.low).as_micros() / 2)
    }
}

/// The clock state of one reader.
#[derive(Clone, Debug)]
pub struct ClockEstimator {
    zone: Tz,
    alarm: Elapsed,
    drift_alarm_ppm: f64,
    points: VecDeque<Point>,
    n_discarded: u64,
}

impl ClockEstimator {
    /// `alarm`: the offset above which crews are told (default 0.5 s); drift alarms above
    /// `drift_alarm_ppm`.
    pub fn new(zone: Tz, alarm: Elapsed, drift_alarm_ppm: f64) -> ClockEstimator {
        ClockEstimator { zone, alarm, drift_alarm_ppm, points: VecDeque::with_capacity(WINDOW), n_discarded: 0 }
    }

    /// Takes a sample; returns whether it was used.
    pub fn add(&mut self, s: ClockSample) -> bool {
        let rtt = s.received.since(s.sent);
        if rtt.is_negative() || rtt > MAX_RTT {
            self.n_discarded += 1;
            return false;
        }
        let mid = s.sent + Elapsed::from_micros(rtt.as_micros() / 2);
        let Ok(reader) = resolve(s.reader_time, self.zone, mid) else {
            self.n_discarded += 1;
            return false;
        };
        if self.points.len() == WINDOW {
            self.points.pop_front();
        }
        let low = reader.since(s.received);
        let high = reader.since(s.sent) + s.resolution.max(Elapsed::from_micros(1));
        self.points.push_back(Point { mid, low, high });
        true
    }

    /// The recent samples' intersection, newest first: `(low, high)`.
    fn bounds(&self) -> Option<(Elapsed, Elapsed)> {
        let mut it = self.points.iter().rev().take(RECENT);
        let first = it.next()?;
        let (mut low, mut high) = (first.low, first.high);
        for p in it {
            let (l, h) = (low.max(p.low), high.min(p.high));
            if l >= h {
                break;
            }
            (low, high) = (l, h);
        }
        Some((low, high))
    }

    /// Reader minus edge; `None` before any sample, zero while zero is within the bounds.
    pub fn offset(&self) -> Option<Elapsed> {
        let (low, high) = self.bounds()?;
        if low <= Elapsed::ZERO && Elapsed::ZERO < high {
            return Some(Elapsed::ZERO);
        }
        Some(low)
    }

    /// Microseconds gained per second of edge time (×1e6 = ppm), over the kept samples.
    pub fn drift_ppm(&self) -> Option<f64> {
        let first = self.points.front()?;
        let last = self.points.back()?;
        if last.mid.since(first.mid) < DRIFT_SPAN {
            return None;
        }
        let n = self.points.len() as f64;
        let xs: Vec<f64> = self.points.iter().map(|p| p.mid.since(first.mid).as_micros() as f64).collect();
        let ys: Vec<f64> = self.points.iter().map(|p| p.center().as_micros() as f64).collect();
        let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
        let cov: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
        let var: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
        (var > 0.0).then(|| cov / var * 1e6)
    }

    pub fn n_discarded(&self) -> u64 {
        self.n_discarded
    }

    /// A read's instant on the edge's clock: the reader's time minus the offset.
    pub fn correct(&self, reader_utc: Timestamp) -> Timestamp {
        reader_utc - self.offset().unwrap_or(Elapsed::ZERO)
    }

    /// What a crew should be told.
    pub fn alarms(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(o) = self.offset()
            && o.as_micros().abs() > self.alarm.as_micros()
        {
            out.push(format!(
                "clock offset {:+.3} s exceeds {:.3} s (reads are corrected)",
                o.as_micros() as f64 / 1e6,
                self.alarm.as_micros() as f64 / 1e6
            ));
        }
        if let Some(d) = self.drift_ppm()
            && d.abs() > self.drift_alarm_ppm
        {
            out.push(format!(
                "clock drifts {d:+.1} ppm (over {:.0} ppm): set the reader's clock",
                self.drift_alarm_ppm
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reader_protocol::ReaderTime;

    const T0: Timestamp = Timestamp::from_secs(1_723_316_400);

    fn sample(at_s: f64, offset_ms: i64, rtt_ms: i64) -> ClockSample {
        let sent = T0 + Elapsed::from_micros((at_s * 1e6) as i64);
        let received = sent + Elapsed::from_millis(rtt_ms);
        let mid = sent + Elapsed::from_micros(rtt_ms * 500);
        ClockSample {
            reader_time: ReaderTime::Utc(mid + Elapsed::from_millis(offset_ms)),
            sent,
            received,
            resolution: Elapsed::from_micros(1),
        }
    }

    #[test]
    fn samples_narrow_the_offset_and_reads_are_corrected() {
        let mut c = ClockEstimator::new(chrono_tz::UTC, Elapsed::from_millis(500), 50.0);
        assert_eq!(c.offset(), None);
        // True offset 3.200 s; each sample's answer sits somewhere in its round trip.
        assert!(c.add(sample(0.0, 3210, 40))); // bounds [3.190, 3.230)
        assert_eq!(c.offset(), Some(Elapsed::from_millis(3190)));
        assert!(c.add(sample(1.0, 3198, 4))); // [3.196, 3.200): intersected, [3.196, 3.200)
        assert_eq!(c.offset(), Some(Elapsed::from_millis(3196)));
        assert!(c.add(sample(2.0, 3300, 200))); // [3.200, 3.400): touches the previous bounds only at 3.200
        assert_eq!(c.offset(), Some(Elapsed::from_millis(3200)));
        assert!(c.add(sample(2.5, 3500, 10))); // [3.495, 3.505): disjoint from the rest (a step), so it starts afresh
        assert_eq!(c.offset(), Some(Elapsed::from_millis(3495)));
        assert!(c.add(sample(3.0, 3200, 0))); // a step back: [3.200, 3.200001)
        assert_eq!(c.offset(), Some(Elapsed::from_millis(3200)));
        assert_eq!(c.correct(T0 + Elapsed::from_secs(10)), T0 + Elapsed::from_millis(6800));
        assert_eq!(c.alarms(), vec!["clock offset +3.200 s exceeds 0.500 s (reads are corrected)".to_string()]);
    }

    #[test]
    fn a_coarse_but_right_clock_is_not_corrected() {
        // An Ultra reader reports whole seconds; its clock is exactly right.
        let mut c = ClockEstimator::new(chrono_tz::UTC, Elapsed::from_millis(500), 50.0);
        for phase_ms in [300, 700, 100, 950] {
            let sent = T0 + Elapsed::from_millis(phase_ms);
            let shown = T0; // the second the reader's clock shows, rounded down
            assert!(c.add(ClockSample {
                reader_time: ReaderTime::Utc(shown),
                sent,
                received: sent,
                resolution: Elapsed::from_secs(1)
            }));
            assert_eq!(c.offset(), Some(Elapsed::ZERO), "after the sample at +{phase_ms} ms");
        }
        // A coarse clock 3.2 s fast: the bounds close in on it.
        let mut c = ClockEstimator::new(chrono_tz::UTC, Elapsed::from_millis(500), 50.0);
        for phase_ms in [300, 700, 100, 950, 790, 810] {
            let sent = T0 + Elapsed::from_millis(phase_ms);
            let shown = Timestamp::from_secs((sent + Elapsed::from_millis(3200)).as_micros().div_euclid(1_000_000));
            c.add(ClockSample {
                reader_time: ReaderTime::Utc(shown),
                sent,
                received: sent,
                resolution: Elapsed::from_secs(1),
            });
        }
        // Never above the truth, and within the smallest phase gap of it (the 790/810 ms pair).
        let o = c.offset().unwrap().as_micros();
        assert!(o <= 3_200_000 && 3_200_000 - o <= 10_000, "{o}");
    }

    #[test]
    fn an_edge_clock_step_back_or_a_slow_answer_is_discarded() {
        let mut c = ClockEstimator::new(chrono_tz::UTC, Elapsed::from_millis(500), 50.0);
        assert!(!c.add(sample(0.0, 100, -5)));
        assert!(!c.add(sample(0.0, 100, 3000)));
        assert_eq!((c.offset(), c.n_discarded()), (None, 2));
    }

    #[test]
    fn drift_is_the_slope_of_offsets() {
        let mut c = ClockEstimator::new(chrono_tz::UTC, Elapsed::from_millis(500), 50.0);
        // 100 ppm: 100 µs more offset every second, sampled every 10 s for two minutes.
        for k in 0..13 {
            assert!(c.add(sample(10.0 * k as f64, k, 2)));
        }
        let d = c.drift_ppm().unwrap();
        assert!((d - 100.0).abs() < 1.0, "{d}");
        assert!(c.alarms().iter().any(|a| a.starts_with("clock drifts +100.0 ppm")), "{:?}", c.alarms());
    }

    #[test]
    fn local_reader_times_are_read_in_the_zone() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let mut c = ClockEstimator::new(paris, Elapsed::from_millis(500), 50.0);
        let sent = T0;
        let local = reader_protocol::time::local_date_time(T0 + Elapsed::from_millis(1200), paris).unwrap();
        assert!(c.add(ClockSample {
            reader_time: ReaderTime::LocalDateTime(local),
            sent,
            received: sent,
            resolution: Elapsed::from_micros(1)
        }));
        assert_eq!(c.offset(), Some(Elapsed::from_millis(1200)));
    }
}
