//! The JChip receiver session (the receiver dials the edge, or RS-232), host side.
//!
//! Handshake: the receiver announces itself `N<nnnn><name>`; the host sends `GT` (the first
//! clock sample) and `S<index>` at once, without waiting for the name line (a serial line may
//! have lost it before the tty was opened). Nothing is sent by the receiver before `S`.
//!
//! Rewind: `S<last stored index + 1>` (`S0000` when nothing is stored: everything): the receiver
//! sends its stored records from that index on, then live ones. Indexes run on across reboots.
//! The argument is written with at least four digits, as CrossMgr does; its meaning as "first
//! index" is an inference (`hardware/readers/jchip.md`).
//!
//! Identity: the record index (`passing_no`); no session. Clock: `GT` every clock interval,
//! answered `GT<d>HHMMSShh`, reported as `TimeOfDay(d × 24 h + time)`, the base of the records.
//! Liveness: the loop's silence rule (`GT` answers are the heartbeat). JChip has no clock-set
//! command and no gun input.

use reader_protocol::rfid::jchip::{self, Command, Message};
use reader_protocol::{Decoded, ReaderTime};

use super::text::{Outbox, TextProtocol, run};
use super::{Io, LinkCtx, LinkError};

const MICROS_PER_DAY: u64 = 86_400_000_000;

pub(super) async fn session(io: Io, ctx: &LinkCtx) -> Result<(), LinkError> {
    let from = ctx.resume.get(ctx.id()).last_passing.map_or(0, |last| last.saturating_add(1));
    let from = u32::try_from(from).unwrap_or(u32::MAX);
    run(io, ctx, Jchip { reader: ctx.id().to_owned(), from }).await
}

#[derive(Debug)]
struct Jchip {
    reader: String,
    from: u32,
}

impl TextProtocol for Jchip {
    const CLOCK_RESOLUTION: timing_core::Elapsed = timing_core::Elapsed::from_millis(10);
    type Message = Message;

    fn decode(bytes: &[u8]) -> Decoded<Message> {
        jchip::decode_slice(bytes)
    }

    fn clock_query(out: &mut Vec<u8>) {
        Command::GetTime.encode(out);
    }

    fn open(&mut self, out: &mut Outbox) {
        tracing::info!(reader_id = %self.reader, from = self.from, "starting transmission");
        out.command(|o| Command::StartTransmission { from: self.from }.encode(o));
    }

    fn handle(&mut self, message: Message, out: &mut Outbox) {
        match message {
            Message::Data(r) => out.read(r.to_tag_read()),
            Message::Time { days, time_of_day_us, .. } => {
                out.clock(ReaderTime::TimeOfDay((u64::from(days) * MICROS_PER_DAY + time_of_day_us) as i64));
            }
            Message::Name { recorded, name } => {
                tracing::info!(reader_id = %self.reader, %name, recorded, "receiver announced itself");
            }
            other => tracing::debug!(reader_id = %self.reader, line = ?other, "receiver line"),
        }
    }
}
