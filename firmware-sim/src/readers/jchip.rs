//! JChip receiver emulator: it dials the host (TCP) or sits on a serial line, CR-terminated lines.
//!
//! On every link it announces itself `N<nnnn><name>` (the number of recorded times, at most 9999
//! shown). `GT` is answered `GT<d>HHMMSShh date=YYYYMMDD`; `S<nnnn>` starts transmission from
//! record index `nnnn` on: stored records first, then live ones. Nothing is sent before `S`.
//! One data line per detection: `DJ<chip> HH:MM:SS.ffff 1<d>  <index hex>      C7 date=YYYYMMDD`.
//!
//! Choices: the record index runs on across reboots, from 1; the day digit counts days since the
//! local date the current boot (session) started, as the `GT` reply does, capped at 9; the
//! receiver kind character is `J`; chips that are not alphanumeric are logged and not sent.
//! JChip has no gun input: [`gun`] stores nothing.

use chrono::{Datelike, NaiveDateTime};
use reader_protocol::rfid::jchip::{self, Command, JchipDate, Message, Record as JRecord};

use super::emulator::{Shared, State};
use super::local_time::{floor, micros_of_day, to_local};
use super::session::{Cx, Flow};
use super::store::{Record, RecordKind};

pub(crate) fn gun() -> bool {
    false
}

fn date(local: NaiveDateTime) -> JchipDate {
    JchipDate { year: local.year() as u16, month: local.month() as u8, day: local.day() as u8 }
}

/// Days from the local date `session` started to `local`'s date, 0–9.
fn day_count(shared: &Shared, st: &State, session: u32, local: NaiveDateTime) -> u8 {
    let start = st.store.session_start(session).map_or(local, |at| to_local(shared.time_zone, at));
    (local.date() - start.date()).num_days().clamp(0, 9) as u8
}

fn data_line(shared: &Shared, st: &State, r: &Record) -> Option<Vec<u8>> {
    if r.chip.is_empty() || !r.chip.bytes().all(|b| b.is_ascii_alphanumeric()) {
        tracing::warn!(reader_id = %shared.id, chip = %r.chip, "chip is not alphanumeric; a JChip receiver cannot report it");
        return None;
    }
    let local = to_local(shared.time_zone, floor(r.at, 100));
    let rec = JRecord {
        kind: b'J',
        tag: r.chip.clone(),
        time_of_day_us: micros_of_day(local),
        flag: b'1',
        day: day_count(shared, st, r.session, local),
        index: Some(u32::try_from(r.seq).unwrap_or(u32::MAX)),
        column: Some("C7".to_owned()),
        date: Some(date(local)),
    };
    let mut out = Vec::new();
    Message::Data(rec).encode(&mut out);
    Some(out)
}

#[derive(Debug)]
pub(crate) struct Session {
    transmitting: bool,
    cursor: usize,
}

impl Session {
    pub(crate) fn new() -> Session {
        Session { transmitting: false, cursor: 0 }
    }
}

impl super::session::Session for Session {
    fn open(&mut self, cx: &mut Cx<'_>) -> Flow {
        let recorded = cx.st.store.records().iter().filter(|r| r.kind == RecordKind::Tag).count().min(9999) as u32;
        let mut out = Vec::new();
        Message::Name { recorded, name: cx.shared.id.clone() }.encode(&mut out);
        cx.send(out);
        Flow::Continue
    }

    fn input(&mut self, buf: &mut Vec<u8>, cx: &mut Cx<'_>) -> Flow {
        loop {
            match jchip::decode_command(buf) {
                Ok(Some(cmd)) => {
                    cx.command();
                    match cmd {
                        Command::GetTime => {
                            let local = to_local(cx.shared.time_zone, floor(cx.reader_now(), 10_000));
                            let session = cx.st.store.session();
                            let days = day_count(cx.shared, cx.st, session, local);
                            let mut out = Vec::new();
                            Message::Time { days, time_of_day_us: micros_of_day(local), date: Some(date(local)) }
                                .encode(&mut out);
                            cx.send(out);
                        }
                        Command::StartTransmission { from } => {
                            self.transmitting = true;
                            let records = cx.st.store.records();
                            self.cursor = cx.st.store.start() + records.partition_point(|r| r.seq < u64::from(from));
                            tracing::debug!(reader_id = %cx.shared.id, from, "transmission started");
                            self.records(cx);
                        }
                        Command::Other(line) => cx.refused_command("unknown command", line.as_bytes()),
                    }
                }
                Ok(None) => return Flow::Continue,
                Err(e) => cx.bad_command(&e),
            }
        }
    }

    fn records(&mut self, cx: &mut Cx<'_>) {
        if !self.transmitting {
            return;
        }
        let lines: Vec<Vec<u8>> = cx
            .st
            .store
            .since(self.cursor)
            .iter()
            .filter(|r| r.kind == RecordKind::Tag)
            .filter_map(|r| data_line(cx.shared, cx.st, r))
            .collect();
        self.cursor = cx.st.store.end();
        for l in lines {
            cx.send_records(l, 1);
        }
    }
}
