//! Seeded race generator: the oracle for tests, the demo and the benchmarks.
//!
//! From an event and a seed it makes a field of participants (as a CSV, so it goes through the
//! real import), every runner's *true* crossing instants at every mat line, the raw reads those
//! crossings produce, and the expected results derived from the truth and the scenario it chose
//! (DNS, DNF, re-crossings, missed mats, backup-only reads, strays, wrong-race reads, dual tags,
//! late starts, a marathon past midnight).
//!
//! The expected results never come from `timing-core`'s code: they come from the ground truth
//! (when each runner really crossed each line) and the documented rules, so a test comparing
//! the engine with [`Truth`] checks the engine against an independent derivation.
//!
//! Where reads are placed: the true instant of a crossing is the instant its point's time mode
//! stands for (the first read for `first`, the strongest for `peak_rssi`, the last for `last`),
//! and a backup line's reads are shifted by minus the point's `backup_offset`, so a correct
//! engine recovers the true instant exactly.
//!
//! Deliberately not here: wire protocols (firmware-sim renders [`SimCrossing`]s into them), I/O.

mod names;

use std::collections::HashMap;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use event_config::{EventConfig, parse_participants};
use timing_core::{
    CategoryIdx, ChipId, Course, Division, Elapsed, Flags, Gender, Line, ParticipantIdx, Places, PointIdx, RaceIdx,
    Read, ReaderId, Rssi, Status, TimeMode, Timestamp, WaveIdx,
};

/// How the generated race goes wrong, as probabilities per runner (or per crossing).
#[derive(Clone, Debug)]
pub struct Scenario {
    pub seed: u64,
    /// Runners per race, in the event's race order (missing entries: 0).
    pub runners: Vec<usize>,
    pub dns_rate: f64,
    pub dnf_rate: f64,
    /// Start mat not read at all (chip start falls back to the gun).
    pub start_missed_rate: f64,
    /// Crossed the start, went back, crossed again within the window.
    pub start_recross_rate: f64,
    /// Stood on the start mat before the gun (reads that must never count).
    pub pre_gun_rate: f64,
    /// Started after the wave's start window closed.
    pub late_start_rate: f64,
    /// Walked back over the finish after finishing.
    pub finish_recross_rate: f64,
    /// An intermediate mat missed on every line (per runner: one mat).
    pub missed_mat_rate: f64,
    /// Two consecutive intermediate mats missed (a course cutter, or two dead mats).
    pub missed_two_rate: f64,
    /// Per crossing on a point with a backup line: the main line missed, the backup read.
    pub backup_only_rate: f64,
    /// Per crossing on a point with a backup line: both lines read.
    pub both_lines_rate: f64,
    /// A runner read at a point their race does not use.
    pub wrong_race_rate: f64,
    /// Bibs with two chips.
    pub dual_tag_rate: f64,
    /// Chips of nobody (spectators, old bibs) read at the finish, some continuously (strays).
    pub unknown_chips: usize,
    /// A DNS runner's bib left lying by the finish mat: a stray of a registered chip.
    pub stray_bibs: usize,
    /// Reads per crossing, inclusive range.
    pub hits: (u32, u32),
    /// Actual guns fire this many seconds (at most) after the scheduled start.
    pub gun_delay_max_s: f64,
}

impl Scenario {
    /// A small race with every kind of trouble, for tests.
    pub fn troubled(seed: u64, runners: Vec<usize>) -> Scenario {
        Scenario {
            seed,
            runners,
            dns_rate: 0.04,
            dnf_rate: 0.04,
            start_missed_rate: 0.03,
            start_recross_rate: 0.03,
            pre_gun_rate: 0.05,
            late_start_rate: 0.01,
            finish_recross_rate: 0.05,
            missed_mat_rate: 0.04,
            missed_two_rate: 0.01,
            backup_only_rate: 0.03,
            both_lines_rate: 0.5,
            wrong_race_rate: 0.01,
            dual_tag_rate: 0.1,
            unknown_chips: 5,
            stray_bibs: 2,
            hits: (3, 25),
            gun_delay_max_s: 20.0,
        }
    }

