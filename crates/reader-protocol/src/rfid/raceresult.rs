//! RACE RESULT System/Active decoder text protocol: TCP port 3601, or RS-232 through a USB-COM adapter.
//!
//! Framing: one ASCII (ISO-8859-1) line per message, ended by CR LF (a bare LF is tolerated), fields
//! separated by `;`.
//! The host sends commands (`GETTIME`, `SETTIME;…`, `PASSINGS`, `<from>:<count>`, …); the decoder
//! answers with a line starting with the command word, except for passings, which are bare lines
//! starting with the passing number.
//! An empty line ends a multi-passing reply ([`Message::EndOfBatch`]); pushed passings start `#P;`.
//! Lines are limited to [`MAX_LINE`] bytes.
//!
//! Passing records of every protocol generation are accepted: the 20-field record of protocol 1.6+
//! (with box name, file number and box id), the older 8–16-field records, and the 4-field
//! `<no>;<code>;<date>;<time>` records (6-digit fraction) that CrossMgr's simulator sends.
//! Fields keep their positions across generations; records with more than 20 fields keep the first 20.
//!
//! Deliberately not here: the recovery loop (`PASSINGS`, then `<last+1>:<n>` per file) and clock
//! offset estimation, which need connection state and a clock and belong to the edge; the USB Timing
//! Box (19200 baud, tick counter) and Ubidium (gRPC) protocols, which are different protocols.
//! See `hardware/readers/raceresult.md` for sources and the choices made where the notes are unsure.

use std::io::Write;

use crate::field::{
    MICROS_PER_DAY, fields, fixed_digits, is_valid_date, local_micros, parse_i32, parse_time_of_day, parse_u8,
    parse_u32, parse_u64, text, write_time_of_day,
};
use crate::framing::{Terminator, decode_lines, malformed};
use crate::{DecodeError, Decoded, ReaderTime, TagRead};
use timing_core::Rssi;

/// Name used in [`DecodeError`]s.
pub const PROTOCOL: &str = "raceresult";
/// The decoder's TCP port.
pub const PORT: u16 = 3601;
/// Longest accepted line, terminator excluded.
pub const MAX_LINE: usize = 1024;
/// Transponder codes of marker (trigger) passings start with this (metarace `RRS_MARKER`).
pub const MARKER_PREFIX: &str = "99999";

/// A decoder date: a calendar date, or (`year == 0`) a day counter since timing mode started.
///
/// Without GPS or `SETTIME` the decoder reports `0000-00-00`, then `0000-00-01` after 24 hours, and
/// so on: its clock is then time since `STARTOPERATION`, not a time of day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DecoderDate {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl DecoderDate {
    /// True for `0000-00-DD`: the clock was never set and `day` counts days since start of operation.
    pub fn is_day_counter(self) -> bool {
        self.year == 0
    }

    fn parse(s: &[u8]) -> Option<DecoderDate> {
        if s.len() != 10 || s[4] != b'-' || s[7] != b'-' {
            return None;
        }
        let year = fixed_digits(&s[0..4], 4)?;
        let month = fixed_digits(&s[5..7], 2)?;
        let day = fixed_digits(&s[8..10], 2)?;
        let ok = if year == 0 { month == 0 } else { is_valid_date(i64::from(year), month, day) };
        ok.then_some(DecoderDate { year: year as u16, month: month as u8, day: day as u8 })
    }

    fn write(self, out: &mut Vec<u8>) {
        let _ = write!(out, "{:04}-{:02}-{:02}", self.year, self.month, self.day);
    }
}

/// A decoder timestamp: its date and the time of day (`hh:mm:ss.kkk`, decoder-local wall clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DecoderTime {
    pub date: DecoderDate,
    pub time_of_day_us: u64,
}

impl DecoderTime {
    /// The timestamp in the reader's time base; see [`reader_time`].
    pub fn reader_time(self) -> ReaderTime {
        reader_time(Some(self.date), self.time_of_day_us)
    }

    fn parse(date: &[u8], time: &[u8]) -> Option<DecoderTime> {
        Some(DecoderTime { date: DecoderDate::parse(date)?, time_of_day_us: parse_time_of_day(time)? })
    }

