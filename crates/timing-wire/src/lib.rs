//! The wire: what edges send the aggregator and what it answers, as versioned JSON.
//!
//! Core types are not a wire format (rust-analyzer's rule): [`timing_core::Read`] has no serde;
//! this crate owns the DTOs and the conversions, so a field can be renamed in the core without
//! breaking an edge box in the field.
//! Every message carries `v` (the uplink version); a receiver refuses a version it does not
//! know with a clear message instead of guessing.
//!
//! The uplink protocol (HTTP today; the seam for NATS JetStream later):
//! 1. The edge sends a [`Batch`] of reads in `seq` order (and any [`Signal`]s), authenticated
//!    per edge.
//! 2. The aggregator stores them durably, idempotently on `(edge, seq)`, and answers an [`Ack`]
//!    with the highest contiguous `seq` it holds for that edge.
//! 3. The edge moves its cursor to that `seq` and sends what follows; after any reconnect it
//!    resumes from the cursor, so duplicates are harmless and nothing is skipped.

use serde::{Deserialize, Serialize};

use reader_protocol::ReaderTime;
use timing_core::{ChipId, Line, PointId, Read, ReaderId, Rssi, Timestamp};

/// The uplink version this build speaks.
pub const UPLINK_VERSION: u16 = 1;

/// A batch of an edge's reads (contiguous or not: the aggregator acks contiguity itself).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    pub v: u16,
    pub edge: String,
    pub reads: Vec<WireRead>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<Signal>,
}

/// Which mat line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireLine {
    Main,
    Backup,
}

impl From<Line> for WireLine {
    fn from(l: Line) -> WireLine {
        match l {
            Line::Main => WireLine::Main,
            Line::Backup => WireLine::Backup,
        }
    }
}

impl From<WireLine> for Line {
    fn from(l: WireLine) -> Line {
        match l {
            WireLine::Main => Line::Main,
            WireLine::Backup => Line::Backup,
        }
    }
}

/// The reader's own timestamp, in its own time base.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "base", content = "us", rename_all = "snake_case")]
pub enum WireReaderTime {
    Utc(i64),
    Local(i64),
    TimeOfDay(i64),
}

impl From<ReaderTime> for WireReaderTime {
    fn from(t: ReaderTime) -> WireReaderTime {
        match t {
            ReaderTime::Utc(t) => WireReaderTime::Utc(t.as_micros()),
            ReaderTime::LocalDateTime(us) => WireReaderTime::Local(us),
            ReaderTime::TimeOfDay(us) => WireReaderTime::TimeOfDay(us),
        }
    }
}

impl From<WireReaderTime> for ReaderTime {
    fn from(t: WireReaderTime) -> ReaderTime {
        match t {
            WireReaderTime::Utc(us) => ReaderTime::Utc(Timestamp::from_micros(us)),
            WireReaderTime::Local(us) => ReaderTime::LocalDateTime(us),
            WireReaderTime::TimeOfDay(us) => ReaderTime::TimeOfDay(us),
        }
    }
}

/// One read on the wire, with the edge's sequence number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireRead {
    pub seq: u64,
    pub chip: String,
    /// UTC microseconds, corrected by the edge for the reader's clock offset.
    pub at_us: i64,
    pub point: String,
    pub line: WireLine,
    pub reader: String,
    pub antenna: u16,
    /// Tenths of a dBm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rssi: Option<i16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hits: Option<u32>,
    pub reader_time: WireReaderTime,
    pub received_at_us: i64,
}

impl WireRead {
    /// The core read this stands for.
    pub fn to_read(&self) -> Read {
        Read {
            chip: ChipId::new(&self.chip),
            at: Timestamp::from_micros(self.at_us),
            point: PointId::new(&self.point),
            line: self.line.into(),
            reader: ReaderId::new(&self.reader),
            antenna: self.antenna,
            rssi: self.rssi.map(Rssi),
            reader_seq: self.reader_seq,
        }
    }

    pub fn from_read(
        seq: u64,
        read: &Read,
        reader_time: ReaderTime,
        session: Option<u32>,
        hits: Option<u32>,
        received_at: Timestamp,
    ) -> WireRead {
        WireRead {
            seq,
            chip: read.chip.to_string(),
            at_us: read.at.as_micros(),
            point: read.point.to_string(),
            line: read.line.into(),
            reader: read.reader.to_string(),
            antenna: read.antenna,
            rssi: read.rssi.map(|r| r.0),
            reader_seq: read.reader_seq,
            session,
            hits,
            reader_time: reader_time.into(),
            received_at_us: received_at.as_micros(),
        }
    }
}

