//! The pure heart of racetime: reads in, exact results out.
//!
//! Data flow: a [`Read`] (one raw chip detection) joins a [`crossing::Crossing`] (reads of one chip
//! on one line grouped until a quiet gap); crossings become candidate passings
//! ([`passing::candidates`]: line merge, strays, clock offsets); the timing rules
//! ([`passing::resolve`]) accept [`Passing`]s per split and compute gun and chip times; the
//! [`Engine`] keeps all of it per participant, ranks finishers ([`placing`]) and reports
//! [`RaceEvent`]s.
//!
//! What this crate deliberately does not do: I/O of any kind, async, parsing config or files,
//! serialization, or reading the OS clock. Time is a parameter ([`time::Clock`] is for shells).
//!
//! Key types: [`Course`] (the validated event), [`Read`], [`Engine`], [`ParticipantResult`],
//! [`Correction`], [`Timestamp`] and [`Elapsed`] (integer microseconds).

pub mod correction;
pub mod course;
pub mod crossing;
pub mod engine;
pub mod passing;
pub mod placing;
pub mod predict;
pub mod read;
pub mod result;
pub mod standings;
pub mod time;

pub use correction::{Correction, CorrectionError, StatusOverride};
pub use course::{
    Bib, Category, CategoryIdx, Course, Division, Gender, Participant, ParticipantIdx, PointIdx, RaceDef, RaceIdx,
    RankBy, Split, TimeMode, TimingPoint, Wave, WaveIdx,
};
pub use engine::{Board, Engine, EngineOptions, Places, RaceEvent, ReadOutcome};
pub use read::{ChipId, Line, PointId, Read, ReaderId, Rssi};
pub use result::{Flags, ParticipantResult, Passing, Provenance, Status};
pub use standings::{Row, standings};
pub use time::{Elapsed, Precision, Timestamp};
