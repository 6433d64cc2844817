//! MYLAPS "Exporter" ASCII protocol, spoken by MYLAPS software (Timing & Scoring, Exporter, Toolkit),
//! not by decoders: the MYLAPS software connects to racetime, which is the server (TCP port 3097).
//!
//! Framing: a record is `<name>@<Function>@<arg>@…@$`: fields separated by `@`, ended by `$`, at
//! most [`MAX_RECORD`] bytes. Stray NUL, CR and LF bytes are dropped wherever they appear (racemap
//! does the same). Passing and marker arguments are `key=value` pairs separated by `|`.
//! `Passing`, `Marker` and `Store` records end with a message counter that the receiver must echo in
//! `AckPassing` / `AckMarker` / `AckStore`, or the sender retransmits: see [`Message::ack`].
//!
//! Deliberately not here: the retransmission bookkeeping (duplicates after a lost ack are the
//! same reads and deduplicate downstream), and the P3 binary protocol of the decoders themselves.
//! The legacy fixed-width `Store` record is only partly understood (chip, time, date); its other
//! columns and checksum are kept verbatim. See `hardware/readers/mylaps.md`.

use std::borrow::Cow;
use std::io::Write;

use crate::field::{
    fields, fixed_digits, is_valid_date, local_micros, parse_fraction, parse_i64, parse_time_of_day, parse_u32,
    parse_u64, text, write_time_of_day,
};
use crate::framing::{Terminator, decode_lines, malformed};
use crate::{DecodeError, Decoded, ReaderTime, TagRead};
use timing_core::Rssi;

/// Name used in [`DecodeError`]s.
pub const PROTOCOL: &str = "mylaps";
/// The port racetime listens on.
pub const PORT: u16 = 3097;
/// Longest accepted record, `$` excluded (a `Store` or `Passing` record can batch many passings).
pub const MAX_RECORD: usize = 64 * 1024;
/// What racetime announces in `AckPong` (CrossMgr's choice).
pub const SERVER_VERSION: &str = "Version2.1";
/// Passing keys racetime asks for in `AckPong`: chip, time, date, hits, amplitude, strongest antenna.
pub const REQUESTED_FIELDS: [&str; 6] = ["c", "t", "d", "h", "amd", "ans"];

/// A `YYMMDD` date (20YY).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MylapsDate {
    pub year: u8,
    pub month: u8,
    pub day: u8,
}

impl MylapsDate {
    fn parse(s: &[u8]) -> Option<MylapsDate> {
        if s.len() != 6 {
            return None;
        }
        let (y, m, d) = (fixed_digits(&s[..2], 2)?, fixed_digits(&s[2..4], 2)?, fixed_digits(&s[4..], 2)?);
        is_valid_date(2000 + i64::from(y), m, d).then_some(MylapsDate { year: y as u8, month: m as u8, day: d as u8 })
    }

    fn write(self, out: &mut Vec<u8>) {
        let _ = write!(out, "{:02}{:02}{:02}", self.year, self.month, self.day);
    }

    fn reader_time(date: Option<MylapsDate>, time_of_day_us: u64) -> ReaderTime {
        match date {
            Some(d) => ReaderTime::LocalDateTime(local_micros(
                2000 + i64::from(d.year),
                u32::from(d.month),
                u32::from(d.day),
                time_of_day_us,
            )),
            None => ReaderTime::TimeOfDay(time_of_day_us as i64),
        }
    }
}

