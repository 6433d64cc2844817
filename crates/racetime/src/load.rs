//! Reading event folders, participant lists, corrections and read files from disk.

use std::path::{Path, PathBuf};

use event_config::{EdgeConfig, EventConfig, parse_corrections, parse_edge, parse_event, parse_participants};
use std::collections::HashMap;

use chrono_tz::Tz;
use reader_protocol::files::{self, FileFormat, neutral};
use timing_core::{ChipId, Correction, Course, Line, PointId, Read, ReaderId, Timestamp};

use crate::InputError;
use crate::cli::ReadsFormat;

fn read_text(path: &Path) -> Result<String, InputError> {
    std::fs::read_to_string(path).map_err(|e| InputError(format!("{}: cannot read: {e}", path.display())))
}

/// `DIR/event.toml`, validated.
pub fn event(dir: &Path) -> Result<EventConfig, InputError> {
    let path = dir.join("event.toml");
    let text = read_text(&path)?;
    parse_event(&path.display().to_string(), &text).map_err(|e| InputError(e.to_string()))
}

/// The event's course with a participant list imported into it.
pub fn course(event: &EventConfig, participants: &Path) -> Result<Course, InputError> {
    let text = read_text(participants)?;
    let ps =
        parse_participants(&participants.display().to_string(), &text, event).map_err(|e| InputError(e.to_string()))?;
    Ok(Course { participants: ps, ..event.course.clone() })
}

/// Every `edge-*.toml` of an event folder, validated, in file-name order.
pub fn edges(dir: &Path, event: &EventConfig) -> Result<Vec<EdgeConfig>, InputError> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| InputError(format!("{}: cannot list: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("edge-") && n.ends_with(".toml"))
        })
        .collect();
    paths.sort();
    paths.iter().map(|p| edge(p, event)).collect()
}

/// One edge file, validated against its event.
pub fn edge(path: &Path, event: &EventConfig) -> Result<EdgeConfig, InputError> {
    let text = read_text(path)?;
    parse_edge(&path.display().to_string(), &text, event).map_err(|e| InputError(e.to_string()))
}

pub fn corrections(event: &EventConfig, path: &Path) -> Result<Vec<Correction>, InputError> {
    let text = read_text(path)?;
    parse_corrections(&path.display().to_string(), &text, event).map_err(|e| InputError(e.to_string()))
}

/// Reads from files, and every line that was not a read.
#[derive(Debug, Default)]
pub struct LoadedReads {
    pub reads: Vec<Read>,
    /// (file, 1-based line, problem)
    pub bad_lines: Vec<(PathBuf, usize, String)>,
}

/// One `--reads` argument: `FILE`, or `POINT[:LINE[:READER]]=FILE` for decoder backup files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadsSpec {
    pub path: PathBuf,
    pub point: Option<String>,
    pub line: Line,
    pub reader: Option<String>,
}

impl ReadsSpec {
    pub fn parse(arg: &str) -> Result<ReadsSpec, InputError> {
        match arg.split_once('=') {
            None => Ok(ReadsSpec { path: PathBuf::from(arg), point: None, line: Line::Main, reader: None }),
            Some((place, path)) => {
                let mut parts = place.split(':');
                let point = parts.next().filter(|p| !p.is_empty()).map(str::to_string);
                let line = match parts.next() {
                    None | Some("") => Line::Main,
                    Some(l) => Line::parse(l)
                        .ok_or_else(|| InputError(format!("--reads {arg}: unknown line {l:?} (main or backup)")))?,
                };
                let reader = parts.next().filter(|r| !r.is_empty()).map(str::to_string);
                if point.is_none() || parts.next().is_some() {
                    return Err(InputError(format!("--reads {arg}: expected POINT[:LINE[:READER]]=FILE")));
                }
                Ok(ReadsSpec { path: PathBuf::from(path), point, line, reader })
            }
        }
    }
}

