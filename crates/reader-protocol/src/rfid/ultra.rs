//! RFID Race Timing Systems Ultra / Joey reader protocol (TCP port 23).
//!
//! Reader → host framing: ASCII lines ended by LF (older clients saw CR; CR, LF and CRLF are all
//! accepted, blank lines skipped), limited to [`MAX_LINE`] bytes, plus binary *extended status*
//! frames: byte `0x03`, a length byte counting the whole frame, then the payload (which may contain
//! LF, so it is length-delimited).
//! Tag reads are 12 comma-separated fields; times are seconds since 1980-01-01 on the reader's
//! local wall clock, reported as [`ReaderTime::LocalDateTime`].
//! Other lines: the `…Connected…` banner, `V=` voltage heartbeats, `S` status, `U` settings dump,
//! and the clock reply `HH:MM:SS DD-MM-YYYY`.
//!
//! Host → reader commands are mostly unterminated single bytes (`R`, `S`, `N`, `r`), so
//! [`decode_command`] reads them byte-driven with a fixed look-ahead per command.
//!
//! Deliberately not here: the rewind-on-gap policy (the edge watches log ids), heartbeat timeouts,
//! and the meaning of individual setting ids beyond the ones listed as constants.
//! A settings line whose id byte is CR or LF (ids 0x0D, 0x0A) is split by the line framing: a
//! known limitation of a protocol that mixes binary ids into text lines.
//! See `hardware/readers/ultra.md`.

use std::io::Write;

use crate::field::{
    MICROS_PER_SEC, fields, is_valid_date, local_micros, parse_i64, parse_u8, parse_u16, parse_u32, parse_u64, text,
};
use crate::framing::{Terminator, decode_lines, malformed};
use crate::{DecodeError, Decoded, ReaderTime, TagRead};
use timing_core::Rssi;

/// Name used in [`DecodeError`]s.
pub const PROTOCOL: &str = "ultra";
/// The reader's TCP port.
pub const PORT: u16 = 23;
/// Longest accepted text line, terminator excluded.
pub const MAX_LINE: usize = 1024;
/// Longest `t …` clock command or `u…` setting value a reader emulator accepts.
pub const MAX_COMMAND: usize = 64;
/// Seconds from 1970-01-01 to 1980-01-01, the reader's epoch.
pub const EPOCH_1980_SECS: i64 = 315_532_800;
/// First byte of a binary extended-status frame.
pub const EXTENDED_STATUS: u8 = 0x03;
/// The bytes that switch extended status frames on.
pub const ENABLE_EXTENDED_STATUS: [u8; 6] = [0x03, 0x00, 0x00, 0x03, 0x0d, 0x0a];

/// Setting ids used by PikaTimer (`u<id><value>\xFF`).
pub mod setting {
    pub const READER_MODE: u8 = 0x14;
    pub const GATING_INTERVAL: u8 = 0x1e;
    pub const BEEPER_VOLUME: u8 = 0x21;
    pub const GPS_AUTO_TIME: u8 = 0x22;
    pub const TIME_ZONE: u8 = 0x23;
    /// Restarts the network interface (drops the link).
    pub const RESTART_INTERFACE: u8 = 0x2d;
    /// `u\xFF\xFF`: commit the written settings.
    pub const COMMIT: u8 = 0xff;
}

/// The reader's wall clock as the `r` reply and `t` command spell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UltraClock {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl UltraClock {
    /// Microseconds since 1970-01-01T00:00 local (no zone applied).
    pub fn local_micros(self) -> i64 {
        let tod = (u64::from(self.hour) * 3600 + u64::from(self.minute) * 60 + u64::from(self.second)) * MICROS_PER_SEC;
        local_micros(i64::from(self.year), u32::from(self.month), u32::from(self.day), tod)
    }

    /// `H:M:S D-M-YYYY`, padded or not.
    fn parse(s: &[u8]) -> Option<UltraClock> {
        let sp = s.iter().position(|&b| b == b' ')?;
        let mut t = fields(&s[..sp], b':');
        let mut d = fields(&s[sp + 1..], b'-');
        let two = |f: Option<&[u8]>| f.filter(|f| f.len() <= 2).and_then(parse_u8);
        let c = UltraClock {
            hour: two(t.next())?,
            minute: two(t.next())?,
            second: two(t.next())?,
            day: two(d.next())?,
            month: two(d.next())?,
            year: d.next().filter(|f| f.len() == 4).and_then(parse_u16)?,
        };
        let valid = t.next().is_none()
            && d.next().is_none()
            && c.hour < 24
            && c.minute < 60
            && c.second < 60
            && is_valid_date(i64::from(c.year), u32::from(c.month), u32::from(c.day));
        valid.then_some(c)
    }

    fn write(self, out: &mut Vec<u8>) {
        let _ = write!(
            out,
            "{:02}:{:02}:{:02} {:02}-{:02}-{:04}",
            self.hour, self.minute, self.second, self.day, self.month, self.year
        );
    }
}

