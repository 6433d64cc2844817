//! Who said when each wave started: the event file, edges' start-gun inputs, the desk.
//!
//! The engine applies one gun per wave (the desk's if any, else the latest signal, else the
//! event file's); this book keeps every claim so that disagreeing sources are shown to the
//! results desk rather than silently resolved.

use timing_core::{Course, Elapsed, Engine, Timestamp, WaveIdx};
use timing_wire::desk::{GunClaim, WaveGun};

/// The source label of the guns in the aggregator's corrections file.
pub const CORRECTIONS_FILE: &str = "corrections file";

/// Claims further apart than this (plus their stated jitter) disagree.
pub const GUN_TOLERANCE: Elapsed = Elapsed::from_millis(1000);

#[derive(Clone, Debug, PartialEq, Eq)]
struct Claim {
    source: String,
    at: Timestamp,
    jitter_us: i64,
    from_desk: bool,
    /// Order of arrival, for "the desk spoke after the conflict".
    n: u64,
}

/// Who claims a gun time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub label: String,
    /// How uncertain the source says it is.
    pub jitter_us: i64,
    /// The results desk (it has the last word).
    pub from_desk: bool,
}

#[derive(Clone, Debug, Default)]
pub struct GunBook {
    waves: Vec<Vec<Claim>>,
    n: u64,
}

impl GunBook {
    /// The event file's actual guns (scheduled starts are not claims).
    pub fn new(course: &Course) -> GunBook {
        let mut book = GunBook { waves: vec![Vec::new(); course.waves.len()], n: 0 };
        for (i, w) in course.waves.iter().enumerate() {
            if let Some(at) = w.gun_time {
                book.push(WaveIdx(i as u16), "event file".into(), Some(at), 0, false);
            }
        }
        book
    }

    /// Records a claim by `race`/`wave` ids; `at: None` withdraws the source's claim (a desk undo).
    pub fn claim(&mut self, course: &Course, (race, wave): (&str, &str), at: Option<Timestamp>, source: Source) {
        let Some(w) = course.race_by_id(race).and_then(|r| course.wave_by_id(r, wave)) else { return };
        self.push(w, source.label, at, source.jitter_us, source.from_desk);
    }

    fn push(&mut self, w: WaveIdx, source: String, at: Option<Timestamp>, jitter_us: i64, from_desk: bool) {
        self.n += 1;
        let claims = &mut self.waves[w.idx()];
        // One claim per source: a source that speaks again replaces what it said.
        claims.retain(|c| c.source != source);
        if let Some(at) = at {
            claims.push(Claim { source, at, jitter_us, from_desk, n: self.n });
        }
    }

    /// The gun a wave has when the desk says nothing: the corrections file's, else the latest
    /// device signal's; `None` leaves the event file's or the scheduled start (the engine's own
    /// fallback). What undoing the desk's only gun for a wave gives back.
    pub fn without_desk(&self, course: &Course, race: &str, wave: &str) -> Option<Timestamp> {
        let w = course.race_by_id(race).and_then(|r| course.wave_by_id(r, wave))?;
        let claims = || self.waves[w.idx()].iter().filter(|c| !c.from_desk && c.source != "event file");
        let file = claims().filter(|c| c.source == CORRECTIONS_FILE).max_by_key(|c| c.n);
        file.or_else(|| claims().max_by_key(|c| c.n)).map(|c| c.at)
    }

    /// Every wave with its claims, the gun in effect, and whether the sources disagree.
    pub fn report(&self, engine: &Engine) -> Vec<WaveGun> {
        let course = engine.course();
        course
            .waves
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let claims = &self.waves[i];
                let (in_effect, scheduled_only) = engine.gun(WaveIdx(i as u16));
                let conflict = claims.iter().enumerate().any(|(k, a)| {
                    claims[k + 1..].iter().any(|b| {
                        (a.at.since(b.at).as_micros()).abs() > GUN_TOLERANCE.as_micros() + a.jitter_us + b.jitter_us
                    })
                });
                let last_disagreeing = claims.iter().filter(|c| !c.from_desk).map(|c| c.n).max().unwrap_or(0);
                let resolved_by_desk = conflict && claims.iter().any(|c| c.from_desk && c.n > last_disagreeing);
                WaveGun {
                    race: course.race(w.race).id.clone(),
                    wave: w.id.clone(),
                    scheduled_us: w.scheduled_start.as_micros(),
                    in_effect_us: in_effect.as_micros(),
                    scheduled_only,
                    claims: claims
                        .iter()
                        .map(|c| GunClaim { source: c.source.clone(), at_us: c.at.as_micros(), jitter_us: c.jitter_us })
                        .collect(),
                    conflict,
                    resolved_by_desk,
                }
            })
            .collect()
    }
}