    /// A clean race at a realistic read density (about 20 reads per crossing), for benchmarks.
    pub fn clean(seed: u64, runners: Vec<usize>) -> Scenario {
        Scenario {
            dns_rate: 0.0,
            dnf_rate: 0.0,
            start_missed_rate: 0.0,
            start_recross_rate: 0.0,
            pre_gun_rate: 0.0,
            late_start_rate: 0.0,
            finish_recross_rate: 0.0,
            missed_mat_rate: 0.0,
            missed_two_rate: 0.0,
            backup_only_rate: 0.0,
            both_lines_rate: 0.0,
            wrong_race_rate: 0.0,
            dual_tag_rate: 0.0,
            unknown_chips: 0,
            stray_bibs: 0,
            hits: (10, 30),
            ..Scenario::troubled(seed, runners)
        }
    }
}

/// One true crossing of one mat line by one chip: what a decoder would see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimCrossing {
    pub chip: ChipId,
    pub point: PointIdx,
    pub line: Line,
    /// When the first read happens (the reads follow, a few to 120 ms apart).
    pub first_read: Timestamp,
    pub hits: u32,
    /// Index of the strongest read in the burst.
    pub peak_index: u32,
    /// Milliseconds between consecutive reads, per gap.
    pub gaps_ms: Vec<u16>,
}

impl SimCrossing {
    /// The raw reads, RSSI peaking at `peak_index`.
    pub fn reads(&self, course: &Course) -> Vec<Read> {
        let point = course.point(self.point);
        let reader = ReaderId::new(&format!("{}-{}", point.id, self.line.as_str()));
        let mut at = self.first_read;
        let mut out = Vec::with_capacity(self.hits as usize);
        for k in 0..self.hits {
            if k > 0 {
                at = at + Elapsed::from_millis(self.gaps_ms[(k - 1) as usize] as i64);
            }
            let dist = (k as i32 - self.peak_index as i32).abs();
            out.push(Read {
                chip: self.chip.clone(),
                at,
                point: point.id.clone(),
                line: self.line,
                reader: reader.clone(),
                antenna: 1 + (k % 4) as u16,
                rssi: Some(Rssi((-450 - 25 * dist).max(-900) as i16)),
                reader_seq: None,
            });
        }
        out
    }
}

/// What the results must be for one participant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Truth {
    pub participant: ParticipantIdx,
    /// The final (published) status.
    pub status: Status,
    /// The true chip start: the start crossing that counts (`None`: the gun stands in, or no start).
    pub start: Option<Timestamp>,
    pub gun_time: Option<Elapsed>,
    pub chip_time: Option<Elapsed>,
    /// Elapsed chip time at each split of the race (`None` where the split has no passing).
    pub splits: Vec<Option<Elapsed>>,
    pub flags: Flags,
    pub places: Places,
}

/// A generated race.
#[derive(Clone, Debug)]
pub struct SimRace {
    /// The participant list as the CSV a registration system would export.
    pub participants_csv: String,
    /// The event's course with the imported participants.
    pub course: Course,
    /// The actual gun of every wave (the scheduled start plus a delay).
    pub guns: Vec<(WaveIdx, Timestamp)>,
    /// Every mat-line crossing, sorted by first read.
    pub crossings: Vec<SimCrossing>,
    pub truth: Vec<Truth>,
    /// Stray crossings generated (unknown chips and lying bibs), each one stray.
    pub n_strays: usize,
    pub unknown_chips: Vec<ChipId>,
}

impl SimRace {
    /// Every raw read, sorted by instant (ties in generation order).
    pub fn reads(&self) -> Vec<Read> {
        let mut out: Vec<Read> = self.crossings.iter().flat_map(|c| c.reads(&self.course)).collect();
        out.sort_by_key(|r| r.at);
        out
    }

    /// The actual guns as corrections a desk would enter.
    pub fn gun_corrections(&self) -> Vec<timing_core::Correction> {
        self.guns
            .iter()
            .map(|(w, at)| {
                let wave = self.course.wave(*w);
                timing_core::Correction::GunTime {
                    race: self.course.race(wave.race).id.clone(),
                    wave: wave.id.clone(),
                    at: Some(*at),
                }
            })
            .collect()
    }
}

