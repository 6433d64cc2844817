//! The timing rules, one test each, through the engine; and the incremental-equals-batch property.

use proptest::prelude::*;

use super::*;
use crate::course::*;
use crate::read::{PointId, Rssi};
use crate::result::Provenance;

/// 2024-08-10T19:00:00Z: 21:00 in Paris, the marathon gun.
const GUN_S: i64 = 1_723_316_400;

fn at(s: f64) -> Timestamp {
    Timestamp::from_micros(GUN_S * 1_000_000 + (s * 1e6).round() as i64)
}

fn pace(min: i64, sec: i64) -> Elapsed {
    Elapsed::from_secs(min * 60 + sec)
}

fn point(id: &str) -> TimingPoint {
    TimingPoint {
        id: PointId::new(id),
        name: id.to_uppercase(),
        time_mode: TimeMode::First,
        quiet_gap: Elapsed::from_millis(400),
        stray_after: Elapsed::from_secs(8),
        backup_offset: Elapsed::ZERO,
        line_tolerance: Elapsed::from_secs(20),
    }
}

fn split(point: u16, km: u32) -> Split {
    Split {
        point: PointIdx(point),
        distance_m: km * 1000,
        mandatory: true,
        min_pace_per_km: pace(2, 30),
        max_pace_per_km: pace(20, 0),
    }
}

/// A 20 km race (start, km5, km10, km15, finish) and a 10 km race sharing start and km5 and
/// finishing on the same line; wave A at the gun, wave B 30 minutes later.
fn course() -> Course {
    let points = vec![point("start"), point("km5"), point("km10"), point("km15"), point("finish"), point("km10b")];
    let long = RaceDef {
        id: "20k".into(),
        name: "20 km".into(),
        distance_m: 20_000,
        min_age: None,
        ranked: true,
        rank_by: RankBy::Gun,
        time_limit: Elapsed::from_secs(4 * 3600),
        splits: vec![split(0, 0), split(1, 5), split(2, 10), split(3, 15), split(4, 20)],
    };
    let short = RaceDef {
        id: "10k".into(),
        name: "10 km".into(),
        distance_m: 10_000,
        min_age: None,
        ranked: false,
        rank_by: RankBy::Gun,
        time_limit: Elapsed::from_secs(2 * 3600),
        splits: vec![split(0, 0), split(1, 5), split(4, 10)],
    };
    let wave = |id: &str, race: u16, offset_s: i64| Wave {
        id: id.into(),
        race: RaceIdx(race),
        scheduled_start: at(offset_s as f64),
        gun_time: Some(at(offset_s as f64)),
        start_window: Elapsed::from_secs(20 * 60),
    };
    let mut participants = Vec::new();
    for i in 0..8u32 {
        participants.push(Participant {
            bib: Bib::new(&(i + 1).to_string()),
            chips: vec![ChipId::new(&format!("C{}", i + 1))],
            first_name: format!("First{i}"),
            last_name: format!("Last{i}"),
            gender: if i % 2 == 0 { Gender::Female } else { Gender::Male },
            age: Some(30 + i as u16),
            race: RaceIdx(if i < 6 { 0 } else { 1 }),
            wave: WaveIdx(if i < 3 {
                0
            } else if i < 6 {
                1
            } else {
                2
            }),
            division: if i == 5 { Division(std::sync::Arc::from("wheelchair")) } else { Division::running() },
            category: None,
            nation: "FRA".into(),
            club: String::new(),
            estimate: None,
        });
    }
    Course {
        points,
        races: vec![long, short],
        waves: vec![wave("A", 0, 0), wave("B", 0, 1800), wave("T", 1, 9000)],
        categories: Vec::new(),
        participants,
    }
}

fn read(chip: &str, point: &str, line: Line, t: Timestamp, rssi: Option<i16>) -> Read {
    Read {
        chip: ChipId::new(chip),
        at: t,
        point: PointId::new(point),
        line,
        reader: ReaderId::new(&format!("{point}-{line:?}")),
        antenna: 1,
        rssi: rssi.map(Rssi),
        reader_seq: None,
    }
}

/// A burst of `n` reads 100 ms apart starting at `s` seconds after the first gun.
fn burst(chip: &str, point: &str, line: Line, s: f64, n: usize) -> Vec<Read> {
    (0..n).map(|k| read(chip, point, line, at(s + 0.1 * k as f64), Some(-700 + 10 * k as i16))).collect()
}

