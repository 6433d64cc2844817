//! JChip data files: one record per line, `<c><tag> HH:MM:SS.ffff <x><d>[  <index>      C7]`
//! (the receiver's `D` lines without the `D`).

use crate::rfid::jchip::Record;
use crate::{DecodeError, TagRead};

use super::{ParsedLine, parse_lines};

pub fn parse(bytes: &[u8]) -> Vec<ParsedLine> {
    parse_lines(bytes, parse_line)
}

fn parse_line(line: &[u8]) -> Option<Result<TagRead, DecodeError>> {
    Some(Record::parse(line).map(|r| r.to_tag_read()))
}

pub(super) fn looks_like(line: &[u8]) -> bool {
    Record::parse(line).is_ok()
}
