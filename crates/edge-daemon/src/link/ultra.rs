//! The RFID Race Timing Systems Ultra / Joey session (TCP 23), host side.
//!
//! Handshake: the reader greets with `1,Connected,…`; the host sends `r` (the first clock
//! sample) and rewinds at once, without waiting for the banner. Reading is not started (`R`):
//! the unit is started on its own keypad, and a Joey pauses for about 10 s after `R`.
//!
//! Rewind: `6\0\0<from>\r<to>\r` by log id, from the log id after the last stored one (1 when
//! nothing is stored yet: the reader's whole log, since a read before the edge came up still
//! counts) to [`REWIND_TO`], i.e. "everything after". Log ids run on across reboots, so a reboot
//! needs nothing more. A read stored while the rewind is being answered may come both live and
//! replayed; the outbox drops the copy.
//!
//! Identity: the log id (`passing_no`); no session (`None`). Start triggers (chip `0`) are reads
//! and also guns. Clock: `r` every clock interval; the answer has whole seconds only, so a sample
//! is up to a second coarse. Liveness: the loop's silence rule; the reader also sends a `V=`
//! heartbeat every 2 s. Setting the clock is the daemon's decision, never done here: it would send
//! `Command::SetClock(UltraClock)` at the top of a second.

use reader_protocol::rfid::ultra::{self, Command, Message};
use reader_protocol::{Decoded, ReaderTime};

use super::text::{Outbox, TextProtocol, run};
use super::{Io, LinkCtx, LinkError};

/// The upper bound of the reconnect rewind: any log id the reader can have.
const REWIND_TO: u64 = u32::MAX as u64;

pub(super) async fn session(io: Io, ctx: &LinkCtx) -> Result<(), LinkError> {
    let from = ctx.resume.get(ctx.id()).last_passing.map_or(1, |last| last + 1);
    run(io, ctx, Ultra { reader: ctx.id().to_owned(), from }).await
}

#[derive(Debug)]
struct Ultra {
    reader: String,
    /// First log id to rewind from.
    from: u64,
}

impl TextProtocol for Ultra {
    const CLOCK_RESOLUTION: timing_core::Elapsed = timing_core::Elapsed::from_secs(1);
    type Message = Message;

    fn decode(bytes: &[u8]) -> Decoded<Message> {
        ultra::decode_slice(bytes)
    }

    fn clock_query(out: &mut Vec<u8>) {
        Command::GetClock.encode(out);
    }

    fn open(&mut self, out: &mut Outbox) {
        tracing::info!(reader_id = %self.reader, from = self.from, "rewinding by log id");
        out.command(|o| Command::RewindByLogId { from: self.from, to: REWIND_TO.max(self.from) }.encode(o));
    }

    fn handle(&mut self, message: Message, out: &mut Outbox) {
        match message {
            Message::Read(r) => {
                let read = r.to_tag_read();
                if r.is_trigger() {
                    out.gun(read.time);
                }
                out.read(read);
            }
            Message::Clock(c) => out.clock(ReaderTime::LocalDateTime(c.local_micros())),
            Message::Connected(banner) => tracing::info!(reader_id = %self.reader, %banner, "reader banner"),
            Message::Voltage(_) | Message::ExtendedStatus(_) => {}
            other => tracing::debug!(reader_id = %self.reader, line = ?other, "reader line"),
        }
    }
}
