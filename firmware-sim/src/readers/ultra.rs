//! RFID Race Timing Systems Ultra / Joey emulator (TCP port 23).
//!
//! One read line per detection while reading, numbered by a log id that runs on across reboots
//! (the log lives on the reader's storage). Times are seconds since 1980 plus milliseconds on the
//! reader's local wall clock.
//!
//! On connect: the banner `1,Connected,<reader id>`; then a `V=` voltage heartbeat every 2 s of
//! wall time (and an extended status frame with it once `03 00 00 03 0D 0A` was received).
//! Commands: `R`/`S`/`N` start and stop reading, `r` clock, `t …` set clock, `U` settings dump,
//! `u<id><value>\xFF` write setting, `6\0\0<from>\r<to>\r` rewind by log id, `8\0\0…` rewind by
//! time (seconds since 1980, reader-local).
//!
//! Choices: the reader powers up reading (as if started on the unit) and a reboot resumes
//! reading; detections while stopped are not stored. `t` gets no reply (none is documented).
//! Written settings are kept for the dump only: the time zone stays the spec's. `u\x2D\xFF`
//! (restart interface) closes the connection. The gun is chip `0` on antenna 0 (PikaTimer's
//! start trigger).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{Datelike, NaiveDate, Timelike};
use reader_protocol::rfid::ultra::{self, ChipRead, Command, EPOCH_1980_SECS, Message, UltraClock, setting};
use timing_core::Timestamp;

use super::emulator::{Device as AnyDevice, Shared, State, dbm, store_detection, store_gun};
use super::local_time::{floor, from_local, local_micros, to_local};
use super::session::{Cx, Flow};
use super::store::Record;
use crate::Detection;

const HEARTBEAT: Duration = Duration::from_secs(2);
/// Payload bytes of an extended status frame (PikaTimer wants frames over 60 bytes).
const EXTENDED_STATUS_LEN: usize = 62;

#[derive(Debug)]
pub(crate) struct Device {
    reading: bool,
    settings: BTreeMap<u8, Vec<u8>>,
}

impl Device {
    pub(crate) fn new() -> Device {
        let settings = BTreeMap::from([
            (setting::READER_MODE, b"3".to_vec()),
            (setting::GATING_INTERVAL, b"1".to_vec()),
            (setting::GPS_AUTO_TIME, b"0".to_vec()),
        ]);
        Device { reading: true, settings }
    }
}

fn device(st: &mut State) -> &mut Device {
    match &mut st.device {
        AnyDevice::Ultra(d) => d,
        other => unreachable!("an Ultra emulator with a {other:?} device"),
    }
}

pub(crate) fn detect(st: &mut State, d: &Detection) -> bool {
    if !device(st).reading {
        return false;
    }
    store_detection(st, d);
    true
}

pub(crate) fn gun(st: &mut State, at: Timestamp) -> bool {
    if !device(st).reading {
        return false;
    }
    store_gun(st, at, "0");
    true
}

/// Seconds since 1980 and milliseconds, reader-local.
fn local_1980(shared: &Shared, at: Timestamp) -> (i64, u16) {
    let us = local_micros(shared.time_zone, floor(at, 1000));
    (us.div_euclid(1_000_000) - EPOCH_1980_SECS, (us.rem_euclid(1_000_000) / 1000) as u16)
}

fn chip_read(shared: &Shared, r: &Record, rewind: bool) -> ChipRead {
    let (secs, millis) = local_1980(shared, r.at);
    ChipRead {
        kind: 0,
        chip: r.chip.clone(),
        seconds_since_1980: secs.max(0) as u64,
        millis,
        antenna: r.antenna.min(255) as u8,
        rssi: dbm(r.rssi) as i16,
        rewind,
        reader_no: 1,
        ultra_id: 1,
        reader_time: "0000000000000000".to_owned(),
        start_time: 0,
        log_id: r.seq,
    }
}

fn encode(m: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(&mut out);
    out
}

#[derive(Debug)]
pub(crate) struct Session {
    cursor: usize,
    extended_status: bool,
    next_heartbeat: tokio::time::Instant,
}

impl Session {
    pub(crate) fn new() -> Session {
        Session { cursor: 0, extended_status: false, next_heartbeat: tokio::time::Instant::now() + HEARTBEAT }
    }