/// Something other than a read that must reach the aggregator exactly once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Signal {
    /// A start gun seen by the edge (a Modbus contact input, or a decoder's own trigger).
    GunTime {
        /// The edge's sequence number for signals (its own series).
        seq: u64,
        race: String,
        wave: String,
        at_us: i64,
        /// `modbus:<device>:<channel>`, `decoder:<reader>`.
        source: String,
        /// How uncertain `at_us` is: half the polling interval for a polled contact.
        jitter_us: i64,
    },
}

/// The aggregator's answer to a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    pub v: u16,
    /// Every read with `seq <= acked_seq` from this edge is durably stored.
    pub acked_seq: u64,
    /// The same for signals.
    #[serde(default)]
    pub acked_signal_seq: u64,
}

/// An edge's status, pushed every few seconds (`POST /api/v1/telemetry`), shown on the fleet page.
/// The status itself is the edge's own status document, passed through as JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    pub v: u16,
    pub edge: String,
    /// The edge's clock when it sent this.
    pub at_us: i64,
    pub status: serde_json::Value,
}

/// An error body: every 4xx/5xx answer carries one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// Checks a received version.
pub fn check_version(v: u16) -> Result<(), String> {
    if v == UPLINK_VERSION {
        Ok(())
    } else {
        Err(format!("uplink version {v} is not supported (this aggregator speaks {UPLINK_VERSION})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_batch_is_plain_json_with_a_version() {
        let read = Read {
            chip: ChipId::new("E2000001"),
            at: Timestamp::from_micros(1_723_329_667_250_000),
            point: PointId::new("finish"),
            line: Line::Backup,
            reader: ReaderId::new("finish-backup"),
            antenna: 2,
            rssi: Some(Rssi(-615)),
            reader_seq: Some(41),
        };
        let w = WireRead::from_read(
            7,
            &read,
            ReaderTime::TimeOfDay(2_467_250_000),
            Some(3),
            Some(12),
            Timestamp::from_micros(1_723_329_667_400_000),
        );
        let batch = Batch { v: UPLINK_VERSION, edge: "finish".into(), reads: vec![w.clone()], signals: vec![] };
        let json = serde_json::to_string(&batch).unwrap();
        assert_eq!(
            json,
            r#"{"v":1,"edge":"finish","reads":[{"seq":7,"chip":"E2000001","at_us":1723329667250000,"point":"finish","line":"backup","reader":"finish-backup","antenna":2,"rssi":-615,"reader_seq":41,"session":3,"hits":12,"reader_time":{"base":"time_of_day","us":2467250000},"received_at_us":1723329667400000}]}"#
        );
        let back: Batch = serde_json::from_str(&json).unwrap();
        assert_eq!(back, batch);
        assert_eq!(back.reads[0].to_read(), read);
        assert!(serde_json::from_str::<Batch>(r#"{"v":1,"edge":"x","reads":[],"extra":1}"#).is_err());
        assert!(check_version(2).unwrap_err().contains("version 2 is not supported"));
    }

    proptest! {
        #[test]
        fn reads_round_trip(seq in any::<u64>(), at in any::<i64>(), antenna in any::<u16>(), rssi in proptest::option::of(any::<i16>()),
                            rs in proptest::option::of(any::<u64>()), kind in 0u8..3, us in any::<i64>()) {
            let read = Read { chip: ChipId::new("C"), at: Timestamp::from_micros(at), point: PointId::new("p"), line: Line::Main,
                reader: ReaderId::new("r"), antenna, rssi: rssi.map(Rssi), reader_seq: rs };
            let rt = match kind { 0 => ReaderTime::Utc(Timestamp::from_micros(us)), 1 => ReaderTime::LocalDateTime(us), _ => ReaderTime::TimeOfDay(us) };
            let w = WireRead::from_read(seq, &read, rt, None, None, Timestamp::from_micros(0));
            let back: WireRead = serde_json::from_str(&serde_json::to_string(&w).unwrap()).unwrap();
            prop_assert_eq!(&back, &w);
            prop_assert_eq!(back.to_read(), read);
            prop_assert_eq!(ReaderTime::from(back.reader_time), rt);
        }
    }
}

/// The results desk's API (`/api/v1/desk/*`, a desk token distinct from every edge token).
pub mod desk {
    use serde::{Deserialize, Serialize};

    /// One correction as the desk sends it. Instants are RFC 3339 (`2024-08-10T21:00:03.2+02:00`);
    /// a missing value clears the key (undo).
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
    pub enum DeskCorrection {
        GunTime {
            race: String,
            wave: String,
            at: Option<String>,
        },
        ManualPassing {
            bib: String,
            point: String,
            at: Option<String>,
        },
        /// `DNS`, `DNF`, `DSQ` or `accept`; none restores the computed status.
        Status {
            bib: String,
            status: Option<String>,
        },
        AssignChip {
            chip: String,
            bib: Option<String>,
        },
        ClockOffset {
            point: String,
            offset_ms: i64,
        },
    }

    impl DeskCorrection {
        /// What the correction sets: entries with the same key override each other.
        pub fn key(&self) -> String {
            match self {
                DeskCorrection::GunTime { race, wave, .. } => format!("gun_time/{race}/{wave}"),
                DeskCorrection::ManualPassing { bib, point, .. } => format!("manual_passing/{bib}/{point}"),
                DeskCorrection::Status { bib, .. } => format!("status/{bib}"),
                DeskCorrection::AssignChip { chip, .. } => format!("assign_chip/{chip}"),
                DeskCorrection::ClockOffset { point, .. } => format!("clock_offset/{point}"),
            }
        }
        /// The same key cleared: what undoing the first entry of a key restores.
        pub fn cleared(&self) -> DeskCorrection {
            match self.clone() {
                DeskCorrection::GunTime { race, wave, .. } => DeskCorrection::GunTime { race, wave, at: None },
                DeskCorrection::ManualPassing { bib, point, .. } => {
                    DeskCorrection::ManualPassing { bib, point, at: None }
                }
                DeskCorrection::Status { bib, .. } => DeskCorrection::Status { bib, status: None },
                DeskCorrection::AssignChip { chip, .. } => DeskCorrection::AssignChip { chip, bib: None },
                DeskCorrection::ClockOffset { point, .. } => DeskCorrection::ClockOffset { point, offset_ms: 0 },
            }
        }
    }

    /// `POST /api/v1/desk/corrections`.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct DeskRequest {
        pub v: u16,
        /// Who decided (a name or initials).
        pub who: String,
        /// Why (shown in the audit log and, for a status, as its reason).
        pub why: String,
        pub correction: DeskCorrection,
    }

    /// One line of the append-only audit log.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct AuditEntry {
        pub id: u64,
        /// When the aggregator recorded it (UTC microseconds).
        pub at_us: i64,
        pub who: String,
        pub why: String,
        pub correction: DeskCorrection,
        /// The entry this one undoes, if it is an undo.
        pub undoes: Option<u64>,
    }

    /// One source's word on when a wave started.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct GunClaim {
        /// `event file`, `corrections file`, `desk (<who>)`, `<edge>: modbus:<device>:<channel>`, `<edge>: decoder:<reader>`.
        pub source: String,
        pub at_us: i64,
        /// How uncertain the source says it is.
        pub jitter_us: i64,
    }

    /// `GET /api/v1/desk/guns`: each wave's gun and every claim about it.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct WaveGun {
        pub race: String,
        pub wave: String,
        pub scheduled_us: i64,
        /// The gun the results use now.
        pub in_effect_us: i64,
        /// No source has spoken: the scheduled start stands in (results are flagged).
        pub scheduled_only: bool,
        pub claims: Vec<GunClaim>,
        /// Two claims differ by more than a second (plus their jitter).
        pub conflict: bool,
        /// The desk set this wave's gun after the disagreeing claims.
        pub resolved_by_desk: bool,
    }

    /// One item of the review queue (`GET /api/v1/desk/review`).
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    pub enum ReviewItem {
        /// A result in review: missing mats, impossible pace, late start.
        Result {
            bib: String,
            name: String,
            race: String,
            flags: Vec<String>,
            /// Splits (point ids) without a passing.
            missing: Vec<String>,
        },
        /// A chip no bib owns.
        UnknownChip { chip: String, n_reads: u64, first_seen_us: i64, points: Vec<String> },
        /// Crossings at a point the bib's race does not use.
        WrongRace { bib: String, name: String, race: String, point: String, n_crossings: usize, first_us: i64 },
        /// A crossing outside any plausible window (reported once).
        Stray { chip: String, bib: Option<String>, point: String, line: String, first_us: i64 },
        /// Sources disagree on a wave's gun.
        GunConflict { race: String, wave: String, claims: Vec<GunClaim> },
    }
}

pub mod live;