/// A clean race for bib `chip` over the 20 km course starting `delay` s after
/// its wave gun at `gun_s` (6:00/km: 2:00:00 for the 20 km).
fn clean_run(chip: &str, gun_s: f64, delay: f64) -> Vec<Read> {
    let mut v = Vec::new();
    for (i, p) in ["start", "km5", "km10", "km15", "finish"].iter().enumerate() {
        v.extend(burst(chip, p, Line::Main, gun_s + delay + 1800.0 * i as f64, 5));
    }
    v
}

fn engine_with(reads: &[Read]) -> Engine {
    let mut e = Engine::new(course(), EngineOptions::default());
    for r in reads {
        e.handle_read(r);
    }
    e
}

fn bib(e: &Engine, b: &str) -> ParticipantIdx {
    e.participant_by_bib(b).unwrap()
}

#[track_caller]
fn check(e: &Engine, b: &str, status: Status, gun_time: Option<&str>, chip_time: Option<&str>, flags: &[&str]) {
    let r = e.result(bib(e, b));
    assert_eq!(r.status(), status, "status of bib {b}: {r:?}");
    assert_eq!(r.gun_time.map(|t| t.to_string()).as_deref(), gun_time, "gun time of bib {b}");
    assert_eq!(r.chip_time.map(|t| t.to_string()).as_deref(), chip_time, "chip time of bib {b}");
    assert_eq!(r.flags.names().collect::<Vec<_>>(), flags, "flags of bib {b}");
}

#[test]
fn clean_run_gives_gun_and_chip_time_from_first_reads() {
    let e = engine_with(&clean_run("C1", 0.0, 12.5));
    check(&e, "1", Status::Finished, Some("2:00:12.500"), Some("2:00:00"), &[]);
    let r = e.result(bib(&e, "1"));
    assert_eq!(r.passings[2].unwrap().hits, 5);
    assert_eq!(r.split_elapsed(1).unwrap().to_string(), "0:30:00");
}

#[test]
fn peak_rssi_mode_takes_the_strongest_read() {
    let mut c = course();
    c.points[4].time_mode = TimeMode::PeakRssi;
    let mut e = Engine::new(c, EngineOptions::default());
    for r in clean_run("C1", 0.0, 0.0) {
        e.handle_read(&r);
    }
    // The burst's RSSI rises with every read: the last of five (0.4 s in) is the peak.
    check(&e, "1", Status::Finished, Some("2:00:00.400"), Some("2:00:00.400"), &[]);
}

#[test]
fn start_is_the_last_crossing_in_the_window_and_pre_gun_reads_never_count() {
    let mut reads = clean_run("C1", 0.0, 40.0);
    // Standing on the mat before the gun, then a first crossing, back to the toilets, and the real one.
    reads.extend(burst("C1", "start", Line::Main, -60.0, 3));
    reads.extend(burst("C1", "start", Line::Main, 10.0, 3));
    let e = engine_with(&reads);
    check(&e, "1", Status::Finished, Some("2:00:40"), Some("2:00:00"), &[]);
}

#[test]
fn no_valid_start_crossing_means_chip_start_is_the_gun() {
    let mut reads: Vec<Read> = clean_run("C1", 0.0, 30.0).into_iter().filter(|r| r.point.as_str() != "start").collect();
    reads.extend(burst("C1", "start", Line::Main, -5.0, 3));
    let e = engine_with(&reads);
    check(&e, "1", Status::Finished, Some("2:00:30"), Some("2:00:30"), &["start_from_gun"]);
    assert_eq!(e.result(bib(&e, "1")).start.unwrap().provenance, Provenance::GunFallback);
}

#[test]
fn a_start_after_the_window_is_flagged_for_review() {
    let e = engine_with(&clean_run("C1", 0.0, 25.0 * 60.0));
    check(&e, "1", Status::Review, Some("2:25:00"), Some("2:25:00"), &["start_from_gun", "late_start"]);
}

#[test]
fn a_later_crossing_never_replaces_an_accepted_finish() {
    let mut reads = clean_run("C1", 0.0, 0.0);
    reads.extend(burst("C1", "finish", Line::Main, 7200.0 + 600.0, 5)); // walks back for a photo
    let e = engine_with(&reads);
    check(&e, "1", Status::Finished, Some("2:00:00"), Some("2:00:00"), &[]);
}

