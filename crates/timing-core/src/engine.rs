//! The race engine: reads and corrections in, results, places and events out.
//!
//! Design note.
//! There is one way to compute a participant's result ([`Engine::recompute_participant`]), a
//! pure function of the participant's crossings, the course and the correction state.
//! The live path ([`Engine::handle_read`], [`Engine::handle_correction`]) updates crossings and
//! recomputes only the participants a change touches; the batch path ([`Engine::replay`]) loads
//! everything and computes every participant once.
//! Both keep the same state, so "incremental equals full recompute" is a property of the
//! bookkeeping, which the property tests check.
//!
//! Crossings are stored per chip (not per participant), so a chip reassigned by the desk takes
//! its reads with it, and reads of unknown chips are kept and start to count the moment the chip
//! is given to a bib.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

use rustc_hash::{FxHashMap, FxHashSet, FxHasher};

use crate::correction::{Correction, CorrectionError, StatusOverride};
use crate::course::{Bib, Course, ParticipantIdx, PointIdx, RaceIdx, RankBy, WaveIdx};
use crate::crossing::{ChipCrossings, Crossing, Crossings};
use crate::passing::{Candidate, Inputs, candidates, resolve};
use crate::placing::{RankIndex, RankKey};
use crate::read::{ChipId, Line, Read, ReaderId};
use crate::result::{Flags, ParticipantResult, Passing, Status};
use crate::time::{Elapsed, Timestamp};

/// What happened to one read. Rejections are values, not errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Stored and applied to a participant.
    Applied(ParticipantIdx),
    /// Stored under a chip no bib owns (counted, listed, scored if the chip is assigned later).
    UnknownChip,
    /// The read names a timing point the event does not have (counted, dropped).
    UnknownPoint,
    /// Exactly the same read was seen before (a replay).
    Duplicate,
}

/// Changes the live path reports, for spectators and the desk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RaceEvent {
    /// A passing at a split was accepted, moved, or withdrawn (`passing: None`).
    Passing {
        participant: ParticipantIdx,
        split: usize,
        passing: Option<Passing>,
    },
    /// The participant's finish (and so the times) changed.
    Finished {
        participant: ParticipantIdx,
        gun_time: Elapsed,
        chip_time: Elapsed,
    },
    StatusChanged {
        participant: ParticipantIdx,
        status: Status,
        flags: Flags,
    },
    GunTime {
        wave: WaveIdx,
        at: Timestamp,
    },
    UnknownChip {
        chip: ChipId,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub n_reads: u64,
    pub n_duplicates: u64,
    pub n_unknown_point: u64,
    pub n_unknown_chip_reads: u64,
}

/// Per-participant places; `None` where the participant is not ranked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Places {
    pub overall: Option<u32>,
    pub gender: Option<u32>,
    pub category: Option<u32>,
}

/// An unregistered chip and what it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownChip {
    pub chip: ChipId,
    pub n_reads: u64,
    pub first_seen: Timestamp,
    pub points: Vec<PointIdx>,
}

/// One stray crossing, reported once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stray {
    pub chip: ChipId,
    pub bib: Option<Bib>,
    pub point: PointIdx,
    pub line: Line,
    pub first: Timestamp,
    pub last: Timestamp,
}

/// Crossings of a bib at a point its race does not use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrongRace {
    pub participant: ParticipantIdx,
    pub point: PointIdx,
    pub n_crossings: usize,
    pub first: Timestamp,
}

#[derive(Clone, Debug)]
struct ChipState {
    chip: ChipId,
    owner: Option<ParticipantIdx>,
    /// Every line's crossings, in one vector.
    crossings: ChipCrossings,
    n_reads: u64,
    /// Fingerprints of this chip's reads, when exact duplicates are filtered (see [`read_fingerprint`]).
    seen: Option<Box<FxHashSet<u64>>>,
}