/// One passing of a `Passing` record (keys from racemap's table; unknown keys kept in `extra`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Passing {
    /// `t`: local time of day.
    pub time_of_day_us: u64,
    /// `c`: chip code (7 characters, e.g. `DX93845`).
    pub chip: String,
    /// `ct`: chip type (`UH`, `AP`, `LF`, `CX`, …).
    pub chip_type: Option<String>,
    /// `d`: date.
    pub date: Option<MylapsDate>,
    /// `l`: lap.
    pub lap: Option<u32>,
    /// `dv`: device number.
    pub device: Option<u32>,
    /// `re`: reader number.
    pub reader: Option<u32>,
    /// `an`: antennas that saw the chip, as a bitmap string (`00001111`).
    pub antennas: Option<String>,
    /// `g`: group.
    pub group: Option<u32>,
    /// `b`: bib.
    pub bib: Option<String>,
    /// `n`: bib text.
    pub bib_text: Option<String>,
    /// `h`: hit count.
    pub hits: Option<u32>,
    /// `amd`: amplitude in dBm, as sent.
    pub amplitude_dbm: Option<String>,
    /// Any other `key=value` pairs, in order (`ut`, `utc`, `ts`, `ans`, `bid`, `dm`, …).
    pub extra: Vec<(String, String)>,
}

impl Passing {
    pub fn new(chip: &str, time_of_day_us: u64) -> Passing {
        Passing {
            time_of_day_us,
            chip: chip.to_owned(),
            chip_type: None,
            date: None,
            lap: None,
            device: None,
            reader: None,
            antennas: None,
            group: None,
            bib: None,
            bib_text: None,
            hits: None,
            amplitude_dbm: None,
            extra: Vec::new(),
        }
    }

    pub fn reader_time(&self) -> ReaderTime {
        MylapsDate::reader_time(self.date, self.time_of_day_us)
    }

    pub fn to_tag_read(&self) -> TagRead {
        TagRead::from(self)
    }

    /// The value of an `extra` key.
    pub fn extra(&self, key: &str) -> Option<&str> {
        self.extra.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn parse(arg: &[u8], record: &[u8]) -> Result<Passing, DecodeError> {
        let mut p = Passing::new("", u64::MAX);
        for (key, value) in pairs(arg, record)? {
            let bad = || malformed(PROTOCOL, format!("bad passing value {}={:?}", text(key), text(value)), record);
            let num = || parse_u32(value).ok_or_else(bad);
            match key {
                b"t" => p.time_of_day_us = parse_time_of_day(value).ok_or_else(bad)?,
                b"c" => p.chip = text(value),
                b"ct" => p.chip_type = Some(text(value)),
                b"d" => p.date = Some(MylapsDate::parse(value).ok_or_else(bad)?),
                b"l" => p.lap = Some(num()?),
                b"dv" => p.device = Some(num()?),
                b"re" => p.reader = Some(num()?),
                b"an" => p.antennas = Some(text(value)),
                b"g" => p.group = Some(num()?),
                b"b" => p.bib = Some(text(value)),
                b"n" => p.bib_text = Some(text(value)),
                b"h" => p.hits = Some(num()?),
                b"amd" => p.amplitude_dbm = Some(text(value)),
                _ => p.extra.push((text(key), text(value))),
            }
        }
        if p.chip.is_empty() || p.time_of_day_us == u64::MAX {
            return Err(malformed(PROTOCOL, "passing without chip (c) or time (t)", record));
        }
        Ok(p)
    }

    /// Writes the pairs in the order MYLAPS software sends them.
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"t=");
        write_time_of_day(out, self.time_of_day_us, 3);
        let _ = write!(out, "|c={}", self.chip);
        pair(out, "ct", self.chip_type.as_ref());
        if let Some(d) = self.date {
            out.extend_from_slice(b"|d=");
            d.write(out);
        }
        pair(out, "l", self.lap.as_ref());
        pair(out, "dv", self.device.as_ref());
        pair(out, "re", self.reader.as_ref());
        pair(out, "an", self.antennas.as_ref());
        pair(out, "g", self.group.as_ref());
        pair(out, "b", self.bib.as_ref());
        pair(out, "n", self.bib_text.as_ref());
        pair(out, "h", self.hits.as_ref());
        pair(out, "amd", self.amplitude_dbm.as_ref());
        for (k, v) in &self.extra {
            pair(out, k, Some(v));
        }
    }
}