#[test]
fn backup_line_fills_a_miss_only() {
    let mut c = course();
    c.points[4].backup_offset = Elapsed::from_millis(-500);
    let mut e = Engine::new(c, EngineOptions::default());
    // Bib 1: main and backup both read; the main wins.
    let mut reads = clean_run("C1", 0.0, 0.0);
    reads.extend(burst("C1", "finish", Line::Backup, 7200.5, 3));
    // Bib 2: the main missed, the backup (0.5 s past the line) read.
    let mut r2: Vec<Read> = clean_run("C2", 0.0, 0.0).into_iter().filter(|r| r.point.as_str() != "finish").collect();
    r2.extend(burst("C2", "finish", Line::Backup, 7203.5, 3));
    // Then bib 2 walks back over the main line half an hour later: it must not replace the backup time.
    r2.extend(burst("C2", "finish", Line::Main, 9000.0, 3));
    for r in reads.iter().chain(&r2) {
        e.handle_read(r);
    }
    check(&e, "1", Status::Finished, Some("2:00:00"), Some("2:00:00"), &[]);
    check(&e, "2", Status::Finished, Some("2:00:03"), Some("2:00:03"), &["backup"]);
    assert_eq!(e.result(bib(&e, "2")).passings[4].unwrap().provenance, Provenance::ChipBackup);
}

#[test]
fn a_stray_never_scores_and_is_reported_once() {
    let mut reads: Vec<Read> = clean_run("C1", 0.0, 0.0).into_iter().filter(|r| r.point.as_str() != "finish").collect();
    // Bib 1's bib lies by the finish for 30 s, read every 300 ms; an unknown chip does the same.
    for k in 0..100 {
        reads.push(read("C1", "finish", Line::Main, at(7200.0 + 0.3 * k as f64), None));
        reads.push(read("SPECTATOR", "finish", Line::Main, at(7200.0 + 0.3 * k as f64), None));
    }
    let e = engine_with(&reads);
    check(&e, "1", Status::Running, None, None, &["stray"]);
    let strays = e.strays();
    assert_eq!(strays.len(), 2, "{strays:?}");
    assert_eq!(strays[0].bib.as_ref().map(|b| b.as_str()), Some("1"));
    assert_eq!(strays[1].chip.as_str(), "SPECTATOR");
    assert_eq!(e.unknown_chips().len(), 1);
    assert_eq!(e.unknown_chips()[0].n_reads, 100);
}

#[test]
fn a_too_fast_finish_is_not_accepted_silently() {
    let mut reads: Vec<Read> = clean_run("C1", 0.0, 0.0).into_iter().filter(|r| r.point.as_str() == "start").collect();
    reads.extend(burst("C1", "km5", Line::Main, 1800.0, 3));
    // Finish 20 minutes after km 5: 15 km at 1:20/km.
    reads.extend(burst("C1", "finish", Line::Main, 3000.0, 3));
    let e = engine_with(&reads);
    check(&e, "1", Status::Review, None, None, &["impossible_pace"]);
}

#[test]
fn missing_points_one_flags_two_in_a_row_reviews() {
    let one: Vec<Read> = clean_run("C1", 0.0, 0.0).into_iter().filter(|r| r.point.as_str() != "km10").collect();
    let two: Vec<Read> =
        clean_run("C2", 0.0, 0.0).into_iter().filter(|r| !["km10", "km15"].contains(&r.point.as_str())).collect();
    // Bib 3 is still running and has not reached km 10: nothing is missing yet.
    let running: Vec<Read> =
        clean_run("C3", 0.0, 0.0).into_iter().filter(|r| ["start", "km5"].contains(&r.point.as_str())).collect();
    let e = engine_with(&[one, two, running].concat());
    check(&e, "1", Status::Finished, Some("2:00:00"), Some("2:00:00"), &["missing_point"]);
    check(&e, "2", Status::Review, Some("2:00:00"), Some("2:00:00"), &["missing_consecutive"]);
    check(&e, "3", Status::Running, None, None, &[]);
    // Review results are not ranked; the clean one is.
    assert_eq!(e.places(bib(&e, "1")).overall, Some(1));
    assert_eq!(e.places(bib(&e, "2")).overall, None);
}

