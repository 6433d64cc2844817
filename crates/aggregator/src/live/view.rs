//! Public views of the race state (`timing_wire::live` DTOs), built from the engine.
//!
//! Pure functions of the engine and the time passed in: the race task builds them, handlers and
//! WebSocket connections only forward the JSON.

use timing_core::predict::predict;
use timing_core::{Board, Course, Elapsed, Engine, ParticipantIdx, PointIdx, Precision, RankBy, Status, Timestamp};
use timing_wire::live::{Arrival, BoardRow, Places, PredictionView, RunnerView, SplitView, Time, Topic};

/// A duration with its published text (rounded up to the second).
pub fn time(t: Elapsed) -> Time {
    Time { ms: t.as_micros().div_euclid(1000), text: results_export::format_time(t, Precision::Seconds) }
}

/// A pace per km as `M:SS` (rounded up to the second, like every published time).
pub fn pace(per_km: Elapsed) -> Time {
    let secs = per_km.publish(Precision::Seconds).as_micros() / 1_000_000;
    Time { ms: per_km.as_micros().div_euclid(1000), text: format!("{}:{:02}", secs / 60, secs % 60) }
}

pub fn status_str(s: Status) -> &'static str {
    match s {
        Status::NotStarted => "not_started",
        Status::Running => "running",
        Status::Finished => "finished",
        Status::Review => "review",
        Status::Dns => "dns",
        Status::Dnf => "dnf",
        Status::Dsq => "dsq",
    }
}

fn name(course: &Course, p: ParticipantIdx) -> String {
    let part = course.participant(p);
    format!("{} {}", part.first_name, part.last_name).trim().to_string()
}

/// One runner, as the public sees them (no birth date, no contact data), at `now`.
pub fn runner(engine: &Engine, p: ParticipantIdx, now: Timestamp) -> RunnerView {
    let course = engine.course();
    let part = course.participant(p);
    let race = course.race(part.race);
    let r = engine.result(p);
    let places = engine.places(p);
    let chip_start = r.start.map(|s| s.at);
    let mut prev: Option<(u32, Timestamp)> = chip_start.map(|at| (0, at));
    let mut distance_m = 0;
    let splits = race
        .splits
        .iter()
        .enumerate()
        .map(|(i, split)| {
            let point = course.point(split.point);
            let passing = r.passings.get(i).copied().flatten();
            let at = passing.map(|p| p.at);
            let segment_pace = match (at, prev) {
                (Some(at), Some((m, from))) if split.distance_m > m => Some(pace(Elapsed::from_micros(
                    at.since(from).as_micros() * 1000 / i64::from(split.distance_m - m),
                ))),
                _ => None,
            };
            if let Some(at) = at {
                prev = Some((split.distance_m, at));
                distance_m = distance_m.max(split.distance_m);
            }
            SplitView {
                point: point.id.as_str().to_string(),
                name: point.name.clone(),
                distance_m: split.distance_m,
                at_us: at.map(Timestamp::as_micros),
                chip: at.zip(chip_start).map(|(at, s)| time(at.since(s))),
                gun: at.zip(r.gun).map(|(at, g)| time(at.since(g))),
                segment_pace,
                provenance: passing.map(|p| p.provenance.as_str().to_string()),
            }
        })
        .collect();
    let prediction = predict(course, p, r).map(|pr| {
        let next = &race.splits[pr.next.split];
        PredictionView {
            next_point: course.point(next.point).id.as_str().to_string(),
            next_name: course.point(next.point).name.clone(),
            next_distance_m: next.distance_m,
            next_at_us: pr.next.at.as_micros(),
            finish_at_us: pr.finish.at.as_micros(),
            finish_chip: time(chip_start.map_or(Elapsed::ZERO, |s| pr.finish.at.since(s))),
            pace: pace(pr.pace_per_km),
            basis: pr.basis.as_str().to_string(),
            overdue: pr.next.overdue(now),
        }
    });
    RunnerView {
        bib: part.bib.as_str().to_string(),
        first_name: part.first_name.clone(),
        last_name: part.last_name.clone(),
        race: race.id.clone(),
        race_name: race.name.clone(),
        race_distance_m: race.distance_m,
        wave: course.wave(part.wave).id.clone(),
        gender: part.gender.code().to_string(),
        category: part.category.map(|c| course.categories[c.idx()].code.clone()),
        division: part.division.as_str().to_string(),
        nation: part.nation.clone(),
        club: part.club.clone(),
        status: status_str(r.status()).to_string(),
        flags: r.flags.names().map(str::to_string).collect(),
        gun_at_us: r.gun.map(Timestamp::as_micros),
        start_at_us: chip_start.map(Timestamp::as_micros),
        gun_time: r.gun_time.map(time),
        chip_time: r.chip_time.map(time),
        places: Places { overall: places.overall, gender: places.gender, category: places.category },
        ranked: race.ranked,
        splits,
        prediction,
        distance_m,
    }
}

