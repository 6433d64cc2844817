//! Ultra / Joey read logs: the reader's read lines (`0,<chip>,<secs since 1980>,<ms>,…,<log id>`),
//! as on TCP port 23.
//!
//! Other reader lines that may appear in a captured session (banner, `V=` heartbeats, clock
//! replies, status) are skipped.

use crate::framing::malformed;
use crate::rfid::ultra::{ChipRead, Message, PROTOCOL, parse_line as parse_reader_line};
use crate::{DecodeError, TagRead};

use super::{ParsedLine, parse_lines};

pub fn parse(bytes: &[u8]) -> Vec<ParsedLine> {
    parse_lines(bytes, parse_line)
}

fn parse_line(line: &[u8]) -> Option<Result<TagRead, DecodeError>> {
    match parse_reader_line(line) {
        Ok(Message::Read(r)) => Some(Ok(r.to_tag_read())),
        Ok(Message::Text(_)) => Some(Err(malformed(PROTOCOL, "not a read line", line))),
        Ok(_) => None,
        Err(e) => Some(Err(e)),
    }
}

pub(super) fn looks_like(line: &[u8]) -> bool {
    ChipRead::parse(line).is_ok()
}