/// The exact-duplicate filter's key for a read.
///
/// Every field of a read but the chip goes into a 64-bit fingerprint kept in the chip's own set.
/// Sets per chip stay small (a few hundred reads at a whole marathon) and local in memory, and
/// a false "duplicate" needs two of one chip's reads to collide in 64 bits (about 1e-15 for a
/// chip's whole race).
fn read_fingerprint(point: PointIdx, reader: u32, read: &Read) -> u64 {
    let mut h = FxHasher::default();
    (point.0, reader, read.at, read.line, read.antenna, read.rssi, read.reader_seq).hash(&mut h);
    // A final avalanche, so that nearby instants spread over the table.
    let x = h.finish();
    let x = (x ^ (x >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^ (x >> 33)
}

/// A published ranking list: a race's overall or gender list within a division, or a category.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Board {
    Overall { race: RaceIdx, division: crate::course::Division },
    Gender { race: RaceIdx, division: crate::course::Division, gender: crate::course::Gender },
    Category(crate::course::CategoryIdx),
}

impl Board {
    /// The lists a participant appears on when ranked.
    pub fn of(course: &Course, p: ParticipantIdx) -> [Option<Board>; 3] {
        let part = course.participant(p);
        [
            Some(Board::Overall { race: part.race, division: part.division.clone() }),
            Some(Board::Gender { race: part.race, division: part.division.clone(), gender: part.gender }),
            part.category.map(Board::Category),
        ]
    }
}

/// Which ranking lists a participant belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Group {
    Overall(RaceIdx, u32),
    Gender(RaceIdx, u32, u8),
    Category(u16),
}

#[derive(Clone, Debug, Default)]
struct CorrectionState {
    gun: FxHashMap<WaveIdx, Timestamp>,
    manual: FxHashMap<(ParticipantIdx, usize), Timestamp>,
    status: FxHashMap<ParticipantIdx, (StatusOverride, String)>,
    point_offset: FxHashMap<PointIdx, Elapsed>,
}

/// Engine options.
#[derive(Clone, Copy, Debug)]
pub struct EngineOptions {
    /// Drop exact duplicate reads (costs 16 bytes per read). Off where every read is already
    /// distinct (the aggregator: unique `(edge, seq)`, replays dropped by the edge's outbox).
    pub dedup_reads: bool,
    /// Queue [`RaceEvent`]s for [`Engine::poll_event`].
    pub events: bool,
}

impl Default for EngineOptions {
    fn default() -> EngineOptions {
        EngineOptions { dedup_reads: true, events: true }
    }
}

#[derive(Debug)]
pub struct Engine {
    course: Course,
    options: EngineOptions,
    chip_index: FxHashMap<ChipId, u32>,
    chips: Vec<ChipState>,
    readers: FxHashMap<ReaderId, u32>,
    bibs: FxHashMap<Bib, ParticipantIdx>,
    owned: Vec<Vec<u32>>,
    results: Vec<ParticipantResult>,
    rank_keys: Vec<Option<i64>>,
    groups: FxHashMap<Group, RankIndex>,
    divisions: FxHashMap<crate::course::Division, u32>,
    corrections: CorrectionState,
    counters: Counters,
    events: VecDeque<RaceEvent>,
}

impl Engine {
    /// An engine with no reads yet: every participant not started.
    pub fn new(course: Course, options: EngineOptions) -> Engine {
        let mut engine = Engine::empty(course, options);
        engine.recompute_all();
        engine
    }

    /// The batch path: every read and correction loaded first, every participant computed once.
    /// Corrections that cannot be applied are returned with their position, and skipped.
    pub fn replay(
        course: Course,
        options: EngineOptions,
        reads: impl IntoIterator<Item = Read>,
        corrections: impl IntoIterator<Item = Correction>,
    ) -> (Engine, Vec<(usize, CorrectionError)>) {
        let mut engine = Engine::empty(course, EngineOptions { events: false, ..options });
        for read in reads {
            engine.store_read(&read);
        }
        let mut refused = Vec::new();
        for (i, c) in corrections.into_iter().enumerate() {
            if let Err(e) = engine.store_correction(c) {
                refused.push((i, e));
            }
        }
        engine.recompute_all();
        engine.options.events = options.events;
        (engine, refused)
    }

    fn empty(course: Course, options: EngineOptions) -> Engine {
        let n = course.participants.len();
        let n_chips = course.participants.iter().map(|p| p.chips.len()).sum();
        let mut engine = Engine {
            options,
            chip_index: FxHashMap::default(),
            chips: Vec::with_capacity(n_chips),
            readers: FxHashMap::default(),
            bibs: FxHashMap::default(),
            owned: vec![Vec::new(); n],
            results: vec![ParticipantResult::default(); n],
            rank_keys: vec![None; n],
            groups: FxHashMap::default(),
            divisions: FxHashMap::default(),
            corrections: CorrectionState::default(),
            counters: Counters::default(),
            events: VecDeque::new(),
            course,
        };
        for i in 0..n {
            let p = &engine.course.participants[i];
            let pidx = ParticipantIdx(i as u32);
            engine.bibs.insert(p.bib.clone(), pidx);
            let next = engine.divisions.len() as u32;
            engine.divisions.entry(p.division.clone()).or_insert(next);
            for chip in p.chips.clone() {
                let c = engine.chip_slot(&chip);
                engine.chips[c as usize].owner = Some(pidx);
                engine.owned[i].push(c);
            }
        }
        engine
    }