/// What a leaderboard position holds, to tell what changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub participant: ParticipantIdx,
    pub place: u32,
    pub time_us: i64,
}

/// The head of a ranking list.
pub fn board_entries(engine: &Engine, board: &Board, depth: usize) -> Vec<Entry> {
    let course = engine.course();
    engine
        .top(board, depth)
        .into_iter()
        .filter_map(|p| {
            let r = engine.result(p);
            let race = course.race(course.participant(p).race);
            let t = match race.rank_by {
                RankBy::Gun => r.gun_time?,
                RankBy::Chip => r.chip_time?,
            };
            let places = engine.places(p);
            let place = match board {
                Board::Overall { .. } => places.overall,
                Board::Gender { .. } => places.gender,
                Board::Category(_) => places.category,
            }?;
            Some(Entry { participant: p, place, time_us: t.as_micros() })
        })
        .collect()
}

pub fn board_row(course: &Course, position: usize, e: &Entry, prev_place: Option<u32>) -> BoardRow {
    let part = course.participant(e.participant);
    BoardRow {
        position: position as u32 + 1,
        place: e.place,
        bib: part.bib.as_str().to_string(),
        name: name(course, e.participant),
        nation: part.nation.clone(),
        club: part.club.clone(),
        gender: part.gender.code().to_string(),
        category: part.category.map(|c| course.categories[c.idx()].code.clone()),
        time: time(Elapsed::from_micros(e.time_us)),
        prev_place,
    }
}

/// A passing at `split` of `p`'s race, for the arrivals feed.
pub fn arrival(engine: &Engine, p: ParticipantIdx, split: usize) -> Option<Arrival> {
    let course = engine.course();
    let part = course.participant(p);
    let race = course.race(part.race);
    let r = engine.result(p);
    let at = r.passings.get(split).copied().flatten()?.at;
    let place = (split == race.finish_split() && race.ranked).then(|| engine.places(p).overall).flatten();
    Some(Arrival {
        bib: part.bib.as_str().to_string(),
        name: name(course, p),
        race: race.id.clone(),
        at_us: at.as_micros(),
        chip: r.start.map(|s| time(at.since(s.at))),
        gun: r.gun.map(|g| time(at.since(g))),
        place,
    })
}

/// The latest `n` passings at a point across every race, newest first (a scan, for rebuilds).
pub fn latest_arrivals(engine: &Engine, point: PointIdx, n: usize) -> Vec<Arrival> {
    let course = engine.course();
    let mut found: Vec<(Timestamp, ParticipantIdx, usize)> = Vec::new();
    for (i, part) in course.participants.iter().enumerate() {
        let p = ParticipantIdx(i as u32);
        let Some(split) = course.race(part.race).split_of(point) else { continue };
        if let Some(passing) = engine.result(p).passings.get(split).copied().flatten() {
            found.push((passing.at, p, split));
        }
    }
    found.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    found.into_iter().take(n).filter_map(|(_, p, split)| arrival(engine, p, split)).collect()
}

/// The wire topic of a resolved key (what messages echo back).
pub fn topic(course: &Course, key: &super::Key) -> Topic {
    match key {
        super::Key::Runner(p) => Topic::Runner { bib: course.participant(*p).bib.as_str().to_string() },
        super::Key::Board(board, depth) => {
            let (race, gender, category, division) = match board {
                Board::Overall { race, division } => (*race, None, None, division.as_str().to_string()),
                Board::Gender { race, division, gender } => {
                    (*race, Some(gender.code().to_string()), None, division.as_str().to_string())
                }
                Board::Category(c) => {
                    let cat = &course.categories[c.idx()];
                    (cat.race, None, Some(cat.code.clone()), cat.division.as_str().to_string())
                }
            };
            Topic::Leaderboard {
                race: course.race(race).id.clone(),
                gender,
                category,
                division: Some(division),
                top: *depth,
            }
        }
        super::Key::Arrivals(point) => Topic::Arrivals { point: course.point(*point).id.as_str().to_string() },
    }
}
