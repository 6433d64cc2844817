//! `corrections.toml`: desk corrections for offline results, applied in file order.
//!
//! ```toml
//! [[correction]]
//! kind = "gun_time"          # race, wave, at (omit `at` to clear)
//! race = "marathon"
//! wave = "sas1"
//! at = "2024-08-10T21:00:03.2"
//!
//! [[correction]]
//! kind = "manual_passing"    # bib, point, at (omit `at` to clear)
//! kind = "status"            # bib, status = "DNS" | "DNF" | "DSQ" | "accept" (omit to clear), reason
//! kind = "assign_chip"       # chip, bib (omit `bib` to unassign)
//! kind = "clock_offset"      # point, offset_ms (added to every read at the point)
//! ```

use serde::Deserialize;
use toml::Spanned;

use timing_core::{Bib, ChipId, Correction, Elapsed, PointId, StatusOverride};

use crate::error::{ConfigError, ConfigErrors};
use crate::event::EventConfig;
use crate::units::parse_instant;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    correction: Vec<Spanned<Entry>>,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum Entry {
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
    Status {
        bib: String,
        status: Option<String>,
        #[serde(default)]
        reason: String,
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

/// Parses a corrections file. Instants without an offset are local to the event's time zone.
pub fn parse_corrections(file: &str, source: &str, event: &EventConfig) -> Result<Vec<Correction>, ConfigErrors> {
    let raw: File = toml::from_str(source).map_err(|e| match e.span() {
        Some(span) => ConfigErrors::from(ConfigError::at(file, source, span, e.message().trim())),
        None => ConfigErrors::from(ConfigError::whole_file(file, e.message().trim())),
    })?;
    let mut errors = Vec::new();
    let mut out = Vec::new();
    let zone = event.time_zone;
    for entry in raw.correction {
        let span = entry.span();
        let mut instant = |s: &Option<String>| match s {
            None => Some(None),
            Some(s) => match parse_instant(s, zone) {
                Ok(t) => Some(Some(t)),
                Err(m) => {
                    errors.push(ConfigError::at(file, source, span.clone(), m));
                    None
                }
            },
        };
        let c = match entry.into_inner() {
            Entry::GunTime { race, wave, at } => instant(&at).map(|at| Correction::GunTime { race, wave, at }),
            Entry::ManualPassing { bib, point, at } => instant(&at).map(|at| Correction::ManualPassing {
                bib: Bib::new(&bib),
                point: PointId::new(&point),
                at,
            }),
            Entry::Status { bib, status, reason } => match status.as_deref().map(StatusOverride::parse) {
                Some(None) => {
                    errors.push(ConfigError::at(
                        file,
                        source,
                        span,
                        format!("unknown status {:?}: expected DNS, DNF, DSQ or accept", status.unwrap_or_default()),
                    ));
                    None
                }
                Some(s) => Some(Correction::Status { bib: Bib::new(&bib), status: s, reason }),
                None => Some(Correction::Status { bib: Bib::new(&bib), status: None, reason }),
            },
            Entry::AssignChip { chip, bib } => {
                Some(Correction::AssignChip { chip: ChipId::new(&chip), bib: bib.as_deref().map(Bib::new) })
            }
            Entry::ClockOffset { point, offset_ms } => Some(Correction::PointClockOffset {
                point: PointId::new(&point),
                offset: Elapsed::from_millis(offset_ms),
            }),
        };
        out.extend(c);
    }
    if errors.is_empty() { Ok(out) } else { Err(ConfigErrors(errors)) }
}
