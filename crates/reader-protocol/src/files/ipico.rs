//! IPICO read files: `aa` tag records, one per line, LRC checked.
//!
//! As CrossMgr's importer does, the record may be preceded by other text (it starts at the first
//! `aa`), a trailing `\` is dropped, and a `FS`/`LS` suffix some exporting software appends is
//! accepted; `ab`/`ac` control frames are skipped.

use crate::rfid::ipico::TagRecord;
use crate::{DecodeError, TagRead};

use super::{ParsedLine, parse_lines};

/// Choice: records marked `LS` (last seen) are skipped, as CrossMgr does; the `FS` record of the
/// same passing carries the crossing time.
pub const SKIP_LAST_SEEN: bool = true;

pub fn parse(bytes: &[u8]) -> Vec<ParsedLine> {
    parse_lines(bytes, parse_line)
}

fn parse_line(line: &[u8]) -> Option<Result<TagRead, DecodeError>> {
    if line.starts_with(b"ab") || line.starts_with(b"ac") {
        return None;
    }
    let start = line.windows(2).position(|w| w == b"aa").unwrap_or(0);
    let mut record = &line[start..];
    record = record.strip_suffix(b"\\").unwrap_or(record).trim_ascii_end();
    if record.len() == 38 || record.len() == 44 {
        match &record[record.len() - 2..] {
            b"LS" if SKIP_LAST_SEEN => return None,
            b"FS" | b"LS" => record = &record[..record.len() - 2],
            _ => {}
        }
    }
    Some(TagRecord::parse(record).map(|r| r.to_tag_read()))
}

pub(super) fn looks_like(line: &[u8]) -> bool {
    line.starts_with(b"aa") && line.len() >= 36 && line[2..36].iter().all(u8::is_ascii_hexdigit)
}