/// Choice: RSSI from `amd` (dBm, one decimal kept); antenna from `ans` (strongest antenna).
fn tag_rssi(p: &Passing) -> Option<Rssi> {
    let s = p.amplitude_dbm.as_deref()?.as_bytes();
    let (int, frac) = match s.iter().position(|&b| b == b'.') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let whole = parse_i64(int)?;
    let tenth = match frac {
        Some(f) => i64::try_from(parse_fraction(f)? / 100_000).ok()?,
        None => 0,
    };
    let tenths = if int.first() == Some(&b'-') { whole * 10 - tenth } else { whole * 10 + tenth };
    i16::try_from(tenths).ok().map(Rssi)
}

impl From<&Passing> for TagRead {
    fn from(p: &Passing) -> TagRead {
        TagRead {
            chip: p.chip.clone(),
            time: p.reader_time(),
            antenna: p.extra("ans").and_then(|a| a.parse().ok()),
            rssi: tag_rssi(p),
            passing_no: None,
            session: None,
            hits: p.hits,
        }
    }
}

/// One marker of a `Marker` record (`t=…|mt=Gunshot|n=…`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Marker {
    pub time_of_day_us: u64,
    /// `mt`: marker type, e.g. `Gunshot`.
    pub marker_type: String,
    /// `n`: marker name.
    pub name: Option<String>,
    pub extra: Vec<(String, String)>,
}

impl Marker {
    /// A gun start.
    pub fn is_gunshot(&self) -> bool {
        self.marker_type.eq_ignore_ascii_case("Gunshot")
    }

    fn parse(arg: &[u8], record: &[u8]) -> Result<Marker, DecodeError> {
        let mut m = Marker { time_of_day_us: u64::MAX, marker_type: String::new(), name: None, extra: Vec::new() };
        for (key, value) in pairs(arg, record)? {
            match key {
                b"t" => {
                    m.time_of_day_us = parse_time_of_day(value)
                        .ok_or_else(|| malformed(PROTOCOL, format!("bad marker time {:?}", text(value)), record))?;
                }
                b"mt" => m.marker_type = text(value),
                b"n" => m.name = Some(text(value)),
                _ => m.extra.push((text(key), text(value))),
            }
        }
        if m.time_of_day_us == u64::MAX || m.marker_type.is_empty() {
            return Err(malformed(PROTOCOL, "marker without time (t) or type (mt)", record));
        }
        Ok(m)
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"t=");
        write_time_of_day(out, self.time_of_day_us, 3);
        let _ = write!(out, "|mt={}", self.marker_type);
        pair(out, "n", self.name.as_ref());
        for (k, v) in &self.extra {
            pair(out, k, Some(v));
        }
    }
}

/// A legacy fixed-width stored passing of a `Store` record (39 characters):
/// chip (7), time `hh:mm:ss.mmm` (12), unverified columns (12), date `YYMMDD` (6), checksum (2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StoredPassing {
    pub chip: String,
    pub time_of_day_us: u64,
    /// Device, flags, reader and a 4-hex sequence number, by our reading; kept verbatim.
    pub columns: String,
    pub date: MylapsDate,
    /// Algorithm unknown: kept, not checked.
    pub checksum: String,
}

impl StoredPassing {
    pub const LEN: usize = 39;

    pub fn reader_time(&self) -> ReaderTime {
        MylapsDate::reader_time(Some(self.date), self.time_of_day_us)
    }

    pub fn to_tag_read(&self) -> TagRead {
        TagRead::from(self)
    }

