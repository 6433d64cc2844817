//! ChronoTrack socket protocol CTP01, spoken by ChronoTrack SimpleClient (or a CTP01 exporter), not
//! by the controller itself: the source software connects to racetime, which is the server.
//!
//! Framing: ASCII lines ended by CR LF (bare LF tolerated, blank lines skipped), fields separated by
//! `~`, at most [`MAX_LINE`] bytes.
//! Handshake (racemap, tested against SimpleClient): the client greets `SimpleClient~<ver>~CTP01`;
//! the server answers `<name>~<ver>~<n settings>`, then the settings (`guntimes=true`, …), then
//! `getconnectionid`, `geteventinfo`, `getlocations`, `start[~<location>[~<seq>]]`; the client acks
//! each (`ack~<command>~…`) and then streams tag lines `CT01_33~<seq>~<location>~<tag>~<time>~…`.
//! A tag field `guntime` is a gun start, `newlocation` announces a location. `ping` every 10 s is
//! answered `ack~ping`. Which side greets first is uncertain, so neither decoder assumes an order.
//!
//! Deliberately not here: the handshake state machine (the edge drives it; [`handshake`] lists the
//! commands) and clock setting, which CTP01 does not have. See `hardware/readers/chronotrack.md`.

use std::io::Write;

use crate::field::{
    MICROS_PER_SEC, fields, fixed_digits, is_valid_date, local_micros, parse_fraction, parse_time_of_day, parse_u32,
    parse_u64, text, write_fraction, write_time_of_day,
};
use crate::framing::{Terminator, decode_lines, malformed};
use crate::{DecodeError, Decoded, ReaderTime, TagRead};
use timing_core::Timestamp;

/// Name used in [`DecodeError`]s.
pub const PROTOCOL: &str = "chronotrack";
/// The port two independent collector projects default to (configurable in SimpleClient).
pub const PORT: u16 = 61611;
/// Longest accepted line, terminator excluded.
pub const MAX_LINE: usize = 1024;
/// The settings racetime sends after its greeting (racemap's list; `iso` times carry the date).
pub const SETTINGS: [(&str, &str); 5] = [
    ("guntimes", "true"),
    ("newlocations", "true"),
    ("connection-id", "false"),
    ("stream-mode", "push"),
    ("time-format", "iso"),
];

/// A tag-line time in one of the four `time-format` settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CtTime {
    /// `normal`: `HH:MM:SS.hh`, local time of day.
    TimeOfDay(u64),
    /// `iso`: `YYYY-MM-DDTHH:MM:SS.hh`, microseconds since 1970-01-01T00:00 local.
    Iso(i64),
    /// `unix`: seconds with hundredths, as microseconds since the Unix epoch.
    Unix(i64),
    /// `msecs`: milliseconds since midnight.
    Msecs(u64),
}

impl CtTime {
    /// Choice: `iso` is read as local wall-clock time (SimpleClient's default; racemap assumes UTC,
    /// TsConnector offers either), `unix` as UTC, the other two as times of day.
    pub fn reader_time(self) -> ReaderTime {
        match self {
            CtTime::TimeOfDay(us) => ReaderTime::TimeOfDay(us as i64),
            CtTime::Iso(us) => ReaderTime::LocalDateTime(us),
            CtTime::Unix(us) => ReaderTime::Utc(Timestamp::from_micros(us)),
            CtTime::Msecs(ms) => ReaderTime::TimeOfDay(ms as i64 * 1000),
        }
    }

