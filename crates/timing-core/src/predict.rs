//! Predicted times: when a runner should reach the next timing point and the finish.
//!
//! The pace is the last segment's (between the two latest accepted passings, the chip start
//! counting as one at distance 0); with only a start, the runner's declared finish time stands
//! in. No prediction for a runner who has not started or whose result is final.
//! "Overdue" needs the current time, which the caller passes in ([`Eta::overdue`]).

use crate::course::{Course, ParticipantIdx};
use crate::result::{ParticipantResult, Status};
use crate::time::{Elapsed, Timestamp};

/// Where a pace comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basis {
    /// The runner's declared finish time (no split yet).
    Declared,
    /// The segment between the two latest passings.
    LastSegment,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Declared => "declared",
            Basis::LastSegment => "last_segment",
        }
    }
}

/// A predicted arrival at one split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Eta {
    /// Index into the race's splits.
    pub split: usize,
    pub at: Timestamp,
    /// The passing the prediction runs from.
    pub from: Timestamp,
}

impl Eta {
    /// Past the predicted instant by more than a tenth of the predicted segment (at least a minute).
    pub fn overdue(&self, now: Timestamp) -> bool {
        let grace = Elapsed::from_micros((self.at.since(self.from).as_micros() / 10).max(60_000_000));
        now > self.at + grace
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prediction {
    pub next: Eta,
    pub finish: Eta,
    /// Per kilometre.
    pub pace_per_km: Elapsed,
    pub basis: Basis,
}

/// The prediction for one participant, if one makes sense.
pub fn predict(course: &Course, p: ParticipantIdx, result: &ParticipantResult) -> Option<Prediction> {
    if !matches!(result.status(), Status::Running | Status::Review) {
        return None;
    }
    let part = course.participant(p);
    let race = course.race(part.race);
    let finish = race.finish_split();
    if result.passings.get(finish).copied().flatten().is_some() {
        return None;
    }
    // Anchors: (split index or None for a start without a mat, distance, instant), in course order.
    let mut anchors: Vec<(Option<usize>, u32, Timestamp)> = Vec::with_capacity(race.splits.len() + 1);
    if race.start_split().is_none() {
        anchors.extend(result.start.map(|s| (None, 0, s.at)));
    }
    for (i, split) in race.splits.iter().enumerate() {
        let passing = if Some(i) == race.start_split() {
            result.passings[i].or(result.start)
        } else {
            result.passings.get(i).copied().flatten()
        };
        if let Some(passing) = passing {
            anchors.push((Some(i), split.distance_m, passing.at));
        }
    }
    let &(last_split, last_m, last_at) = anchors.last()?;
    let segment = anchors.len().checked_sub(2).map(|i| anchors[i]).filter(|&(_, m, _)| m < last_m);
    let (pace_per_km, basis) = match segment {
        Some((_, m, at)) => {
            (Elapsed::from_micros(last_at.since(at).as_micros() * 1000 / i64::from(last_m - m)), Basis::LastSegment)
        }
        None => {
            let declared = part.estimate?;
            (Elapsed::from_micros(declared.as_micros() * 1000 / i64::from(race.distance_m.max(1))), Basis::Declared)
        }
    };
    let next_split = last_split.map_or(0, |i| i + 1);
    let eta = |split: usize| {
        let metres = i64::from(race.splits[split].distance_m.saturating_sub(last_m));
        Eta { split, at: last_at + Elapsed::from_micros(pace_per_km.as_micros() * metres / 1000), from: last_at }
    };
    Some(Prediction { next: eta(next_split.min(finish)), finish: eta(finish), pace_per_km, basis })
}

// Tested through the engine (`engine/tests.rs`, `predictions_*`).