/// One tag read line, fields in wire order (vendor manual p. 41 as quoted by CrossMgr; PikaTimer).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChipRead {
    /// Field 0, "unused at present" (`0` or `1` seen).
    pub kind: u8,
    /// Decimal or hexadecimal, depending on a reader setting; `0` is a start/gun trigger.
    pub chip: String,
    pub seconds_since_1980: u64,
    pub millis: u16,
    pub antenna: u8,
    /// dBm.
    pub rssi: i16,
    /// Sent in answer to a rewind rather than live.
    pub rewind: bool,
    /// 1 or 2 (reader A/B); 3 for MTB downhill start times.
    pub reader_no: u8,
    pub ultra_id: u32,
    /// The UHF reader's own 64-bit time, hex, where the model has it.
    pub reader_time: String,
    /// MTB downhill start time, seconds since 1980.
    pub start_time: u64,
    /// The record's 1-based position in the reader's log: the gap-detection sequence number.
    pub log_id: u64,
}

impl ChipRead {
    /// A start/gun trigger rather than a chip.
    pub fn is_trigger(&self) -> bool {
        self.chip == "0"
    }

    pub fn reader_time(&self) -> ReaderTime {
        ReaderTime::LocalDateTime(
            (self.seconds_since_1980 as i64 + EPOCH_1980_SECS) * MICROS_PER_SEC as i64 + i64::from(self.millis) * 1000,
        )
    }

    pub fn to_tag_read(&self) -> TagRead {
        TagRead::from(self)
    }

    /// Parses a read line (no line end).
    pub fn parse(line: &[u8]) -> Result<ChipRead, DecodeError> {
        let mut f: [&[u8]; 12] = [b""; 12];
        let mut n = 0;
        for field in fields(line, b',') {
            if n == f.len() {
                return Err(malformed(PROTOCOL, "read has more than 12 fields", line));
            }
            f[n] = field;
            n += 1;
        }
        if n != 12 {
            return Err(malformed(PROTOCOL, format!("read has {n} fields, expected 12"), line));
        }
        let bad =
            |name: &str, v: &[u8]| malformed(PROTOCOL, format!("bad {name} {:?}", String::from_utf8_lossy(v)), line);
        let num = |i: usize, name: &str| parse_u64(f[i]).ok_or_else(|| bad(name, f[i]));
        if f[1].is_empty() || !f[1].iter().all(u8::is_ascii_alphanumeric) {
            return Err(bad("chip", f[1]));
        }
        let millis = parse_u16(f[3]).filter(|&m| m < 1000).ok_or_else(|| bad("milliseconds", f[3]))?;
        Ok(ChipRead {
            kind: parse_u8(f[0]).ok_or_else(|| bad("record type", f[0]))?,
            chip: text(f[1]),
            seconds_since_1980: num(2, "seconds")?,
            millis,
            antenna: parse_u8(f[4]).ok_or_else(|| bad("antenna", f[4]))?,
            rssi: parse_i64(f[5]).and_then(|v| i16::try_from(v).ok()).ok_or_else(|| bad("rssi", f[5]))?,
            rewind: match f[6] {
                b"0" => false,
                b"1" => true,
                v => return Err(bad("rewind flag", v)),
            },
            reader_no: parse_u8(f[7]).ok_or_else(|| bad("reader number", f[7]))?,
            ultra_id: parse_u32(f[8]).ok_or_else(|| bad("ultra id", f[8]))?,
            reader_time: text(f[9]),
            start_time: num(10, "start time")?,
            log_id: num(11, "log id")?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            self.kind,
            self.chip,
            self.seconds_since_1980,
            self.millis,
            self.antenna,
            self.rssi,
            u8::from(self.rewind),
            self.reader_no,
            self.ultra_id,
            self.reader_time,
            self.start_time,
            self.log_id
        );
    }
}

impl From<&ChipRead> for TagRead {
    fn from(r: &ChipRead) -> TagRead {
        TagRead {
            chip: r.chip.clone(),
            time: r.reader_time(),
            antenna: Some(u16::from(r.antenna)),
            rssi: Some(Rssi(r.rssi.saturating_mul(10))),
            passing_no: Some(r.log_id),
            session: None,
            hits: None,
        }
    }
}

/// What an Ultra / Joey sends.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    /// The banner sent on connect (`1,Connected,…`), verbatim.
    Connected(String),
    Read(ChipRead),
    /// Voltage heartbeat (about every 2 s): the text after `V=` (or after `V`).
    Voltage(String),
    /// `S…` status line: the text after `S`.
    Status(String),
    /// `U<id byte><value>` settings-dump line: the bytes after `U` (a dump ends with `U2`).
    Setting(Vec<u8>),
    /// Clock reply to `r`.
    Clock(UltraClock),
    /// `HH:MM:SS DD-MM-YYYY (n)`: the clock with a number, sent on connect (CrossMgr logs it as
    /// "last data sent").
    ClockInfo {
        clock: UltraClock,
        value: i64,
    },
    /// Binary extended status frame: the bytes after the `0x03` and length bytes.
    ExtendedStatus(Vec<u8>),
    /// Any other printable line.
    Text(String),
}