/// The scenario a runner was dealt.
#[derive(Clone, Debug, Default)]
struct Plan {
    dns: bool,
    /// Index of the last split reached (DNF), if not the finish.
    stops_after: Option<usize>,
    start_missed: bool,
    late_start: bool,
    /// Split indexes missed on every line.
    missed: Vec<usize>,
    /// Split indexes read by the backup line only.
    backup_only: Vec<usize>,
}

/// Generates a race with a generated field of runners (`scenario.runners` per race).
/// Same event and scenario, same race, bit for bit.
pub fn generate(event: &EventConfig, scenario: &Scenario) -> SimRace {
    let mut rng = ChaCha8Rng::seed_from_u64(scenario.seed);
    let csv = participants_csv(event, scenario, &mut rng);
    let participants =
        parse_participants("generated participants", &csv, event).expect("generated participants are valid");
    race_for(event, csv, participants, scenario, rng)
}

/// Generates a race for an existing participant list (already validated against `event`);
/// `scenario.runners` is ignored.
pub fn simulate(
    event: &EventConfig,
    participants_csv: String,
    participants: Vec<timing_core::Participant>,
    scenario: &Scenario,
) -> SimRace {
    let rng = ChaCha8Rng::seed_from_u64(scenario.seed);
    race_for(event, participants_csv, participants, scenario, rng)
}

