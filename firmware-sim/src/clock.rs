//! Time for emulators: the simulation's "now", and each reader's own clock.

use std::sync::Arc;

use timing_core::time::Clock;
use timing_core::{Elapsed, Timestamp};

/// A clock shared by the emulators of one simulation.
pub type SharedClock = Arc<dyn Clock + Send + Sync>;

/// The machine's UTC clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970");
        Timestamp::from_micros(d.as_micros() as i64)
    }
}

/// Race time played faster than real time: `sim_origin + speed × (wall time since wall_origin)`.
///
/// Anchored to Unix wall time (not a process-local `Instant`), so several processes of one
/// simulation (emulators, edges, the aggregator) share the same race clock: one process makes
/// it and hands the others its [`spec`](AcceleratedClock::spec).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AcceleratedClock {
    wall_origin: Timestamp,
    sim_origin: Timestamp,
    speed: f64,
}

impl AcceleratedClock {
    /// Starts now.
    pub fn new(sim_origin: Timestamp, speed: f64) -> AcceleratedClock {
        AcceleratedClock::anchored(sim_origin, SystemClock.now(), speed)
    }

    /// Race time `sim_origin` at wall time `wall_origin`, running `speed` times faster.
    pub fn anchored(sim_origin: Timestamp, wall_origin: Timestamp, speed: f64) -> AcceleratedClock {
        assert!(speed > 0.0, "speed must be positive");
        AcceleratedClock { wall_origin, sim_origin, speed }
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// `SIM_ORIGIN_US@WALL_ORIGIN_USxSPEED`, for [`AcceleratedClock::parse`] in another process.
    pub fn spec(&self) -> String {
        format!("{}@{}x{}", self.sim_origin.as_micros(), self.wall_origin.as_micros(), self.speed)
    }

    pub fn parse(spec: &str) -> Result<AcceleratedClock, String> {
        let bad = || format!("bad simulation clock {spec:?}: expected SIM_US@WALL_USxSPEED");
        let (sim, rest) = spec.split_once('@').ok_or_else(bad)?;
        let (wall, speed) = rest.split_once('x').ok_or_else(bad)?;
        let speed: f64 = speed.parse().map_err(|_| bad())?;
        if speed.is_nan() || speed <= 0.0 {
            return Err(bad());
        }
        Ok(AcceleratedClock::anchored(
            Timestamp::from_micros(sim.parse().map_err(|_| bad())?),
            Timestamp::from_micros(wall.parse().map_err(|_| bad())?),
            speed,
        ))
    }

    /// How long to wait in wall time until the simulation reaches `at` (zero if it has).
    pub fn wall_until(&self, at: Timestamp) -> std::time::Duration {
        let ahead = at.since(self.now()).as_micros();
        if ahead <= 0 {
            std::time::Duration::ZERO
        } else {
            std::time::Duration::from_micros((ahead as f64 / self.speed) as u64)
        }
    }
}

impl Clock for AcceleratedClock {
    fn now(&self) -> Timestamp {
        let wall = SystemClock.now().since(self.wall_origin).as_micros() as f64;
        self.sim_origin + Elapsed::from_micros((wall * self.speed) as i64)
    }
}

/// A clock that moves only when told to: tests use it to know every reader time exactly.
#[derive(Debug)]
pub struct ManualClock(std::sync::Mutex<Timestamp>);

impl ManualClock {
    pub fn new(at: Timestamp) -> ManualClock {
        ManualClock(std::sync::Mutex::new(at))
    }
    pub fn set(&self, at: Timestamp) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = at;
    }
    pub fn advance(&self, by: Elapsed) {
        let mut t = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *t = *t + by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The machine's clock plus a step read from a file (microseconds, as text; missing = 0):
/// lets a test step a running process's clock forward and back, as NTP or a crew might.
#[derive(Clone, Debug)]
pub struct SteppedClock {
    path: std::path::PathBuf,
}

impl SteppedClock {
    pub fn new(path: impl Into<std::path::PathBuf>) -> SteppedClock {
        SteppedClock { path: path.into() }
    }
    /// Sets the step every process reading `path` sees from now on.
    pub fn step_file(path: &std::path::Path, step: Elapsed) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, step.as_micros().to_string())?;
        std::fs::rename(tmp, path)
    }
}

impl Clock for SteppedClock {
    fn now(&self) -> Timestamp {
        let step = std::fs::read_to_string(&self.path).ok().and_then(|s| s.trim().parse::<i64>().ok()).unwrap_or(0);
        SystemClock.now() + Elapsed::from_micros(step)
    }
}

/// A race clock several processes share through a file: the race time is whatever the file
/// says (microseconds, 8 bytes little-endian) and moves only when the player writes it.
///
/// Time standing still between two events is what makes a whole simulated race exact across
/// processes: an edge's clock query and the emulated reader's answer happen at the same race
/// instant, so measured offsets carry no round trip at all.
#[derive(Debug)]
pub struct FileClock {
    file: std::fs::File,
}