    fn write(self, out: &mut Vec<u8>) {
        self.date.write(out);
        out.push(b';');
        write_time_of_day(out, self.time_of_day_us, 3);
    }
}

/// Maps a decoder date and time of day to a [`ReaderTime`].
///
/// Choice (see `hardware/readers/raceresult.md`): a calendar date gives
/// [`ReaderTime::LocalDateTime`]; a day counter (`0000-00-DD`) or a missing date gives
/// [`ReaderTime::TimeOfDay`] counted from midnight of the first day, i.e. `DD × 24 h + time`, so
/// times after the first 24 hours stay monotonic.
pub fn reader_time(date: Option<DecoderDate>, time_of_day_us: u64) -> ReaderTime {
    match date {
        Some(d) if !d.is_day_counter() => ReaderTime::LocalDateTime(local_micros(
            i64::from(d.year),
            u32::from(d.month),
            u32::from(d.day),
            time_of_day_us,
        )),
        Some(d) => ReaderTime::TimeOfDay((u64::from(d.day) * MICROS_PER_DAY + time_of_day_us) as i64),
        None => ReaderTime::TimeOfDay(time_of_day_us as i64),
    }
}

/// One passing record (decoder doc "Passing Record", kb id 487), by field position.
///
/// Optional fields are `None` (or an empty string) when the record is shorter or the field is empty.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Passing {
    /// 1-based record number within the passing file.
    pub passing_no: u64,
    /// Bib or transponder code (e.g. `ZICAD30`); marker passings start with [`MARKER_PREFIX`].
    pub transponder: String,
    /// Empty in some active raw-data records.
    pub date: Option<DecoderDate>,
    pub time_of_day_us: u64,
    pub event_id: Option<u32>,
    pub hits: Option<u32>,
    /// As sent: dBm (negative) for passive tags on current firmware; older firmware and active
    /// transponders use other scales.
    pub max_rssi: Option<i32>,
    pub internal_data: String,
    pub is_active: Option<bool>,
    pub channel: Option<u8>,
    pub loop_id: Option<u8>,
    pub loop_only: Option<bool>,
    pub wakeup_counter: Option<u32>,
    /// Volts, as sent.
    pub battery: String,
    pub temperature: Option<i32>,
    pub internal_active_data: String,
    pub box_name: String,
    pub file_no: Option<u32>,
    pub max_rssi_antenna: Option<u8>,
    pub box_id: String,
    /// How many fields the record had (4..=20), so that encoding reproduces its shape.
    pub n_fields: u8,
}

impl Passing {
    /// The smallest record: number, code, date, time (what CrossMgr's simulator sends).
    pub fn new(passing_no: u64, transponder: &str, date: Option<DecoderDate>, time_of_day_us: u64) -> Passing {
        Passing {
            passing_no,
            transponder: transponder.to_owned(),
            date,
            time_of_day_us,
            event_id: None,
            hits: None,
            max_rssi: None,
            internal_data: String::new(),
            is_active: None,
            channel: None,
            loop_id: None,
            loop_only: None,
            wakeup_counter: None,
            battery: String::new(),
            temperature: None,
            internal_active_data: String::new(),
            box_name: String::new(),
            file_no: None,
            max_rssi_antenna: None,
            box_id: String::new(),
            n_fields: 4,
        }
    }

    /// A marker / trigger passing rather than a tag.
    pub fn is_marker(&self) -> bool {
        self.transponder.starts_with(MARKER_PREFIX)
    }

    pub fn reader_time(&self) -> ReaderTime {
        reader_time(self.date, self.time_of_day_us)
    }

    pub fn to_tag_read(&self) -> TagRead {
        TagRead::from(self)
    }