fn race_for(
    event: &EventConfig,
    csv: String,
    participants: Vec<timing_core::Participant>,
    scenario: &Scenario,
    mut rng: ChaCha8Rng,
) -> SimRace {
    let course = Course { participants, ..event.course.clone() };

    let guns: Vec<(WaveIdx, Timestamp)> = course
        .waves
        .iter()
        .enumerate()
        .map(|(i, w)| {
            // Instants are whole hundredths of a second, the coarsest resolution among the decoders
            // (IPICO and JChip report hundredths), so every decoder can carry them exactly.
            let delay_cs = (rng.random_range(0.0..=scenario.gun_delay_max_s) * 100.0) as i64;
            (WaveIdx(i as u16), w.scheduled_start + Elapsed::from_millis(delay_cs * 10))
        })
        .collect();

    let mut crossings: Vec<SimCrossing> = Vec::new();
    let mut truth: Vec<Truth> = Vec::with_capacity(course.participants.len());
    let mut dns_bibs: Vec<ParticipantIdx> = Vec::new();

    for (i, p) in course.participants.iter().enumerate() {
        let pidx = ParticipantIdx(i as u32);
        let race = course.race(p.race);
        let wave = course.wave(p.wave);
        let gun = guns[p.wave.idx()].1;
        let n = race.splits.len();
        let plan = deal(&mut rng, scenario, n, &event.point_lines, race);
        if plan.dns {
            dns_bibs.push(pidx);
            truth.push(Truth {
                participant: pidx,
                status: Status::Dns,
                start: None,
                gun_time: None,
                chip_time: None,
                splits: vec![None; n],
                flags: Flags::empty(),
                places: Places::default(),
            });
            continue;
        }

        // True instants: a start delay in the corral, then a pace with per-segment wobble,
        // kept inside the race's time limit and the splits' pace windows.
        let window_s = wave.start_window.as_micros() as f64 / 1e6;
        let start_delay_s = if plan.late_start {
            window_s + rng.random_range(30.0..300.0)
        } else {
            rng.random_range(1.0..window_s * 0.8)
        };
        let limit_s = race.time_limit.as_micros() as f64 / 1e6;
        let slowest_pace = ((limit_s - start_delay_s) * 0.85 / (race.distance_m as f64 / 1000.0)).min(8.5 * 60.0);
        let fast = if p.division.as_str() == "wheelchair" { 170.0 } else { 190.0 };
        let pace_s_per_km = rng.random_range(fast..slowest_pace.max(fast + 1.0));
        let mut instants: Vec<Timestamp> = Vec::with_capacity(n);
        let mut t_us = start_delay_s * 1e6;
        let mut prev_d = 0u32;
        for split in &race.splits {
            let seg_km = (split.distance_m - prev_d) as f64 / 1000.0;
            let wobble = rng.random_range(0.94..1.06);
            t_us += seg_km * pace_s_per_km * wobble * 1e6;
            prev_d = split.distance_m;
            instants.push(gun + Elapsed::from_millis((t_us / 10_000.0).round() as i64 * 10));
        }

        let start_idx = race.start_split();
        let last_reached = plan.stops_after.unwrap_or(n - 1);
        let chips = &p.chips;
        let mut flags = Flags::empty();
        let mut passing_at: Vec<Option<Timestamp>> = vec![None; n];
        let mut via_backup: Vec<bool> = vec![false; n];

        for (si, split) in race.splits.iter().enumerate().take(last_reached + 1) {
            let is_start = Some(si) == start_idx;
            if plan.missed.contains(&si) || (is_start && plan.start_missed) {
                continue;
            }
            let point = course.point(split.point);
            let lines = &event.point_lines[split.point.idx()];
            let has_backup = lines.contains(&Line::Backup);
            let backup_only = has_backup && plan.backup_only.contains(&si);
            let both = has_backup && !backup_only && rng.random_bool(scenario.both_lines_rate);
            let at = instants[si];
            if !backup_only {
                crossings.push(crossing(&mut rng, scenario, chips, split.point, Line::Main, at, point.time_mode));
            }
            if backup_only || both {
                let backup_at = at - point.backup_offset;
                crossings.push(crossing(
                    &mut rng,
                    scenario,
                    chips,
                    split.point,
                    Line::Backup,
                    backup_at,
                    point.time_mode,
                ));
            }
            via_backup[si] = backup_only;
            passing_at[si] = Some(at);
        }

        // Noise that must not change anything.
        if let Some(s) = start_idx {
            let start_point = race.splits[s].point;
            if rng.random_bool(scenario.pre_gun_rate) {
                let before = gun - Elapsed::from_millis(rng.random_range(2_000..12_000) * 10);
                crossings.push(crossing(&mut rng, scenario, chips, start_point, Line::Main, before, TimeMode::First));
            }
            if !plan.start_missed && !plan.late_start && rng.random_bool(scenario.start_recross_rate) {
                // The first crossing we generated becomes the *earlier* one; the true start is later.
                let again = instants[s] + Elapsed::from_secs(rng.random_range(40..90));
                let next = &race.splits[s + 1];
                let earliest_next = again + next.min_pace_per_km.pace_over(next.distance_m);
                if again <= gun + wave.start_window && earliest_next < instants[s + 1] {
                    crossings.push(crossing(
                        &mut rng,
                        scenario,
                        chips,
                        start_point,
                        Line::Main,
                        again,
                        course.point(start_point).time_mode,
                    ));
                    passing_at[s] = Some(again);
                    via_backup[s] = false;
                }
            }
        }
        let finish_idx = race.finish_split();
        if plan.stops_after.is_none() && rng.random_bool(scenario.finish_recross_rate) {
            let later = instants[finish_idx] + Elapsed::from_secs(rng.random_range(300..1800));
            crossings.push(crossing(
                &mut rng,
                scenario,
                chips,
                race.splits[finish_idx].point,
                Line::Main,
                later,
                TimeMode::First,
            ));
        }
        if rng.random_bool(scenario.wrong_race_rate) {
            let foreign: Vec<PointIdx> = (0..course.points.len())
                .map(|i| PointIdx(i as u16))
                .filter(|pt| race.split_of(*pt).is_none())
                .collect();
            if let Some(pt) = foreign.choose(&mut rng) {
                let when = instants[last_reached.min(1)] + Elapsed::from_secs(rng.random_range(30..600));
                crossings.push(crossing(&mut rng, scenario, chips, *pt, Line::Main, when, TimeMode::First));
                flags.insert(Flags::WRONG_RACE);
            }
        }

        // The expected result, from the truth.
        let (start_at, start_real) = match start_idx {
            Some(s) if !plan.start_missed && !plan.late_start => (passing_at[s].expect("start crossed"), true),
            _ => (gun, false),
        };
        if plan.late_start {
            passing_at[start_idx.expect("late start needs a start mat")] = None;
            flags.insert(Flags::LATE_START);
        }
        if !start_real {
            flags.insert(Flags::START_FROM_GUN);
        }
        if (0..n).any(|i| via_backup[i] && passing_at[i].is_some()) {
            flags.insert(Flags::BACKUP);
        }
        // Mandatory points without a passing, before the last point with one.
        let first = start_idx.map_or(0, |s| s + 1);
        let last_passed = passing_at.iter().rposition(Option::is_some);
        let missing: Vec<usize> = match last_passed {
            Some(last) => (first..last).filter(|&i| race.splits[i].mandatory && passing_at[i].is_none()).collect(),
            None => Vec::new(),
        };
        if missing.windows(2).any(|w| w[1] == w[0] + 1) {
            flags.insert(Flags::MISSING_CONSECUTIVE);
        } else if !missing.is_empty() {
            flags.insert(Flags::MISSING_POINT);
        }
        let started = last_passed.is_some() || plan.late_start;
        if !started {
            // Every mat it reached was missed: nothing says this runner ever started.
            flags = flags.without(Flags::START_FROM_GUN);
        }
        let finished = passing_at[finish_idx].is_some();
        let status = if !started {
            Status::Dns
        } else if flags.intersects(Flags::REVIEW) {
            Status::Review
        } else if finished {
            Status::Finished
        } else {
            Status::Dnf
        };
        let splits: Vec<Option<Elapsed>> = passing_at.iter().map(|a| a.map(|a| a.since(start_at))).collect();
        truth.push(Truth {
            participant: pidx,
            status,
            start: start_real.then_some(start_at),
            gun_time: passing_at[finish_idx].map(|f| f.since(gun)),
            chip_time: passing_at[finish_idx].map(|f| f.since(start_at)),
            splits,
            flags,
            places: Places::default(),
        });
    }

    // Strays: unknown chips at the finish (some read briefly, some lying there), and DNS bibs
    // lying by the finish.
    let finish_point = course.races[0].splits[course.races[0].finish_split()].point;
    let first_gun = guns.iter().map(|g| g.1).min().expect("an event has waves");
    let mut n_strays = 0;
    let mut unknown_chips = Vec::new();
    for k in 0..scenario.unknown_chips {
        let chip = ChipId::new(&format!("FFFF{:08X}", k));
        let at = first_gun + Elapsed::from_secs(rng.random_range(600..10_000));
        if k % 2 == 0 {
            crossings.push(stray(chip.clone(), finish_point, at));
            n_strays += 1;
        } else {
            crossings.push(crossing(
                &mut rng,
                scenario,
                std::slice::from_ref(&chip),
                finish_point,
                Line::Main,
                at,
                TimeMode::First,
            ));
        }
        unknown_chips.push(chip);
    }
    for &p in dns_bibs.iter().take(scenario.stray_bibs) {
        let at = first_gun + Elapsed::from_secs(rng.random_range(600..10_000));
        crossings.push(stray(course.participant(p).chips[0].clone(), finish_point, at));
        truth[p.idx()].flags.insert(Flags::STRAY);
        n_strays += 1;
    }

    rank(&course, &mut truth);
    crossings.sort_by_key(|c| c.first_read);
    unknown_chips.sort();
    SimRace { participants_csv: csv, course, guns, crossings, truth, n_strays, unknown_chips }
}

