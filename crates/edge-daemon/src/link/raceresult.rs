//! The RACE RESULT System / Active decoder session (TCP 3601 or RS-232), host side.
//!
//! Handshake: `GETTIME` (the first clock sample), `SETPROTOCOL;2.0` (20-field passings carrying
//! the file number), `SETPUSHPASSINGS;1;0` (push new passings), then `PASSINGS`. Push goes on
//! *before* the count is asked, so every passing is either counted (and fetched) or pushed;
//! one stored in between is both, and the outbox drops the copy.
//!
//! Rewind, from the `PASSINGS;<count>;<file>` answer and the resume point (`session` = file,
//! `last_passing`):
//! - same file: `<last+1>:<n>` up to the count, in batches of [`BATCH`], one batch in flight;
//! - the decoder's file is newer (a reboot or `STARTOPERATION` since): `GETFILE;<f>` for the
//!   stored file and every one after it up to [`MAX_OLD_FILES`] (the protocol replays whole files
//!   only, so the stored file's early passings come again and are dropped as duplicates), then
//!   the new file from 1;
//! - nothing stored yet, the decoder's file older than the stored one, or the count lower than
//!   the last stored number (files cleared): the current file from 1, with a warning.
//!
//! Identity: `(file number, passing number)`; a record without a file number gets the file the
//! request or the push was for. Marker passings (`99999…`) are reads and also [`Out::Gun`]s.
//! Clock: `GETTIME` every clock interval. Liveness: the loop's silence rule (the decoder says
//! nothing unprompted in push mode without passings, so the `GETTIME` answers are the heartbeat).
//! Setting the clock is the daemon's decision and is never done here: it would send
//! `Command::SetTime(DecoderTime)` encoded by `reader_protocol::rfid::raceresult`.
//! `STARTOPERATION` is never sent either: it starts a new file, and a host that sends it on every
//! reconnect never fetches what was stored before (research notes, Addendum).

use std::collections::VecDeque;

use reader_protocol::Decoded;
use reader_protocol::rfid::raceresult::{self as rr, Command, Message, Passing};

use super::text::{Outbox, TextProtocol, run};
use super::{Io, LinkCtx, LinkError, Resume};

/// Passings asked for per `<from>:<count>` request.
const BATCH: u64 = 250;
/// Older files fetched at most after a file change (a decoder restarted many times since).
const MAX_OLD_FILES: u32 = 32;
/// The protocol version asked for: the first with the file number in every passing is 1.6.
const PROTOCOL_VERSION: &str = "2.0";

pub(super) async fn session(io: Io, ctx: &LinkCtx) -> Result<(), LinkError> {
    run(io, ctx, RaceResult::new(ctx.id(), ctx.resume.get(ctx.id()))).await
}

/// One request for stored passings, answered by passing lines and an empty line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fetch {
    /// `GETFILE;<n>`.
    File(u32),
    /// `<from>:<count>` of the current file, `from..=to`.
    Range { file: Option<u32>, from: u64, to: u64 },
}

#[derive(Debug)]
struct RaceResult {
    reader: String,
    resume: Resume,
    /// The decoder's current file, once `PASSINGS` told it.
    file: Option<u32>,
    /// The handshake's `PASSINGS` was answered and the rewind planned.
    counted: bool,
    plan: VecDeque<Fetch>,
    in_flight: Option<Fetch>,
}

impl RaceResult {
    fn new(reader: &str, resume: Resume) -> RaceResult {
        RaceResult {
            reader: reader.to_owned(),
            resume,
            file: None,
            counted: false,
            plan: VecDeque::new(),
            in_flight: None,
        }
    }

    /// What to fetch, given the decoder's passing count and file.
    fn plan(&self, count: u64, file: Option<u32>) -> VecDeque<Fetch> {
        let mut plan = VecDeque::new();
        let whole = Fetch::Range { file, from: 1, to: count };
        match (self.resume.session, file, self.resume.last_passing) {
            (_, _, None) => plan.push_back(whole),
            (Some(stored), Some(current), Some(last)) if stored >= current => {
                if stored > current || count < last {
                    tracing::warn!(
                        reader_id = %self.reader, stored_file = stored, file = current, count, last,
                        "the decoder's passings do not continue the stored ones (files cleared or another decoder?); fetching its file from 1"
                    );
                    plan.push_back(whole);
                } else {
                    plan.push_back(Fetch::Range { file, from: last + 1, to: count });
                }
            }
            (Some(stored), Some(current), Some(_)) => {
                let first = stored.max(current.saturating_sub(MAX_OLD_FILES));
                if first > stored {
                    tracing::warn!(
                        reader_id = %self.reader, stored_file = stored, file = current,
                        "more than {MAX_OLD_FILES} files since the last stored passing; fetching files {first} on"
                    );
                }
                plan.extend((first..current).map(Fetch::File));
                plan.push_back(whole);
            }
            // No file numbers (older firmware): passing numbers alone.
            (_, _, Some(last)) => {
                if count < last {
                    tracing::warn!(reader_id = %self.reader, count, last, "the passing count went down; fetching from 1");
                    plan.push_back(whole);
                } else {
                    plan.push_back(Fetch::Range { file, from: last + 1, to: count });
                }
            }
        }
        plan
    }