    // Getters.

    pub fn course(&self) -> &Course {
        &self.course
    }
    pub fn result(&self, p: ParticipantIdx) -> &ParticipantResult {
        &self.results[p.idx()]
    }
    pub fn results(&self) -> &[ParticipantResult] {
        &self.results
    }
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
    pub fn participant_by_bib(&self, bib: &str) -> Option<ParticipantIdx> {
        self.bibs.get(&Bib::new(bib)).copied()
    }
    /// The gun in effect for a wave, and whether it is only the scheduled start.
    pub fn gun(&self, wave: WaveIdx) -> (Timestamp, bool) {
        let w = self.course.wave(wave);
        match self.corrections.gun.get(&wave).copied().or(w.gun_time) {
            Some(at) => (at, false),
            None => (w.scheduled_start, true),
        }
    }
    /// The chips a participant owns now (after reassignments).
    pub fn chips_of(&self, p: ParticipantIdx) -> impl Iterator<Item = &ChipId> {
        self.owned[p.idx()].iter().map(|&c| &self.chips[c as usize].chip)
    }
    pub fn status_reason(&self, p: ParticipantIdx) -> Option<&str> {
        self.corrections.status.get(&p).map(|(_, r)| r.as_str())
    }

    /// Places of one participant in its race (overall and gender within its division, category).
    pub fn places(&self, p: ParticipantIdx) -> Places {
        let Some(t) = self.rank_keys[p.idx()] else { return Places::default() };
        let place = |g: Group| self.groups.get(&g).map(|r| r.place(t));
        let (overall, gender, category) = self.groups_of(p);
        Places { overall: place(overall), gender: place(gender), category: category.and_then(place) }
    }

    /// The ranked entries of a race's overall list (within `division`), best first.
    pub fn leaderboard(&self, race: RaceIdx, division: &crate::course::Division) -> Vec<ParticipantIdx> {
        let Some(&d) = self.divisions.get(division) else { return Vec::new() };
        self.groups
            .get(&Group::Overall(race, d))
            .map(|r| r.iter().map(|(_, p)| ParticipantIdx(p)).collect())
            .unwrap_or_default()
    }

    /// The first `n` entries of a ranking list, best first (ties in bib order).
    pub fn top(&self, board: &Board, n: usize) -> Vec<ParticipantIdx> {
        let group = self.board_group(board);
        group
            .and_then(|g| self.groups.get(&g))
            .map(|r| r.iter().take(n).map(|(_, p)| ParticipantIdx(p)).collect())
            .unwrap_or_default()
    }

    fn board_group(&self, board: &Board) -> Option<Group> {
        match board {
            Board::Overall { race, division } => self.divisions.get(division).map(|&d| Group::Overall(*race, d)),
            Board::Gender { race, division, gender } => {
                self.divisions.get(division).map(|&d| Group::Gender(*race, d, *gender as u8))
            }
            Board::Category(c) => Some(Group::Category(c.0)),
        }
    }

    /// How many entries a ranking list has.
    pub fn board_len(&self, board: &Board) -> usize {
        let group = self.board_group(board);
        group.and_then(|g| self.groups.get(&g)).map_or(0, RankIndex::len)
    }

    /// Every unknown chip with its read count, sorted by chip.
    pub fn unknown_chips(&self) -> Vec<UnknownChip> {
        let mut out: Vec<UnknownChip> = self
            .chips
            .iter()
            .filter(|c| c.owner.is_none() && c.n_reads > 0)
            .map(|c| UnknownChip {
                chip: c.chip.clone(),
                n_reads: c.n_reads,
                first_seen: c.crossings.iter().map(|(_, _, x)| x.first).min().unwrap_or(Timestamp::MAX),
                points: {
                    let mut ps: Vec<PointIdx> = c.crossings.iter().map(|(p, _, _)| p).collect();
                    ps.sort_unstable();
                    ps.dedup();
                    ps
                },
            })
            .collect();
        out.sort_by(|a, b| a.chip.cmp(&b.chip));
        out
    }

