//! IPICO Lite / Elite / Sport reader protocol: the same ASCII bytes on RS-232 (9600 8N1 by default)
//! and on TCP port 10000.
//!
//! Framing: lines ended by CR LF (a bare LF is tolerated), at most [`MAX_LINE`] bytes.
//! - `aa` tag records, ASCII hex: `aa RR TTTTTTTTTTTT II QQ YYMMDD hhmmss cc [ii pp st] LL`
//!   (36 characters, 42 with the TTO bytes), where `cc` is hundredths of a second in *hex* and `LL`
//!   an 8-bit LRC: the low byte of the sum of the ASCII codes after `aa` and before the LRC.
//!   A wrong LRC is a [`DecodeError::Checksum`].
//! - `ab` control frames `ab RR LL II [data] CC` (`LL` data bytes, `ff` = query, `CC` the same LRC;
//!   an `ac` header means "do not check the LRC"): clock get/set, banner, read mode, stored-read
//!   download (`0x4b`), acknowledgements (same instruction, no data), trigger-button events.
//! - Anything else printable is a text line (the banner that answers instruction `0x37`).
//!
//! Deliberately not here: the binary `0xaa` record variant, the Trident 40-character variant, and
//! the clock-set latency compensation (about 500 ms, the edge's job); see `hardware/readers/ipico.md`.

use std::io::Write;

use crate::field::{fixed_digits, hex_digit, is_valid_date, local_micros, text};
use crate::framing::{Terminator, decode_lines, malformed};
use crate::{DecodeError, Decoded, ReaderTime, TagRead};

/// Name used in [`DecodeError`]s.
pub const PROTOCOL: &str = "ipico";
/// TCP port on which readers were captured serving this stream.
pub const PORT: u16 = 10000;
/// Default serial speed (8N1, no flow control).
pub const SERIAL_BAUD: u32 = 9600;
/// Longest accepted line, terminator excluded.
pub const MAX_LINE: usize = 1024;

/// Instruction codes of `ab` control frames.
pub mod instruction {
    pub const SET_DATE_TIME: u8 = 0x01;
    pub const GET_DATE_TIME: u8 = 0x02;
    pub const READ_MODE: u8 = 0x09;
    pub const TTO_CONFIG: u8 = 0x11;
    pub const TRIGGER_EVENT: u8 = 0x2c;
    pub const BANNER: u8 = 0x37;
    pub const STORED_READS: u8 = 0x4b;
    pub const ERROR_BAD_LENGTH: u8 = 0xf0;
    pub const ERROR_BAD_LRC: u8 = 0xf1;
    pub const ERROR_UNKNOWN_INSTRUCTION: u8 = 0xf2;
}

/// The 8-bit LRC: low byte of the sum of the ASCII codes.
pub fn lrc(chars: &[u8]) -> u8 {
    chars.iter().fold(0u8, |acc, &b| acc.wrapping_add(b))
}

/// A reader date and time: two-digit year (20YY), hundredths of a second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpicoClock {
    pub year: u8,
    pub month: u8,
    pub day: u8,
    /// Day of week in control frames (Monday 1 … Saturday 6, Sunday 0); 0 in tag records.
    pub weekday: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub centis: u8,
}

impl IpicoClock {
    /// Microseconds since 1970-01-01T00:00 local (the reader has no time-zone notion).
    pub fn local_micros(self) -> i64 {
        let tod = ((u64::from(self.hour) * 60 + u64::from(self.minute)) * 60 + u64::from(self.second)) * 1_000_000
            + u64::from(self.centis) * 10_000;
        local_micros(2000 + i64::from(self.year), u32::from(self.month), u32::from(self.day), tod)
    }

    fn is_valid(self) -> bool {
        is_valid_date(2000 + i64::from(self.year), u32::from(self.month), u32::from(self.day))
            && self.hour < 24
            && self.minute < 60
            && self.second < 60
            && self.centis < 100
            && self.weekday < 7
    }

    /// `YY MM DD DOW hh mm ss` in BCD, then (when `n == 8`) hundredths in binary.
    fn from_bcd(data: &[u8]) -> Option<IpicoClock> {
        let bcd = |b: u8| (b >> 4 < 10 && b & 0xf < 10).then_some((b >> 4) * 10 + (b & 0xf));
        let c = IpicoClock {
            year: bcd(data[0])?,
            month: bcd(data[1])?,
            day: bcd(data[2])?,
            weekday: bcd(data[3])?,
            hour: bcd(data[4])?,
            minute: bcd(data[5])?,
            second: bcd(data[6])?,
            centis: data.get(7).copied().unwrap_or(0),
        };
        c.is_valid().then_some(c)
    }