    fn parse(s: &[u8], record: &[u8]) -> Result<StoredPassing, DecodeError> {
        let bad = |what: &str| malformed(PROTOCOL, format!("bad stored passing {what} in {:?}", text(s)), record);
        if s.len() != Self::LEN || !s.is_ascii() {
            return Err(bad("length"));
        }
        Ok(StoredPassing {
            chip: text(&s[..7]),
            time_of_day_us: parse_time_of_day(&s[7..19]).ok_or_else(|| bad("time"))?,
            columns: text(&s[19..31]),
            date: MylapsDate::parse(&s[31..37]).ok_or_else(|| bad("date"))?,
            checksum: text(&s[37..39]),
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.chip.as_bytes());
        write_time_of_day(out, self.time_of_day_us, 3);
        out.extend_from_slice(self.columns.as_bytes());
        self.date.write(out);
        out.extend_from_slice(self.checksum.as_bytes());
    }
}

impl From<&StoredPassing> for TagRead {
    fn from(p: &StoredPassing) -> TagRead {
        TagRead {
            chip: p.chip.clone(),
            time: p.reader_time(),
            antenna: None,
            rssi: None,
            passing_no: None,
            session: None,
            hits: None,
        }
    }
}

/// What MYLAPS software sends; `name` is the sender or location name that starts each record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    Pong {
        name: String,
    },
    Ping {
        name: String,
    },
    AckPing {
        name: String,
    },
    /// Answer to `GetLocations`: `ln=<location>` arguments.
    Locations {
        name: String,
        locations: Vec<String>,
    },
    /// Answer to `GetInfo`: device `key=value` pairs.
    DeviceInfo {
        name: String,
        info: Vec<(String, String)>,
    },
    Passings {
        name: String,
        passings: Vec<Passing>,
        counter: u64,
    },
    Markers {
        name: String,
        markers: Vec<Marker>,
        counter: u64,
    },
    /// Resent stored passings.
    Stored {
        name: String,
        passings: Vec<StoredPassing>,
        counter: u64,
    },
    /// Any other record.
    Other {
        name: String,
        function: String,
        args: Vec<String>,
    },
}

impl Message {
    pub fn encode(&self, out: &mut Vec<u8>) {
        let head = |out: &mut Vec<u8>, name: &str, function: &str| {
            let _ = write!(out, "{name}@{function}@");
        };
        match self {
            Message::Pong { name } => head(out, name, "Pong"),
            Message::Ping { name } => head(out, name, "Ping"),
            Message::AckPing { name } => head(out, name, "AckPing"),
            Message::Locations { name, locations } => {
                head(out, name, "GetLocations");
                for l in locations {
                    let _ = write!(out, "ln={l}@");
                }
            }
            Message::DeviceInfo { name, info } => {
                head(out, name, "AckGetInfo");
                for (i, (k, v)) in info.iter().enumerate() {
                    if i > 0 {
                        out.push(b'|');
                    }
                    let _ = write!(out, "{k}={v}");
                }
                out.push(b'@');
            }
            Message::Passings { name, passings, counter } => {
                head(out, name, "Passing");
                for p in passings {
                    p.write(out);
                    out.push(b'@');
                }
                let _ = write!(out, "{counter}@");
            }
            Message::Markers { name, markers, counter } => {
                head(out, name, "Marker");
                for m in markers {
                    m.write(out);
                    out.push(b'@');
                }
                let _ = write!(out, "{counter}@");
            }
            Message::Stored { name, passings, counter } => {
                head(out, name, "Store");
                for p in passings {
                    p.write(out);
                    out.push(b'@');
                }
                let _ = write!(out, "{counter}@");
            }
            Message::Other { name, function, args } => {
                head(out, name, function);
                for a in args {
                    let _ = write!(out, "{a}@");
                }
            }
        }
        out.push(b'$');
    }

    /// The reply racetime owes this message, if any: the counter echoed back for passings,
    /// markers and stored passings, `AckPing` for a ping, `AckPong` (asking for
    /// [`REQUESTED_FIELDS`]) for a pong.
    pub fn ack(&self, server_name: &str) -> Option<Command> {
        let name = server_name.to_owned();
        match self {
            Message::Passings { counter, .. } => Some(Command::AckPassing { name, counter: *counter }),
            Message::Markers { counter, .. } => Some(Command::AckMarker { name, counter: *counter }),
            Message::Stored { counter, .. } => Some(Command::AckStore { name, counter: *counter }),
            Message::Ping { .. } => Some(Command::AckPing { name }),
            Message::Pong { .. } => Some(Command::AckPong {
                name,
                version: SERVER_VERSION.to_owned(),
                fields: REQUESTED_FIELDS.iter().map(|f| (*f).to_owned()).collect(),
            }),
            _ => None,
        }
    }

