//! JChip (J-Chip / GreenTag) receiver protocol: the *reader connects to the host* (CrossMgr listens
//! on 53135) and both sides send ASCII lines ended by CR.
//!
//! Framing: CR-terminated lines (LF and CRLF are tolerated, blank lines skipped), at most
//! [`MAX_LINE`] bytes.
//! Reader → host: `N<nnnn><name>` on connect, `GT<d>HHMMSShh[ date=YYYYMMDD]` answering `GT`, and
//! data lines `D<c><tag> HH:MM:SS.ffff <x><d>  <index hex>      C7[ date=YYYYMMDD]`, whose part
//! after the `D` is also the line format of JChip backup files.
//! Host → reader: `GT` (get time) and `S<nnnn>` (start transmission).
//!
//! Times are a time of day plus a day counter (no reliable date), reported as
//! [`ReaderTime::TimeOfDay`]; see [`record_time`].
//! Deliberately not here: the reader↔computer offset (from `GT`), which needs the host clock.
//! See `hardware/readers/jchip.md`.

use std::io::Write;

use crate::field::{
    MICROS_PER_DAY, fixed_digits, is_valid_date, parse_hex_u64, parse_time_of_day, parse_u32, text, write_time_of_day,
};
use crate::framing::{Terminator, decode_lines, malformed};
use crate::{DecodeError, Decoded, ReaderTime, TagRead};

/// Name used in [`DecodeError`]s.
pub const PROTOCOL: &str = "jchip";
/// The port the host listens on (CrossMgr's default).
pub const PORT: u16 = 53135;
/// Longest accepted line, terminator excluded.
pub const MAX_LINE: usize = 1024;

/// A calendar date from a `date=YYYYMMDD` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct JchipDate {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl JchipDate {
    fn parse(s: &[u8]) -> Option<JchipDate> {
        let s = s.strip_prefix(b"date=")?;
        if s.len() != 8 {
            return None;
        }
        let (y, m, d) = (fixed_digits(&s[..4], 4)?, fixed_digits(&s[4..6], 2)?, fixed_digits(&s[6..], 2)?);
        is_valid_date(i64::from(y), m, d).then_some(JchipDate { year: y as u16, month: m as u8, day: d as u8 })
    }

    fn write(self, out: &mut Vec<u8>) {
        let _ = write!(out, " date={:04}{:02}{:02}", self.year, self.month, self.day);
    }
}

/// One data record (a `D` line without the `D`, or one line of a backup file).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Record {
    /// The character before the tag (constant per receiver; `J` or `Z` seen).
    pub kind: u8,
    pub tag: String,
    pub time_of_day_us: u64,
    /// First character of the field after the time (meaning unknown).
    pub flag: u8,
    /// Days the receiver has been running (second character of that field).
    pub day: u8,
    /// Record index, hex.
    pub index: Option<u32>,
    /// The column after the index (`C7` in every sample; meaning unknown).
    pub column: Option<String>,
    pub date: Option<JchipDate>,
}

/// Choice: `TimeOfDay(day × 24 h + time)`, counting from midnight of the receiver's first day, as
/// CrossMgr does; the optional `date=` field is kept on the record but not used for the time.
pub fn record_time(r: &Record) -> ReaderTime {
    ReaderTime::TimeOfDay((u64::from(r.day) * MICROS_PER_DAY + r.time_of_day_us) as i64)
}

impl Record {
    pub fn to_tag_read(&self) -> TagRead {
        TagRead::from(self)
    }

    /// Parses a record (starting at the kind character).
    pub fn parse(rec: &[u8]) -> Result<Record, DecodeError> {
        let bad = |what: &str| malformed(PROTOCOL, format!("bad {what} in record"), rec);
        let mut tokens = rec.split(|&b| b == b' ').filter(|t| !t.is_empty());
        let head = tokens.next().filter(|h| h.len() >= 2).ok_or_else(|| bad("tag"))?;
        if !head.iter().all(u8::is_ascii_alphanumeric) {
            return Err(bad("tag"));
        }
        let time_of_day_us = tokens.next().and_then(parse_time_of_day).ok_or_else(|| bad("time"))?;
        let (flag, day) = match tokens.next() {
            Some(&[x, d]) if d.is_ascii_digit() && x.is_ascii_graphic() => (x, d - b'0'),
            _ => return Err(bad("day field")),
        };
        let mut r = Record {
            kind: head[0],
            tag: text(&head[1..]),
            time_of_day_us,
            flag,
            day,
            index: None,
            column: None,
            date: None,
        };
        for (i, t) in tokens.enumerate() {
            if t.starts_with(b"date=") {
                r.date = Some(JchipDate::parse(t).ok_or_else(|| bad("date"))?);
            } else if i == 0 {
                r.index = Some(parse_hex_u64(t).and_then(|v| u32::try_from(v).ok()).ok_or_else(|| bad("index"))?);
            } else if i == 1 {
                r.column = Some(text(t));
            } else {
                return Err(bad("trailing field"));
            }
        }
        Ok(r)
    }

    /// Writes the record without the leading `D` (backup-file form).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(self.kind);
        out.extend_from_slice(self.tag.as_bytes());
        out.push(b' ');
        write_time_of_day(out, self.time_of_day_us, 4);
        let _ = write!(out, " {}{}", char::from(self.flag), self.day);
        if let Some(i) = self.index {
            let _ = write!(out, "  {i:05X}");
            if let Some(c) = &self.column {
                let _ = write!(out, "      {c}");
            }
        }
        if let Some(d) = self.date {
            d.write(out);
        }
    }
}