/// Deals one runner's scenario.
fn deal(rng: &mut ChaCha8Rng, s: &Scenario, n: usize, point_lines: &[Vec<Line>], race: &timing_core::RaceDef) -> Plan {
    let mut plan = Plan::default();
    if rng.random_bool(s.dns_rate) {
        plan.dns = true;
        return plan;
    }
    let start = race.start_split();
    let first_mid = start.map_or(0, |s| s + 1);
    let intermediates: Vec<usize> = (first_mid..n - 1).filter(|&i| race.splits[i].mandatory).collect();
    if rng.random_bool(s.dnf_rate) && n >= 2 {
        plan.stops_after = Some(rng.random_range(start.unwrap_or(0)..n - 1));
    }
    if start.is_some() {
        if rng.random_bool(s.late_start_rate) {
            plan.late_start = true;
        } else if rng.random_bool(s.start_missed_rate) {
            plan.start_missed = true;
        }
    }
    if intermediates.len() >= 2 && rng.random_bool(s.missed_two_rate) {
        let k = rng.random_range(0..intermediates.len() - 1);
        if intermediates[k + 1] == intermediates[k] + 1 {
            plan.missed = vec![intermediates[k], intermediates[k + 1]];
        }
    } else if !intermediates.is_empty() && rng.random_bool(s.missed_mat_rate) {
        plan.missed = vec![*intermediates.choose(rng).expect("not empty")];
    }
    for (i, split) in race.splits.iter().enumerate() {
        if point_lines[split.point.idx()].contains(&Line::Backup) && rng.random_bool(s.backup_only_rate) {
            plan.backup_only.push(i);
        }
    }
    plan
}