/// Where a time of day is attached: the gun of the chip's wave (corrected if a correction says
/// so), else the event's first scheduled start.
pub fn reference_instants(course: &Course, corrections: &[Correction]) -> impl Fn(&str) -> Timestamp {
    let mut guns: Vec<Timestamp> = course.waves.iter().map(|w| w.gun_time.unwrap_or(w.scheduled_start)).collect();
    for c in corrections {
        if let Correction::GunTime { race, wave, at: Some(at) } = c
            && let Some(w) = course.race_by_id(race).and_then(|r| course.wave_by_id(r, wave))
        {
            guns[w.idx()] = *at;
        }
    }
    let first = guns.iter().copied().min().unwrap_or_default();
    let by_chip: HashMap<String, Timestamp> = course
        .participants
        .iter()
        .flat_map(|p| p.chips.iter().map(move |c| (c.to_string(), p.wave)))
        .map(|(c, w)| (c, guns[w.idx()]))
        .collect();
    move |chip: &str| by_chip.get(chip).copied().unwrap_or(first)
}

pub fn reads(
    specs: &[ReadsSpec],
    format: ReadsFormat,
    course: &Course,
    zone: Tz,
    reference: impl Fn(&str) -> Timestamp,
) -> Result<LoadedReads, InputError> {
    let mut out = LoadedReads::default();
    for spec in specs {
        let path = &spec.path;
        let bytes = std::fs::read(path).map_err(|e| InputError(format!("{}: cannot read: {e}", path.display())))?;
        let decoder = match format {
            ReadsFormat::Neutral => None,
            ReadsFormat::Raceresult => Some(FileFormat::RaceResult),
            ReadsFormat::Ultra => Some(FileFormat::Ultra),
            ReadsFormat::Ipico => Some(FileFormat::Ipico),
            ReadsFormat::Jchip => Some(FileFormat::Jchip),
            ReadsFormat::Auto if neutral::sniff(&bytes) => None,
            ReadsFormat::Auto => Some(files::sniff(&bytes).ok_or_else(|| {
                InputError(format!(
                    "{}: unrecognised read file format (neither the neutral CSV header {:?} nor a RACE RESULT, Ultra, IPICO or JChip backup); name it with --reads-format",
                    path.display(),
                    neutral::HEADER
                ))
            })?),
        };
        let parsed: Vec<(usize, Result<Read, String>)> = match decoder {
            None => {
                let p = neutral::parse(&bytes);
                p.reads
                    .into_iter()
                    .map(|(l, r)| (l, Ok(r)))
                    .chain(p.errors.into_iter().map(|(l, e)| (l, Err(e))))
                    .collect()
            }
            Some(f) => {
                let point = spec.point.as_deref().ok_or_else(|| {
                    InputError(format!(
                        "{}: a {f:?} backup file does not say where it was recorded; name its place: --reads POINT[:LINE]={}",
                        path.display(),
                        path.display()
                    ))
                })?;
                let point_id = PointId::new(point);
                let reader = ReaderId::new(
                    spec.reader
                        .as_deref()
                        .unwrap_or_else(|| path.file_stem().and_then(|s| s.to_str()).unwrap_or("reader")),
                );
                files::parse(f, &bytes)
                    .into_iter()
                    .map(|(l, r)| {
                        let read = r.map_err(|e| e.to_string()).and_then(|tag| {
                            let at = reader_protocol::time::resolve(tag.time, zone, reference(&tag.chip))
                                .map_err(|e| e.to_string())?;
                            Ok(Read {
                                chip: ChipId::new(&tag.chip),
                                at,
                                point: point_id.clone(),
                                line: spec.line,
                                reader: reader.clone(),
                                antenna: tag.antenna.unwrap_or(0),
                                rssi: tag.rssi,
                                reader_seq: tag.passing_no,
                            })
                        });
                        (l, read)
                    })
                    .collect()
            }
        };
        for (line, read) in parsed {
            match read {
                Ok(read) if course.point_by_id(read.point.as_str()).is_none() => {
                    out.bad_lines.push((path.clone(), line, format!("unknown timing point {:?}", read.point.as_str())))
                }
                Ok(read) => out.reads.push(read),
                Err(e) => out.bad_lines.push((path.clone(), line, e)),
            }
        }
    }
    out.bad_lines.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    Ok(out)
}