    /// Parses a record line without the `#P;` prefix and without its line end.
    pub fn parse(line: &[u8]) -> Result<Passing, DecodeError> {
        let mut f: [&[u8]; 20] = [b""; 20];
        let mut n = 0;
        for field in fields(line, b';') {
            if n == f.len() {
                break;
            }
            f[n] = field;
            n += 1;
        }
        if n < 4 {
            return Err(malformed(PROTOCOL, format!("passing has {n} fields, expected at least 4"), line));
        }
        let bad =
            |name: &str, v: &[u8]| malformed(PROTOCOL, format!("bad {name} {:?}", String::from_utf8_lossy(v)), line);
        let passing_no = parse_u64(f[0]).ok_or_else(|| bad("passing number", f[0]))?;
        if f[1].is_empty() {
            return Err(bad("transponder code", f[1]));
        }
        let date =
            if f[2].is_empty() { None } else { Some(DecoderDate::parse(f[2]).ok_or_else(|| bad("date", f[2]))?) };
        let time_of_day_us = parse_time_of_day(f[3]).ok_or_else(|| bad("time", f[3]))?;
        Ok(Passing {
            passing_no,
            transponder: text(f[1]),
            date,
            time_of_day_us,
            event_id: opt(f[4], parse_u32).map_err(|()| bad("event id", f[4]))?,
            hits: opt(f[5], parse_u32).map_err(|()| bad("hits", f[5]))?,
            max_rssi: opt(f[6], parse_i32).map_err(|()| bad("max rssi", f[6]))?,
            internal_data: text(f[7]),
            is_active: opt(f[8], parse_bool).map_err(|()| bad("is-active flag", f[8]))?,
            channel: opt(f[9], parse_u8).map_err(|()| bad("channel", f[9]))?,
            loop_id: opt(f[10], parse_u8).map_err(|()| bad("loop id", f[10]))?,
            loop_only: opt(f[11], parse_bool).map_err(|()| bad("loop-only flag", f[11]))?,
            wakeup_counter: opt(f[12], parse_u32).map_err(|()| bad("wakeup counter", f[12]))?,
            battery: text(f[13]),
            temperature: opt(f[14], parse_i32).map_err(|()| bad("temperature", f[14]))?,
            internal_active_data: text(f[15]),
            box_name: text(f[16]),
            file_no: opt(f[17], parse_u32).map_err(|()| bad("file number", f[17]))?,
            max_rssi_antenna: opt(f[18], parse_u8).map_err(|()| bad("max rssi antenna", f[18]))?,
            box_id: text(f[19]),
            n_fields: n as u8,
        })
    }

    /// Writes the record (no prefix, no line end).
    pub fn write(&self, out: &mut Vec<u8>) {
        let _ = write!(out, "{};{};", self.passing_no, self.transponder);
        if let Some(d) = self.date {
            d.write(out);
        }
        out.push(b';');
        write_time_of_day(out, self.time_of_day_us, 3);
        let rest: [FieldWriter<'_>; 16] = [
            &|o| put(o, self.event_id),
            &|o| put(o, self.hits),
            &|o| put(o, self.max_rssi),
            &|o| o.extend_from_slice(self.internal_data.as_bytes()),
            &|o| put(o, self.is_active.map(u8::from)),
            &|o| put(o, self.channel),
            &|o| put(o, self.loop_id),
            &|o| put(o, self.loop_only.map(u8::from)),
            &|o| put(o, self.wakeup_counter),
            &|o| o.extend_from_slice(self.battery.as_bytes()),
            &|o| put(o, self.temperature),
            &|o| o.extend_from_slice(self.internal_active_data.as_bytes()),
            &|o| o.extend_from_slice(self.box_name.as_bytes()),
            &|o| put(o, self.file_no),
            &|o| put(o, self.max_rssi_antenna),
            &|o| o.extend_from_slice(self.box_id.as_bytes()),
        ];
        let n_rest = usize::from(self.n_fields.clamp(4, 20)) - 4;
        for w in &rest[..n_rest] {
            out.push(b';');
            w(out);
        }
    }
}

type FieldWriter<'a> = &'a dyn Fn(&mut Vec<u8>);

/// Choice: RSSI becomes a [`TagRead`] RSSI only when it is a negative (dBm) value of a passive
/// tag; the older 0..31 scale and the hex-coded active values are left out.
fn tag_rssi(p: &Passing) -> Option<Rssi> {
    match p.max_rssi {
        Some(v) if v < 0 && p.is_active != Some(true) => Some(Rssi((v.max(-3000) * 10) as i16)),
        _ => None,
    }
}

