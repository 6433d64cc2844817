//! IPICO Lite / Elite reader emulator: the ASCII stream of TCP port 10000 and of the serial line.
//!
//! Raw read mode: one `aa` tag record per detection, streamed live to every link (I and Q
//! counters 1, hundredths of a second, reader id 0). Every record also goes to the reader's
//! stored-read memory, which `0x4b 01 01` downloads as ordinary `aa` lines with their original
//! times and `0x4b d0` clears.
//!
//! Commands: get clock `0x02`, set clock `0x01` (takes effect 500 ms after receipt, as captured
//! on real readers: the reader shows the sent time half a second later), banner `0x37`, read-mode
//! query `0x09`, stored-read query / download / clear `0x4b`. Other instructions get the
//! "unknown instruction" error frame `f2`; a frame with a wrong LRC gets `f1`.
//!
//! Choices: chip codes are sent as 12 lower-case hex digits (left-padded with zeros, the last 12
//! kept when longer); a chip that is not hex is logged and not sent. The stored-read query
//! answers the record count as two bytes (big-endian), an invented layout. The gun is a trigger
//! event frame `0x2c` (the start button), not a stored read.

use chrono::{Datelike, NaiveDate, Timelike};
use reader_protocol::DecodeError;
use reader_protocol::rfid::ipico::{
    self, Command, ControlFrame, DEFAULT_READER_ID, IpicoClock, Message, TagRecord, instruction,
};
use timing_core::{Elapsed, Timestamp};

use super::emulator::{Shared, State, store_gun};
use super::local_time::{floor, from_local, to_local};
use super::session::{Cx, Flow};
use super::store::{Record, RecordKind};

/// The delay between receiving a clock-set command and the clock showing the sent time.
const SET_CLOCK_LATENCY: Elapsed = Elapsed::from_millis(500);
const BANNER: &str = "racetime firmware-sim IPICO Lite emulator (9600 8N1) v1.0";
/// The read-mode byte (0 = raw, every decode) and timeout in seconds.
const READ_MODE: [u8; 2] = [0x00, 0x05];
/// The config byte of the get-clock reply, as captured.
const CLOCK_CONFIG: u8 = 0x27;

pub(crate) fn gun(st: &mut State, at: Timestamp) -> bool {
    store_gun(st, at, "trigger");
    true
}

fn clock(shared: &Shared, at: Timestamp) -> IpicoClock {
    let l = to_local(shared.time_zone, floor(at, 10_000));
    IpicoClock {
        year: (l.year().rem_euclid(100)) as u8,
        month: l.month() as u8,
        day: l.day() as u8,
        weekday: l.weekday().num_days_from_sunday() as u8,
        hour: l.hour() as u8,
        minute: l.minute() as u8,
        second: l.second() as u8,
        centis: (l.nanosecond() / 10_000_000).min(99) as u8,
    }
}

/// The chip as a 12-digit lower-case hex tag id, if it is hex.
fn tag_id(chip: &str) -> Option<String> {
    if chip.is_empty() || !chip.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let lower = chip.to_ascii_lowercase();
    Some(if lower.len() >= 12 { lower[lower.len() - 12..].to_owned() } else { format!("{lower:0>12}") })
}

fn encode(m: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(&mut out);
    out
}

/// The frame a record goes out as: a tag line, or a trigger event for the gun.
fn record_frame(shared: &Shared, r: &Record) -> Option<Vec<u8>> {
    let time = clock(shared, r.at);
    match r.kind {
        RecordKind::Tag => match tag_id(&r.chip) {
            Some(tag_id) => Some(encode(&Message::Tag(TagRecord {
                reader_id: DEFAULT_READER_ID,
                tag_id,
                i_count: 1,
                q_count: 1,
                time: IpicoClock { weekday: 0, ..time },
                tto: None,
            }))),
            None => {
                tracing::warn!(reader_id = %shared.id, chip = %r.chip, "chip is not hex; an IPICO reader cannot report it");
                None
            }
        },
        RecordKind::Gun => Some(encode(&Message::Trigger { reader_id: DEFAULT_READER_ID, clock: time, extra: [0, 0] })),
    }
}

