//! Corrections: desk decisions applied deterministically on top of reads.
//!
//! Reads are a set; corrections are a sequence.
//! Each correction sets one key (a wave's gun, a bib's manual time at a point, a bib's status,
//! a chip's owner, a point's clock offset), and a later correction of the same key wins, so
//! the result is a function of the read set and the correction sequence, whatever order they
//! were interleaved in.
//! Undo is a new correction that clears the key.

use crate::course::Bib;
use crate::read::{ChipId, PointId};
use crate::time::{Elapsed, Timestamp};

/// A desk override of the computed status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatusOverride {
    /// Reviewed and accepted despite review flags.
    Accept,
    Dns,
    Dnf,
    Dsq,
}

impl StatusOverride {
    pub fn parse(s: &str) -> Option<StatusOverride> {
        match s.trim().to_ascii_uppercase().as_str() {
            "ACCEPT" | "OK" => Some(StatusOverride::Accept),
            "DNS" => Some(StatusOverride::Dns),
            "DNF" => Some(StatusOverride::Dnf),
            "DSQ" | "DQ" => Some(StatusOverride::Dsq),
            _ => None,
        }
    }
}

/// One correction. `None` values clear the key (undo).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Correction {
    /// Set or edit a wave's actual gun time.
    GunTime { race: String, wave: String, at: Option<Timestamp> },
    /// A passing entered by hand at a point (provenance `manual`).
    ManualPassing { bib: Bib, point: PointId, at: Option<Timestamp> },
    /// DNS/DNF/DSQ (with a reason), or accept a result under review.
    Status { bib: Bib, status: Option<StatusOverride>, reason: String },
    /// Give a chip to a bib (or take it away): the chip's reads follow it.
    AssignChip { chip: ChipId, bib: Option<Bib> },
    /// Shift every read at a point (a decoder clock found to be off).
    PointClockOffset { point: PointId, offset: Elapsed },
}

/// Why a correction could not be applied. Nothing changes when it is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CorrectionError {
    #[error("unknown bib {0}")]
    UnknownBib(String),
    #[error("unknown wave {wave} in race {race}")]
    UnknownWave { race: String, wave: String },
    #[error("unknown timing point {0}")]
    UnknownPoint(String),
    #[error("timing point {point} is not on the course of bib {bib}")]
    PointNotInRace { bib: String, point: String },
}
