//! Read files for offline import (`racetime results --reads`): the neutral CSV ([`neutral`]) and
//! whole decoder backup / log files, parsed line by line.
//!
//! Each format module has `parse(&[u8]) -> Vec<ParsedLine>`: one entry per line that holds a tag
//! read (or should have: a malformed line is an `Err` with its 1-based line number), while blank
//! lines and lines that are valid but carry no read (heartbeats, control frames) are skipped.
//! Line ends may be LF, CR LF or a lone CR; a last line without a line end is parsed like any other.
//! [`sniff`] guesses the format from the first non-empty lines.
//!
//! Deliberately not here: reading the file (callers pass bytes), time-zone or clock-offset
//! correction (reads keep the reader's [`crate::ReaderTime`]), deduplication.

pub mod ipico;
pub mod jchip;
pub mod neutral;
pub mod raceresult;
pub mod ultra;

use crate::{DecodeError, TagRead};

/// One parsed line: its 1-based number and the read or why it failed.
pub type ParsedLine = (usize, Result<TagRead, DecodeError>);

/// The backup-file formats racetime can import.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileFormat {
    /// RACE RESULT passing records (`;`-separated, optionally `#P;`-prefixed).
    RaceResult,
    /// Ultra / Joey read lines (`,`-separated, seconds since 1980).
    Ultra,
    /// IPICO `aa` tag records.
    Ipico,
    /// JChip records (`<c><tag> HH:MM:SS.ffff <x><d> …`).
    Jchip,
}

/// How each format recognises one of its lines, in the order they are tried.
/// Adding a format means adding a variant, an entry here and an arm in [`parse`].
type Detector = fn(&[u8]) -> bool;

const DETECTORS: &[(FileFormat, Detector)] = &[
    (FileFormat::Ipico, ipico::looks_like),
    (FileFormat::RaceResult, raceresult::looks_like),
    (FileFormat::Ultra, ultra::looks_like),
    (FileFormat::Jchip, jchip::looks_like),
];

/// How many non-empty lines [`sniff`] looks at.
const SNIFF_LINES: usize = 8;

/// Guesses the format from the first non-empty lines: the first line some format recognises decides.
pub fn sniff(bytes: &[u8]) -> Option<FileFormat> {
    lines(bytes)
        .map(|(_, line)| line.trim_ascii())
        .filter(|line| !line.is_empty())
        .take(SNIFF_LINES)
        .find_map(|line| DETECTORS.iter().find(|(_, looks_like)| looks_like(line)).map(|(f, _)| *f))
}

/// Parses a whole file in the given format.
pub fn parse(format: FileFormat, bytes: &[u8]) -> Vec<ParsedLine> {
    match format {
        FileFormat::RaceResult => raceresult::parse(bytes),
        FileFormat::Ultra => ultra::parse(bytes),
        FileFormat::Ipico => ipico::parse(bytes),
        FileFormat::Jchip => jchip::parse(bytes),
    }
}

/// Lines with their 1-based numbers; LF, CR LF and lone CR all end a line.
pub(crate) fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut pos = 0;
    let mut n = 0;
    std::iter::from_fn(move || {
        if pos >= bytes.len() {
            return None;
        }
        let rest = &bytes[pos..];
        let end = rest.iter().position(|&b| b == b'\n' || b == b'\r').unwrap_or(rest.len());
        let mut next = end + 1;
        if rest.get(end) == Some(&b'\r') && rest.get(end + 1) == Some(&b'\n') {
            next += 1;
        }
        pos += next;
        n += 1;
        Some((n, &rest[..end]))
    })
}

/// Runs `parse_line` over the non-blank lines (trimmed of surrounding spaces); `None` skips a line.
pub(crate) fn parse_lines(
    bytes: &[u8],
    parse_line: impl Fn(&[u8]) -> Option<Result<TagRead, DecodeError>>,
) -> Vec<ParsedLine> {
    lines(bytes)
        .filter_map(|(n, line)| {
            let line = line.trim_ascii();
            if line.is_empty() { None } else { parse_line(line).map(|r| (n, r)) }
        })
        .collect()
}

#[cfg(test)]
mod tests;