#[test]
fn reads_at_a_point_outside_the_race_are_wrong_race_and_never_score() {
    // Bib 7 runs the 10 km (gun at 9000 s) and is read on the 20 km's own km-10 mat.
    let mut reads = Vec::new();
    for (p, s) in [("start", 9000.0), ("km5", 10500.0), ("km10b", 12000.0), ("finish", 12000.0)] {
        reads.extend(burst("C7", p, Line::Main, s, 3));
    }
    let e = engine_with(&reads);
    check(&e, "7", Status::Finished, Some("0:50:00"), Some("0:50:00"), &["wrong_race"]);
    let w = e.wrong_race();
    assert_eq!(w.len(), 1);
    assert_eq!((w[0].participant, w[0].n_crossings), (bib(&e, "7"), 1));
}

#[test]
fn a_marathon_past_midnight_is_an_instant_difference() {
    // 21:00 Paris gun, finish at 01:30 Paris the next day.
    let mut c = course();
    c.races[0].time_limit = Elapsed::from_secs(6 * 3600);
    let mut e = Engine::new(c, EngineOptions::default());
    for (i, p) in ["start", "km5", "km10", "km15", "finish"].iter().enumerate() {
        for r in burst("C1", p, Line::Main, 4050.0 * i as f64, 3) {
            e.handle_read(&r);
        }
    }
    check(&e, "1", Status::Finished, Some("4:30:00"), Some("4:30:00"), &[]);
}

#[test]
fn finishing_after_the_time_limit_does_not_count() {
    let mut reads = burst("C1", "start", Line::Main, 0.0, 3);
    for (i, p) in ["km5", "km10", "km15", "finish"].iter().enumerate() {
        reads.extend(burst("C1", p, Line::Main, 3700.0 * (i + 1) as f64, 3));
    }
    let e = engine_with(&reads);
    check(&e, "1", Status::Running, None, None, &["over_time_limit"]);
}

#[test]
fn dual_tags_merge_into_one_passing() {
    let mut c = course();
    c.participants[0].chips.push(ChipId::new("C1-SHOE"));
    let mut e = Engine::new(c, EngineOptions::default());
    let mut reads: Vec<Read> = clean_run("C1", 0.0, 0.0).into_iter().filter(|r| r.point.as_str() != "km5").collect();
    reads.extend(burst("C1-SHOE", "km5", Line::Main, 1800.0, 2));
    reads.extend(burst("C1-SHOE", "finish", Line::Main, 7199.8, 2)); // the shoe tag is read first
    for r in &reads {
        e.handle_read(r);
    }
    check(&e, "1", Status::Finished, Some("1:59:59.800"), Some("1:59:59.800"), &[]);
    assert_eq!(e.result(bib(&e, "1")).passings[4].unwrap().hits, 7);
}

#[test]
fn ranking_places_ties_divisions_and_waves() {
    let mut reads = clean_run("C1", 0.0, 0.0); // gun 2:00:00
    reads.extend(clean_run("C2", 0.0, 0.0)); // exact tie with bib 1
    reads.extend(clean_run("C3", 0.0, 30.0)); // 2:00:30 gun, 2:00:00 chip
    reads.extend(clean_run("C4", 1800.0, 0.0)); // wave B, 2:00:00 gun
    reads.extend(clean_run("C6", 1800.0, -1.0).into_iter().filter(|r| r.point.as_str() != "start").collect::<Vec<_>>()); // wheelchair
    let e = engine_with(&reads);
    let places = |b: &str| e.places(bib(&e, b));
    assert_eq!(places("1").overall, Some(1));
    assert_eq!(places("2").overall, Some(1));
    assert_eq!(places("4").overall, Some(1));
    assert_eq!(places("3").overall, Some(4));
    assert_eq!(
        (places("1").gender, places("2").gender, places("3").gender, places("4").gender),
        (Some(1), Some(1), Some(2), Some(1))
    );
    // The wheelchair division is ranked apart.
    assert_eq!(places("6").overall, Some(1));
    // The 10 km is unranked: times, no places.
    let e2 = engine_with(
        &[
            burst("C7", "start", Line::Main, 9000.0, 2),
            burst("C7", "km5", Line::Main, 10500.0, 2),
            burst("C7", "finish", Line::Main, 12000.0, 2),
        ]
        .concat(),
    );
    check(&e2, "7", Status::Finished, Some("0:50:00"), Some("0:50:00"), &[]);
    assert_eq!(e2.places(bib(&e2, "7")), Places::default());
}

