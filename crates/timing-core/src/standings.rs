//! Standings: every participant in publication order, with places.

use crate::course::{ParticipantIdx, RankBy};
use crate::engine::{Engine, Places};
use crate::result::Status;

/// One line of the standings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row {
    pub participant: ParticipantIdx,
    /// Live status, or the published final status (`DNS`/`DNF` for not started/running).
    pub status: Status,
    pub places: Places,
}

/// All participants: by race (config order), finishers by place (or time, for unranked races),
/// then results under review, then DNF, DSQ and DNS; bib order within equal keys.
pub fn standings(engine: &Engine, final_standings: bool) -> Vec<Row> {
    let course = engine.course();
    // (race, status class, rank time, bib order, row)
    type Keyed<'a> = (u16, u8, i64, (u64, &'a str), Row);
    let mut rows: Vec<Keyed<'_>> = course
        .participants
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let p = ParticipantIdx(i as u32);
            let r = engine.result(p);
            let status = if final_standings { r.status().final_status() } else { r.status() };
            let class = match status {
                Status::Finished => 0,
                Status::Review => 1,
                Status::Running => 2,
                Status::Dnf => 3,
                Status::Dsq => 4,
                Status::NotStarted | Status::Dns => 5,
            };
            let time = match course.race(part.race).rank_by {
                RankBy::Gun => r.gun_time,
                RankBy::Chip => r.chip_time,
            };
            let time = time.map_or(i64::MAX, |t| t.as_micros());
            (part.race.0, class, time, part.bib.sort_key(), Row { participant: p, status, places: engine.places(p) })
        })
        .collect();
    rows.sort_by(|a, b| (a.0, a.1, a.2, a.3).cmp(&(b.0, b.1, b.2, b.3)));
    rows.into_iter().map(|r| r.4).collect()
}