impl From<&Passing> for TagRead {
    fn from(p: &Passing) -> TagRead {
        TagRead {
            chip: p.transponder.clone(),
            time: p.reader_time(),
            antenna: p.max_rssi_antenna.map(u16::from),
            rssi: tag_rssi(p),
            passing_no: Some(p.passing_no),
            session: p.file_no,
            hits: p.hits,
        }
    }
}

/// The reply to `GETSTATUS`, kept field by field (after the command word) with typed accessors.
///
/// Field order from the vendor table (C# emulator comments) and metarace's indices, which agree.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Status {
    pub fields: Vec<String>,
}

impl Status {
    fn field(&self, i: usize) -> Option<&str> {
        self.fields.get(i).map(String::as_str).filter(|s| !s.is_empty())
    }
    fn flag(&self, i: usize) -> Option<bool> {
        self.field(i).and_then(|s| parse_bool(s.as_bytes()))
    }
    pub fn time(&self) -> Option<DecoderTime> {
        DecoderTime::parse(self.field(0)?.as_bytes(), self.field(1)?.as_bytes())
    }
    pub fn has_power(&self) -> Option<bool> {
        self.flag(2)
    }
    /// Eight `0`/`1` characters, one per antenna.
    pub fn antennas(&self) -> Option<&str> {
        self.field(3)
    }
    pub fn in_operation(&self) -> Option<bool> {
        self.flag(4)
    }
    pub fn file_no(&self) -> Option<u32> {
        self.field(5).and_then(|s| parse_u32(s.as_bytes()))
    }
    pub fn gps_fix(&self) -> Option<bool> {
        self.flag(6)
    }
    pub fn reader_healthy(&self) -> Option<bool> {
        self.flag(8)
    }
    /// Percent; `-1` while the decoder is still estimating.
    pub fn battery_charge(&self) -> Option<i32> {
        self.field(9).and_then(|s| parse_i32(s.as_bytes()))
    }
    /// 0 manual, 1 GPS, 2 GPS-estimated.
    pub fn time_source(&self) -> Option<u8> {
        self.field(20).and_then(|s| parse_u8(s.as_bytes()))
    }
}

/// What a decoder sends.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    /// A passing line of a pulled batch (`<from>:<count>`).
    Passing(Passing),
    /// A pushed passing (`#P;…`).
    PushedPassing(Passing),
    /// The empty line that ends a batch reply.
    EndOfBatch,
    /// A line starting `ONLY ` (fewer passings than requested); the rest of the line as sent.
    Only(String),
    /// `GETTIME;<date>;<time>`.
    Time(DecoderTime),
    /// `SETTIME;<date>;<time>`: the echo of a clock set.
    TimeSet(DecoderTime),
    /// `PASSINGS;<count>[;<fileNo>]`.
    Passings { count: u64, file_no: Option<u32> },
    /// `GETSTATUS;…`.
    Status(Status),
    /// `STARTOPERATION;OK[;<date>;<time>]`: a new passing file was started.
    OperationStarted(Option<DecoderTime>),
    /// `STOPOPERATION;OK`.
    OperationStopped,
    /// `SETPUSHPASSINGS;<on>[;<also stored>]` echo.
    PushPassings { enabled: bool, include_stored: Option<bool> },
    /// `PING;OK` (invented for our simulator: no reply to `PING` is documented).
    Pong,
    /// Any other reply line: its command word and `;`-separated fields.
    Reply { command: String, fields: Vec<String> },
}