#[test]
fn rank_by_chip_time() {
    let mut c = course();
    c.races[0].rank_by = RankBy::Chip;
    let mut e = Engine::new(c, EngineOptions::default());
    for r in clean_run("C1", 0.0, 0.0).iter().chain(&clean_run("C3", 0.0, 30.0)).chain(&clean_run("C2", 0.0, 10.0)) {
        e.handle_read(r);
    }
    // Gun times differ (2:00:00, 2:00:10, 2:00:30), chip times are equal: all first on chip time.
    assert_eq!(
        [e.places(bib(&e, "1")).overall, e.places(bib(&e, "2")).overall, e.places(bib(&e, "3")).overall],
        [Some(1); 3]
    );
}

#[test]
fn corrections_gun_time_manual_status_chip_and_clock_offset() {
    let mut reads = clean_run("C1", 0.0, 10.0);
    reads.extend(clean_run("C2", 0.0, 0.0).into_iter().filter(|r| r.point.as_str() != "finish"));
    reads.extend(clean_run("LOST", 0.0, 20.0));
    let mut e = engine_with(&reads);
    check(&e, "1", Status::Finished, Some("2:00:10"), Some("2:00:00"), &[]);
    while e.poll_event().is_some() {}

    // The actual gun was 2 s after the scheduled one.
    e.handle_correction(Correction::GunTime { race: "20k".into(), wave: "A".into(), at: Some(at(2.0)) }).unwrap();
    check(&e, "1", Status::Finished, Some("2:00:08"), Some("2:00:00"), &[]);
    assert!(std::iter::from_fn(|| e.poll_event()).any(|ev| ev == RaceEvent::GunTime { wave: WaveIdx(0), at: at(2.0) }));

    // Bib 2's finish was missed by both lines; the desk enters it from video.
    // (Bib 2 crossed the start mat before the corrected gun, so its chip start is the gun.)
    e.handle_correction(Correction::ManualPassing {
        bib: Bib::new("2"),
        point: PointId::new("finish"),
        at: Some(at(7201.0)),
    })
    .unwrap();
    check(&e, "2", Status::Finished, Some("1:59:59"), Some("1:59:59"), &["start_from_gun", "manual"]);

    // Bib 3 ran with chip LOST: reassigning it brings its reads with it.
    e.handle_correction(Correction::AssignChip { chip: ChipId::new("LOST"), bib: Some(Bib::new("3")) }).unwrap();
    check(&e, "3", Status::Finished, Some("2:00:18"), Some("2:00:00"), &[]);
    assert!(e.unknown_chips().is_empty());

    // Bib 1 is disqualified, then the decision is undone.
    e.handle_correction(Correction::Status {
        bib: Bib::new("1"),
        status: Some(StatusOverride::Dsq),
        reason: "course cut".into(),
    })
    .unwrap();
    check(&e, "1", Status::Dsq, Some("2:00:08"), Some("2:00:00"), &[]);
    assert_eq!(e.places(bib(&e, "1")).overall, None);
    assert_eq!(e.places(bib(&e, "3")).overall, Some(2));
    e.handle_correction(Correction::Status { bib: Bib::new("1"), status: None, reason: "appeal upheld".into() })
        .unwrap();
    assert_eq!(e.places(bib(&e, "1")).overall, Some(2));

    // The finish decoder was 1.5 s fast.
    e.handle_correction(Correction::PointClockOffset {
        point: PointId::new("finish"),
        offset: Elapsed::from_millis(-1500),
    })
    .unwrap();
    check(&e, "1", Status::Finished, Some("2:00:06.500"), Some("1:59:58.500"), &[]);

    // Refused corrections change nothing and say why.
    assert_eq!(
        e.handle_correction(Correction::Status {
            bib: Bib::new("999"),
            status: Some(StatusOverride::Dnf),
            reason: String::new()
        }),
        Err(CorrectionError::UnknownBib("999".into()))
    );
    assert!(matches!(
        e.handle_correction(Correction::ManualPassing {
            bib: Bib::new("7"),
            point: PointId::new("km10"),
            at: Some(at(1.0))
        }),
        Err(CorrectionError::PointNotInRace { .. })
    ));
}

