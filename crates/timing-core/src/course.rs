//! The validated event model the engine runs on: timing points, races, waves, categories, participants.
//!
//! Everything here is already validated (by `event-config`); the engine indexes into these vectors
//! with the small index newtypes and never looks names up on a hot path.

use std::fmt;
use std::sync::Arc;

use crate::read::{ChipId, PointId};
use crate::time::{Elapsed, Timestamp};

macro_rules! index {
    ($(#[$doc:meta])* $name:ident($t:ty)) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub $t);

        impl $name {
            pub fn idx(self) -> usize {
                self.0 as usize
            }
        }
    };
}

index!(
    /// Index into [`Course::points`].
    PointIdx(u16)
);
index!(
    /// Index into [`Course::races`].
    RaceIdx(u16)
);
index!(
    /// Index into [`Course::waves`].
    WaveIdx(u16)
);
index!(
    /// Index into [`Course::participants`].
    ParticipantIdx(u32)
);
index!(
    /// Index into [`Course::categories`].
    CategoryIdx(u16)
);

/// A bib number as printed (usually digits, but not always).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bib(Arc<str>);

impl Bib {
    pub fn new(s: &str) -> Bib {
        Bib(Arc::from(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Sort key that orders numeric bibs numerically (`9` before `10`) and others after them.
    pub fn sort_key(&self) -> (u64, &str) {
        (self.0.parse::<u64>().unwrap_or(u64::MAX), &self.0)
    }
}

impl fmt::Debug for Bib {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl fmt::Display for Bib {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a crossing's single instant is chosen from its reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TimeMode {
    /// The first read (the default everywhere: the chip reaches the mat's field).
    #[default]
    First,
    /// The last read (some desks prefer it at a start where runners stand on the mat).
    Last,
    /// The read with the strongest signal (the chip above the antenna); first read if no RSSI.
    PeakRssi,
}

/// A physical timing place with a main and optionally a backup line of mats.
#[derive(Clone, Debug, PartialEq)]
pub struct TimingPoint {
    pub id: PointId,
    pub name: String,
    pub time_mode: TimeMode,
    /// Reads of one chip closer together than this belong to one crossing.
    pub quiet_gap: Elapsed,
    /// A crossing whose reads span at least this long is a stray (a bib lying by the mat).
    pub stray_after: Elapsed,
    /// Added to backup-line times, to bring the backup mat onto the main line.
    pub backup_offset: Elapsed,
    /// A backup crossing within this of a main crossing is the same passing (the backup only fills a miss).
    pub line_tolerance: Elapsed,
}

/// One timing point as a race uses it: at a distance, with a window of plausible pace.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub point: PointIdx,
    pub distance_m: u32,
    /// A missing mandatory split is reported; two missing in a row puts the result in review.
    pub mandatory: bool,
    /// Fastest plausible pace from the previous accepted passing, per kilometre.
    pub min_pace_per_km: Elapsed,
    /// Slowest plausible pace from the previous accepted passing, per kilometre.
    pub max_pace_per_km: Elapsed,
}

/// How places are ordered within a race.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RankBy {
    /// Gun time (the official time, World Athletics).
    #[default]
    Gun,
    /// Chip (net) time.
    Chip,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RaceDef {
    pub id: String,
    pub name: String,
    pub distance_m: u32,
    pub min_age: Option<u16>,
    /// Unranked races publish times without places.
    pub ranked: bool,
    pub rank_by: RankBy,
    /// From the wave's gun: passings later than this do not count.
    pub time_limit: Elapsed,
    /// The course plan in distance order; the split at distance 0, if any, is the start,
    /// the last split is the finish.
    pub splits: Vec<Split>,
}

impl RaceDef {
    /// Index in `splits` of the start, if the race has a start mat.
    pub fn start_split(&self) -> Option<usize> {
        (self.splits.first()?.distance_m == 0).then_some(0)
    }
    pub fn finish_split(&self) -> usize {
        self.splits.len() - 1
    }
    pub fn split_of(&self, point: PointIdx) -> Option<usize> {
        self.splits.iter().position(|s| s.point == point)
    }
}

/// A wave (corral) of one race, started by its own gun.
#[derive(Clone, Debug, PartialEq)]
pub struct Wave {
    pub id: String,
    pub race: RaceIdx,
    pub scheduled_start: Timestamp,
    /// The actual gun time when known at configuration time (corrections can set or edit it).
    pub gun_time: Option<Timestamp>,
    /// A start crossing counts only within `[gun, gun + start_window]`.
    pub start_window: Elapsed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Gender {
    Female,
    Male,
    /// Non-binary.
    NonBinary,
}

impl Gender {
    pub fn code(self) -> &'static str {
        match self {
            Gender::Female => "F",
            Gender::Male => "M",
            Gender::NonBinary => "X",
        }
    }
    pub fn parse(s: &str) -> Option<Gender> {
        match s.trim().to_ascii_uppercase().as_str() {
            "F" | "W" | "FEMALE" => Some(Gender::Female),
            "M" | "H" | "MALE" => Some(Gender::Male),
            "X" | "NB" | "NON-BINARY" => Some(Gender::NonBinary),
            _ => None,
        }
    }
}

/// A ranking division: para groups are ranked apart from runners.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Division(pub Arc<str>);

impl Division {
    pub const RUNNING: &'static str = "running";
    pub fn running() -> Division {
        Division(Arc::from(Division::RUNNING))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An age band (by gender and division) within a race.
#[derive(Clone, Debug, PartialEq)]
pub struct Category {
    pub code: String,
    pub race: RaceIdx,
    pub gender: Option<Gender>,
    pub division: Division,
    pub min_age: Option<u16>,
    pub max_age: Option<u16>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Participant {
    pub bib: Bib,
    pub chips: Vec<ChipId>,
    pub first_name: String,
    pub last_name: String,
    pub gender: Gender,
    /// Age on the event's reference date (the birth date stays in the import).
    pub age: Option<u16>,
    pub race: RaceIdx,
    pub wave: WaveIdx,
    pub division: Division,
    pub category: Option<CategoryIdx>,
    pub nation: String,
    pub club: String,
    /// The runner's declared finish time, for predictions before the first split.
    pub estimate: Option<Elapsed>,
}

/// The whole validated event: the engine's immutable configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Course {
    pub points: Vec<TimingPoint>,
    pub races: Vec<RaceDef>,
    pub waves: Vec<Wave>,
    pub categories: Vec<Category>,
    pub participants: Vec<Participant>,
}

impl Course {
    pub fn point(&self, i: PointIdx) -> &TimingPoint {
        &self.points[i.idx()]
    }
    pub fn race(&self, i: RaceIdx) -> &RaceDef {
        &self.races[i.idx()]
    }
    pub fn wave(&self, i: WaveIdx) -> &Wave {
        &self.waves[i.idx()]
    }
    pub fn participant(&self, i: ParticipantIdx) -> &Participant {
        &self.participants[i.idx()]
    }
    pub fn point_by_id(&self, id: &str) -> Option<PointIdx> {
        self.points.iter().position(|p| p.id.as_str() == id).map(|i| PointIdx(i as u16))
    }
    pub fn wave_by_id(&self, race: RaceIdx, id: &str) -> Option<WaveIdx> {
        self.waves.iter().position(|w| w.race == race && w.id == id).map(|i| WaveIdx(i as u16))
    }
    pub fn race_by_id(&self, id: &str) -> Option<RaceIdx> {
        self.races.iter().position(|r| r.id == id).map(|i| RaceIdx(i as u16))
    }
    pub fn participant_by_bib(&self, bib: &str) -> Option<ParticipantIdx> {
        self.participants.iter().position(|p| p.bib.as_str() == bib).map(|i| ParticipantIdx(i as u32))
    }
}