impl Message {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Message::Passing(p) => p.write(out),
            Message::PushedPassing(p) => {
                out.extend_from_slice(b"#P;");
                p.write(out);
            }
            Message::EndOfBatch => {}
            Message::Only(rest) => {
                out.extend_from_slice(b"ONLY ");
                out.extend_from_slice(rest.as_bytes());
            }
            Message::Time(t) => {
                out.extend_from_slice(b"GETTIME;");
                t.write(out);
            }
            Message::TimeSet(t) => {
                out.extend_from_slice(b"SETTIME;");
                t.write(out);
            }
            Message::Passings { count, file_no } => {
                let _ = write!(out, "PASSINGS;{count}");
                if let Some(f) = file_no {
                    let _ = write!(out, ";{f}");
                }
            }
            Message::Status(s) => write_reply(out, "GETSTATUS", &s.fields),
            Message::OperationStarted(t) => {
                out.extend_from_slice(b"STARTOPERATION;OK");
                if let Some(t) = t {
                    out.push(b';');
                    t.write(out);
                }
            }
            Message::OperationStopped => out.extend_from_slice(b"STOPOPERATION;OK"),
            Message::PushPassings { enabled, include_stored } => {
                let _ = write!(out, "SETPUSHPASSINGS;{}", u8::from(*enabled));
                if let Some(s) = include_stored {
                    let _ = write!(out, ";{}", u8::from(*s));
                }
            }
            Message::Pong => out.extend_from_slice(b"PING;OK"),
            Message::Reply { command, fields } => write_reply(out, command, fields),
        }
        out.extend_from_slice(b"\r\n");
    }

    /// The tag read of a (pulled or pushed) passing.
    pub fn to_tag_read(&self) -> Option<TagRead> {
        match self {
            Message::Passing(p) | Message::PushedPassing(p) => Some(p.to_tag_read()),
            _ => None,
        }
    }
}

fn write_reply(out: &mut Vec<u8>, command: &str, fields: &[String]) {
    out.extend_from_slice(command.as_bytes());
    for f in fields {
        out.push(b';');
        out.extend_from_slice(f.as_bytes());
    }
}

/// Decodes one message from the front of `buf`, removing its bytes (see [`decode_slice`]).
pub fn decode(buf: &mut Vec<u8>) -> Result<Option<Message>, DecodeError> {
    decode_slice(buf).apply(buf)
}

/// Decodes one message from the front of `bytes` and says how many bytes it used.
pub fn decode_slice(bytes: &[u8]) -> Decoded<Message> {
    decode_lines(bytes, Terminator::Lf, MAX_LINE, PROTOCOL, |line| parse_message(line).map(Some))
}

/// Parses one decoder line (without its line end).
pub fn parse_message(line: &[u8]) -> Result<Message, DecodeError> {
    match line {
        [] => Ok(Message::EndOfBatch),
        [b'0'..=b'9', ..] => Passing::parse(line).map(Message::Passing),
        [b'#', b'P', b';', rest @ ..] => Passing::parse(rest).map(Message::PushedPassing),
        [b'O', b'N', b'L', b'Y', b' ', rest @ ..] => Ok(Message::Only(text(rest))),
        [b'A'..=b'Z', ..] => parse_reply(line),
        _ => Err(malformed(PROTOCOL, "line is neither a passing nor a reply", line)),
    }
}