    fn to_bcd(self, with_centis: bool) -> Vec<u8> {
        let bcd = |v: u8| ((v / 10) << 4) | (v % 10);
        let mut v =
            [self.year, self.month, self.day, self.weekday, self.hour, self.minute, self.second].map(bcd).to_vec();
        if with_centis {
            v.push(self.centis);
        }
        v
    }
}

/// Tag-time-out bytes (present when enabled with instruction `0x11` bit 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tto {
    pub index: u8,
    pub page: u8,
    pub status: u8,
}

impl Tto {
    pub fn first_seen(self) -> bool {
        self.status & 0x80 != 0
    }
    pub fn last_seen(self) -> bool {
        self.status & 0x40 != 0
    }
    pub fn tamper(self) -> bool {
        self.status & 0x01 != 0
    }
}

/// An `aa` tag record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TagRecord {
    pub reader_id: u8,
    /// 12 hex characters as sent (lower case on the wire; the tag CRC is stripped by the reader).
    pub tag_id: String,
    /// I-channel counter.
    pub i_count: u8,
    /// Q-channel counter.
    pub q_count: u8,
    /// Weekday is 0 (tag records do not carry it).
    pub time: IpicoClock,
    pub tto: Option<Tto>,
}

impl TagRecord {
    pub fn reader_time(&self) -> ReaderTime {
        ReaderTime::LocalDateTime(self.time.local_micros())
    }

    pub fn to_tag_read(&self) -> TagRead {
        TagRead::from(self)
    }

    /// Parses a record line (no line end), checking the LRC.
    pub fn parse(line: &[u8]) -> Result<TagRecord, DecodeError> {
        if !line.starts_with(b"aa") || (line.len() != 36 && line.len() != 42) {
            return Err(malformed(
                PROTOCOL,
                format!("tag record of {} characters, expected 36 or 42", line.len()),
                line,
            ));
        }
        let n = line.len();
        let body = &line[2..n - 2];
        let got = hex_byte(&line[n - 2..]).ok_or_else(|| malformed(PROTOCOL, "bad lrc digits", line))?;
        let expected = lrc(body);
        if got != expected {
            return Err(DecodeError::Checksum {
                protocol: PROTOCOL,
                expected: u32::from(expected),
                got: u32::from(got),
                bytes: line.to_vec(),
            });
        }
        let bad = |name: &str| malformed(PROTOCOL, format!("bad {name} in tag record"), line);
        let hex = |i: usize, name: &str| hex_byte(&line[i..i + 2]).ok_or_else(|| bad(name));
        let dec = |i: usize, name: &str| fixed_digits(&line[i..i + 2], 2).map(|v| v as u8).ok_or_else(|| bad(name));
        let tag = &line[4..16];
        if !tag.iter().all(u8::is_ascii_hexdigit) {
            return Err(bad("tag id"));
        }
        let time = IpicoClock {
            year: dec(20, "year")?,
            month: dec(22, "month")?,
            day: dec(24, "day")?,
            weekday: 0,
            hour: dec(26, "hour")?,
            minute: dec(28, "minute")?,
            second: dec(30, "second")?,
            centis: hex(32, "hundredths")?,
        };
        if !time.is_valid() {
            return Err(bad("date or time"));
        }
        let tto = if n == 42 {
            Some(Tto { index: hex(34, "tto index")?, page: hex(36, "tto page")?, status: hex(38, "tto status")? })
        } else {
            None
        };
        Ok(TagRecord {
            reader_id: hex(2, "reader id")?,
            tag_id: text(tag),
            i_count: hex(16, "i counter")?,
            q_count: hex(18, "q counter")?,
            time,
            tto,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let t = self.time;
        let _ = write!(
            out,
            "aa{:02x}{}{:02x}{:02x}{:02}{:02}{:02}{:02}{:02}{:02}{:02x}",
            self.reader_id,
            self.tag_id,
            self.i_count,
            self.q_count,
            t.year,
            t.month,
            t.day,
            t.hour,
            t.minute,
            t.second,
            t.centis
        );
        if let Some(tto) = self.tto {
            let _ = write!(out, "{:02x}{:02x}{:02x}", tto.index, tto.page, tto.status);
        }
        let sum = lrc(&out[start + 2..]);
        let _ = write!(out, "{sum:02x}");
    }
}

/// Choice: the I and Q channel counters both count detections; the larger is the hit count.
fn tag_hits(r: &TagRecord) -> u32 {
    u32::from(r.i_count.max(r.q_count))
}

impl From<&TagRecord> for TagRead {
    fn from(r: &TagRecord) -> TagRead {
        TagRead {
            chip: r.tag_id.clone(),
            time: r.reader_time(),
            antenna: None,
            rssi: None,
            passing_no: None,
            session: None,
            hits: Some(tag_hits(r)),
        }
    }
}

/// A generic `ab` control frame.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ControlFrame {
    pub reader_id: u8,
    pub instruction: u8,
    /// `LL = ff`: ask for the current value (no data).
    pub query: bool,
    pub data: Vec<u8>,
}

impl ControlFrame {
    /// Parses an `ab`/`ac` line (no line end); `ac` frames skip the LRC check.
    pub fn parse(line: &[u8]) -> Result<ControlFrame, DecodeError> {
        let checked = line.starts_with(b"ab");
        if !(checked || line.starts_with(b"ac")) || line.len() < 10 || !line.len().is_multiple_of(2) {
            return Err(malformed(PROTOCOL, format!("control frame of {} characters", line.len()), line));
        }
        let bad = |what: &str| malformed(PROTOCOL, format!("bad {what} in control frame"), line);
        let n = line.len();
        let got = hex_byte(&line[n - 2..]).ok_or_else(|| bad("lrc digits"))?;
        let expected = lrc(&line[2..n - 2]);
        if checked && got != expected {
            return Err(DecodeError::Checksum {
                protocol: PROTOCOL,
                expected: u32::from(expected),
                got: u32::from(got),
                bytes: line.to_vec(),
            });
        }
        let reader_id = hex_byte(&line[2..4]).ok_or_else(|| bad("reader id"))?;
        let len = hex_byte(&line[4..6]).ok_or_else(|| bad("length"))?;
        let instruction = hex_byte(&line[6..8]).ok_or_else(|| bad("instruction"))?;
        let query = len == 0xff;
        let n_data = if query { 0 } else { usize::from(len) };
        if n != 10 + 2 * n_data {
            return Err(bad("length"));
        }
        let data = line[8..n - 2].chunks(2).map(hex_byte).collect::<Option<Vec<u8>>>().ok_or_else(|| bad("data"))?;
        Ok(ControlFrame { reader_id, instruction, query, data })
    }

