//! A reader's clock against the edge's: offset, drift and alarms.
//!
//! Each [`ClockSample`] says what the reader's clock showed somewhere between two readings of
//! the edge clock. Its offset is `reader - midpoint`, uncertain by half the round trip; like NTP,
//! the estimate takes the sample with the shortest round trip among the recent ones. Drift is
//! the slope of offsets over edge time. Reads are corrected by subtracting the offset.
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
    offset: Elapsed,
    rtt: Elapsed,
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
        self.points.push_back(Point { mid, offset: reader.since(mid), rtt });
        true
    }

    /// Reader minus edge, from the best recent sample; `None` before any sample.
    pub fn offset(&self) -> Option<Elapsed> {
        self.points.iter().rev().take(RECENT).min_by_key(|p| (p.rtt, std::cmp::Reverse(p.mid))).map(|p| p.offset)
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
        let ys: Vec<f64> = self.points.iter().map(|p| p.offset.as_micros() as f64).collect();
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
        ClockSample { reader_time: ReaderTime::Utc(mid + Elapsed::from_millis(offset_ms)), sent, received }
    }

    #[test]
    fn the_shortest_round_trip_wins_and_reads_are_corrected() {
        let mut c = ClockEstimator::new(chrono_tz::UTC, Elapsed::from_millis(500), 50.0);
        assert_eq!(c.offset(), None);
        assert!(c.add(sample(0.0, 3210, 40)));
        assert!(c.add(sample(1.0, 3190, 4)));
        assert!(c.add(sample(2.0, 3300, 200)));
        assert_eq!(c.offset(), Some(Elapsed::from_millis(3190)));
        assert_eq!(c.correct(T0 + Elapsed::from_secs(10)), T0 + Elapsed::from_millis(6810));
        assert_eq!(c.alarms(), vec!["clock offset +3.190 s exceeds 0.500 s (reads are corrected)".to_string()]);
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
        assert!(c.add(ClockSample { reader_time: ReaderTime::LocalDateTime(local), sent, received: sent }));
        assert_eq!(c.offset(), Some(Elapsed::from_millis(1200)));
    }
}
