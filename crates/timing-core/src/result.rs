//! What the engine computes per participant: passings, times, status, flags.

use crate::read::Line;
use crate::time::{Elapsed, Timestamp};

/// Where a passing's instant came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provenance {
    ChipMain,
    ChipBackup,
    /// Entered by the results desk.
    Manual,
    /// No valid start crossing: the chip start is the wave's gun.
    GunFallback,
}

impl Provenance {
    pub fn as_str(self) -> &'static str {
        match self {
            Provenance::ChipMain => "chip_main",
            Provenance::ChipBackup => "chip_backup",
            Provenance::Manual => "manual",
            Provenance::GunFallback => "gun_fallback",
        }
    }
    pub fn from_line(line: Line) -> Provenance {
        match line {
            Line::Main => Provenance::ChipMain,
            Line::Backup => Provenance::ChipBackup,
        }
    }
}

/// A deduplicated crossing of one timing point, accepted into a participant's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Passing {
    pub at: Timestamp,
    pub provenance: Provenance,
    /// Reads behind it (0 for manual and gun fallback).
    pub hits: u32,
}

/// A participant's status. Only `Finished` is ranked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// No passing yet (live); `DNS` in final standings.
    NotStarted,
    /// Started, no finish yet (live); `DNF` in final standings.
    Running,
    /// Finished with a clean course record.
    Finished,
    /// Something needs a person: missing mats, impossible pace, a late start.
    Review,
    /// Set by the desk.
    Dns,
    Dnf,
    Dsq,
}

impl Status {
    /// The status as published once the race is over.
    pub fn final_status(self) -> Status {
        match self {
            Status::NotStarted => Status::Dns,
            Status::Running => Status::Dnf,
            s => s,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Status::NotStarted => "not_started",
            Status::Running => "running",
            Status::Finished => "OK",
            Status::Review => "review",
            Status::Dns => "DNS",
            Status::Dnf => "DNF",
            Status::Dsq => "DSQ",
        }
    }
}

/// Result flags, a small bit set. Each flag has one meaning; see [`Flags::NAMES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Flags(u32);

impl Flags {
    /// No valid start crossing: chip start = gun time.
    pub const START_FROM_GUN: Flags = Flags(1 << 0);
    /// Start crossings exist, but only after the start window closed.
    pub const LATE_START: Flags = Flags(1 << 1);
    /// One mandatory timing point missing (not two in a row).
    pub const MISSING_POINT: Flags = Flags(1 << 2);
    /// Two or more consecutive mandatory timing points missing.
    pub const MISSING_CONSECUTIVE: Flags = Flags(1 << 3);
    /// A crossing faster than the split's minimum pace was seen and not accepted.
    pub const IMPOSSIBLE_PACE: Flags = Flags(1 << 4);
    /// Read at a point the participant's race does not use.
    pub const WRONG_RACE: Flags = Flags(1 << 5);
    /// Read continuously for longer than the stray limit at some point.
    pub const STRAY: Flags = Flags(1 << 6);
    /// The wave's gun time is still the scheduled start, not an actual gun.
    pub const GUN_SCHEDULED: Flags = Flags(1 << 7);
    /// Crossings after the time limit were seen and not accepted.
    pub const OVER_TIME_LIMIT: Flags = Flags(1 << 8);
    /// At least one passing was entered by hand.
    pub const MANUAL: Flags = Flags(1 << 9);
    /// At least one passing came from a backup line only.
    pub const BACKUP: Flags = Flags(1 << 10);
    /// The desk accepted the result despite review flags.
    pub const ACCEPTED: Flags = Flags(1 << 11);

    /// Flags that put a result in review.
    pub const REVIEW: Flags = Flags(Self::LATE_START.0 | Self::MISSING_CONSECUTIVE.0 | Self::IMPOSSIBLE_PACE.0);

    pub const NAMES: [(Flags, &'static str); 12] = [
        (Flags::START_FROM_GUN, "start_from_gun"),
        (Flags::LATE_START, "late_start"),
        (Flags::MISSING_POINT, "missing_point"),
        (Flags::MISSING_CONSECUTIVE, "missing_consecutive"),
        (Flags::IMPOSSIBLE_PACE, "impossible_pace"),
        (Flags::WRONG_RACE, "wrong_race"),
        (Flags::STRAY, "stray"),
        (Flags::GUN_SCHEDULED, "gun_scheduled"),
        (Flags::OVER_TIME_LIMIT, "over_time_limit"),
        (Flags::MANUAL, "manual"),
        (Flags::BACKUP, "backup"),
        (Flags::ACCEPTED, "accepted"),
    ];

    pub const fn empty() -> Flags {
        Flags(0)
    }
    pub const fn bits(self) -> u32 {
        self.0
    }
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn intersects(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }
    pub fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }
    pub const fn without(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Flags::NAMES.into_iter().filter(move |(f, _)| self.contains(*f)).map(|(_, n)| n)
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

/// One participant's computed result (places are computed separately, see `placing`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ParticipantResult {
    pub status: Option<Status>,
    /// The wave gun in effect (actual or, flagged, scheduled).
    pub gun: Option<Timestamp>,
    /// Chip start: a start crossing, or the gun (flagged `start_from_gun`).
    pub start: Option<Passing>,
    /// One entry per split of the race, in course order (the start split included).
    pub passings: Vec<Option<Passing>>,
    pub gun_time: Option<Elapsed>,
    pub chip_time: Option<Elapsed>,
    pub flags: Flags,
}

impl ParticipantResult {
    pub fn status(&self) -> Status {
        self.status.unwrap_or(Status::NotStarted)
    }
    /// Elapsed chip time at split `i`.
    pub fn split_elapsed(&self, i: usize) -> Option<Elapsed> {
        let at = self.passings.get(i).copied().flatten()?.at;
        Some(at.since(self.start?.at))
    }
}
