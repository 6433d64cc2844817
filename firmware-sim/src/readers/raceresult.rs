//! RACE RESULT System / Active decoder emulator: the text protocol of TCP port 3601, also over
//! RS-232 (a pty).
//!
//! One passing per crossing: a chip's detections are grouped until one second of quiet in
//! simulation time, then stored as one passing (time of the first detection, hits = number of
//! detections, max RSSI and the antenna that saw it). Passing numbers start at 1 in every file.
//!
//! Commands answered: `GETPROTOCOL`, `SETPROTOCOL`, `GETSTATUS`, `STARTOPERATION`,
//! `STOPOPERATION`, `GETTIME`, `SETTIME`, `PASSINGS`, `<from>:<count>`, `<n>`,
//! `SETPUSHPASSINGS`, `SETPUSHPREWARNS`, `GETCONFIG`, `GETFILE`, `CLEARFILES`, `PING`.
//!
//! Choices (see `hardware/readers/raceresult.md` for the protocol's own):
//! - The emulator powers up *in operation* with file 1 open, as if the operator had started
//!   timing on the box; `STARTOPERATION` starts a new file each time (as the real decoder does),
//!   `STOPOPERATION` stops storing, and a reboot starts a new file and resumes operation.
//! - The clock always has a calendar date (as with GPS or after `SETTIME`), in the reader's
//!   time zone; `SETTIME` with a day-counter date (`0000-00-DD`) is refused.
//! - Records are always the 20-field form of protocol 1.6+; `SETPROTOCOL` is echoed and kept
//!   for `GETPROTOCOL` only.
//! - `<from>:<count>` sends the passings that exist in the range, then the empty line; no
//!   `ONLY` line (its wording is unverified). `<n>` for a passing that does not exist gets the
//!   empty line alone.
//! - `SETPUSHPASSINGS;1;1` pushes the current file's stored passings first, then new ones.
//! - The gun is a marker passing with transponder code `99999`.
//! - Commands that do not decode, or are unknown, are answered `ERROR;<WORD>` (invented: no
//!   error reply is documented, and this one reads as a reply whatever the command was).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, NaiveDateTime};
use reader_protocol::DecodeError;
use reader_protocol::rfid::raceresult::{self as rr, Command, DecoderDate, DecoderTime, Message, Passing, Status};
use timing_core::{Elapsed, Rssi, Timestamp};

use super::emulator::{Device as AnyDevice, Shared, State, dbm, device_number, store_gun};
use super::local_time::{floor, from_local, micros_of_day, to_local};
use super::session::{Cx, Flow};
use super::store::{NewRecord, Record, RecordKind};
use crate::Detection;

/// Quiet time (simulation time) that ends a crossing.
const QUIET: Elapsed = Elapsed::from_secs(1);
/// How often open crossings are checked (wall time).
const TICK: Duration = Duration::from_millis(50);
/// The protocol versions `GETPROTOCOL` reports: default, lowest, highest.
const PROTOCOL_VERSIONS: [&str; 3] = ["2.0", "1.1", "3.3"];

#[derive(Clone, Copy, Debug)]
struct Crossing {
    first_reader: Timestamp,
    first_true: Timestamp,
    last_true: Timestamp,
    hits: u32,
    max_rssi: Rssi,
    max_rssi_antenna: u16,
}

#[derive(Debug)]
pub(crate) struct Device {
    in_operation: bool,
    protocol_version: String,
    /// Open crossings by chip.
    crossings: BTreeMap<String, Crossing>,
}

impl Device {
    pub(crate) fn new() -> Device {
        Device { in_operation: true, protocol_version: PROTOCOL_VERSIONS[0].to_owned(), crossings: BTreeMap::new() }
    }
}

fn device(st: &mut State) -> &mut Device {
    match &mut st.device {
        AnyDevice::RaceResult(d) => d,
        other => unreachable!("a RACE RESULT emulator with a {other:?} device"),
    }
}

