//! The IPICO Lite / Elite session (TCP 10000 or RS-232 9600 8N1), host side.
//!
//! Handshake: get clock `0x02` (the first clock sample), then the stored-read download
//! (`0x4b 01 01`): the reader acknowledges and streams its stored reads as ordinary `aa` records
//! with their original times, while live records keep coming. A record made between the
//! connection and the download comes twice.
//!
//! Identity: none on the wire. An `aa` record has no sequence number, and the reader's memory
//! position is not exposed in a documented form (the count reply of the `0x4b` query is not
//! documented; our emulator's is invented), so records carry `passing_no: None`, `session: None`
//! and the download is the rewind: every stored read comes again on every connection. The
//! outbox drops those copies: an unnumbered read equal in every field the reader sent (chip,
//! its own time to the hundredth, antenna, line) to a stored one of the same reader. Reads
//! survive a reboot in the reader's memory, so a reboot needs nothing more.
//!
//! Trigger (start button) frames `0x2c` are guns. Error frames (`f0` bad length, `f1` bad LRC,
//! `f2` unknown instruction) are logged. Clock: get clock every clock interval (hundredths).
//! Liveness: the loop's silence rule (a reader in a quiet moment says nothing unprompted; the
//! clock answers are the heartbeat). Setting the clock is the daemon's decision, never done here:
//! it would send `Command::SetClock(IpicoClock)` about 500 ms before the target second.

use reader_protocol::rfid::ipico::{self, Command, Message, instruction};
use reader_protocol::{Decoded, ReaderTime};

use super::text::{Outbox, TextProtocol, run};
use super::{Io, LinkCtx, LinkError};

pub(super) async fn session(io: Io, ctx: &LinkCtx) -> Result<(), LinkError> {
    run(io, ctx, Ipico { reader: ctx.id().to_owned() }).await
}

#[derive(Debug)]
struct Ipico {
    reader: String,
}

impl TextProtocol for Ipico {
    const CLOCK_RESOLUTION: timing_core::Elapsed = timing_core::Elapsed::from_millis(10);
    type Message = Message;

    fn decode(bytes: &[u8]) -> Decoded<Message> {
        ipico::decode_slice(bytes)
    }

    fn clock_query(out: &mut Vec<u8>) {
        Command::GetClock.encode(out);
    }

    fn open(&mut self, out: &mut Outbox) {
        out.command(|o| Command::DownloadStoredReads.encode(o));
    }

    fn handle(&mut self, message: Message, out: &mut Outbox) {
        match message {
            Message::Tag(t) => out.read(t.to_tag_read()),
            Message::Clock { clock, .. } => out.clock(ReaderTime::LocalDateTime(clock.local_micros())),
            Message::Trigger { clock, .. } => out.gun(ReaderTime::LocalDateTime(clock.local_micros())),
            Message::Ack { instruction, .. } if instruction >= instruction::ERROR_BAD_LENGTH => {
                tracing::warn!(reader_id = %self.reader, instruction = format!("{instruction:#04x}"), "the reader refused a command");
            }
            Message::Ack { instruction: instruction::STORED_READS, .. } => {
                tracing::info!(reader_id = %self.reader, "stored-read download started");
            }
            other => tracing::debug!(reader_id = %self.reader, line = ?other, "reader line"),
        }
    }
}