fn parse_reply(line: &[u8]) -> Result<Message, DecodeError> {
    let (command, args) = split_command(line);
    let args: Vec<&[u8]> = match args {
        Some(a) => fields(a, b';').collect(),
        None => Vec::new(),
    };
    let bad = || malformed(PROTOCOL, format!("bad {} reply", String::from_utf8_lossy(command)), line);
    let msg = match (command, args.as_slice()) {
        (b"GETTIME", [d, t]) => Message::Time(DecoderTime::parse(d, t).ok_or_else(bad)?),
        (b"SETTIME", [d, t]) => Message::TimeSet(DecoderTime::parse(d, t).ok_or_else(bad)?),
        (b"GETTIME" | b"SETTIME", _) => return Err(bad()),
        (b"PASSINGS", [c]) => Message::Passings { count: parse_u64(c).ok_or_else(bad)?, file_no: None },
        (b"PASSINGS", [c, f]) => {
            Message::Passings { count: parse_u64(c).ok_or_else(bad)?, file_no: Some(parse_u32(f).ok_or_else(bad)?) }
        }
        (b"PASSINGS", _) => return Err(bad()),
        (b"GETSTATUS", [d, t, ..]) if DecoderTime::parse(d, t).is_some() => {
            Message::Status(Status { fields: args.iter().map(|f| text(f)).collect() })
        }
        (b"GETSTATUS", _) => return Err(bad()),
        (b"STARTOPERATION", [b"OK"]) => Message::OperationStarted(None),
        (b"STARTOPERATION", [b"OK", d, t]) if DecoderTime::parse(d, t).is_some() => {
            Message::OperationStarted(DecoderTime::parse(d, t))
        }
        (b"STOPOPERATION", [b"OK"]) => Message::OperationStopped,
        (b"SETPUSHPASSINGS", [on]) => {
            Message::PushPassings { enabled: parse_bool(on).ok_or_else(bad)?, include_stored: None }
        }
        (b"SETPUSHPASSINGS", [on, old]) => Message::PushPassings {
            enabled: parse_bool(on).ok_or_else(bad)?,
            include_stored: Some(parse_bool(old).ok_or_else(bad)?),
        },
        (b"SETPUSHPASSINGS", _) => return Err(bad()),
        (b"PING", [b"OK"]) => Message::Pong,
        _ => Message::Reply { command: text(command), fields: args.iter().map(|f| text(f)).collect() },
    };
    Ok(msg)
}

/// The command word and, when there is a `;`, the rest after it.
fn split_command(line: &[u8]) -> (&[u8], Option<&[u8]>) {
    match line.iter().position(|&b| b == b';') {
        Some(p) => (&line[..p], Some(&line[p + 1..])),
        None => (line, None),
    }
}

fn parse_bool(s: &[u8]) -> Option<bool> {
    match s {
        b"0" => Some(false),
        b"1" => Some(true),
        _ => None,
    }
}

/// An empty field is `None`; a non-empty one must parse.
fn opt<T>(s: &[u8], parse: impl Fn(&[u8]) -> Option<T>) -> Result<Option<T>, ()> {
    if s.is_empty() { Ok(None) } else { parse(s).map(Some).ok_or(()) }
}

fn put<T: std::fmt::Display>(out: &mut Vec<u8>, v: Option<T>) {
    if let Some(v) = v {
        let _ = write!(out, "{v}");
    }
}

/// What racetime (the host) sends to a decoder.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    GetProtocol,
    SetProtocol(String),
    GetStatus,
    /// Starts timing mode and a new passing file (do it once per event, not per reconnect).
    StartOperation,
    StopOperation,
    GetTime,
    SetTime(DecoderTime),
    /// Asks for the number of passings (and, on newer firmware, the current file number).
    Passings,
    /// `<from>:<count>`: replay of stored passings, answered by passing lines and an empty line.
    GetPassings {
        from: u64,
        count: u64,
    },
    /// `<n>`: one stored passing.
    GetPassing(u64),
    /// `SETPUSHPASSINGS;<on>;<also stored>`.
    SetPushPassings {
        enabled: bool,
        include_stored: bool,
    },
    SetPushPrewarns(bool),
    /// `GETCONFIG;<section>;<key>`.
    GetConfig {
        section: String,
        key: String,
    },
    /// `GETFILE;<n>`: replay passing file n.
    GetFile(u32),
    ClearFiles,
    /// Keep-alive.
    Ping,
    /// Any other command line, verbatim without its line end.
    Other(String),
}