pub(crate) fn detect(shared: &Shared, st: &mut State, d: &Detection, now: Timestamp) -> bool {
    let at = st.clock.reader_time(d.at);
    let State { device: AnyDevice::RaceResult(dev), store, .. } = st else {
        return false;
    };
    if !dev.in_operation {
        return false;
    }
    let mut stored = false;
    if dev.crossings.get(&d.chip).is_some_and(|c| d.at.since(c.last_true) > QUIET) {
        let c = dev.crossings.remove(&d.chip).expect("just seen");
        store.append(crossing_record(&d.chip, &c));
        stored = true;
    }
    match dev.crossings.get_mut(&d.chip) {
        Some(c) => {
            c.hits += 1;
            if d.at < c.first_true {
                c.first_true = d.at;
                c.first_reader = at;
            }
            c.last_true = c.last_true.max(d.at);
            if d.rssi > c.max_rssi {
                c.max_rssi = d.rssi;
                c.max_rssi_antenna = d.antenna;
            }
        }
        None => {
            dev.crossings.insert(
                d.chip.clone(),
                Crossing {
                    first_reader: at,
                    first_true: d.at,
                    last_true: d.at,
                    hits: 1,
                    max_rssi: d.rssi,
                    max_rssi_antenna: d.antenna,
                },
            );
            shared.crossing_open.notify_one();
        }
    }
    // Crossings already quiet at this detection's instant need not wait for the timer.
    // Detections arrive in time order, so their own instants are the right clock here: a
    // detection delivered late (a fast-forwarded race) must not end the crossing it belongs to.
    stored |= close_crossings(st, Some(d.at.min(now))).0 > 0;
    stored
}

fn crossing_record(chip: &str, c: &Crossing) -> NewRecord {
    NewRecord {
        kind: RecordKind::Tag,
        at: c.first_reader,
        chip: chip.to_owned(),
        antenna: c.max_rssi_antenna,
        rssi: c.max_rssi,
        hits: c.hits,
    }
}

/// Stores the crossings quiet at `now` (all of them with `None`), oldest first; returns how
/// many were stored and how many stay open.
fn close_crossings(st: &mut State, now: Option<Timestamp>) -> (usize, usize) {
    let State { device: AnyDevice::RaceResult(dev), store, .. } = st else {
        return (0, 0);
    };
    let mut done: Vec<(String, Crossing)> = Vec::new();
    dev.crossings.retain(|chip, c| {
        let quiet = now.is_none_or(|now| now.since(c.last_true) >= QUIET);
        if quiet {
            done.push((chip.clone(), *c));
        }
        !quiet
    });
    done.sort_by_key(|(chip, c)| (c.first_true, chip.clone()));
    for (chip, c) in &done {
        store.append(crossing_record(chip, c));
    }
    (done.len(), dev.crossings.len())
}

/// Stores every open crossing (before a reboot, a new file, a shutdown).
pub(crate) fn close_all_crossings(st: &mut State) {
    close_crossings(st, None);
}

/// Closes crossings once they have been quiet for [`QUIET`] of simulation time.
pub(crate) async fn crossing_timer(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown_tx.subscribe();
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|down| *down) => return,
            () = shared.crossing_open.notified() => {}
        }
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|down| *down) => return,
                () = tokio::time::sleep(TICK) => {}
            }
            let now = shared.now();
            let (stored, open) = close_crossings(&mut shared.lock(), Some(now));
            if stored > 0 {
                shared.notify_records();
            }
            if open == 0 {
                break;
            }
        }
    }
}

pub(crate) fn gun(st: &mut State, at: Timestamp) -> bool {
    if !device(st).in_operation {
        return false;
    }
    store_gun(st, at, rr::MARKER_PREFIX);
    true
}

fn decoder_time(local: NaiveDateTime) -> DecoderTime {
    DecoderTime {
        date: DecoderDate { year: local.year() as u16, month: local.month() as u8, day: local.day() as u8 },
        time_of_day_us: micros_of_day(local),
    }
}

/// The reader clock as the protocol prints it (milliseconds).
fn reader_clock(cx: &Cx<'_>) -> DecoderTime {
    decoder_time(to_local(cx.shared.time_zone, floor(cx.reader_now(), 1000)))
}

fn box_id(shared: &Shared) -> String {
    format!("D-{:05}", device_number(&shared.id) % 100_000)
}

fn passing(shared: &Shared, r: &Record) -> Passing {
    let t = decoder_time(to_local(shared.time_zone, floor(r.at, 1000)));
    let mut p = Passing::new(r.seq, &r.chip, Some(t.date), t.time_of_day_us);
    let tag = r.kind == RecordKind::Tag;
    p.event_id = Some(0);
    p.hits = Some(r.hits);
    p.max_rssi = tag.then(|| dbm(r.rssi));
    p.is_active = Some(false);
    p.box_name = shared.id.clone();
    p.file_no = Some(r.session);
    p.max_rssi_antenna = tag.then(|| r.antenna.min(255) as u8);
    p.box_id = box_id(shared);
    p.n_fields = 20;
    p
}