    /// Recognises the format from the text: `T` → iso, `:` → normal, `.` → unix, a bare integer
    /// below 86 400 000 → msecs, a larger one → unix seconds.
    fn parse(s: &[u8]) -> Option<CtTime> {
        if let Some(t) = s.iter().position(|&b| b == b'T') {
            let d = &s[..t];
            if d.len() != 10 || d[4] != b'-' || d[7] != b'-' {
                return None;
            }
            let (y, m, day) = (fixed_digits(&d[..4], 4)?, fixed_digits(&d[5..7], 2)?, fixed_digits(&d[8..], 2)?);
            if !is_valid_date(i64::from(y), m, day) {
                return None;
            }
            return Some(CtTime::Iso(local_micros(i64::from(y), m, day, parse_time_of_day(&s[t + 1..])?)));
        }
        if s.contains(&b':') {
            return parse_time_of_day(s).map(CtTime::TimeOfDay);
        }
        if let Some(p) = s.iter().position(|&b| b == b'.') {
            let secs = i64::try_from(parse_u64(&s[..p])?).ok()?;
            let us = secs.checked_mul(MICROS_PER_SEC as i64)?.checked_add(parse_fraction(&s[p + 1..])? as i64)?;
            return Some(CtTime::Unix(us));
        }
        let v = parse_u64(s)?;
        if v < 86_400_000 {
            Some(CtTime::Msecs(v))
        } else {
            Some(CtTime::Unix(i64::try_from(v).ok()?.checked_mul(MICROS_PER_SEC as i64)?))
        }
    }

    fn write(self, out: &mut Vec<u8>) {
        match self {
            CtTime::TimeOfDay(us) => write_time_of_day(out, us, 2),
            CtTime::Iso(us) => {
                let days = us.div_euclid(86_400 * MICROS_PER_SEC as i64);
                let (y, m, d) = civil_from_days(days);
                let _ = write!(out, "{y:04}-{m:02}-{d:02}T");
                write_time_of_day(out, us.rem_euclid(86_400 * MICROS_PER_SEC as i64) as u64, 2);
            }
            CtTime::Unix(us) => {
                let _ = write!(out, "{}", us.div_euclid(MICROS_PER_SEC as i64));
                write_fraction(out, us.rem_euclid(MICROS_PER_SEC as i64) as u64, 2);
            }
            CtTime::Msecs(ms) => {
                let _ = write!(out, "{ms}");
            }
        }
    }
}

/// Inverse of `days_from_civil` (Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A tag line (`CT01_13` or `CT01_33`), also used for gun times and new-location notices.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CtRecord {
    /// `CT01_13`, `CT01_33`, …
    pub format: String,
    /// Line / sequence number: resume point for `start~<location>~<seq>`.
    pub seq: u64,
    pub location: String,
    /// Tag code, or `guntime` / `newlocation`.
    pub tag: String,
    pub time: CtTime,
    /// Read occurrence (CT01_13); "gator" per other collectors (CT01_33). Kept verbatim.
    pub field5: String,
    /// Reader id: the last 6 hex digits of the controller's MAC.
    pub reader_id: String,
    /// Antenna port 1–8 (CT01_13; 0 for a gun time); "lap" per other collectors (CT01_33).
    pub field7: String,
}

impl CtRecord {
    pub fn to_tag_read(&self) -> TagRead {
        TagRead::from(self)
    }