    fn send_reads<'r>(cx: &mut Cx<'_>, records: impl Iterator<Item = &'r Record>, rewind: bool) {
        let lines: Vec<Vec<u8>> = records.map(|r| encode(&Message::Read(chip_read(cx.shared, r, rewind)))).collect();
        for l in lines {
            cx.send_records(l, 1);
        }
    }

    fn handle(&mut self, cmd: Command, cx: &mut Cx<'_>) -> Flow {
        match cmd {
            Command::StartReading => {
                device(cx.st).reading = true;
                self.cursor = cx.st.store.end();
            }
            Command::StopReading => device(cx.st).reading = false,
            Command::ConfirmStop => {}
            Command::GetClock => {
                let l = to_local(cx.shared.time_zone, cx.reader_now());
                let c = UltraClock {
                    year: l.year() as u16,
                    month: l.month() as u8,
                    day: l.day() as u8,
                    hour: l.hour() as u8,
                    minute: l.minute() as u8,
                    second: l.second() as u8,
                };
                cx.send(encode(&Message::Clock(c)));
            }
            Command::SetClock(c) => {
                let local = NaiveDate::from_ymd_opt(i32::from(c.year), u32::from(c.month), u32::from(c.day))
                    .and_then(|d| d.and_hms_opt(u32::from(c.hour), u32::from(c.minute), u32::from(c.second)));
                match local.and_then(|l| from_local(cx.shared.time_zone, l)) {
                    Some(reader) => {
                        let now = cx.now;
                        cx.st.clock.set(now, reader);
                        tracing::info!(reader_id = %cx.shared.id, "clock set by t command");
                    }
                    None => cx.refused_command("clock set to a time that does not exist locally", b"t"),
                }
            }
            Command::DumpSettings => {
                let mut lines: Vec<Vec<u8>> = device(cx.st)
                    .settings
                    .iter()
                    .filter(|(id, _)| !matches!(**id, b'\r' | b'\n'))
                    .map(|(id, value)| {
                        let mut b = vec![*id];
                        b.extend_from_slice(value);
                        encode(&Message::Setting(b))
                    })
                    .collect();
                lines.push(encode(&Message::Setting(b"2".to_vec())));
                for l in lines {
                    cx.send(l);
                }
            }
            Command::WriteSetting { id, value } => match id {
                setting::RESTART_INTERFACE => {
                    tracing::info!(reader_id = %cx.shared.id, "interface restart requested: closing");
                    return Flow::Close;
                }
                setting::COMMIT => {}
                _ => {
                    device(cx.st).settings.insert(id, value);
                }
            },
            Command::RewindByLogId { from, to } => {
                let records: Vec<Record> =
                    cx.st.store.records().iter().filter(|r| r.seq >= from && r.seq <= to).cloned().collect();
                Self::send_reads(cx, records.iter(), true);
            }
            Command::RewindByTime { from, to } => {
                let shared = cx.shared.clone();
                let records: Vec<Record> = cx
                    .st
                    .store
                    .records()
                    .iter()
                    .filter(|r| {
                        let secs = local_1980(&shared, r.at).0;
                        secs >= from as i64 && secs <= to as i64
                    })
                    .cloned()
                    .collect();
                Self::send_reads(cx, records.iter(), true);
            }
            Command::EnableExtendedStatus => self.extended_status = true,
        }
        Flow::Continue
    }
}

impl super::session::Session for Session {
    fn open(&mut self, cx: &mut Cx<'_>) -> Flow {
        self.cursor = cx.st.store.end();
        cx.send(encode(&Message::Connected(format!("1,Connected,{}", cx.shared.id))));
        Flow::Continue
    }

    fn input(&mut self, buf: &mut Vec<u8>, cx: &mut Cx<'_>) -> Flow {
        loop {
            match ultra::decode_command(buf) {
                Ok(Some(cmd)) => {
                    cx.command();
                    if self.handle(cmd, cx) == Flow::Close {
                        return Flow::Close;
                    }
                }
                Ok(None) => return Flow::Continue,
                Err(e) => cx.bad_command(&e),
            }
        }
    }

    fn records(&mut self, cx: &mut Cx<'_>) {
        let records: Vec<Record> = cx.st.store.since(self.cursor).to_vec();
        self.cursor = cx.st.store.end();
        Self::send_reads(cx, records.iter(), false);
    }

    fn deadline(&self) -> Option<tokio::time::Instant> {
        Some(self.next_heartbeat)
    }

    fn timer(&mut self, cx: &mut Cx<'_>) -> Flow {
        self.next_heartbeat = tokio::time::Instant::now() + HEARTBEAT;
        cx.send(encode(&Message::Voltage("12.60".to_owned())));
        if self.extended_status {
            let mut payload = vec![0u8; EXTENDED_STATUS_LEN];
            payload[42 - 2] = 87;
            payload[45 - 2] = u8::from(device(cx.st).reading);
            cx.send(encode(&Message::ExtendedStatus(payload)));
        }
        Flow::Continue
    }
}
