//! From crossings to passings: the timing rules, as one pure function per participant.
//!
//! The rules (World Athletics road-running practice, and what RACE RESULT, ChronoTrack, RUFUS and
//! PikaTimer do; sources in `shared/research/rules-and-algorithms.md` §2 and §5):
//! - Main and backup lines merge into one passing: a backup crossing within the point's line
//!   tolerance of a main crossing is the same passing; the backup only fills a miss.
//! - Strays (a chip read continuously past the stray limit) never score.
//! - Start = the *last* start crossing in `[gun, gun + start_window]`; reads before the gun never
//!   count; none → chip start = gun, flagged `start_from_gun`.
//! - Every other split = the *first* crossing in its validity window, measured from the last
//!   accepted passing: `[anchor + d·min_pace, anchor + d·max_pace]`, and never after
//!   `gun + time_limit`. A later crossing never replaces an accepted one.
//! - A crossing that is too fast for its window is not accepted silently (`impossible_pace`, review);
//!   two or more consecutive missing mandatory points put the result in review.
//! - A manual passing from the desk wins over chip crossings at its split.

use crate::correction::StatusOverride;
use crate::course::{RaceDef, TimingPoint, Wave};
use crate::crossing::Crossings;
use crate::result::{Flags, ParticipantResult, Passing, Provenance, Status};
use crate::time::{Elapsed, Timestamp};

/// A crossing that may become a passing at one split, after line merge and clock correction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub at: Timestamp,
    pub provenance: Provenance,
    pub hits: u32,
}

impl Candidate {
    fn passing(self) -> Passing {
        Passing { at: self.at, provenance: self.provenance, hits: self.hits }
    }
}

/// Merges one point's main and backup crossings into sorted candidates.
/// Returns the candidates and whether any crossing was a stray.
pub fn candidates(
    point: &TimingPoint,
    main: &Crossings,
    backup: &Crossings,
    clock_offset: Elapsed,
) -> (Vec<Candidate>, bool) {
    let mut stray = false;
    let mut out: Vec<Candidate> = Vec::with_capacity(main.as_slice().len() + 1);
    for c in main.as_slice() {
        if c.is_stray(point.stray_after) {
            stray = true;
            continue;
        }
        let at = c.time(point.time_mode) + clock_offset;
        out.push(Candidate { at, provenance: Provenance::ChipMain, hits: c.hits });
    }
    let n_main = out.len();
    for c in backup.as_slice() {
        if c.is_stray(point.stray_after) {
            stray = true;
            continue;
        }
        let at = c.time(point.time_mode) + clock_offset + point.backup_offset;
        let seen_by_main =
            out[..n_main].iter().any(|m| (m.at.since(at)).as_micros().abs() <= point.line_tolerance.as_micros());
        if !seen_by_main {
            out.push(Candidate { at, provenance: Provenance::ChipBackup, hits: c.hits });
        }
    }
    out.sort_unstable_by_key(|c| (c.at, c.provenance == Provenance::ChipBackup));
    (out, stray)
}

/// Everything the rules need about one participant, already gathered by the engine.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub race: &'a RaceDef,
    pub wave: &'a Wave,
    /// The gun in effect, and whether it is only the scheduled start.
    pub gun: Timestamp,
    pub gun_scheduled: bool,
    /// Candidates per split of the race, in course order.
    pub candidates: &'a [Vec<Candidate>],
    /// Desk-entered times per split.
    pub manual: &'a [Option<Timestamp>],
    pub stray: bool,
    pub wrong_race: bool,
    pub status_override: Option<StatusOverride>,
}