fn encode(m: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(&mut out);
    out
}

fn reply(command: &str, fields: &[&str]) -> Vec<u8> {
    encode(&Message::Reply { command: command.to_owned(), fields: fields.iter().map(|f| (*f).to_owned()).collect() })
}

/// One client link.
#[derive(Debug)]
pub(crate) struct Session {
    push: bool,
    /// Next record to push.
    cursor: usize,
}

impl Session {
    pub(crate) fn new() -> Session {
        Session { push: false, cursor: 0 }
    }

    fn handle(&mut self, cmd: Command, cx: &mut Cx<'_>) {
        let shared = cx.shared.clone();
        match cmd {
            Command::GetProtocol => {
                let v = device(cx.st).protocol_version.clone();
                cx.send(reply("GETPROTOCOL", &[&v, PROTOCOL_VERSIONS[1], PROTOCOL_VERSIONS[2]]));
            }
            Command::SetProtocol(v) => {
                device(cx.st).protocol_version = v.clone();
                cx.send(reply("SETPROTOCOL", &[&v]));
            }
            Command::GetStatus => {
                let t = reader_clock(cx);
                let ms = t.time_of_day_us / 1000;
                let mut f = vec![
                    format!("{:04}-{:02}-{:02}", t.date.year, t.date.month, t.date.day),
                    format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000),
                ];
                let in_operation = device(cx.st).in_operation;
                let file = cx.st.store.session().to_string();
                let rest = [
                    "1",        // HasPower
                    "11110000", // Antennas
                    if in_operation { "1" } else { "0" },
                    &file,
                    "0",     // GPSHasFix
                    "0,0",   // Lat,Lon
                    "1",     // ReaderIsHealthy
                    "100",   // BatteryCharge
                    "30",    // BoardTemperature
                    "35",    // ReaderTemperature
                    "865.7", // UHFFrequency
                    "0",     // ActiveExtConnected
                    "",
                    "",
                    "",
                    "",
                    "",  // Channel, LoopID, LoopPower, LoopConnected, LoopUnderPower
                    "1", // TimeIsRunning
                    "0", // TimeSource: manual
                    "0", // ScheduledStandbyEnabled
                    "0", // IsInStandby
                    "0", // ErrorFlags
                ];
                f.extend(rest.iter().map(|s| (*s).to_owned()));
                cx.send(encode(&Message::Status(Status { fields: f })));
            }
            Command::StartOperation => {
                close_all_crossings(cx.st);
                let reader_now = cx.reader_now();
                cx.st.store.new_session(reader_now);
                device(cx.st).in_operation = true;
                tracing::info!(reader_id = %shared.id, file = cx.st.store.session(), "operation started: new passing file");
                let t = reader_clock(cx);
                cx.send(encode(&Message::OperationStarted(Some(t))));
            }
            Command::StopOperation => {
                close_all_crossings(cx.st);
                device(cx.st).in_operation = false;
                cx.send(encode(&Message::OperationStopped));
            }
            Command::GetTime => {
                let t = reader_clock(cx);
                cx.send(encode(&Message::Time(t)));
            }
            Command::SetTime(t) => {
                let local = (!t.date.is_day_counter())
                    .then(|| {
                        chrono::NaiveDate::from_ymd_opt(
                            i32::from(t.date.year),
                            u32::from(t.date.month),
                            u32::from(t.date.day),
                        )
                    })
                    .flatten()
                    .and_then(|d| {
                        let s = t.time_of_day_us / 1_000_000;
                        d.and_hms_micro_opt(
                            (s / 3600) as u32,
                            (s / 60 % 60) as u32,
                            (s % 60) as u32,
                            (t.time_of_day_us % 1_000_000) as u32,
                        )
                    });
                match local.and_then(|l| from_local(shared.time_zone, l)) {
                    Some(reader) => {
                        let now = cx.now;
                        cx.st.clock.set(now, reader);
                        tracing::info!(reader_id = %shared.id, "clock set by SETTIME");
                        cx.send(encode(&Message::TimeSet(t)));
                    }
                    None => {
                        cx.refused_command("SETTIME without a calendar date and time", b"SETTIME");
                        cx.send(reply("ERROR", &["SETTIME"]));
                    }
                }
            }
            Command::Passings => {
                let file = cx.st.store.session();
                let count = cx.st.store.session_records(file).len() as u64;
                cx.send(encode(&Message::Passings { count, file_no: Some(file) }));
            }
            Command::GetPassings { from, count } => {
                let file = cx.st.store.session();
                self.send_range(cx, file, from, count);
            }
            Command::GetPassing(n) => {
                let file = cx.st.store.session();
                let found = cx.st.store.session_records(file).iter().find(|r| r.seq == n).map(|r| passing(&shared, r));
                match found {
                    Some(p) => cx.send_records(encode(&Message::Passing(p)), 1),
                    None => cx.send(encode(&Message::EndOfBatch)),
                }
            }
            Command::SetPushPassings { enabled, include_stored } => {
                self.push = enabled;
                let file = cx.st.store.session();
                self.cursor = if include_stored { cx.st.store.session_cursor(file) } else { cx.st.store.end() };
                cx.send(encode(&Message::PushPassings { enabled, include_stored: Some(include_stored) }));
                self.push_due(cx);
            }
            Command::SetPushPrewarns(on) => cx.send(reply("SETPUSHPREWARNS", &[if on { "1" } else { "0" }])),
            Command::GetConfig { section, key } => {
                let fields: Vec<String> =
                    if section.eq_ignore_ascii_case("GENERAL") && key.eq_ignore_ascii_case("BOXNAME") {
                        vec![section, key, shared.id.clone(), box_id(&shared)]
                    } else {
                        vec![section, key, String::new()]
                    };
                cx.send(encode(&Message::Reply { command: "GETCONFIG".to_owned(), fields }));
            }
            Command::GetFile(n) => self.send_range(cx, n, 1, u64::MAX),
            Command::ClearFiles => {
                cx.st.store.clear();
                self.cursor = cx.st.store.end();
                cx.send(reply("CLEARFILES", &["OK"]));
            }
            Command::Ping => cx.send(encode(&Message::Pong)),
            Command::Other(line) => {
                cx.refused_command("unknown command", line.as_bytes());
                let word = line.split(';').next().unwrap_or_default().to_owned();
                cx.send(reply("ERROR", &[&word]));
            }
        }
    }

    /// Passings `from ..` (at most `count`) of `file`, then the empty line.
    fn send_range(&mut self, cx: &mut Cx<'_>, file: u32, from: u64, count: u64) {
        let last = from.saturating_add(count);
        let lines: Vec<Vec<u8>> = cx
            .st
            .store
            .session_records(file)
            .iter()
            .filter(|r| r.seq >= from && r.seq < last)
            .map(|r| encode(&Message::Passing(passing(cx.shared, r))))
            .collect();
        for l in lines {
            cx.send_records(l, 1);
        }
        cx.send(encode(&Message::EndOfBatch));
    }

    fn push_due(&mut self, cx: &mut Cx<'_>) {
        if !self.push {
            return;
        }
        let file = cx.st.store.session();
        let lines: Vec<Vec<u8>> = cx
            .st
            .store
            .since(self.cursor)
            .iter()
            .filter(|r| r.session == file)
            .map(|r| encode(&Message::PushedPassing(passing(cx.shared, r))))
            .collect();
        self.cursor = cx.st.store.end();
        for l in lines {
            cx.send_records(l, 1);
        }
    }
}

fn error_reply(e: &DecodeError) -> Option<Vec<u8>> {
    let DecodeError::Malformed { bytes, .. } = e else {
        return None;
    };
    let word: String = bytes.iter().take_while(|b| b.is_ascii_uppercase()).map(|&b| char::from(b)).collect();
    Some(reply("ERROR", &[&word]))
}

impl super::session::Session for Session {
    fn open(&mut self, cx: &mut Cx<'_>) -> Flow {
        self.cursor = cx.st.store.end();
        Flow::Continue
    }

    fn input(&mut self, buf: &mut Vec<u8>, cx: &mut Cx<'_>) -> Flow {
        loop {
            match rr::decode_command(buf) {
                Ok(Some(cmd)) => {
                    cx.command();
                    self.handle(cmd, cx);
                }
                Ok(None) => return Flow::Continue,
                Err(e) => {
                    cx.bad_command(&e);
                    if let Some(r) = error_reply(&e) {
                        cx.send(r);
                    }
                }
            }
        }
    }

    fn records(&mut self, cx: &mut Cx<'_>) {
        self.push_due(cx);
    }
}
