//! The race generator's truth as the page tests read it. Include it from a test file with
//! `#[path = "support/truth.rs"] mod truth;`.

// Each test binary that includes this uses only part of it.
#![allow(dead_code)]

use std::path::PathBuf;

use race_sim::{SimRace, Truth};
use timing_core::{Elapsed, Precision, Timestamp};

pub(crate) fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

pub(crate) fn bib(race: &SimRace, t: &Truth) -> String {
    race.course.participant(t.participant).bib.as_str().to_string()
}

pub(crate) fn race_id(race: &SimRace, t: &Truth) -> String {
    race.course.race(race.course.participant(t.participant).race).id.clone()
}

pub(crate) fn text(e: Elapsed) -> String {
    results_export::format_time(e, Precision::Seconds)
}

/// When the runner crossed the finish: their wave's actual gun plus their gun time.
pub(crate) fn finish_at(race: &SimRace, t: &Truth) -> Option<Timestamp> {
    let wave = race.course.participant(t.participant).wave;
    let gun = race.guns.iter().find(|(w, _)| *w == wave)?.1;
    Some(gun + t.gun_time?)
}

/// Where the truth says the runner passed split `i` (chip start plus the split's chip time).
pub(crate) fn split_at(t: &Truth, i: usize) -> Option<Timestamp> {
    Some(t.start? + t.splits.get(i).copied().flatten()?)
}