    /// The tag reads a message carries (passings and stored passings).
    pub fn tag_reads(&self) -> Vec<TagRead> {
        match self {
            Message::Passings { passings, .. } => passings.iter().map(TagRead::from).collect(),
            Message::Stored { passings, .. } => passings.iter().map(TagRead::from).collect(),
            _ => Vec::new(),
        }
    }
}

fn pair<T: std::fmt::Display>(out: &mut Vec<u8>, key: &str, value: Option<&T>) {
    if let Some(v) = value {
        let _ = write!(out, "|{key}={v}");
    }
}

/// `k=v|k=v` pairs.
type Pair<'a> = (&'a [u8], &'a [u8]);

fn pairs<'a>(arg: &'a [u8], record: &[u8]) -> Result<Vec<Pair<'a>>, DecodeError> {
    fields(arg, b'|')
        .map(|kv| match kv.iter().position(|&b| b == b'=') {
            Some(i) => Ok((&kv[..i], &kv[i + 1..])),
            None => Err(malformed(PROTOCOL, format!("argument {:?} is not key=value", text(kv)), record)),
        })
        .collect()
}

/// A record's fields after stray NUL/CR/LF bytes are dropped, without the empty field after the
/// last `@`; `None` for a record with nothing in it.
fn record_fields(body: &[u8]) -> Option<(Cow<'_, [u8]>, usize)> {
    let clean: Cow<'_, [u8]> = if body.iter().any(|b| matches!(b, 0 | b'\r' | b'\n')) {
        Cow::Owned(body.iter().copied().filter(|b| !matches!(b, 0 | b'\r' | b'\n')).collect())
    } else {
        Cow::Borrowed(body)
    };
    if clean.is_empty() {
        return None;
    }
    let len = clean.strip_suffix(b"@").map_or(clean.len(), <[u8]>::len);
    Some((clean, len))
}

/// Decodes one message from the front of `buf`, removing its bytes (see [`decode_slice`]).
pub fn decode(buf: &mut Vec<u8>) -> Result<Option<Message>, DecodeError> {
    decode_slice(buf).apply(buf)
}

/// Decodes one message from the front of `bytes`; empty records are skipped.
pub fn decode_slice(bytes: &[u8]) -> Decoded<Message> {
    decode_lines(bytes, Terminator::Byte(b'$'), MAX_RECORD, PROTOCOL, |body| {
        let Some((clean, len)) = record_fields(body) else {
            return Ok(None);
        };
        parse_message(&clean[..len]).map(Some)
    })
}

/// Parses one record (without `$` and without the final `@`).
pub fn parse_message(record: &[u8]) -> Result<Message, DecodeError> {
    let mut f = fields(record, b'@');
    let name = text(f.next().unwrap_or_default());
    let Some(function) = f.next() else {
        return Err(malformed(PROTOCOL, "record without a function", record));
    };
    let args: Vec<&[u8]> = f.collect();
    let counted = |args: &[&[u8]]| -> Result<u64, DecodeError> {
        args.last()
            .and_then(|c| parse_u64(c))
            .ok_or_else(|| malformed(PROTOCOL, "record without a message counter", record))
    };
    Ok(match function {
        b"Pong" => Message::Pong { name },
        b"Ping" => Message::Ping { name },
        b"AckPing" => Message::AckPing { name },
        b"GetLocations" => Message::Locations {
            name,
            locations: args
                .iter()
                .map(|a| {
                    a.strip_prefix(b"ln=")
                        .map(text)
                        .ok_or_else(|| malformed(PROTOCOL, format!("bad location {:?}", text(a)), record))
                })
                .collect::<Result<_, _>>()?,
        },
        b"AckGetInfo" => {
            let info = match args.as_slice() {
                [] | [b""] => Vec::new(),
                [a] => pairs(a, record)?.into_iter().map(|(k, v)| (text(k), text(v))).collect(),
                _ => {
                    return Err(malformed(PROTOCOL, "device info in more than one argument", record));
                }
            };
            Message::DeviceInfo { name, info }
        }
        b"Passing" => {
            let counter = counted(&args)?;
            let passings =
                args[..args.len() - 1].iter().map(|a| Passing::parse(a, record)).collect::<Result<_, _>>()?;
            Message::Passings { name, passings, counter }
        }
        b"Marker" => {
            let counter = counted(&args)?;
            let markers = args[..args.len() - 1].iter().map(|a| Marker::parse(a, record)).collect::<Result<_, _>>()?;
            Message::Markers { name, markers, counter }
        }
        b"Store" => {
            let counter = counted(&args)?;
            let passings =
                args[..args.len() - 1].iter().map(|a| StoredPassing::parse(a, record)).collect::<Result<_, _>>()?;
            Message::Stored { name, passings, counter }
        }
        _ => Message::Other { name, function: text(function), args: args.iter().map(|a| text(a)).collect() },
    })
}

