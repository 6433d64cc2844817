//! Playing a generated race into emulated hardware, in accelerated real time.
//!
//! Every raw read of a [`race_sim::SimRace`] becomes a [`Detection`] for the reader emulator on
//! its point and line, at the moment the simulation clock reaches its true instant; every wave's
//! actual gun pulses the start-gun contact wired to it.
//! Events due together are sent together, so a 30× race at a busy finish costs one wake-up per
//! batch, not one per read.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use race_sim::SimRace;
use timing_core::time::Clock;
use timing_core::{Line, PointIdx, Rssi, Timestamp, WaveIdx};

use crate::Detection;
use crate::clock::{AcceleratedClock, ManualClock};
use crate::modbus::DeviceHandle;
use crate::readers::ReaderHandle;

/// Where things go: the reader on each point and line, the gun contacts of each wave.
#[derive(Debug, Default)]
pub struct Routes {
    pub readers: HashMap<(PointIdx, Line), Arc<ReaderHandle>>,
    /// For each wave, the device and channel whose contact its gun closes.
    pub guns: HashMap<WaveIdx, (Arc<DeviceHandle>, u16)>,
}

/// How far the player got (shared, so a progress bar can watch it).
#[derive(Debug, Default)]
pub struct Progress {
    pub reads_sent: AtomicU64,
    pub reads_unrouted: AtomicU64,
    pub guns_fired: AtomicU64,
    /// Simulation time of the last event sent, in microseconds.
    pub sim_now_us: AtomicU64,
}

/// How the race clock moves while the player waits for the next event.
pub trait Pacer: Clock {
    /// Returns once the clock shows `at` (or later).
    fn until(&self, at: Timestamp) -> impl std::future::Future<Output = ()> + Send;
}

/// Real time, sped up: sleep until the race clock gets there.
impl Pacer for AcceleratedClock {
    async fn until(&self, at: Timestamp) {
        let wait = self.wall_until(at);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Simulated time for tests: the clock jumps to each event, so a whole race plays as fast as the
/// machine allows and every emulator sees exactly the instant of the event it is handed.
impl Pacer for ManualClock {
    async fn until(&self, at: Timestamp) {
        if at > self.now() {
            self.set(at);
        }
        // Let the emulators' tasks see the new time before the next batch.
        tokio::task::yield_now().await;
    }
}

/// A race clock shared through a file, played as fast as the machine allows: the clock jumps to
/// each event, and every process reading the file sees exactly that instant.
impl Pacer for crate::clock::FileClock {
    async fn until(&self, at: Timestamp) {
        if at > self.now() {
            self.set(at);
        }
        tokio::task::yield_now().await;
    }
}

/// The shared file clock played at `speed` × real time: it still jumps from event to event (so
/// time stands still between them and clock measurements stay exact), but never ahead of
/// `speed` × the wall time since the start.
#[derive(Debug)]
pub struct PacedFileClock {
    pub clock: crate::clock::FileClock,
    pub speed: f64,
    wall_origin: std::time::Instant,
    sim_origin: Timestamp,
}

impl PacedFileClock {
    pub fn new(clock: crate::clock::FileClock, speed: f64) -> PacedFileClock {
        let sim_origin = clock.now();
        PacedFileClock { clock, speed, wall_origin: std::time::Instant::now(), sim_origin }
    }
}

impl Clock for PacedFileClock {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

impl Pacer for PacedFileClock {
    async fn until(&self, at: Timestamp) {
        let ahead_us = at.since(self.sim_origin).as_micros().max(0) as f64 / self.speed;
        let due = self.wall_origin + std::time::Duration::from_micros(ahead_us as u64);
        tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
        self.clock.until(at).await;
    }
}

enum Event {
    Gun(WaveIdx),
    Read(usize),
}

/// Plays the whole race and returns when its last event has been sent.
pub async fn play(race: &SimRace, routes: &Routes, clock: &impl Pacer, progress: &Progress) {
    let reads = race.reads();
    let mut events: Vec<(Timestamp, Event)> = race.guns.iter().map(|(w, at)| (*at, Event::Gun(*w))).collect();
    events.extend(reads.iter().enumerate().map(|(i, r)| (r.at, Event::Read(i))));
    events.sort_by_key(|(at, e)| (*at, matches!(e, Event::Read(_))));

    let point_of: HashMap<&str, PointIdx> =
        race.course.points.iter().enumerate().map(|(i, p)| (p.id.as_str(), PointIdx(i as u16))).collect();
    let mut i = 0;
    while i < events.len() {
        clock.until(events[i].0).await;
        let now = clock.now();
        while i < events.len() && events[i].0 <= now {
            let (at, event) = &events[i];
            match event {
                Event::Gun(w) => {
                    if let Some((device, channel)) = routes.guns.get(w) {
                        device.pulse(*channel, std::time::Duration::from_millis(200));
                        progress.guns_fired.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Event::Read(k) => {
                    let r = &reads[*k];
                    let reader = point_of.get(r.point.as_str()).and_then(|p| routes.readers.get(&(*p, r.line)));
                    match reader {
                        Some(reader) => {
                            reader.detect(Detection {
                                chip: r.chip.to_string(),
                                at: r.at,
                                antenna: r.antenna,
                                rssi: r.rssi.unwrap_or(Rssi(-700)),
                            });
                            progress.reads_sent.fetch_add(1, Ordering::Relaxed);
                        }
                        None => {
                            progress.reads_unrouted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            progress.sim_now_us.store(at.as_micros().max(0) as u64, Ordering::Relaxed);
            i += 1;
        }
    }
}