    fn write(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let len = if self.query { 0xff } else { self.data.len().min(0xfe) };
        let _ = write!(out, "ab{:02x}{:02x}{:02x}", self.reader_id, len, self.instruction);
        for b in self.data.iter().take(if self.query { 0 } else { len }) {
            let _ = write!(out, "{b:02x}");
        }
        let sum = lrc(&out[start + 2..]);
        let _ = write!(out, "{sum:02x}");
    }
}

fn hex_byte(s: &[u8]) -> Option<u8> {
    match s {
        [h, l] => Some((hex_digit(*h)? << 4) | hex_digit(*l)?),
        _ => None,
    }
}

/// What an IPICO reader sends.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    Tag(TagRecord),
    /// Reply to get-clock (instruction `0x02`): the clock and the config byte.
    Clock {
        reader_id: u8,
        clock: IpicoClock,
        config: u8,
    },
    /// Acknowledgement: the instruction echoed with no data.
    Ack {
        reader_id: u8,
        instruction: u8,
    },
    /// Unsolicited trigger (gun button) event, instruction `0x2c`: BCD date and time, hundredths,
    /// and two bytes of unknown meaning.
    Trigger {
        reader_id: u8,
        clock: IpicoClock,
        extra: [u8; 2],
    },
    /// Any other control frame.
    Control(ControlFrame),
    /// A text line such as the banner.
    Text(String),
}