impl Message {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Message::Connected(s) | Message::Text(s) => out.extend_from_slice(s.as_bytes()),
            Message::Read(r) => r.write(out),
            Message::Voltage(v) => {
                out.extend_from_slice(b"V=");
                out.extend_from_slice(v.as_bytes());
            }
            Message::Status(s) => {
                out.push(b'S');
                out.extend_from_slice(s.as_bytes());
            }
            Message::Setting(b) => {
                out.push(b'U');
                out.extend_from_slice(b);
            }
            Message::Clock(c) => c.write(out),
            Message::ClockInfo { clock, value } => {
                clock.write(out);
                let _ = write!(out, " ({value})");
            }
            Message::ExtendedStatus(payload) => {
                // The length byte counts the whole frame; longer payloads cannot be expressed.
                let payload = &payload[..payload.len().min(253)];
                out.push(EXTENDED_STATUS);
                out.push((payload.len() + 2) as u8);
                out.extend_from_slice(payload);
                return;
            }
        }
        out.push(b'\n');
    }

    pub fn to_tag_read(&self) -> Option<TagRead> {
        match self {
            Message::Read(r) => Some(r.to_tag_read()),
            _ => None,
        }
    }
}

/// Byte offsets in an extended-status frame (counted from the `0x03`), per PikaTimer.
impl Message {
    /// Battery percentage from an extended-status frame (frame offset 42).
    pub fn battery_percent(&self) -> Option<u8> {
        match self {
            Message::ExtendedStatus(p) => p.get(42 - 2).copied(),
            _ => None,
        }
    }
    /// Whether the reader is reading, from an extended-status frame (frame offset 45).
    pub fn is_reading(&self) -> Option<bool> {
        match self {
            Message::ExtendedStatus(p) => p.get(45 - 2).map(|&b| b != 0),
            _ => None,
        }
    }
}

/// Decodes one message from the front of `buf`, removing its bytes (see [`decode_slice`]).
pub fn decode(buf: &mut Vec<u8>) -> Result<Option<Message>, DecodeError> {
    decode_slice(buf).apply(buf)
}

/// Decodes one message from the front of `bytes` and says how many bytes it used.
pub fn decode_slice(bytes: &[u8]) -> Decoded<Message> {
    let mut pos = 0;
    loop {
        let rest = &bytes[pos..];
        match rest {
            [] => {
                return Decoded { consumed: pos, result: Ok(None) };
            }
            [b'\r' | b'\n', ..] => pos += 1,
            [EXTENDED_STATUS] => {
                return Decoded { consumed: pos, result: Ok(None) };
            }
            [EXTENDED_STATUS, len, ..] => {
                let len = usize::from(*len);
                if len < 2 {
                    return Decoded {
                        consumed: pos + 2,
                        result: Err(malformed(PROTOCOL, format!("extended status length {len}"), &rest[..2])),
                    };
                }
                if rest.len() < len {
                    return Decoded { consumed: pos, result: Ok(None) };
                }
                let frame = Message::ExtendedStatus(rest[2..len].to_vec());
                return Decoded { consumed: pos + len, result: Ok(Some(frame)) };
            }
            _ => {
                let mut d = decode_lines(rest, Terminator::CrOrLf, MAX_LINE, PROTOCOL, |l| parse_line(l).map(Some));
                if let (Ok(None), skip) = (&d.result, d.consumed) {
                    // Keep the retained tail of an over-long line from starting with 0x03, which
                    // would read as a binary frame (bounded: at most MAX_LINE extra bytes kept).
                    let mut s = skip;
                    while s > 0 && rest[s] == EXTENDED_STATUS && skip - s < MAX_LINE {
                        s -= 1;
                    }
                    d.consumed = s;
                }
                d.consumed += pos;
                return d;
            }
        }
    }
}

