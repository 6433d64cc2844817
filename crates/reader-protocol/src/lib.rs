//! Pure codecs for timing-reader wire protocols and decoder read files.
//!
//! Bytes in, messages out; commands out as bytes.
//! No tokio, no sockets, no files, no OS clock: the edge daemon and firmware-sim are the I/O shells
//! around these codecs, and `racetime results` feeds them the bytes of backup files.
//!
//! Layout:
//! - [`rfid`]: one module per reader vendor protocol (`rfid/<vendor>.rs`), each with
//!   `decode(&mut Vec<u8>) -> Result<Option<Message>, DecodeError>` framing over a stream buffer,
//!   `decode_slice(&[u8]) -> Decoded<Message>` (the same without moving bytes), `decode_command` for
//!   reader emulators, and `encode` for both directions.
//! - [`files`]: read files for offline import (the neutral CSV; decoder backup files).
//! - [`modbus`]: register maps of the Modbus devices around a timing line (start-gun inputs,
//!   charge controllers, race clocks) and typed values decoded from their registers.
//! - [`TagRead`]: what every vendor's tag report becomes, still in the reader's own time base
//!   ([`ReaderTime`]); the edge turns it into a [`timing_core::Read`] in UTC.
//!
//! Deliberately not here: clock-offset estimation, time-zone conversion, connection state (the edge's job).

pub mod files;
pub mod line_health;
pub mod modbus;
pub mod rfid;
pub mod time;

mod field;
mod framing;

use timing_core::{Rssi, Timestamp};

/// A reader's timestamp in the reader's own time base.
///
/// Readers disagree about time: LLRP reports UTC microseconds, Ultra and RACE RESULT report their
/// local wall clock, JChip and some IPICO records report only a time of day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReaderTime {
    /// A true UTC instant.
    Utc(Timestamp),
    /// A wall-clock date and time in the reader's configured time zone, counted as microseconds
    /// since 1970-01-01T00:00:00 *local* (no zone applied yet).
    LocalDateTime(i64),
    /// A time of day only: microseconds since local midnight, date unknown.
    TimeOfDay(i64),
}

/// One tag report from a reader, whatever the vendor.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TagRead {
    /// Transponder code as reported (EPC hex upper-case, or the decoder's own chip code).
    pub chip: String,
    pub time: ReaderTime,
    pub antenna: Option<u16>,
    pub rssi: Option<Rssi>,
    /// The reader's own sequence number for this record (passing number, log id), if it has one.
    pub passing_no: Option<u64>,
    /// The reader's file / session / boot number, if passing numbers restart per session.
    pub session: Option<u32>,
    /// Detections merged into this record by the reader itself.
    pub hits: Option<u32>,
}

/// Why a frame could not be decoded. The offending bytes travel with it (truncated), for logs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed {protocol} frame: {reason} (bytes: {})", hex_preview(bytes))]
    Malformed { protocol: &'static str, reason: String, bytes: Vec<u8> },
    #[error("{protocol} frame over {limit} bytes discarded")]
    TooLong { protocol: &'static str, limit: usize },
    #[error("{protocol} checksum mismatch: expected {expected:#x}, got {got:#x} (bytes: {})", hex_preview(bytes))]
    Checksum { protocol: &'static str, expected: u32, got: u32, bytes: Vec<u8> },
    /// The stream lost its framing: the decoder dropped its whole buffer because no later byte
    /// can be trusted, and the caller must reset the connection. Returned by protocols that have
    /// no sync marker to recover at (LLRP) when a frame header is impossible.
    #[error("{protocol} stream out of sync, reset the connection: {reason} (bytes: {})", hex_preview(bytes))]
    Desync { protocol: &'static str, reason: String, bytes: Vec<u8> },
}

impl DecodeError {
    /// True when the stream cannot continue: the connection must be reset (see [`DecodeError::Desync`]).
    pub fn is_fatal(&self) -> bool {
        matches!(self, DecodeError::Desync { .. })
    }
}

/// What one decoding step did with the front of a byte slice.
///
/// Every vendor module has `decode_slice(&[u8]) -> Decoded<Message>` beside
/// `decode(&mut Vec<u8>)`: the slice form lets a caller walk a large buffer with an offset
/// instead of moving the remaining bytes after every frame, and is what `decode` is built on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded<T> {
    /// Bytes used up from the front of the input: one frame (with any blank lines before it), a
    /// discarded bad frame, or the droppable middle of an over-long line still waiting for its end.
    pub consumed: usize,
    /// `Ok(None)`: no complete frame in the rest of the input; more bytes are needed.
    pub result: Result<Option<T>, DecodeError>,
}

impl<T> Decoded<T> {
    /// Removes the consumed bytes from the front of `buf` and returns the result.
    pub fn apply(self, buf: &mut Vec<u8>) -> Result<Option<T>, DecodeError> {
        buf.drain(..self.consumed);
        self.result
    }
}

/// The first 32 bytes as hex, with an ellipsis when there were more: for log lines.
pub fn hex_preview(bytes: &[u8]) -> String {
    const MAX: usize = 32;
    let mut s = String::with_capacity(MAX * 3 + 3);
    for (i, b) in bytes.iter().take(MAX).enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{b:02x}"));
    }
    if bytes.len() > MAX {
        s.push_str(" …");
    }
    s
}

#[cfg(test)]
mod testkit;
