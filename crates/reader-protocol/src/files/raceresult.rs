//! RACE RESULT passing files: one passing record per line, as the decoder sends them
//! (`<no>;<code>;<date>;<time>;…`, any protocol generation, optionally prefixed `#P;`).
//!
//! Lines starting with an upper-case command word (protocol replies in a captured session) are
//! skipped; anything else that is not a passing is an error.

use crate::rfid::raceresult::Passing;
use crate::{DecodeError, TagRead};

use super::{ParsedLine, parse_lines};

pub fn parse(bytes: &[u8]) -> Vec<ParsedLine> {
    parse_lines(bytes, parse_line)
}

fn parse_line(line: &[u8]) -> Option<Result<TagRead, DecodeError>> {
    let record = line.strip_prefix(b"#P;").unwrap_or(line);
    if record.first().is_some_and(u8::is_ascii_uppercase) {
        return None;
    }
    Some(Passing::parse(record).map(|p| p.to_tag_read()))
}

pub(super) fn looks_like(line: &[u8]) -> bool {
    Passing::parse(line.strip_prefix(b"#P;").unwrap_or(line)).is_ok()
}