/// A burst of reads whose `mode` instant is exactly `at`.
fn crossing(
    rng: &mut ChaCha8Rng,
    s: &Scenario,
    chips: &[ChipId],
    point: PointIdx,
    line: Line,
    at: Timestamp,
    mode: TimeMode,
) -> SimCrossing {
    let hits = rng.random_range(s.hits.0..=s.hits.1).max(1);
    // A chip stays in the field for about a second or two; the more reads, the closer together
    // (a fast reader, a slow runner), never further apart than 120 ms.
    let span_ms: u32 = rng.random_range(800..2500);
    let mean_gap = (span_ms / hits.saturating_sub(1).max(1)).clamp(2, 120);
    let gaps_ms: Vec<u16> = (1..hits).map(|_| rng.random_range(mean_gap * 4 / 5..=mean_gap * 6 / 5) as u16).collect();
    let peak_index = rng.random_range(0..hits);
    let offset_ms: i64 = match mode {
        TimeMode::First => 0,
        TimeMode::PeakRssi => gaps_ms[..peak_index as usize].iter().map(|&g| g as i64).sum(),
        TimeMode::Last => gaps_ms.iter().map(|&g| g as i64).sum(),
    };
    // Dual-tag bibs: the burst comes from one of the chips (the other is shadowed by the body).
    let chip = chips.choose(rng).expect("a participant has a chip").clone();
    SimCrossing { chip, point, line, first_read: at - Elapsed::from_millis(offset_ms), hits, peak_index, gaps_ms }
}

/// A chip read continuously for 20 s, 300 ms apart.
fn stray(chip: ChipId, point: PointIdx, at: Timestamp) -> SimCrossing {
    SimCrossing { chip, point, line: Line::Main, first_read: at, hits: 67, peak_index: 33, gaps_ms: vec![300; 66] }
}

/// Places from the true gun (or chip) times, among true finishers with a clean record.
fn rank(course: &Course, truth: &mut [Truth]) {
    let key = |t: &Truth| {
        let p = course.participant(t.participant);
        let race = course.race(p.race);
        let time = match race.rank_by {
            timing_core::RankBy::Gun => t.gun_time,
            timing_core::RankBy::Chip => t.chip_time,
        };
        (race.ranked && t.status == Status::Finished).then(|| time.expect("finished has a time"))
    };
    let keys: Vec<Option<Elapsed>> = truth.iter().map(key).collect();
    // The times of each field (race and division; with gender; category), sorted: a place is one
    // more than the number of strictly faster times in the field, so equal times share it.
    let mut overall: HashMap<(RaceIdx, &Division), Vec<Elapsed>> = HashMap::new();
    let mut gender: HashMap<(RaceIdx, &Division, Gender), Vec<Elapsed>> = HashMap::new();
    let mut category: HashMap<CategoryIdx, Vec<Elapsed>> = HashMap::new();
    for (t, time) in truth.iter().zip(&keys) {
        let Some(time) = *time else { continue };
        let p = course.participant(t.participant);
        overall.entry((p.race, &p.division)).or_default().push(time);
        gender.entry((p.race, &p.division, p.gender)).or_default().push(time);
        if let Some(c) = p.category {
            category.entry(c).or_default().push(time);
        }
    }
    for v in overall.values_mut().chain(gender.values_mut()).chain(category.values_mut()) {
        v.sort_unstable();
    }
    let place = |field: &[Elapsed], mine: Elapsed| Some(field.partition_point(|&t| t < mine) as u32 + 1);
    for (t, time) in truth.iter_mut().zip(&keys) {
        let Some(mine) = *time else { continue };
        let me = course.participant(t.participant);
        t.places = Places {
            overall: place(&overall[&(me.race, &me.division)], mine),
            gender: place(&gender[&(me.race, &me.division, me.gender)], mine),
            category: me.category.and_then(|c| place(&category[&c], mine)),
        };
    }
}