/// Parses one text line from the reader (no line end).
pub fn parse_line(line: &[u8]) -> Result<Message, DecodeError> {
    if line.starts_with(b"Connected") {
        return Ok(Message::Connected(text(line)));
    }
    match line.first() {
        Some(b'0'..=b'9') if line.contains(&b',') => {
            if fields(line, b',').nth(1) == Some(b"Connected") {
                Ok(Message::Connected(text(line)))
            } else {
                ChipRead::parse(line).map(Message::Read)
            }
        }
        Some(b'0'..=b'9') => parse_clock_line(line),
        Some(b'V') => Ok(Message::Voltage(text(line.strip_prefix(b"V=").unwrap_or(&line[1..])))),
        Some(b'S') => Ok(Message::Status(text(&line[1..]))),
        Some(b'U') => Ok(Message::Setting(line[1..].to_vec())),
        _ if line.iter().all(|b| (b' '..=b'~').contains(b)) => Ok(Message::Text(text(line))),
        _ => Err(malformed(PROTOCOL, "unrecognised line", line)),
    }
}

fn parse_clock_line(line: &[u8]) -> Result<Message, DecodeError> {
    let bad = || malformed(PROTOCOL, "bad clock line", line);
    // `HH:MM:SS DD-MM-YYYY` optionally followed by ` (n)`.
    if let Some(open) = line.iter().position(|&b| b == b'(') {
        let value = line[open + 1..].strip_suffix(b")").and_then(parse_i64).ok_or_else(bad)?;
        let head = line[..open].strip_suffix(b" ").ok_or_else(bad)?;
        return Ok(Message::ClockInfo { clock: UltraClock::parse(head).ok_or_else(bad)?, value });
    }
    UltraClock::parse(line).map(Message::Clock).ok_or_else(bad)
}

/// What racetime sends to an Ultra / Joey.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// `R` (a Joey takes about 10 s to start).
    StartReading,
    /// `S`.
    StopReading,
    /// `N`: PikaTimer sends it right after `S` when stopping; its meaning alone is undocumented.
    ConfirmStop,
    /// `r`: ask for the clock.
    GetClock,
    /// `t HH:MM:SS DD-MM-YYYY` then CR (send it at the top of a second).
    SetClock(UltraClock),
    /// `U` LF: dump settings.
    DumpSettings,
    /// `u<id><value>\xFF` (the value must not contain 0xFF).
    WriteSetting { id: u8, value: Vec<u8> },
    /// `6\0\0<from>\r<to>\r`: resend reads by log id.
    RewindByLogId { from: u64, to: u64 },
    /// `8\0\0<from>\r<to>\r`: resend reads by time, seconds since 1980 (reader-local).
    RewindByTime { from: u64, to: u64 },
    /// `03 00 00 03 0D 0A`.
    EnableExtendedStatus,
}

/// Choice: the `t` command ends with CR, as CrossMgr's Ultra client sends it (its `EOL`).
pub const SET_CLOCK_END: &[u8] = b"\r";

impl Command {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Command::StartReading => out.push(b'R'),
            Command::StopReading => out.push(b'S'),
            Command::ConfirmStop => out.push(b'N'),
            Command::GetClock => out.push(b'r'),
            Command::SetClock(c) => {
                out.extend_from_slice(b"t ");
                c.write(out);
                out.extend_from_slice(SET_CLOCK_END);
            }
            Command::DumpSettings => out.extend_from_slice(b"U\n"),
            Command::WriteSetting { id, value } => {
                out.push(b'u');
                out.push(*id);
                out.extend(value.iter().copied().filter(|&b| b != 0xff));
                out.push(0xff);
            }
            Command::RewindByLogId { from, to } => {
                let _ = write!(out, "6\0\0{from}\r{to}\r");
            }
            Command::RewindByTime { from, to } => {
                let _ = write!(out, "8\0\0{from}\r{to}\r");
            }
            Command::EnableExtendedStatus => out.extend_from_slice(&ENABLE_EXTENDED_STATUS),
        }
    }
}

/// Decodes one host command from the front of `buf` (for reader emulators).
pub fn decode_command(buf: &mut Vec<u8>) -> Result<Option<Command>, DecodeError> {
    decode_command_slice(buf).apply(buf)
}

