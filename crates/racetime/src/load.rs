//! Reading event folders, participant lists, corrections and read files from disk.

use std::path::{Path, PathBuf};

use event_config::{EventConfig, parse_corrections, parse_event, parse_participants};
use timing_core::{Correction, Course, Read};

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

pub fn reads(paths: &[PathBuf], format: ReadsFormat, course: &Course) -> Result<LoadedReads, InputError> {
    let mut out = LoadedReads::default();
    for path in paths {
        let bytes = std::fs::read(path).map_err(|e| InputError(format!("{}: cannot read: {e}", path.display())))?;
        let parsed = match format {
            ReadsFormat::Neutral => reader_protocol::files::neutral::parse(&bytes),
            ReadsFormat::Auto if reader_protocol::files::neutral::sniff(&bytes) => {
                reader_protocol::files::neutral::parse(&bytes)
            }
            ReadsFormat::Auto => {
                return Err(InputError(format!(
                    "{}: unrecognised read file format (expected the neutral CSV header {:?}); name it with --reads-format",
                    path.display(),
                    reader_protocol::files::neutral::HEADER
                )));
            }
        };
        out.bad_lines.extend(parsed.errors.into_iter().map(|(l, m)| (path.clone(), l, m)));
        for (line, read) in parsed.reads {
            if course.point_by_id(read.point.as_str()).is_none() {
                out.bad_lines.push((path.clone(), line, format!("unknown timing point {:?}", read.point.as_str())));
            } else {
                out.reads.push(read);
            }
        }
    }
    Ok(out)
}