    /// Sends the next request when none is in flight.
    fn next_fetch(&mut self, out: &mut Outbox) {
        while self.in_flight.is_none() {
            let Some(fetch) = self.plan.pop_front() else { return };
            match fetch {
                Fetch::File(n) => out.command(|o| Command::GetFile(n).encode(o)),
                Fetch::Range { from, to, .. } if from > to => continue,
                Fetch::Range { file, from, to } => {
                    let count = (to - from + 1).min(BATCH);
                    out.command(|o| Command::GetPassings { from, count }.encode(o));
                    if from + count <= to {
                        self.plan.push_front(Fetch::Range { file, from: from + count, to });
                    }
                }
            }
            self.in_flight = Some(fetch);
        }
    }

    fn passing(&self, p: &Passing, file: Option<u32>, out: &mut Outbox) {
        let mut read = p.to_tag_read();
        read.session = read.session.or(file);
        if p.is_marker() {
            out.gun(read.time);
        }
        out.read(read);
    }
}

impl TextProtocol for RaceResult {
    const CLOCK_RESOLUTION: timing_core::Elapsed = timing_core::Elapsed::from_millis(1);
    type Message = Message;

    fn decode(bytes: &[u8]) -> Decoded<Message> {
        rr::decode_slice(bytes)
    }

    fn clock_query(out: &mut Vec<u8>) {
        Command::GetTime.encode(out);
    }

    fn open(&mut self, out: &mut Outbox) {
        out.command(|o| Command::SetProtocol(PROTOCOL_VERSION.to_owned()).encode(o));
        out.command(|o| Command::SetPushPassings { enabled: true, include_stored: false }.encode(o));
        out.command(|o| Command::Passings.encode(o));
    }

    fn handle(&mut self, message: Message, out: &mut Outbox) {
        match message {
            Message::Passings { count, file_no } => {
                if self.counted {
                    return; // only the handshake asks
                }
                self.counted = true;
                self.file = file_no;
                self.plan = self.plan(count, file_no);
                tracing::info!(reader_id = %self.reader, count, file = ?file_no, resume = ?self.resume, plan = ?self.plan, "rewinding");
                self.next_fetch(out);
            }
            Message::Passing(p) => {
                let file = match self.in_flight {
                    Some(Fetch::File(n)) => Some(n),
                    Some(Fetch::Range { file, .. }) => file,
                    None => self.file,
                };
                self.passing(&p, file, out);
            }
            Message::PushedPassing(p) => self.passing(&p, self.file, out),
            Message::EndOfBatch => {
                self.in_flight = None;
                self.next_fetch(out);
            }
            Message::Time(t) => out.clock(t.reader_time()),
            Message::Reply { command, fields } if command == "ERROR" => {
                tracing::warn!(reader_id = %self.reader, ?fields, in_flight = ?self.in_flight, "the decoder refused a command");
                // A refused fetch gets no end-of-batch line: move on.
                if self.in_flight.take().is_some() {
                    self.next_fetch(out);
                }
            }
            Message::Only(rest) => tracing::debug!(reader_id = %self.reader, %rest, "fewer passings than asked"),
            other => tracing::debug!(reader_id = %self.reader, reply = ?other, "reply"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(session: Option<u32>, last: Option<u64>, count: u64, file: Option<u32>) -> Vec<Fetch> {
        RaceResult::new("rr", Resume { session, last_passing: last }).plan(count, file).into()
    }

    #[test]
    fn rewind_plans_follow_the_resume_point() {
        let range = |file, from, to| Fetch::Range { file, from, to };
        assert_eq!(plan(None, None, 7, Some(3)), [range(Some(3), 1, 7)]);
        assert_eq!(plan(Some(3), Some(5), 9, Some(3)), [range(Some(3), 6, 9)]);
        assert_eq!(plan(Some(1), Some(5), 2, Some(3)), [Fetch::File(1), Fetch::File(2), range(Some(3), 1, 2)]);
        assert_eq!(plan(Some(3), Some(5), 2, Some(3)), [range(Some(3), 1, 2)], "count went down");
        assert_eq!(plan(Some(4), Some(5), 2, Some(3)), [range(Some(3), 1, 2)], "older file");
        assert_eq!(plan(None, Some(5), 8, None), [range(None, 6, 8)]);
        assert_eq!(plan(Some(1), Some(1), 0, Some(100)).len(), MAX_OLD_FILES as usize + 1);
    }

    #[test]
    fn ranges_go_out_in_batches_one_at_a_time() {
        let mut s = RaceResult::new("rr", Resume { session: Some(1), last_passing: Some(10) });
        let mut out = Outbox::default();
        s.handle(Message::Passings { count: 10 + BATCH + 5, file_no: Some(1) }, &mut out);
        s.handle(Message::EndOfBatch, &mut out);
        s.handle(Message::EndOfBatch, &mut out);
        s.handle(Message::EndOfBatch, &mut out);
        let mut expected = Vec::new();
        Command::GetPassings { from: 11, count: BATCH }.encode(&mut expected);
        Command::GetPassings { from: 11 + BATCH, count: 5 }.encode(&mut expected);
        assert_eq!(String::from_utf8_lossy(out.commands()), String::from_utf8_lossy(&expected));
    }
}