impl FileClock {
    /// Creates (or resets) the clock file at `start`.
    pub fn create(path: &std::path::Path, start: Timestamp) -> std::io::Result<FileClock> {
        let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        let c = FileClock { file };
        c.set(start);
        Ok(c)
    }
    /// Follows a clock file another process writes.
    pub fn open(path: &std::path::Path) -> std::io::Result<FileClock> {
        Ok(FileClock { file: std::fs::OpenOptions::new().read(true).write(true).open(path)? })
    }
    pub fn set(&self, at: Timestamp) {
        use std::os::unix::fs::FileExt;
        // One aligned 8-byte write: readers see the old or the new time, never a mix.
        if let Err(error) = self.file.write_all_at(&at.as_micros().to_le_bytes(), 0) {
            tracing::error!(%error, "cannot write the shared race clock");
        }
    }
}

impl Clock for FileClock {
    fn now(&self) -> Timestamp {
        use std::os::unix::fs::FileExt;
        let mut b = [0u8; 8];
        match self.file.read_exact_at(&mut b, 0) {
            Ok(()) => Timestamp::from_micros(i64::from_le_bytes(b)),
            Err(_) => Timestamp::from_micros(0),
        }
    }
}

/// A reader's clock: true time plus an offset and a linear drift (parts per million), the way a
/// decoder's crystal wanders from UTC after it was last set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReaderClock {
    /// Reader time minus true time at `epoch`.
    pub offset: Elapsed,
    /// Extra microseconds per second of true time.
    pub drift_ppm: f64,
    pub epoch: Timestamp,
}

impl ReaderClock {
    pub fn exact() -> ReaderClock {
        ReaderClock { offset: Elapsed::ZERO, drift_ppm: 0.0, epoch: Timestamp::from_micros(0) }
    }
    /// What the reader's clock shows at true instant `utc`.
    pub fn reader_time(&self, utc: Timestamp) -> Timestamp {
        let since = utc.since(self.epoch).as_micros() as f64;
        utc + self.offset + Elapsed::from_micros((since * self.drift_ppm / 1e6) as i64)
    }
    /// The true instant at which the reader's clock shows `reader` (inverse of [`Self::reader_time`]).
    pub fn true_time(&self, reader: Timestamp) -> Timestamp {
        // reader = utc + offset + (utc - epoch)·k  ⇒  utc = (reader - offset + epoch·k) / (1 + k)
        let k = self.drift_ppm / 1e6;
        let r = (reader - self.offset).as_micros() as f64;
        let e = self.epoch.as_micros() as f64;
        Timestamp::from_micros(((r + e * k) / (1.0 + k)).round() as i64)
    }
    /// The reader was set to show `reader_now` at true instant `utc_now` (a SETTIME command);
    /// its drift carries on from there.
    pub fn set(&mut self, utc_now: Timestamp, reader_now: Timestamp) {
        self.epoch = utc_now;
        self.offset = reader_now.since(utc_now);
    }
    pub fn step(&mut self, by: Elapsed) {
        self.offset = self.offset + by;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_clock_offset_drift_and_set() {
        let t0 = Timestamp::from_secs(1_723_316_400);
        let mut c = ReaderClock { offset: Elapsed::from_millis(2500), drift_ppm: 20.0, epoch: t0 };
        assert_eq!(c.reader_time(t0), t0 + Elapsed::from_millis(2500));
        // 20 ppm over an hour is 72 ms.
        let hour = t0 + Elapsed::from_secs(3600);
        assert_eq!(c.reader_time(hour), hour + Elapsed::from_millis(2572));
        assert!((c.true_time(c.reader_time(hour)).since(hour)).as_micros().abs() <= 1);
        c.set(hour, hour);
        assert_eq!(c.reader_time(hour), hour);
        c.step(Elapsed::from_secs(-3));
        assert_eq!(c.reader_time(hour), hour - Elapsed::from_secs(3));
    }

    #[test]
    fn manual_clock_moves_when_told() {
        let t0 = Timestamp::from_secs(1_723_316_400);
        let c = ManualClock::new(t0);
        assert_eq!(c.now(), t0);
        c.advance(Elapsed::from_millis(1500));
        assert_eq!(c.now(), t0 + Elapsed::from_millis(1500));
        c.set(t0);
        assert_eq!(c.now(), t0);
    }

    #[test]
    fn a_file_clock_is_shared_and_stands_still() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("race-clock");
        let t0 = Timestamp::from_secs(1_723_316_400);
        let writer = FileClock::create(&path, t0).unwrap();
        let reader = FileClock::open(&path).unwrap();
        assert_eq!((reader.now(), reader.now()), (t0, t0));
        writer.set(t0 + Elapsed::from_millis(1500));
        assert_eq!(reader.now(), t0 + Elapsed::from_millis(1500));
    }

    #[test]
    fn accelerated_clock_runs_faster() {
        let origin = Timestamp::from_secs(1_723_316_400);
        let c = AcceleratedClock::new(origin, 1000.0);
        let a = c.now();
        assert!(a >= origin);
        assert!(c.wall_until(origin + Elapsed::from_secs(10)) <= std::time::Duration::from_millis(10));
        assert_eq!(c.wall_until(origin), std::time::Duration::ZERO);
        // Another process rebuilds the same clock from its spec.
        let d = AcceleratedClock::parse(&c.spec()).unwrap();
        assert_eq!(d, c);
        assert!(AcceleratedClock::parse("1@2x0").is_err());
        assert!(AcceleratedClock::parse("nonsense").is_err());
    }
}