    /// Every stray crossing, once each, sorted by point and time.
    pub fn strays(&self) -> Vec<Stray> {
        let mut out = Vec::new();
        for c in &self.chips {
            for (point, line, x) in c.crossings.iter() {
                if x.is_stray(self.course.point(point).stray_after) {
                    out.push(Stray {
                        chip: c.chip.clone(),
                        bib: c.owner.map(|p| self.course.participant(p).bib.clone()),
                        point,
                        line,
                        first: x.first,
                        last: x.last,
                    });
                }
            }
        }
        out.sort_by(|a, b| (a.point, a.first, &a.chip).cmp(&(b.point, b.first, &b.chip)));
        out
    }

    /// Crossings at points outside each participant's race, sorted by participant and point.
    pub fn wrong_race(&self) -> Vec<WrongRace> {
        let mut out = Vec::new();
        for (i, owned) in self.owned.iter().enumerate() {
            let pidx = ParticipantIdx(i as u32);
            let race = self.course.race(self.course.participant(pidx).race);
            let mut by_point: Vec<(PointIdx, usize, Timestamp)> = Vec::new();
            for &c in owned {
                for (point, _, x) in self.chips[c as usize].crossings.iter() {
                    if race.split_of(point).is_some() {
                        continue;
                    }
                    match by_point.iter_mut().find(|e| e.0 == point) {
                        Some(e) => {
                            e.1 += 1;
                            e.2 = e.2.min(x.first);
                        }
                        None => by_point.push((point, 1, x.first)),
                    }
                }
            }
            by_point.sort_unstable_by_key(|e| e.0);
            out.extend(by_point.into_iter().map(|(point, n, first)| WrongRace {
                participant: pidx,
                point,
                n_crossings: n,
                first,
            }));
        }
        out
    }

    /// Total crossings stored (strays included), over every chip, point and line.
    pub fn n_crossings(&self) -> usize {
        self.chips.iter().map(|c| c.crossings.len()).sum()
    }

    // Handlers.

    /// Applies one read (live path).
    pub fn handle_read(&mut self, read: &Read) -> ReadOutcome {
        let outcome = self.store_read(read);
        if let ReadOutcome::Applied(p) = outcome {
            self.update_participant(p);
        }
        outcome
    }

    /// Applies one correction (live path). A refused correction changes nothing.
    pub fn handle_correction(&mut self, correction: Correction) -> Result<(), CorrectionError> {
        let touched = self.store_correction(correction)?;
        match touched {
            Touched::One(p) => self.update_participant(p),
            Touched::Two(a, b) => {
                if let Some(a) = a {
                    self.update_participant(a);
                }
                if let Some(b) = b {
                    self.update_participant(b);
                }
            }
            Touched::Wave(w) => {
                let (at, _) = self.gun(w);
                if self.options.events {
                    self.events.push_back(RaceEvent::GunTime { wave: w, at });
                }
                for i in 0..self.results.len() {
                    if self.course.participants[i].wave == w {
                        self.update_participant(ParticipantIdx(i as u32));
                    }
                }
            }
            Touched::All => {
                for i in 0..self.results.len() {
                    self.update_participant(ParticipantIdx(i as u32));
                }
            }
        }
        Ok(())
    }

    /// The next queued event, if any.
    pub fn poll_event(&mut self) -> Option<RaceEvent> {
        self.events.pop_front()
    }

    // Internals.

    fn chip_slot(&mut self, chip: &ChipId) -> u32 {
        if let Some(&c) = self.chip_index.get(chip) {
            return c;
        }
        let c = self.chips.len() as u32;
        self.chips.push(ChipState {
            chip: chip.clone(),
            owner: None,
            crossings: ChipCrossings::default(),
            n_reads: 0,
            seen: None,
        });
        self.chip_index.insert(chip.clone(), c);
        c
    }

    /// The point a read names; compares the shared string first (reads built from the course
    /// share it), then the text.
    fn point_of(&self, id: &crate::read::PointId) -> Option<PointIdx> {
        let points = &self.course.points;
        points
            .iter()
            .position(|p| p.id.same_allocation(id))
            .or_else(|| points.iter().position(|p| p.id == *id))
            .map(|i| PointIdx(i as u16))
    }

    fn reader_slot(&mut self, reader: &ReaderId) -> u32 {
        if let Some(&r) = self.readers.get(reader) {
            return r;
        }
        let r = self.readers.len() as u32;
        self.readers.insert(reader.clone(), r);
        r
    }

