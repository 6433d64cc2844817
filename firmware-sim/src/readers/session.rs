//! One client link of an emulated decoder, as the protocols see it: bytes in, frames out.
//!
//! A [`Session`] is a protocol's per-connection state machine. The transport driver
//! (`link.rs`) calls it with the shared state locked and a [`Cx`] to queue frames in, then
//! writes the frames with the lock released, applying link faults between or inside frames.
//! Sessions never touch sockets or clocks: "now" comes in through the [`Cx`], timers through
//! [`Session::deadline`].

use std::sync::Arc;

use reader_protocol::DecodeError;
use timing_core::Timestamp;

use super::emulator::{Shared, State};

/// One protocol frame (a line, a record, an LLRP message), written whole unless a fault cuts it.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) bytes: Vec<u8>,
    /// Passing records it carries, for [`super::ReaderStats::records_sent`].
    pub(crate) n_records: u32,
}

/// Whether the link carries on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    /// Write the queued frames, then close the link.
    Close,
}

/// What a session step may use: the shared emulator, its locked state, and the frame queue.
pub(crate) struct Cx<'a> {
    pub(crate) shared: &'a Arc<Shared>,
    pub(crate) st: &'a mut State,
    /// The simulation's true "now" for this step.
    pub(crate) now: Timestamp,
    pub(crate) out: Vec<Frame>,
}

impl Cx<'_> {
    /// The reader's clock now.
    pub(crate) fn reader_now(&self) -> Timestamp {
        self.st.clock.reader_time(self.now)
    }

    pub(crate) fn send(&mut self, bytes: Vec<u8>) {
        self.out.push(Frame { bytes, n_records: 0 });
    }

    /// A frame carrying `n_records` passing records.
    pub(crate) fn send_records(&mut self, bytes: Vec<u8>, n_records: u32) {
        self.out.push(Frame { bytes, n_records });
    }

    /// Counts a received command.
    pub(crate) fn command(&mut self) {
        self.st.counters.commands_received += 1;
    }

    /// Counts and logs a command that could not be decoded or is not understood.
    pub(crate) fn bad_command(&mut self, error: &DecodeError) {
        self.st.counters.commands_received += 1;
        self.st.counters.bad_commands += 1;
        tracing::warn!(reader_id = %self.shared.id, protocol = self.shared.protocol.as_str(), %error, "bad command");
    }

    /// Counts and logs a command that decoded but that this emulator refuses.
    pub(crate) fn refused_command(&mut self, what: &str, bytes: &[u8]) {
        self.st.counters.bad_commands += 1;
        tracing::warn!(
            reader_id = %self.shared.id,
            protocol = self.shared.protocol.as_str(),
            bytes = %reader_protocol::hex_preview(bytes),
            "refused command: {what}"
        );
    }
}

/// A protocol's per-connection behaviour.
pub(crate) trait Session: Send {
    /// The link is up: greetings, banners, connection events.
    fn open(&mut self, _cx: &mut Cx<'_>) -> Flow {
        Flow::Continue
    }
    /// Bytes arrived (appended to `buf`): decode and handle every complete command.
    fn input(&mut self, buf: &mut Vec<u8>, cx: &mut Cx<'_>) -> Flow;
    /// Records were stored: send whatever this link is due.
    fn records(&mut self, _cx: &mut Cx<'_>) {}
    /// When [`Session::timer`] wants to run next (wall clock).
    fn deadline(&self) -> Option<tokio::time::Instant> {
        None
    }
    fn timer(&mut self, _cx: &mut Cx<'_>) -> Flow {
        Flow::Continue
    }
    /// The link is gone.
    fn close(&mut self, _st: &mut State) {}
}