#[test]
fn accepting_a_review_ranks_it() {
    let two: Vec<Read> =
        clean_run("C2", 0.0, 0.0).into_iter().filter(|r| !["km10", "km15"].contains(&r.point.as_str())).collect();
    let mut e = engine_with(&two);
    check(&e, "2", Status::Review, Some("2:00:00"), Some("2:00:00"), &["missing_consecutive"]);
    e.handle_correction(Correction::Status {
        bib: Bib::new("2"),
        status: Some(StatusOverride::Accept),
        reason: "mats down".into(),
    })
    .unwrap();
    check(&e, "2", Status::Finished, Some("2:00:00"), Some("2:00:00"), &["missing_consecutive", "accepted"]);
    assert_eq!(e.places(bib(&e, "2")).overall, Some(1));
}

#[test]
fn live_events_report_passings_finishes_and_unknown_chips() {
    let mut e = Engine::new(course(), EngineOptions::default());
    for r in burst("C1", "start", Line::Main, 0.0, 3) {
        e.handle_read(&r);
    }
    let evs: Vec<RaceEvent> = std::iter::from_fn(|| e.poll_event()).collect();
    let p = bib(&e, "1");
    assert_eq!(
        evs[0],
        RaceEvent::Passing {
            participant: p,
            split: 0,
            passing: Some(Passing { at: at(0.0), provenance: Provenance::ChipMain, hits: 1 })
        }
    );
    assert!(matches!(evs.last(), Some(RaceEvent::Passing { .. }) | Some(RaceEvent::StatusChanged { .. })));
    assert_eq!(e.handle_read(&read("NOBODY", "km5", Line::Main, at(1.0), None)), ReadOutcome::UnknownChip);
    assert_eq!(e.poll_event(), Some(RaceEvent::UnknownChip { chip: ChipId::new("NOBODY") }));
    assert_eq!(e.handle_read(&read("NOBODY", "km5", Line::Main, at(1.0), None)), ReadOutcome::Duplicate);
    assert_eq!(e.handle_read(&read("C1", "nowhere", Line::Main, at(1.0), None)), ReadOutcome::UnknownPoint);
    for r in clean_run("C1", 0.0, 0.0).iter().skip(3) {
        e.handle_read(r);
    }
    let evs: Vec<RaceEvent> = std::iter::from_fn(|| e.poll_event()).collect();
    assert!(evs.contains(&RaceEvent::Finished {
        participant: p,
        gun_time: Elapsed::from_secs(7200),
        chip_time: Elapsed::from_secs(7200)
    }));
    assert!(evs.contains(&RaceEvent::StatusChanged {
        participant: p,
        status: Status::Finished,
        flags: Flags::empty()
    }));
}

// The incremental engine and a full recompute agree, whatever the arrival order, duplicates,
// and interleaving of corrections.

fn arb_read() -> impl Strategy<Value = Read> {
    let chips = prop::sample::select(vec!["C1", "C2", "C3", "C4", "C6", "C7", "X9"]);
    let points = prop::sample::select(vec!["start", "km5", "km10", "km15", "finish", "km10b"]);
    (chips, points, any::<bool>(), -100i64..14_000, 0u8..10, proptest::option::of(-800i16..-400)).prop_map(
        |(c, p, backup, s, tenth, rssi)| {
            read(c, p, if backup { Line::Backup } else { Line::Main }, at(s as f64 + tenth as f64 / 10.0), rssi)
        },
    )
}

fn arb_correction() -> impl Strategy<Value = Correction> {
    let bibs = prop::sample::select(vec!["1", "2", "3", "4", "6", "7"]);
    prop_oneof![
        (0i64..60).prop_map(|s| Correction::GunTime { race: "20k".into(), wave: "A".into(), at: Some(at(s as f64)) }),
        (bibs.clone(), 1000i64..8000).prop_map(|(b, s)| Correction::ManualPassing {
            bib: Bib::new(b),
            point: PointId::new("km5"),
            at: Some(at(s as f64))
        }),
        (bibs.clone(), prop::sample::select(vec![None, Some(StatusOverride::Dsq), Some(StatusOverride::Accept)]))
            .prop_map(|(b, s)| Correction::Status { bib: Bib::new(b), status: s, reason: "desk".into() }),
        (prop::sample::select(vec!["X9", "C3"]), bibs.clone())
            .prop_map(|(c, b)| Correction::AssignChip { chip: ChipId::new(c), bib: Some(Bib::new(b)) }),
        (-3000i64..3000).prop_map(|ms| Correction::PointClockOffset {
            point: PointId::new("finish"),
            offset: Elapsed::from_millis(ms)
        }),
    ]
}