    fn store_read(&mut self, read: &Read) -> ReadOutcome {
        let Some(point) = self.point_of(&read.point) else {
            self.counters.n_unknown_point += 1;
            return ReadOutcome::UnknownPoint;
        };
        let known = self.chip_index.contains_key(&read.chip);
        let c = self.chip_slot(&read.chip);
        if self.options.dedup_reads {
            let reader = self.reader_slot(&read.reader);
            let seen = self.chips[c as usize].seen.get_or_insert_with(Default::default);
            if !seen.insert(read_fingerprint(point, reader, read)) {
                self.counters.n_duplicates += 1;
                return ReadOutcome::Duplicate;
            }
        }
        self.counters.n_reads += 1;
        let gap = self.course.point(point).quiet_gap;
        let chip = &mut self.chips[c as usize];
        chip.n_reads += 1;
        // Room for one crossing per point of the chip's race (the usual whole race) at once.
        let lines = chip.owner.map_or(2, |p| self.course.race(self.course.participant(p).race).splits.len());
        chip.crossings.reserve_first(lines);
        chip.crossings.insert(point, read.line, Crossing::single(read.at, read.rssi), gap);
        match chip.owner {
            Some(p) => ReadOutcome::Applied(p),
            None => {
                self.counters.n_unknown_chip_reads += 1;
                if !known && self.options.events {
                    self.events.push_back(RaceEvent::UnknownChip { chip: read.chip.clone() });
                }
                ReadOutcome::UnknownChip
            }
        }
    }

    fn bib(&self, bib: &Bib) -> Result<ParticipantIdx, CorrectionError> {
        self.bibs.get(bib).copied().ok_or_else(|| CorrectionError::UnknownBib(bib.to_string()))
    }

    fn store_correction(&mut self, correction: Correction) -> Result<Touched, CorrectionError> {
        match correction {
            Correction::GunTime { race, wave, at } => {
                let w = self
                    .course
                    .race_by_id(&race)
                    .and_then(|r| self.course.wave_by_id(r, &wave))
                    .ok_or(CorrectionError::UnknownWave { race, wave })?;
                match at {
                    Some(at) => self.corrections.gun.insert(w, at),
                    None => self.corrections.gun.remove(&w),
                };
                Ok(Touched::Wave(w))
            }
            Correction::ManualPassing { bib, point, at } => {
                let p = self.bib(&bib)?;
                let pt = self
                    .course
                    .point_by_id(point.as_str())
                    .ok_or_else(|| CorrectionError::UnknownPoint(point.to_string()))?;
                let race = self.course.race(self.course.participant(p).race);
                let split = race.split_of(pt).ok_or_else(|| CorrectionError::PointNotInRace {
                    bib: bib.to_string(),
                    point: point.to_string(),
                })?;
                match at {
                    Some(at) => self.corrections.manual.insert((p, split), at),
                    None => self.corrections.manual.remove(&(p, split)),
                };
                Ok(Touched::One(p))
            }
            Correction::Status { bib, status, reason } => {
                let p = self.bib(&bib)?;
                match status {
                    Some(s) => self.corrections.status.insert(p, (s, reason)),
                    None => self.corrections.status.remove(&p),
                };
                Ok(Touched::One(p))
            }
            Correction::AssignChip { chip, bib } => {
                let to = bib.as_ref().map(|b| self.bib(b)).transpose()?;
                let c = self.chip_slot(&chip);
                let from = self.chips[c as usize].owner;
                if let Some(f) = from {
                    self.owned[f.idx()].retain(|&x| x != c);
                }
                if let Some(t) = to {
                    self.owned[t.idx()].push(c);
                }
                self.chips[c as usize].owner = to;
                Ok(Touched::Two(from, to))
            }
            Correction::PointClockOffset { point, offset } => {
                let pt = self
                    .course
                    .point_by_id(point.as_str())
                    .ok_or_else(|| CorrectionError::UnknownPoint(point.to_string()))?;
                if offset == Elapsed::ZERO {
                    self.corrections.point_offset.remove(&pt);
                } else {
                    self.corrections.point_offset.insert(pt, offset);
                }
                Ok(Touched::All)
            }
        }
    }