    fn parse(f: &[&[u8]], line: &[u8]) -> Result<CtRecord, DecodeError> {
        let [format, seq, location, tag, time, f5, reader, f7] = f else {
            return Err(malformed(PROTOCOL, format!("tag line has {} fields, expected 8", f.len()), line));
        };
        let bad = |what: &str, v: &[u8]| malformed(PROTOCOL, format!("bad {what} {:?}", text(v)), line);
        if tag.is_empty() {
            return Err(bad("tag", tag));
        }
        Ok(CtRecord {
            format: text(format),
            seq: parse_u64(seq).ok_or_else(|| bad("sequence number", seq))?,
            location: text(location),
            tag: text(tag),
            time: CtTime::parse(time).ok_or_else(|| bad("time", time))?,
            field5: text(f5),
            reader_id: text(reader),
            field7: text(f7),
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        let _ = write!(out, "{}~{}~{}~{}~", self.format, self.seq, self.location, self.tag);
        self.time.write(out);
        let _ = write!(out, "~{}~{}~{}", self.field5, self.reader_id, self.field7);
    }
}

/// Choice: the antenna comes from field 7 only for `CT01_13`, where racemap documents it as the
/// antenna port; for `CT01_33` its meaning is unknown.
fn tag_antenna(r: &CtRecord) -> Option<u16> {
    if r.format == "CT01_13" { r.field7.parse().ok().filter(|&a| a > 0) } else { None }
}

impl From<&CtRecord> for TagRead {
    fn from(r: &CtRecord) -> TagRead {
        TagRead {
            chip: r.tag.clone(),
            time: r.time.reader_time(),
            antenna: tag_antenna(r),
            rssi: None,
            passing_no: Some(r.seq),
            session: None,
            hits: None,
        }
    }
}

/// What the CTP01 source (SimpleClient) sends.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    /// `<name>~<version>~<protocol>`, protocol `CTP01`.
    Greeting { name: String, version: String, protocol: String },
    /// `ack~getconnectionid~<id>`.
    ConnectionId(String),
    /// `ack~geteventinfo~<name>~<id>~<description>`.
    EventInfo { name: String, id: String, description: String },
    /// `ack~getlocations~<loc>~…`.
    Locations(Vec<String>),
    /// `ack~ping`.
    Pong,
    /// Any other `ack~<command>~…`.
    Ack { command: String, args: Vec<String> },
    /// `err~<command>~<message>`.
    Error { command: String, message: String },
    /// A tag read.
    Read(CtRecord),
    /// A gun start (tag field `guntime`).
    GunTime(CtRecord),
    /// A new location was added (tag field `newlocation`): re-issue `getlocations`, then `start`.
    NewLocation(CtRecord),
}

impl Message {
    pub fn encode(&self, out: &mut Vec<u8>) {
        let join = |out: &mut Vec<u8>, parts: &[&str]| {
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    out.push(b'~');
                }
                out.extend_from_slice(p.as_bytes());
            }
        };
        match self {
            Message::Greeting { name, version, protocol } => join(out, &[name, version, protocol]),
            Message::ConnectionId(id) => join(out, &["ack", "getconnectionid", id]),
            Message::EventInfo { name, id, description } => {
                join(out, &["ack", "geteventinfo", name, id, description]);
            }
            Message::Locations(ls) => {
                out.extend_from_slice(b"ack~getlocations");
                for l in ls {
                    out.push(b'~');
                    out.extend_from_slice(l.as_bytes());
                }
            }
            Message::Pong => out.extend_from_slice(b"ack~ping"),
            Message::Ack { command, args } => {
                join(out, &["ack", command]);
                for a in args {
                    out.push(b'~');
                    out.extend_from_slice(a.as_bytes());
                }
            }
            Message::Error { command, message } => join(out, &["err", command, message]),
            Message::Read(r) | Message::GunTime(r) | Message::NewLocation(r) => r.write(out),
        }
        out.extend_from_slice(b"\r\n");
    }

    pub fn to_tag_read(&self) -> Option<TagRead> {
        match self {
            Message::Read(r) => Some(r.to_tag_read()),
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
        if line.is_empty() { Ok(None) } else { parse_message(line).map(Some) }
    })
}

/// Parses one line from the source (no line end).
pub fn parse_message(line: &[u8]) -> Result<Message, DecodeError> {
    let f: Vec<&[u8]> = fields(line, b'~').collect();
    let rest = |from: usize| f[from.min(f.len())..].iter().map(|a| text(a)).collect::<Vec<String>>();
    Ok(match f.as_slice() {
        [format, ..] if format.starts_with(b"CT01_") => {
            let r = CtRecord::parse(&f, line)?;
            match r.tag.as_str() {
                "guntime" => Message::GunTime(r),
                "newlocation" => Message::NewLocation(r),
                _ => Message::Read(r),
            }
        }
        [b"ack", b"ping"] => Message::Pong,
        [b"ack", b"getconnectionid", id] => Message::ConnectionId(text(id)),
        [b"ack", b"geteventinfo", name, id, description] => {
            Message::EventInfo { name: text(name), id: text(id), description: text(description) }
        }
        [b"ack", b"getlocations", ..] => Message::Locations(rest(2)),
        [b"ack", command, ..] if !matches!(*command, b"ping" | b"getconnectionid" | b"geteventinfo") => {
            Message::Ack { command: text(command), args: rest(2) }
        }
        [b"err", command, message] => Message::Error { command: text(command), message: text(message) },
        [name, version, protocol] if protocol.starts_with(b"CTP") => {
            Message::Greeting { name: text(name), version: text(version), protocol: text(protocol) }
        }
        _ => return Err(malformed(PROTOCOL, "unrecognised line", line)),
    })
}