/// A participant list: names, genders, birth dates old enough for the race, waves, a few para
/// athletes, dual-tag bibs.
fn participants_csv(event: &EventConfig, s: &Scenario, rng: &mut ChaCha8Rng) -> String {
    let course = &event.course;
    let reference = event.age_reference_date();
    let mut out =
        String::from("bib,chip,first_name,last_name,gender,birth_date,race,wave,nation,club,division,estimate\n");
    // Declared finish times come from a stream of their own, so adding them changed no seed's race.
    let mut declared = ChaCha8Rng::seed_from_u64(s.seed ^ 0x00e5_7112_a7e0);
    let mut bib = 1u32;
    for (ri, race) in course.races.iter().enumerate() {
        let n = s.runners.get(ri).copied().unwrap_or(0);
        let waves: Vec<&timing_core::Wave> = course.waves.iter().filter(|w| w.race.idx() == ri).collect();
        let divisions: Vec<&Division> = {
            let mut d: Vec<&Division> =
                course.categories.iter().filter(|c| c.race.idx() == ri).map(|c| &c.division).collect();
            d.sort();
            d.dedup();
            d
        };
        for k in 0..n {
            let gender = match rng.random_range(0..100) {
                0..=54 => Gender::Male,
                55..=98 => Gender::Female,
                _ => Gender::NonBinary,
            };
            let min_age = race.min_age.unwrap_or(16) as i32;
            let age = rng.random_range(min_age..min_age + 55);
            let year = chrono_year(reference) - age;
            let birth = format!("{year}-{:02}-{:02}", rng.random_range(1..=12), rng.random_range(1..=28));
            // Waves fill in order, like corrals by declared time.
            let wave = waves[(k * waves.len() / n.max(1)).min(waves.len() - 1)];
            let para = divisions.iter().find(|d| d.as_str() != Division::RUNNING && rng.random_bool(0.005));
            let division = para.map_or("", |d| d.as_str());
            let mut chip = format!("E200{:08X}", bib);
            if rng.random_bool(s.dual_tag_rate) {
                chip.push_str(&format!(" E201{:08X}", bib));
            }
            let (first, last) = names::pick(rng, gender);
            let nation =
                ["FRA", "FRA", "FRA", "FRA", "BEL", "ESP", "GBR", "ITA", "DEU", "USA"].choose(rng).expect("not empty");
            let club = if rng.random_bool(0.3) { names::club(rng) } else { "" };
            // Corrals fill by declared time: a pace from 3:30 to 7:30 per km along the field, ±15 %.
            let along = k as f64 / n.max(1) as f64;
            let pace_s = (210.0 + 240.0 * along) * declared.random_range(0.85..1.15);
            let estimate_s = (pace_s * race.distance_m as f64 / 1000.0).round() as i64;
            out.push_str(&format!(
                "{bib},{chip},{first},{last},{},{birth},{},{},{nation},{club},{division},{}:{:02}:{:02}\n",
                gender.code(),
                race.id,
                wave.id,
                estimate_s / 3600,
                estimate_s / 60 % 60,
                estimate_s % 60
            ));
            bib += 1;
        }
    }
    out
}

fn chrono_year(d: chrono::NaiveDate) -> i32 {
    use chrono::Datelike;
    d.year()
}

#[cfg(test)]
mod tests;