    /// The one computation of a participant's result from stored crossings and corrections.
    fn recompute_participant(&self, p: ParticipantIdx) -> ParticipantResult {
        let participant = self.course.participant(p);
        let race = self.course.race(participant.race);
        let (gun, gun_scheduled) = self.gun(participant.wave);
        let owned = &self.owned[p.idx()];
        let mut stray = false;
        let mut cands: Vec<Vec<Candidate>> = Vec::with_capacity(race.splits.len());
        let mut manual: Vec<Option<Timestamp>> = Vec::with_capacity(race.splits.len());
        for (i, split) in race.splits.iter().enumerate() {
            let point = self.course.point(split.point);
            let gather = |line: Line| -> Crossings {
                let parts = owned.iter().flat_map(|&c| self.chips[c as usize].crossings.line(split.point, line));
                Crossings::merge_all(parts, point.quiet_gap)
            };
            let offset = self.corrections.point_offset.get(&split.point).copied().unwrap_or(Elapsed::ZERO);
            let (c, s) = candidates(point, &gather(Line::Main), &gather(Line::Backup), offset);
            stray |= s;
            cands.push(c);
            manual.push(self.corrections.manual.get(&(p, i)).copied());
        }
        let mut wrong_race = false;
        for &c in owned {
            for (point, _, x) in self.chips[c as usize].crossings.iter() {
                if race.split_of(point).is_none() {
                    wrong_race = true;
                    stray |= x.is_stray(self.course.point(point).stray_after);
                }
            }
        }
        resolve(&Inputs {
            race,
            wave: self.course.wave(participant.wave),
            gun,
            gun_scheduled,
            candidates: &cands,
            manual: &manual,
            stray,
            wrong_race,
            status_override: self.corrections.status.get(&p).map(|(s, _)| *s),
        })
    }

    fn groups_of(&self, p: ParticipantIdx) -> (Group, Group, Option<Group>) {
        let part = self.course.participant(p);
        let d = self.divisions[&part.division];
        (
            Group::Overall(part.race, d),
            Group::Gender(part.race, d, part.gender as u8),
            part.category.map(|c| Group::Category(c.0)),
        )
    }

    /// The time a participant ranks on, if ranked.
    fn rank_time(&self, p: ParticipantIdx, r: &ParticipantResult) -> Option<i64> {
        let race = self.course.race(self.course.participant(p).race);
        if !race.ranked || r.status() != Status::Finished {
            return None;
        }
        let t = match race.rank_by {
            RankBy::Gun => r.gun_time?,
            RankBy::Chip => r.chip_time?,
        };
        Some(t.as_micros())
    }

    fn set_rank(&mut self, p: ParticipantIdx, new: Option<i64>) {
        let old = self.rank_keys[p.idx()];
        if old == new {
            return;
        }
        let (a, b, c) = self.groups_of(p);
        for g in [Some(a), Some(b), c].into_iter().flatten() {
            let index = self.groups.entry(g).or_default();
            if let Some(t) = old {
                index.remove((t, p.0) as RankKey);
            }
            if let Some(t) = new {
                index.insert((t, p.0));
            }
        }
        self.rank_keys[p.idx()] = new;
    }

    fn recompute_all(&mut self) {
        for i in 0..self.results.len() {
            let p = ParticipantIdx(i as u32);
            let r = self.recompute_participant(p);
            let t = self.rank_time(p, &r);
            self.results[i] = r;
            self.set_rank(p, t);
        }
    }

    fn update_participant(&mut self, p: ParticipantIdx) {
        let new = self.recompute_participant(p);
        let old = std::mem::replace(&mut self.results[p.idx()], new);
        let t = self.rank_time(p, &self.results[p.idx()]);
        self.set_rank(p, t);
        if self.options.events {
            self.diff_events(p, &old);
        }
    }

    fn diff_events(&mut self, p: ParticipantIdx, old: &ParticipantResult) {
        let new = &self.results[p.idx()];
        for (split, passing) in new.passings.iter().enumerate() {
            if old.passings.get(split).copied().flatten() != *passing {
                self.events.push_back(RaceEvent::Passing { participant: p, split, passing: *passing });
            }
        }
        if let (Some(gun_time), Some(chip_time)) = (new.gun_time, new.chip_time)
            && (old.gun_time, old.chip_time) != (new.gun_time, new.chip_time)
        {
            self.events.push_back(RaceEvent::Finished { participant: p, gun_time, chip_time });
        }
        if old.status != new.status || old.flags != new.flags {
            self.events.push_back(RaceEvent::StatusChanged { participant: p, status: new.status(), flags: new.flags });
        }
    }
}

/// Which participants a correction can change.
enum Touched {
    One(ParticipantIdx),
    Two(Option<ParticipantIdx>, Option<ParticipantIdx>),
    Wave(WaveIdx),
    All,
}

#[cfg(test)]
mod tests;