/// What racetime (the server) sends to the CTP01 source.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// `<name>~<version>~<number of settings that follow>`.
    Greeting {
        name: String,
        version: String,
        n_settings: u32,
    },
    /// `<key>=<value>`.
    Setting {
        key: String,
        value: String,
    },
    GetConnectionId,
    GetEventInfo,
    GetLocations,
    /// `start[~<location>[~<seq>]]`: start streaming, optionally resuming after a sequence number.
    Start {
        location: Option<String>,
        seq: Option<u64>,
    },
    /// `stop[~<location>]`.
    Stop {
        location: Option<String>,
    },
    Ping,
}

/// The server side of the handshake after the client's greeting: greeting, [`SETTINGS`], and the
/// three queries. Send `start` once the locations are known.
pub fn handshake(name: &str, version: &str) -> Vec<Command> {
    let mut cmds = vec![Command::Greeting {
        name: name.to_owned(),
        version: version.to_owned(),
        n_settings: SETTINGS.len() as u32,
    }];
    cmds.extend(SETTINGS.iter().map(|(k, v)| Command::Setting { key: (*k).to_owned(), value: (*v).to_owned() }));
    cmds.extend([Command::GetConnectionId, Command::GetEventInfo, Command::GetLocations]);
    cmds
}

impl Command {
    pub fn encode(&self, out: &mut Vec<u8>) {
        let _ = match self {
            Command::Greeting { name, version, n_settings } => write!(out, "{name}~{version}~{n_settings}"),
            Command::Setting { key, value } => write!(out, "{key}={value}"),
            Command::GetConnectionId => write!(out, "getconnectionid"),
            Command::GetEventInfo => write!(out, "geteventinfo"),
            Command::GetLocations => write!(out, "getlocations"),
            Command::Start { location, seq } => {
                let _ = write!(out, "start");
                if let Some(l) = location {
                    let _ = write!(out, "~{l}");
                    if let Some(s) = seq {
                        let _ = write!(out, "~{s}");
                    }
                }
                Ok(())
            }
            Command::Stop { location } => match location {
                Some(l) => write!(out, "stop~{l}"),
                None => write!(out, "stop"),
            },
            Command::Ping => write!(out, "ping"),
        };
        out.extend_from_slice(b"\r\n");
    }
}

/// Decodes one server command from the front of `buf` (for source emulators).
pub fn decode_command(buf: &mut Vec<u8>) -> Result<Option<Command>, DecodeError> {
    decode_command_slice(buf).apply(buf)
}

/// Decodes one server command from the front of `bytes`; blank lines are skipped.
pub fn decode_command_slice(bytes: &[u8]) -> Decoded<Command> {
    decode_lines(bytes, Terminator::Lf, MAX_LINE, PROTOCOL, |line| {
        if line.is_empty() { Ok(None) } else { parse_command(line).map(Some) }
    })
}

/// Parses one server line (no line end).
pub fn parse_command(line: &[u8]) -> Result<Command, DecodeError> {
    let f: Vec<&[u8]> = fields(line, b'~').collect();
    let bad = || malformed(PROTOCOL, "unrecognised command", line);
    Ok(match f.as_slice() {
        [b"getconnectionid"] => Command::GetConnectionId,
        [b"geteventinfo"] => Command::GetEventInfo,
        [b"getlocations"] => Command::GetLocations,
        [b"ping"] => Command::Ping,
        [b"start"] => Command::Start { location: None, seq: None },
        [b"start", l] => Command::Start { location: Some(text(l)), seq: None },
        [b"start", l, s] => Command::Start { location: Some(text(l)), seq: Some(parse_u64(s).ok_or_else(bad)?) },
        [b"stop"] => Command::Stop { location: None },
        [b"stop", l] => Command::Stop { location: Some(text(l)) },
        [name, version, n] => {
            Command::Greeting { name: text(name), version: text(version), n_settings: parse_u32(n).ok_or_else(bad)? }
        }
        [kv] => match kv.iter().position(|&b| b == b'=') {
            Some(i) => Command::Setting { key: text(&kv[..i]), value: text(&kv[i + 1..]) },
            None => return Err(bad()),
        },
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod tests;