/// Applies the timing rules to one participant.
pub fn resolve(inp: &Inputs<'_>) -> ParticipantResult {
    let race = inp.race;
    let n = race.splits.len();
    debug_assert_eq!(inp.candidates.len(), n);
    debug_assert_eq!(inp.manual.len(), n);
    let gun = inp.gun;
    let mut flags = Flags::empty();
    if inp.gun_scheduled {
        flags.insert(Flags::GUN_SCHEDULED);
    }
    if inp.stray {
        flags.insert(Flags::STRAY);
    }
    if inp.wrong_race {
        flags.insert(Flags::WRONG_RACE);
    }
    let mut passings: Vec<Option<Passing>> = vec![None; n];
    let mut started = false;

    let note = |flags: &mut Flags, p: &Passing| match p.provenance {
        Provenance::Manual => flags.insert(Flags::MANUAL),
        Provenance::ChipBackup => flags.insert(Flags::BACKUP),
        _ => {}
    };

    // The start.
    let start_idx = race.start_split();
    let gun_start = Passing { at: gun, provenance: Provenance::GunFallback, hits: 0 };
    let start = match start_idx {
        Some(s) => {
            let close = gun + inp.wave.start_window;
            let chosen = match inp.manual[s] {
                Some(at) => Some(Passing { at, provenance: Provenance::Manual, hits: 0 }),
                None => inp.candidates[s].iter().rev().find(|c| c.at >= gun && c.at <= close).map(|c| c.passing()),
            };
            match chosen {
                Some(p) => {
                    note(&mut flags, &p);
                    passings[s] = Some(p);
                    started = true;
                    p
                }
                None => {
                    if inp.candidates[s].iter().any(|c| c.at > close) {
                        flags.insert(Flags::LATE_START);
                        started = true;
                    }
                    flags.insert(Flags::START_FROM_GUN);
                    gun_start
                }
            }
        }
        None => {
            flags.insert(Flags::START_FROM_GUN);
            gun_start
        }
    };

    // Every later split, in course order, windowed from the last accepted passing.
    let limit = gun + race.time_limit;
    let mut anchor = (start.at, 0u32);
    let first = start_idx.map_or(0, |s| s + 1);
    for (i, split) in race.splits.iter().enumerate().skip(first) {
        let chosen = match inp.manual[i] {
            Some(at) => Some(Passing { at, provenance: Provenance::Manual, hits: 0 }),
            None => {
                let d = split.distance_m.saturating_sub(anchor.1);
                let lo = anchor.0 + split.min_pace_per_km.pace_over(d);
                let hi = (anchor.0 + split.max_pace_per_km.pace_over(d)).min(limit);
                let cands = &inp.candidates[i];
                let found = cands.iter().find(|c| c.at >= lo && c.at <= hi);
                if found.is_none() {
                    if cands.iter().any(|c| c.at > anchor.0 && c.at < lo) {
                        flags.insert(Flags::IMPOSSIBLE_PACE);
                    }
                    if cands.iter().any(|c| c.at > limit) {
                        flags.insert(Flags::OVER_TIME_LIMIT);
                    }
                }
                found.map(|c| c.passing())
            }
        };
        if let Some(p) = chosen {
            note(&mut flags, &p);
            passings[i] = Some(p);
            anchor = (p.at, split.distance_m);
            started = true;
        }
    }
    if flags.contains(Flags::IMPOSSIBLE_PACE) {
        started = true;
    }
    if !started {
        // Nothing says this participant ever started: no start to fall back on.
        flags = flags.without(Flags::START_FROM_GUN);
    }

    // Missing mandatory points, counted only up to the last accepted passing.
    if let Some(last) = passings.iter().rposition(Option::is_some) {
        let mut run = 0;
        let mut longest = 0;
        let mut any = false;
        let upto = last.max(first);
        for (split, passing) in race.splits[first..upto].iter().zip(&passings[first..upto]) {
            if split.mandatory && passing.is_none() {
                run += 1;
                any = true;
                longest = longest.max(run);
            } else {
                run = 0;
            }
        }
        if longest >= 2 {
            flags.insert(Flags::MISSING_CONSECUTIVE);
        } else if any {
            flags.insert(Flags::MISSING_POINT);
        }
    }

    let finish_idx = race.finish_split();
    let finish = if Some(finish_idx) == start_idx { None } else { passings[finish_idx] };
    let (gun_time, chip_time) = match finish {
        Some(f) => (Some(f.at.since(gun)), Some(f.at.since(start.at))),
        None => (None, None),
    };

    let base = if finish.is_some() {
        Status::Finished
    } else if started {
        Status::Running
    } else {
        Status::NotStarted
    };
    let status = match inp.status_override {
        Some(StatusOverride::Dns) => Status::Dns,
        Some(StatusOverride::Dnf) => Status::Dnf,
        Some(StatusOverride::Dsq) => Status::Dsq,
        Some(StatusOverride::Accept) => {
            flags.insert(Flags::ACCEPTED);
            base
        }
        None if started && flags.intersects(Flags::REVIEW) => Status::Review,
        None => base,
    };

    ParticipantResult {
        status: Some(status),
        gun: Some(gun),
        start: started.then_some(start),
        passings,
        gun_time,
        chip_time,
        flags,
    }
}