/// Decodes one host command from the front of `bytes`.
///
/// Each command is recognised from a bounded look-ahead, so the outcome never depends on how the
/// bytes were chunked; an unknown byte is consumed alone and reported.
pub fn decode_command_slice(bytes: &[u8]) -> Decoded<Command> {
    let mut pos = 0;
    while let [b'\r' | b'\n', ..] = &bytes[pos..] {
        pos += 1;
    }
    let rest = &bytes[pos..];
    let (consumed, result) = command_at(rest);
    Decoded { consumed: pos + consumed, result }
}

fn command_at(rest: &[u8]) -> (usize, Result<Option<Command>, DecodeError>) {
    const NEED_MORE: (usize, Result<Option<Command>, DecodeError>) = (0, Ok(None));
    let done = |n: usize, c: Command| (n, Ok(Some(c)));
    let fail = |n: usize, reason: &str| (n, Err(malformed(PROTOCOL, reason, &rest[..n])));
    let Some(&first) = rest.first() else {
        return NEED_MORE;
    };
    match first {
        b'R' => done(1, Command::StartReading),
        b'S' => done(1, Command::StopReading),
        b'N' => done(1, Command::ConfirmStop),
        b'r' => done(1, Command::GetClock),
        b'U' => match rest.get(1) {
            None => NEED_MORE,
            Some(b'\n' | b'\r') => done(2, Command::DumpSettings),
            Some(_) => fail(1, "settings dump without line end"),
        },
        b't' => match rest.iter().take(MAX_COMMAND + 1).position(|&b| b == b'\r' || b == b'\n') {
            Some(end) => match rest[1..end].strip_prefix(b" ").and_then(UltraClock::parse) {
                Some(c) => done(end + 1, Command::SetClock(c)),
                None => fail(end + 1, "bad clock in set-clock command"),
            },
            None if rest.len() > MAX_COMMAND => {
                (MAX_COMMAND + 1, Err(DecodeError::TooLong { protocol: PROTOCOL, limit: MAX_COMMAND }))
            }
            None => NEED_MORE,
        },
        b'u' => {
            let Some(&id) = rest.get(1) else {
                return NEED_MORE;
            };
            match rest.iter().skip(2).take(MAX_COMMAND + 1).position(|&b| b == 0xff) {
                Some(n) => done(n + 3, Command::WriteSetting { id, value: rest[2..2 + n].to_vec() }),
                None if rest.len() > MAX_COMMAND + 2 => {
                    (MAX_COMMAND + 3, Err(DecodeError::TooLong { protocol: PROTOCOL, limit: MAX_COMMAND }))
                }
                None => NEED_MORE,
            }
        }
        b'6' | b'8' => {
            // `6\0\0` + up to 20 digits + CR + up to 20 digits + CR.
            const MAX: usize = 3 + 21 + 21;
            if rest.len() < 3 {
                return if rest[1..].iter().all(|&b| b == 0) { NEED_MORE } else { fail(1, "bad rewind") };
            }
            if rest[1] != 0 || rest[2] != 0 {
                return fail(1, "bad rewind");
            }
            let body = &rest[3..rest.len().min(MAX)];
            let mut crs = body.iter().enumerate().filter(|(_, b)| **b == b'\r').map(|(i, _)| i);
            match (crs.next(), crs.next()) {
                (Some(a), Some(b)) => {
                    let n = 3 + b + 1;
                    match (parse_u64(&body[..a]), parse_u64(&body[a + 1..b])) {
                        (Some(from), Some(to)) if first == b'6' => done(n, Command::RewindByLogId { from, to }),
                        (Some(from), Some(to)) => done(n, Command::RewindByTime { from, to }),
                        _ => fail(n, "bad rewind bounds"),
                    }
                }
                _ if rest.len() >= MAX => fail(MAX, "rewind without two CRs"),
                _ => NEED_MORE,
            }
        }
        EXTENDED_STATUS => {
            let n = ENABLE_EXTENDED_STATUS.len();
            if rest.len() < n {
                if ENABLE_EXTENDED_STATUS.starts_with(rest) { NEED_MORE } else { fail(1, "unknown binary command") }
            } else if rest[..n] == ENABLE_EXTENDED_STATUS {
                done(n, Command::EnableExtendedStatus)
            } else {
                fail(1, "unknown binary command")
            }
        }
        _ => fail(1, "unknown command byte"),
    }
}

#[cfg(test)]
mod tests;