impl From<&Record> for TagRead {
    fn from(r: &Record) -> TagRead {
        TagRead {
            chip: r.tag.clone(),
            time: record_time(r),
            antenna: None,
            rssi: None,
            passing_no: r.index.map(u64::from),
            session: None,
            hits: None,
        }
    }
}

/// What a JChip receiver sends.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    /// `N<nnnn><name>`: sent on connect; the four digits are the number of recorded times.
    Name { recorded: u32, name: String },
    /// `GT<d>HHMMSShh[ date=YYYYMMDD]`: the receiver clock (days running, time in hundredths).
    Time { days: u8, time_of_day_us: u64, date: Option<JchipDate> },
    /// A `D` data line.
    Data(Record),
    /// Any other printable line.
    Text(String),
}

impl Message {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Message::Name { recorded, name } => {
                let _ = write!(out, "N{recorded:04}{name}");
            }
            Message::Time { days, time_of_day_us, date } => {
                let cs = time_of_day_us / 10_000;
                let secs = cs / 100;
                let _ = write!(out, "GT{days}{:02}{:02}{:02}{:02}", secs / 3600, secs / 60 % 60, secs % 60, cs % 100);
                if let Some(d) = date {
                    d.write(out);
                }
            }
            Message::Data(r) => {
                out.push(b'D');
                r.write(out);
            }
            Message::Text(s) => out.extend_from_slice(s.as_bytes()),
        }
        out.push(b'\r');
    }

    pub fn to_tag_read(&self) -> Option<TagRead> {
        match self {
            Message::Data(r) => Some(r.to_tag_read()),
            _ => None,
        }
    }
}

/// Decodes one message from the front of `buf`, removing its bytes (see [`decode_slice`]).
pub fn decode(buf: &mut Vec<u8>) -> Result<Option<Message>, DecodeError> {
    decode_slice(buf).apply(buf)
}

/// Decodes one message from the front of `bytes`; blank lines are skipped.
pub fn decode_slice(bytes: &[u8]) -> Decoded<Message> {
    decode_lines(bytes, Terminator::CrOrLf, MAX_LINE, PROTOCOL, |line| {
        if line.is_empty() { Ok(None) } else { parse_line(line).map(Some) }
    })
}

/// Parses one line from the receiver (no line end).
pub fn parse_line(line: &[u8]) -> Result<Message, DecodeError> {
    match line {
        [b'D', rec @ ..] => Record::parse(rec).map(Message::Data),
        [b'G', b'T', rest @ ..] => parse_time(rest).ok_or_else(|| malformed(PROTOCOL, "bad GT reply", line)),
        [b'N', rest @ ..] if rest.len() >= 4 => match fixed_digits(&rest[..4], 4) {
            Some(recorded) => Ok(Message::Name { recorded, name: text(&rest[4..]) }),
            None => Err(malformed(PROTOCOL, "bad record count in name line", line)),
        },
        _ if line.iter().all(|b| (b' '..=b'~').contains(b)) => Ok(Message::Text(text(line))),
        _ => Err(malformed(PROTOCOL, "unrecognised line", line)),
    }
}

fn parse_time(rest: &[u8]) -> Option<Message> {
    if rest.len() < 9 || !rest[..9].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = |i: usize| u64::from(rest[i] - b'0') * 10 + u64::from(rest[i + 1] - b'0');
    let (h, m, s, cs) = (n(1), n(3), n(5), n(7));
    if h > 23 || m > 59 || s > 59 {
        return None;
    }
    let date = match &rest[9..] {
        [] => None,
        [b' ', d @ ..] => Some(JchipDate::parse(d)?),
        _ => return None,
    };
    Some(Message::Time {
        days: rest[0] - b'0',
        time_of_day_us: ((h * 60 + m) * 60 + s) * 1_000_000 + cs * 10_000,
        date,
    })
}

/// What racetime sends to a JChip receiver.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// `GT`.
    GetTime,
    /// `S<nnnn>`: start transmission; the number is most likely the first record index to send.
    StartTransmission { from: u32 },
    /// Any other command line, verbatim.
    Other(String),
}

impl Command {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Command::GetTime => out.extend_from_slice(b"GT"),
            Command::StartTransmission { from } => {
                let _ = write!(out, "S{from:04}");
            }
            Command::Other(s) => out.extend_from_slice(s.as_bytes()),
        }
        out.push(b'\r');
    }
}

/// Decodes one host command from the front of `buf` (for receiver emulators).
pub fn decode_command(buf: &mut Vec<u8>) -> Result<Option<Command>, DecodeError> {
    decode_command_slice(buf).apply(buf)
}

/// Decodes one host command from the front of `bytes`; blank lines are skipped.
pub fn decode_command_slice(bytes: &[u8]) -> Decoded<Command> {
    decode_lines(bytes, Terminator::CrOrLf, MAX_LINE, PROTOCOL, |line| {
        Ok(match line {
            [] => None,
            b"GT" => Some(Command::GetTime),
            [b'S', digits @ ..] if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => {
                let from = parse_u32(digits).ok_or_else(|| malformed(PROTOCOL, "start index out of range", line))?;
                Some(Command::StartTransmission { from })
            }
            _ => Some(Command::Other(text(line))),
        })
    })
}

#[cfg(test)]
mod tests;