impl Command {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Command::GetProtocol => out.extend_from_slice(b"GETPROTOCOL"),
            Command::SetProtocol(v) => {
                let _ = write!(out, "SETPROTOCOL;{v}");
            }
            Command::GetStatus => out.extend_from_slice(b"GETSTATUS"),
            Command::StartOperation => out.extend_from_slice(b"STARTOPERATION"),
            Command::StopOperation => out.extend_from_slice(b"STOPOPERATION"),
            Command::GetTime => out.extend_from_slice(b"GETTIME"),
            Command::SetTime(t) => {
                out.extend_from_slice(b"SETTIME;");
                t.write(out);
            }
            Command::Passings => out.extend_from_slice(b"PASSINGS"),
            Command::GetPassings { from, count } => {
                let _ = write!(out, "{from}:{count}");
            }
            Command::GetPassing(n) => {
                let _ = write!(out, "{n}");
            }
            Command::SetPushPassings { enabled, include_stored } => {
                let _ = write!(out, "SETPUSHPASSINGS;{};{}", u8::from(*enabled), u8::from(*include_stored));
            }
            Command::SetPushPrewarns(on) => {
                let _ = write!(out, "SETPUSHPREWARNS;{}", u8::from(*on));
            }
            Command::GetConfig { section, key } => {
                let _ = write!(out, "GETCONFIG;{section};{key}");
            }
            Command::GetFile(n) => {
                let _ = write!(out, "GETFILE;{n}");
            }
            Command::ClearFiles => out.extend_from_slice(b"CLEARFILES"),
            Command::Ping => out.extend_from_slice(b"PING"),
            Command::Other(line) => out.extend_from_slice(line.as_bytes()),
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Decodes one host command from the front of `buf` (for decoder emulators).
pub fn decode_command(buf: &mut Vec<u8>) -> Result<Option<Command>, DecodeError> {
    decode_command_slice(buf).apply(buf)
}

/// Decodes one host command from the front of `bytes`; blank lines are skipped.
pub fn decode_command_slice(bytes: &[u8]) -> Decoded<Command> {
    decode_lines(bytes, Terminator::Lf, MAX_LINE, PROTOCOL, |line| {
        if line.is_empty() { Ok(None) } else { parse_command(line).map(Some) }
    })
}

/// Parses one host command line (without its line end).
pub fn parse_command(line: &[u8]) -> Result<Command, DecodeError> {
    let bad = || malformed(PROTOCOL, "bad command", line);
    if line.first().is_some_and(u8::is_ascii_digit) {
        return match line.iter().position(|&b| b == b':') {
            Some(p) => Ok(Command::GetPassings {
                from: parse_u64(&line[..p]).ok_or_else(bad)?,
                count: parse_u64(&line[p + 1..]).ok_or_else(bad)?,
            }),
            None => Ok(Command::GetPassing(parse_u64(line).ok_or_else(bad)?)),
        };
    }
    let (command, args) = split_command(line);
    let args: Vec<&[u8]> = args.map(|a| fields(a, b';').collect()).unwrap_or_default();
    let cmd = match (command, args.as_slice()) {
        (b"GETPROTOCOL", []) => Command::GetProtocol,
        (b"SETPROTOCOL", [v]) => Command::SetProtocol(text(v)),
        (b"GETSTATUS", []) => Command::GetStatus,
        (b"STARTOPERATION", []) => Command::StartOperation,
        (b"STOPOPERATION", []) => Command::StopOperation,
        (b"GETTIME", []) => Command::GetTime,
        (b"SETTIME", [d, t]) => Command::SetTime(DecoderTime::parse(d, t).ok_or_else(bad)?),
        (b"PASSINGS", []) => Command::Passings,
        (b"SETPUSHPASSINGS", [on, old]) => Command::SetPushPassings {
            enabled: parse_bool(on).ok_or_else(bad)?,
            include_stored: parse_bool(old).ok_or_else(bad)?,
        },
        (b"SETPUSHPASSINGS", [on]) => {
            Command::SetPushPassings { enabled: parse_bool(on).ok_or_else(bad)?, include_stored: false }
        }
        (b"SETPUSHPREWARNS", [on]) => Command::SetPushPrewarns(parse_bool(on).ok_or_else(bad)?),
        (b"GETCONFIG", [s, k]) => Command::GetConfig { section: text(s), key: text(k) },
        (b"GETFILE", [n]) => Command::GetFile(parse_u32(n).ok_or_else(bad)?),
        (b"CLEARFILES", []) => Command::ClearFiles,
        (b"PING", []) => Command::Ping,
        (b"SETTIME" | b"SETPUSHPREWARNS" | b"GETFILE", _) => return Err(bad()),
        _ => Command::Other(text(line)),
    };
    Ok(cmd)
}

#[cfg(test)]
mod tests;
