//! ChronoTrack CTP01 emulator: the SimpleClient side, which dials racetime and streams `~`
//! separated, CR LF terminated lines.
//!
//! On connect it greets `SimpleClient~2.0~CTP01` (racemap's order: client first), then answers
//! the server: its greeting and settings are taken in (`time-format`, `guntimes`),
//! `getconnectionid`, `geteventinfo`, `getlocations` and `ping` are acked, `start[~<location>[~<seq>]]`
//! starts the stream and `stop` ends it. One tag line per detection,
//! `CT01_13~<seq>~<location>~<chip>~<time>~1~<reader id>~<antenna>`, and a gun line
//! `CT01_13~<seq>~<location>~guntime~<time>~0~<reader id>~0` per gun, numbered by one sequence that
//! runs on across restarts.
//!
//! Choices: the location is the reader id; `start` without a sequence number streams every
//! stored line from the first, `start~<loc>~<seq>` the lines after `seq` (resume); a `start` for
//! another location is answered `err~start~…`. Times follow `time-format` (`normal` until the
//! server says otherwise; `iso` and `normal` are local wall time, `unix` is UTC), in hundredths.
//! The reader id is six hex digits derived from the reader id. `CT01_13` is used rather than
//! `CT01_33` because its field 7 carries the antenna.

use reader_protocol::rfid::chronotrack::{self, Command, CtRecord, CtTime, Message};
use timing_core::Timestamp;

use super::emulator::{Shared, State, device_number, store_gun};
use super::local_time::{floor, local_micros, micros_of_day, to_local};
use super::session::{Cx, Flow};
use super::store::{Record, RecordKind};

const CLIENT_NAME: &str = "SimpleClient";
const CLIENT_VERSION: &str = "2.0";
const PROTOCOL: &str = "CTP01";

pub(crate) fn gun(st: &mut State, at: Timestamp) -> bool {
    store_gun(st, at, "guntime");
    true
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TimeFormat {
    Normal,
    Iso,
    Unix,
    Msecs,
}

fn ct_time(shared: &Shared, format: TimeFormat, at: Timestamp) -> CtTime {
    let at = floor(at, 10_000);
    match format {
        TimeFormat::Normal => CtTime::TimeOfDay(micros_of_day(to_local(shared.time_zone, at))),
        TimeFormat::Iso => CtTime::Iso(local_micros(shared.time_zone, at)),
        TimeFormat::Unix => CtTime::Unix(at.as_micros()),
        TimeFormat::Msecs => CtTime::Msecs(micros_of_day(to_local(shared.time_zone, at)) / 1000),
    }
}

fn encode(m: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(&mut out);
    out
}

#[derive(Debug)]
pub(crate) struct Session {
    streaming: bool,
    time_format: TimeFormat,
    guntimes: bool,
    cursor: usize,
}

impl Session {
    pub(crate) fn new() -> Session {
        Session { streaming: false, time_format: TimeFormat::Normal, guntimes: true, cursor: 0 }
    }

    fn line(&self, shared: &Shared, r: &Record) -> Option<Vec<u8>> {
        let reader_id = format!("{:06X}", device_number(&shared.id) & 0xff_ffff);
        let mut rec = CtRecord {
            format: "CT01_13".to_owned(),
            seq: r.seq,
            location: shared.id.clone(),
            tag: r.chip.clone(),
            time: ct_time(shared, self.time_format, r.at),
            field5: "1".to_owned(),
            reader_id,
            field7: r.antenna.to_string(),
        };
        Some(match r.kind {
            RecordKind::Tag => encode(&Message::Read(rec)),
            RecordKind::Gun if self.guntimes => {
                rec.tag = "guntime".to_owned();
                rec.field5 = "0".to_owned();
                rec.field7 = "0".to_owned();
                encode(&Message::GunTime(rec))
            }
            RecordKind::Gun => return None,
        })
    }

    fn handle(&mut self, cmd: Command, cx: &mut Cx<'_>) {
        let id = cx.shared.id.clone();
        match cmd {
            Command::Greeting { name, version, n_settings } => {
                tracing::debug!(reader_id = %id, server = %name, %version, n_settings, "server greeted");
            }
            Command::Setting { key, value } => match key.as_str() {
                "time-format" => match value.as_str() {
                    "normal" => self.time_format = TimeFormat::Normal,
                    "iso" => self.time_format = TimeFormat::Iso,
                    "unix" => self.time_format = TimeFormat::Unix,
                    "msecs" => self.time_format = TimeFormat::Msecs,
                    other => cx.refused_command(&format!("unknown time format {other:?}"), value.as_bytes()),
                },
                "guntimes" => self.guntimes = value == "true",
                _ => tracing::debug!(reader_id = %id, %key, %value, "server setting ignored"),
            },
            Command::GetConnectionId => {
                let conn = format!("{:08x}", device_number(&id) ^ cx.st.store.session());
                cx.send(encode(&Message::ConnectionId(conn)));
            }
            Command::GetEventInfo => cx.send(encode(&Message::EventInfo {
                name: "racetime".to_owned(),
                id: "1".to_owned(),
                description: "firmware-sim".to_owned(),
            })),
            Command::GetLocations => cx.send(encode(&Message::Locations(vec![id]))),
            Command::Start { location, seq } => {
                if location.as_ref().is_some_and(|l| *l != id) {
                    let l = location.unwrap_or_default();
                    cx.refused_command(&format!("start for unknown location {l:?}"), l.as_bytes());
                    cx.send(encode(&Message::Error {
                        command: "start".to_owned(),
                        message: format!("unknown location {l}"),
                    }));
                    return;
                }
                self.streaming = true;
                let records = cx.st.store.records();
                let skip = seq.map_or(0, |s| records.partition_point(|r| r.seq <= s));
                self.cursor = cx.st.store.start() + skip;
                tracing::debug!(reader_id = %id, ?seq, "streaming started");
                self.stream(cx);
            }
            Command::Stop { .. } => {
                self.streaming = false;
                cx.send(encode(&Message::Ack { command: "stop".to_owned(), args: Vec::new() }));
            }
            Command::Ping => cx.send(encode(&Message::Pong)),
        }
    }

    fn stream(&mut self, cx: &mut Cx<'_>) {
        if !self.streaming {
            return;
        }
        let lines: Vec<Vec<u8>> =
            cx.st.store.since(self.cursor).iter().filter_map(|r| self.line(cx.shared, r)).collect();
        self.cursor = cx.st.store.end();
        for l in lines {
            cx.send_records(l, 1);
        }
    }
}

impl super::session::Session for Session {
    fn open(&mut self, cx: &mut Cx<'_>) -> Flow {
        cx.send(encode(&Message::Greeting {
            name: CLIENT_NAME.to_owned(),
            version: CLIENT_VERSION.to_owned(),
            protocol: PROTOCOL.to_owned(),
        }));
        Flow::Continue
    }

    fn input(&mut self, buf: &mut Vec<u8>, cx: &mut Cx<'_>) -> Flow {
        loop {
            match chronotrack::decode_command(buf) {
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
        self.stream(cx);
    }
}