impl Message {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Message::Tag(t) => t.write(out),
            Message::Clock { reader_id, clock, config } => {
                let mut data = clock.to_bcd(true);
                data.push(*config);
                ControlFrame { reader_id: *reader_id, instruction: instruction::GET_DATE_TIME, query: false, data }
                    .write(out);
            }
            Message::Ack { reader_id, instruction } => {
                ControlFrame { reader_id: *reader_id, instruction: *instruction, query: false, data: vec![] }
                    .write(out);
            }
            Message::Trigger { reader_id, clock, extra } => {
                let mut data = clock.to_bcd(true);
                data.extend_from_slice(extra);
                ControlFrame { reader_id: *reader_id, instruction: instruction::TRIGGER_EVENT, query: false, data }
                    .write(out);
            }
            Message::Control(c) => c.write(out),
            Message::Text(s) => out.extend_from_slice(s.as_bytes()),
        }
        out.extend_from_slice(b"\r\n");
    }

    pub fn to_tag_read(&self) -> Option<TagRead> {
        match self {
            Message::Tag(t) => Some(t.to_tag_read()),
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
    decode_lines(bytes, Terminator::Lf, MAX_LINE, PROTOCOL, |line| {
        if line.is_empty() { Ok(None) } else { parse_line(line).map(Some) }
    })
}

/// Parses one line from the reader (no line end).
pub fn parse_line(line: &[u8]) -> Result<Message, DecodeError> {
    if line.starts_with(b"aa") {
        return TagRecord::parse(line).map(Message::Tag);
    }
    if line.starts_with(b"ab") || line.starts_with(b"ac") {
        let c = ControlFrame::parse(line)?;
        let reader_id = c.reader_id;
        return Ok(match (c.instruction, c.query, c.data.as_slice()) {
            (_, false, []) => Message::Ack { reader_id, instruction: c.instruction },
            (instruction::GET_DATE_TIME, false, [clock @ .., config]) if clock.len() == 8 => {
                match IpicoClock::from_bcd(clock) {
                    Some(clock) => Message::Clock { reader_id, clock, config: *config },
                    None => Message::Control(c),
                }
            }
            (instruction::TRIGGER_EVENT, false, [clock @ .., x, y]) if clock.len() == 8 => {
                match IpicoClock::from_bcd(clock) {
                    Some(clock) => Message::Trigger { reader_id, clock, extra: [*x, *y] },
                    None => Message::Control(c),
                }
            }
            _ => Message::Control(c),
        });
    }
    if line.iter().all(|b| (b' '..=b'~').contains(b)) {
        Ok(Message::Text(text(line)))
    } else {
        Err(malformed(PROTOCOL, "unrecognised line", line))
    }
}

/// Reader id the typed commands address (the default; daisy-chained readers need [`Command::Control`]).
pub const DEFAULT_READER_ID: u8 = 0;

/// What racetime sends to an IPICO reader.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// `ab00000222`.
    GetClock,
    /// Instruction `0x01` with `YY MM DD DOW hh mm ss` in BCD (no hundredths: `centis` is not sent);
    /// takes effect about 500 ms after receipt.
    SetClock(IpicoClock),
    /// `ab0000372a`: the reader answers with its banner text and an ack.
    GetBanner,
    /// `ab00ff0995`.
    QueryReadMode,
    /// `ab00ff4bc2`.
    QueryStoredReads,
    /// Instruction `0x4b` with `01 01`: stream stored reads as ordinary `aa` lines.
    DownloadStoredReads,
    /// Instruction `0x4b` with `d0`.
    ClearStoredReads,
    /// Any other control frame.
    Control(ControlFrame),
}

impl Command {
    fn frame(&self) -> ControlFrame {
        let f = |instruction: u8, query: bool, data: Vec<u8>| ControlFrame {
            reader_id: DEFAULT_READER_ID,
            instruction,
            query,
            data,
        };
        match self {
            Command::GetClock => f(instruction::GET_DATE_TIME, false, vec![]),
            Command::SetClock(c) => f(instruction::SET_DATE_TIME, false, c.to_bcd(false)),
            Command::GetBanner => f(instruction::BANNER, false, vec![]),
            Command::QueryReadMode => f(instruction::READ_MODE, true, vec![]),
            Command::QueryStoredReads => f(instruction::STORED_READS, true, vec![]),
            Command::DownloadStoredReads => f(instruction::STORED_READS, false, vec![0x01, 0x01]),
            Command::ClearStoredReads => f(instruction::STORED_READS, false, vec![0xd0]),
            Command::Control(c) => c.clone(),
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        self.frame().write(out);
        out.extend_from_slice(b"\r\n");
    }
}

/// Decodes one host command from the front of `buf` (for reader emulators).
pub fn decode_command(buf: &mut Vec<u8>) -> Result<Option<Command>, DecodeError> {
    decode_command_slice(buf).apply(buf)
}

/// Decodes one host command from the front of `bytes`; blank lines are skipped.
pub fn decode_command_slice(bytes: &[u8]) -> Decoded<Command> {
    decode_lines(bytes, Terminator::Lf, MAX_LINE, PROTOCOL, |line| {
        if line.is_empty() { Ok(None) } else { parse_command(line).map(Some) }
    })
}

/// Parses one command line (no line end).
pub fn parse_command(line: &[u8]) -> Result<Command, DecodeError> {
    let c = ControlFrame::parse(line)?;
    if c.reader_id != DEFAULT_READER_ID {
        return Ok(Command::Control(c));
    }
    use instruction::*;
    Ok(match (c.instruction, c.query, c.data.as_slice()) {
        (GET_DATE_TIME, false, []) => Command::GetClock,
        (SET_DATE_TIME, false, d) if d.len() == 7 => match IpicoClock::from_bcd(d) {
            Some(clock) => Command::SetClock(clock),
            None => Command::Control(c),
        },
        (BANNER, false, []) => Command::GetBanner,
        (READ_MODE, true, []) => Command::QueryReadMode,
        (STORED_READS, true, []) => Command::QueryStoredReads,
        (STORED_READS, false, [0x01, 0x01]) => Command::DownloadStoredReads,
        (STORED_READS, false, [0xd0]) => Command::ClearStoredReads,
        _ => Command::Control(c),
    })
}

#[cfg(test)]
mod tests;