fn control(instruction: u8, data: Vec<u8>) -> Vec<u8> {
    encode(&Message::Control(ControlFrame { reader_id: DEFAULT_READER_ID, instruction, query: false, data }))
}

fn ack(instruction: u8) -> Vec<u8> {
    encode(&Message::Ack { reader_id: DEFAULT_READER_ID, instruction })
}

#[derive(Debug)]
pub(crate) struct Session {
    cursor: usize,
}

impl Session {
    pub(crate) fn new() -> Session {
        Session { cursor: 0 }
    }

    fn handle(&mut self, cmd: Command, cx: &mut Cx<'_>) {
        match cmd {
            Command::GetClock => {
                let clock = clock(cx.shared, cx.reader_now());
                cx.send(encode(&Message::Clock { reader_id: DEFAULT_READER_ID, clock, config: CLOCK_CONFIG }));
            }
            Command::SetClock(c) => {
                let local = NaiveDate::from_ymd_opt(2000 + i32::from(c.year), u32::from(c.month), u32::from(c.day))
                    .and_then(|d| d.and_hms_opt(u32::from(c.hour), u32::from(c.minute), u32::from(c.second)));
                match local.and_then(|l| from_local(cx.shared.time_zone, l)) {
                    Some(reader) => {
                        let effective = cx.now + SET_CLOCK_LATENCY;
                        cx.st.clock.set(effective, reader);
                        tracing::info!(reader_id = %cx.shared.id, "clock set by instruction 0x01");
                        cx.send(ack(instruction::SET_DATE_TIME));
                    }
                    None => {
                        cx.refused_command("clock set to a time that does not exist locally", b"ab..01");
                        cx.send(ack(instruction::ERROR_BAD_LENGTH));
                    }
                }
            }
            Command::GetBanner => {
                cx.send(encode(&Message::Text(BANNER.to_owned())));
                cx.send(ack(instruction::BANNER));
            }
            Command::QueryReadMode => cx.send(control(instruction::READ_MODE, READ_MODE.to_vec())),
            Command::QueryStoredReads => {
                let n = cx.st.store.records().iter().filter(|r| r.kind == RecordKind::Tag).count().min(0xffff) as u16;
                cx.send(control(instruction::STORED_READS, n.to_be_bytes().to_vec()));
            }
            Command::DownloadStoredReads => {
                cx.send(ack(instruction::STORED_READS));
                let frames: Vec<Vec<u8>> = cx
                    .st
                    .store
                    .records()
                    .iter()
                    .filter(|r| r.kind == RecordKind::Tag)
                    .filter_map(|r| record_frame(cx.shared, r))
                    .collect();
                for f in frames {
                    cx.send_records(f, 1);
                }
            }
            Command::ClearStoredReads => {
                cx.st.store.clear();
                self.cursor = cx.st.store.end();
                cx.send(ack(instruction::STORED_READS));
            }
            Command::Control(c) => {
                cx.refused_command(&format!("unknown instruction {:#04x}", c.instruction), &[c.instruction]);
                cx.send(ack(instruction::ERROR_UNKNOWN_INSTRUCTION));
            }
        }
    }
}

impl super::session::Session for Session {
    fn open(&mut self, cx: &mut Cx<'_>) -> Flow {
        self.cursor = cx.st.store.end();
        Flow::Continue
    }

    fn input(&mut self, buf: &mut Vec<u8>, cx: &mut Cx<'_>) -> Flow {
        loop {
            match ipico::decode_command(buf) {
                Ok(Some(cmd)) => {
                    cx.command();
                    self.handle(cmd, cx);
                }
                Ok(None) => return Flow::Continue,
                Err(e) => {
                    cx.bad_command(&e);
                    let code = match e {
                        DecodeError::Checksum { .. } => instruction::ERROR_BAD_LRC,
                        _ => instruction::ERROR_BAD_LENGTH,
                    };
                    cx.send(ack(code));
                }
            }
        }
    }

    fn records(&mut self, cx: &mut Cx<'_>) {
        let frames: Vec<Vec<u8>> =
            cx.st.store.since(self.cursor).iter().filter_map(|r| record_frame(cx.shared, r)).collect();
        self.cursor = cx.st.store.end();
        for f in frames {
            cx.send_records(f, 1);
        }
    }
}