/// What racetime (the server) sends to MYLAPS software; `name` is racetime's server name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// `<name>@AckPong@<version>@<field>|<field>…@$`: tells the client which passing keys to send.
    AckPong {
        name: String,
        version: String,
        fields: Vec<String>,
    },
    GetLocations {
        name: String,
    },
    GetInfo {
        name: String,
        location: String,
    },
    AckPassing {
        name: String,
        counter: u64,
    },
    AckMarker {
        name: String,
        counter: u64,
    },
    AckStore {
        name: String,
        counter: u64,
    },
    Ping {
        name: String,
    },
    AckPing {
        name: String,
    },
}

impl Command {
    pub fn encode(&self, out: &mut Vec<u8>) {
        let _ = match self {
            Command::AckPong { name, version, fields } => write!(out, "{name}@AckPong@{version}@{}@", fields.join("|")),
            Command::GetLocations { name } => write!(out, "{name}@GetLocations@"),
            Command::GetInfo { name, location } => write!(out, "{name}@GetInfo@{location}@"),
            Command::AckPassing { name, counter } => write!(out, "{name}@AckPassing@{counter}@"),
            Command::AckMarker { name, counter } => write!(out, "{name}@AckMarker@{counter}@"),
            Command::AckStore { name, counter } => write!(out, "{name}@AckStore@{counter}@"),
            Command::Ping { name } => write!(out, "{name}@Ping@"),
            Command::AckPing { name } => write!(out, "{name}@AckPing@"),
        };
        out.push(b'$');
    }
}

/// Decodes one server command from the front of `buf` (for MYLAPS-software emulators).
pub fn decode_command(buf: &mut Vec<u8>) -> Result<Option<Command>, DecodeError> {
    decode_command_slice(buf).apply(buf)
}

/// Decodes one server command from the front of `bytes`; empty records are skipped.
pub fn decode_command_slice(bytes: &[u8]) -> Decoded<Command> {
    decode_lines(bytes, Terminator::Byte(b'$'), MAX_RECORD, PROTOCOL, |body| {
        let Some((clean, len)) = record_fields(body) else {
            return Ok(None);
        };
        parse_command(&clean[..len]).map(Some)
    })
}

/// Parses one server record (without `$` and without the final `@`).
pub fn parse_command(record: &[u8]) -> Result<Command, DecodeError> {
    let f: Vec<&[u8]> = fields(record, b'@').collect();
    let bad = || malformed(PROTOCOL, "bad server record", record);
    let name = text(f[0]);
    let counter = |c: &[u8]| parse_u64(c).ok_or_else(bad);
    Ok(match &f[1..] {
        [b"AckPong", version, list] => Command::AckPong {
            name,
            version: text(version),
            fields: if list.is_empty() { Vec::new() } else { fields(list, b'|').map(text).collect() },
        },
        [b"GetLocations"] => Command::GetLocations { name },
        [b"GetInfo", location] => Command::GetInfo { name, location: text(location) },
        [b"AckPassing", c] => Command::AckPassing { name, counter: counter(c)? },
        [b"AckMarker", c] => Command::AckMarker { name, counter: counter(c)? },
        [b"AckStore", c] => Command::AckStore { name, counter: counter(c)? },
        [b"Ping"] => Command::Ping { name },
        [b"AckPing"] => Command::AckPing { name },
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod tests;