fn snapshot(e: &Engine) -> Vec<(ParticipantResult, Places)> {
    (0..e.course().participants.len())
        .map(|i| (e.result(ParticipantIdx(i as u32)).clone(), e.places(ParticipantIdx(i as u32))))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn incremental_equals_batch_whatever_the_order_and_duplicates(
        runs in proptest::collection::vec((prop::sample::select(vec!["C1", "C2", "C3", "C4", "C6"]), 0u16..60), 0..5),
        noise in proptest::collection::vec(arb_read(), 0..80),
        corrections in proptest::collection::vec(arb_correction(), 0..4),
        order in any::<u64>(),
        dup_every in 2usize..7,
    ) {
        let mut reads: Vec<Read> = runs.iter().flat_map(|(c, d)| clean_run(c, 0.0, *d as f64)).collect();
        reads.extend(noise);
        let (batch, refused) = Engine::replay(course(), EngineOptions::default(), reads.clone(), corrections.clone());
        prop_assert!(refused.is_empty());

        // Live: shuffled, every n-th read delivered twice, corrections interleaved at arbitrary points.
        let mut live_reads = reads.clone();
        let mut s = order | 1;
        for i in (1..live_reads.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            live_reads.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let dups: Vec<Read> = live_reads.iter().step_by(dup_every).cloned().collect();
        live_reads.extend(dups);
        let mut live = Engine::new(course(), EngineOptions::default());
        let stride = live_reads.len() / (corrections.len() + 1) + 1;
        let mut pending = corrections.into_iter();
        for (i, r) in live_reads.iter().enumerate() {
            if i % stride == stride - 1
                && let Some(c) = pending.next() { live.handle_correction(c).unwrap(); }
            live.handle_read(r);
        }
        for c in pending { live.handle_correction(c).unwrap(); }

        prop_assert_eq!(snapshot(&live), snapshot(&batch));
        prop_assert_eq!(live.strays(), batch.strays());
        prop_assert_eq!(live.unknown_chips(), batch.unknown_chips());
        prop_assert_eq!(live.wrong_race(), batch.wrong_race());
        prop_assert_eq!(live.counters().n_reads, batch.counters().n_reads);
        // Places from the incremental rank indexes agree with a from-scratch sort.
        for (i, (r, places)) in snapshot(&live).iter().enumerate() {
            let p = ParticipantIdx(i as u32);
            let part = live.course().participant(p);
            let ranked = |q: &ParticipantIdx| {
                let o = live.course().participant(*q);
                o.race == part.race && o.division == part.division && live.result(*q).status() == Status::Finished
                    && live.course().race(o.race).ranked
            };
            if r.status() == Status::Finished && live.course().race(part.race).ranked {
                let t = r.gun_time.unwrap();
                let better = (0..live.course().participants.len() as u32).map(ParticipantIdx)
                    .filter(|q| ranked(q) && live.result(*q).gun_time.unwrap() < t).count();
                prop_assert_eq!(places.overall, Some(better as u32 + 1));
            } else {
                prop_assert_eq!(places.overall, None);
            }
        }
    }
}

#[test]
fn a_runner_seen_only_at_the_start_is_running_then_dnf() {
    let e = engine_with(&burst("C1", "start", Line::Main, 30.0, 4));
    check(&e, "1", Status::Running, None, None, &[]);
    assert_eq!(e.result(bib(&e, "1")).status().final_status(), Status::Dnf);
    // Nobody else was seen: not started, DNS in final standings, no start_from_gun noise.
    check(&e, "2", Status::NotStarted, None, None, &[]);
    assert_eq!(e.result(bib(&e, "2")).status().final_status(), Status::Dns);
}

#[test]
fn predictions_run_from_the_last_segment_and_stop_at_the_finish() {
    use crate::predict::{Basis, predict};
    // Bib 1: start at +10 s, km5 at +1810 s (6:00/km), nothing yet at km10.
    let mut reads = burst("C1", "start", Line::Main, 10.0, 3);
    reads.extend(burst("C1", "km5", Line::Main, 1810.0, 3));
    let mut e = engine_with(&reads);
    let p = bib(&e, "1");
    let pred = predict(e.course(), p, e.result(p)).expect("running");
    assert_eq!(pred.basis, Basis::LastSegment);
    assert_eq!(pred.pace_per_km, pace(6, 0));
    assert_eq!(pred.next.split, 2);
    assert_eq!(pred.next.at, at(1810.0 + 1800.0));
    assert_eq!(pred.finish.split, 4);
    assert_eq!(pred.finish.at, at(1810.0 + 3.0 * 1800.0));
    // Overdue only past the ETA plus a tenth of the segment (3 min here).
    assert!(!pred.next.overdue(at(1810.0 + 1800.0 + 180.0)));
    assert!(pred.next.overdue(at(1810.0 + 1800.0 + 181.0)));
    // Faster over km5 → km10 (5:00/km): the prediction follows the last segment.
    for r in burst("C1", "km10", Line::Main, 1810.0 + 1500.0, 3) {
        e.handle_read(&r);
    }
    let pred = predict(e.course(), p, e.result(p)).expect("running");
    assert_eq!(pred.pace_per_km, pace(5, 0));
    assert_eq!(pred.next.split, 3);
    assert_eq!(pred.finish.at, at(3310.0 + 2.0 * 1500.0));
    // Finished: no prediction.
    for r in burst("C1", "km15", Line::Main, 4810.0, 3).into_iter().chain(burst("C1", "finish", Line::Main, 6310.0, 3))
    {
        e.handle_read(&r);
    }
    assert_eq!(e.result(p).status(), Status::Finished);
    assert!(predict(e.course(), p, e.result(p)).is_none());
}

#[test]
fn predictions_before_the_first_split_use_the_declared_time_and_none_without_it() {
    use crate::predict::{Basis, predict};
    let mut c = course();
    c.participants[0].estimate = Some(Elapsed::from_secs(2 * 3600)); // 20 km in 2:00:00 → 6:00/km
    let mut e = Engine::new(c, EngineOptions::default());
    let (p1, p2) = (bib(&e, "1"), bib(&e, "2"));
    assert!(predict(e.course(), p1, e.result(p1)).is_none(), "not started: no prediction");
    for r in burst("C1", "start", Line::Main, 10.0, 3).into_iter().chain(burst("C2", "start", Line::Main, 20.0, 3)) {
        e.handle_read(&r);
    }
    let pred = predict(e.course(), p1, e.result(p1)).expect("started with a declared time");
    assert_eq!(pred.basis, Basis::Declared);
    assert_eq!((pred.next.split, pred.next.at), (1, at(10.0 + 1800.0)));
    assert_eq!(pred.finish.at, at(10.0 + 7200.0));
    assert!(predict(e.course(), p2, e.result(p2)).is_none(), "no declared time, no segment yet");
}

#[test]
fn top_of_a_board_is_the_head_of_the_ranked_list() {
    // Bibs 1, 2, 3 (wave A; 1 and 3 female) finish 2:00:00, 1:55:00, 2:05:00 after the gun.
    let mut reads = Vec::new();
    for (chip, finish) in [("C1", 7200.0), ("C2", 6900.0), ("C3", 7500.0)] {
        reads.extend(burst(chip, "start", Line::Main, 5.0, 3));
        for (k, p) in ["km5", "km10", "km15"].iter().enumerate() {
            reads.extend(burst(chip, p, Line::Main, finish * (k + 1) as f64 / 4.0, 3));
        }
        reads.extend(burst(chip, "finish", Line::Main, finish, 3));
    }
    let e = engine_with(&reads);
    let overall = Board::Overall { race: RaceIdx(0), division: Division::running() };
    let bibs = |v: Vec<ParticipantIdx>| {
        v.into_iter().map(|p| e.course().participant(p).bib.as_str().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(bibs(e.top(&overall, 10)), ["2", "1", "3"]);
    assert_eq!(bibs(e.top(&overall, 2)), ["2", "1"]);
    assert_eq!(e.board_len(&overall), 3);
    let women = Board::Gender { race: RaceIdx(0), division: Division::running(), gender: Gender::Female };
    assert_eq!(bibs(e.top(&women, 10)), ["1", "3"]);
    assert_eq!(Board::of(e.course(), bib(&e, "1"))[1], Some(women));
}
