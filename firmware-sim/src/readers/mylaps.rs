//! MYLAPS Exporter emulator: the MYLAPS software side, which dials racetime (TCP 3097) and
//! sends `$`-terminated `@` records.
//!
//! On connect it sends `<location>@Pong@$` and waits for `AckPong`, whose field list says which
//! passing keys to send (`c` and `t` always; `d`, `h`, `amd`, `ans` when asked). Then every
//! record not yet acknowledged goes out, oldest first, and new ones as they are stored: one
//! `Passing` per detection, one `Marker` (`mt=Gunshot`) per gun, each with its own message
//! counter, the record's sequence number. `AckPassing` / `AckMarker` / `AckStore` mark the record
//! acknowledged (persisted with the store); anything unacknowledged is resent after the next
//! connect, never twice on one connection. `GetLocations`, `GetInfo` and `Ping` are answered; a
//! `Ping` goes out every 10 s of wall time.
//!
//! Choices: the location name and sender name is the reader id; counters run on across
//! restarts (they are the store's sequence numbers); no legacy `Store` records are sent.

use std::time::Duration;

use chrono::Datelike;
use reader_protocol::rfid::mylaps::{self, Command, Marker, Message, MylapsDate, Passing};
use timing_core::Timestamp;

use super::emulator::{Shared, State, device_number, store_gun};
use super::local_time::{floor, micros_of_day, to_local};
use super::session::{Cx, Flow};
use super::store::{Record, RecordKind};

const PING_EVERY: Duration = Duration::from_secs(10);

pub(crate) fn gun(st: &mut State, at: Timestamp) -> bool {
    store_gun(st, at, "Gunshot");
    true
}

fn encode(m: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(&mut out);
    out
}

fn record_message(shared: &Shared, fields: &[String], r: &Record) -> Vec<u8> {
    let local = to_local(shared.time_zone, floor(r.at, 1000));
    let tod = micros_of_day(local);
    let name = shared.id.clone();
    let wants = |k: &str| fields.iter().any(|f| f == k);
    match r.kind {
        RecordKind::Tag => {
            let mut p = Passing::new(&r.chip, tod);
            if wants("d") {
                p.date = Some(MylapsDate {
                    year: local.year().rem_euclid(100) as u8,
                    month: local.month() as u8,
                    day: local.day() as u8,
                });
            }
            if wants("h") {
                p.hits = Some(r.hits);
            }
            if wants("amd") {
                p.amplitude_dbm = Some(format!("{:.1}", f64::from(r.rssi.0) / 10.0));
            }
            if wants("ans") {
                p.extra.push(("ans".to_owned(), r.antenna.to_string()));
            }
            encode(&Message::Passings { name, passings: vec![p], counter: r.seq })
        }
        RecordKind::Gun => {
            let m = Marker {
                time_of_day_us: tod,
                marker_type: "Gunshot".to_owned(),
                name: Some(format!("Gunshot {}", r.seq)),
                extra: Vec::new(),
            };
            encode(&Message::Markers { name, markers: vec![m], counter: r.seq })
        }
    }
}

#[derive(Debug)]
pub(crate) struct Session {
    /// The passing keys asked for; `None` until `AckPong`.
    fields: Option<Vec<String>>,
    cursor: usize,
    next_ping: tokio::time::Instant,
}

impl Session {
    pub(crate) fn new() -> Session {
        Session { fields: None, cursor: 0, next_ping: tokio::time::Instant::now() + PING_EVERY }
    }

    fn send(&self, cx: &mut Cx<'_>, records: &[Record]) {
        let Some(fields) = &self.fields else {
            return;
        };
        let frames: Vec<Vec<u8>> = records.iter().map(|r| record_message(cx.shared, fields, r)).collect();
        for f in frames {
            cx.send_records(f, 1);
        }
    }

    fn handle(&mut self, cmd: Command, cx: &mut Cx<'_>) {
        let name = cx.shared.id.clone();
        match cmd {
            Command::AckPong { version, fields, .. } => {
                tracing::debug!(reader_id = %name, %version, ?fields, "server asked for passing keys");
                self.fields = Some(fields);
                let unacked: Vec<Record> = cx.st.store.records().iter().filter(|r| !r.acked).cloned().collect();
                self.cursor = cx.st.store.end();
                if !unacked.is_empty() {
                    tracing::info!(reader_id = %name, n = unacked.len(), "sending records not yet acknowledged");
                }
                self.send(cx, &unacked);
            }
            Command::GetLocations { .. } => {
                cx.send(encode(&Message::Locations { name: name.clone(), locations: vec![name] }));
            }
            Command::GetInfo { location, .. } => {
                let n = device_number(&name);
                let info = vec![
                    ("id".to_owned(), format!("{:011}", n)),
                    ("n".to_owned(), format!("BibTagDecoder{:04X}", n & 0xffff)),
                    ("mac".to_owned(), format!("0004B7{:06X}", n & 0xff_ffff)),
                    ("ant".to_owned(), "4".to_owned()),
                ];
                cx.send(encode(&Message::DeviceInfo { name: location, info }));
            }
            Command::AckPassing { counter, .. }
            | Command::AckMarker { counter, .. }
            | Command::AckStore { counter, .. } => {
                if !cx.st.store.ack(counter) {
                    tracing::debug!(reader_id = %name, counter, "ack for no unacknowledged record");
                }
            }
            Command::Ping { .. } => cx.send(encode(&Message::AckPing { name })),
            Command::AckPing { .. } => {}
        }
    }
}

impl super::session::Session for Session {
    fn open(&mut self, cx: &mut Cx<'_>) -> Flow {
        self.cursor = cx.st.store.end();
        cx.send(encode(&Message::Pong { name: cx.shared.id.clone() }));
        Flow::Continue
    }

    fn input(&mut self, buf: &mut Vec<u8>, cx: &mut Cx<'_>) -> Flow {
        loop {
            match mylaps::decode_command(buf) {
                Ok(Some(cmd)) => {
                    cx.command();
                    self.handle(cmd, cx);
                }
                Ok(None) => return Flow::Continue,
                Err(e) => cx.bad_command(&e),
            }
        }
    }

    fn records(&mut self, cx: &mut Cx<'_>) {
        if self.fields.is_none() {
            return;
        }
        let new: Vec<Record> = cx.st.store.since(self.cursor).to_vec();
        self.cursor = cx.st.store.end();
        self.send(cx, &new);
    }

    fn deadline(&self) -> Option<tokio::time::Instant> {
        Some(self.next_ping)
    }

    fn timer(&mut self, cx: &mut Cx<'_>) -> Flow {
        self.next_ping = tokio::time::Instant::now() + PING_EVERY;
        cx.send(encode(&Message::Ping { name: cx.shared.id.clone() }));
        Flow::Continue
    }
}
