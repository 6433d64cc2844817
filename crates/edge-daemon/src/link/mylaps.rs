//! The MYLAPS Exporter session: MYLAPS software (Timing & Scoring, Exporter, Toolkit) connects
//! to the edge, which is the server (TCP 3097), and sends `$`-terminated `@` records.
//!
//! Per connection:
//! 1. The software greets with `Pong` (some send `Ping`); the edge answers `AckPong` asking for
//!    [`mylaps::REQUESTED_FIELDS`] (chip, time, date, hits, amplitude, strongest antenna), then
//!    `GetLocations`, and `GetInfo` for each location (logged: device id, MAC, antennas).
//! 2. `Passing` and `Store` records → [`LinkEvent::Reads`] with an `ack`; the counter goes back
//!    (`AckPassing` / `AckStore`) only once the daemon fires it, i.e. once the reads are durable.
//! 3. `Marker` records: each `Gunshot` → [`LinkEvent::Gun`] (time of day only); every marker
//!    record is acknowledged once its events are handed over.
//! 4. `Ping` → `AckPing`; the edge pings every [`PING_EVERY`] too.
//!
//! Design note.
//! - Acks are the resume mechanism: the software keeps every record it sent until it is
//!   acknowledged and resends the unacknowledged ones after the next connect (that is what the
//!   firmware-sim emulator does; the captured traffic shows the same retransmission). So the
//!   [`super::ResumeTable`] is not consulted: there is nothing to ask for.
//! - A dropped ack (the daemon could not store the reads) ends the session: an exporter resends
//!   only after a reconnect, so staying connected would leave those reads missing until the next
//!   disconnection.
//! - Passing numbers: the counter numbers a *record*, and one `Passing` record may carry several
//!   passings, so the passing number is `counter × 10 000 + index in the record` (a 64 KiB record
//!   holds under 10 000 passings). A resent record gets the same numbers, and the outbox's index
//!   drops it. Session: none, since the counter runs on across the software's restarts (the
//!   emulator's model, unverified on real software: should a restart reset the counter, new
//!   passings would be taken for resends and dropped; see `hardware/readers/mylaps.md`).
//! - Clocks: the protocol has no time query (`GetInfo` answers may carry a `time` of unverified
//!   meaning), so no [`LinkEvent::Clock`]; the daemon measures the offset from the passings'
//!   times against their arrival.
//! - Liveness: any record resets the timer; [`SILENCE_MAX`] without one ends the session with
//!   [`LinkError::Timeout`].
//! - Malformed records → [`LinkEvent::Malformed`]; `$` ends every record, so the next one decodes.
//!   A malformed `Passing` record is not acknowledged (its counter is unknown), so the software
//!   will resend it after a reconnect.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use reader_protocol::rfid::mylaps::{self, Command, Message};
use reader_protocol::{ReaderTime, TagRead};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Io, LinkCtx, LinkError, LinkEvent};

/// The name racetime gives in its records.
const SERVER_NAME: &str = "racetime";
/// The edge pings the software this often.
const PING_EVERY: Duration = Duration::from_secs(10);
/// Nothing from the software for this long ends the session (three of its pings).
const SILENCE_MAX: Duration = Duration::from_secs(30);
/// Passing number = counter × this + index of the passing in its record.
const COUNTER_SCALE: u64 = 10_000;
/// The shortest passing in a record: `t=X|c=Y` and its `@`.
const PASSING_BYTES_MIN: usize = 8;
const _: () = assert!((mylaps::MAX_RECORD / PASSING_BYTES_MIN) < COUNTER_SCALE as usize);

/// An ack and the record counter it acknowledges, with whether the daemon stored the reads.
type PendingAck = Pin<Box<dyn Future<Output = (u64, Command, bool)> + Send>>;

pub(super) async fn session(io: Io, ctx: &LinkCtx) -> Result<(), LinkError> {
    let mut s = Session {
        ctx,
        io,
        buf: Vec::with_capacity(8192),
        chunk: vec![0; 8192],
        pending: FuturesUnordered::new(),
        greeted: false,
        locations: BTreeSet::new(),
    };
    s.run().await
}

struct Session<'a> {
    ctx: &'a LinkCtx,
    io: Io,
    buf: Vec<u8>,
    chunk: Vec<u8>,
    /// Acks waiting for the daemon to store their reads.
    pending: FuturesUnordered<PendingAck>,
    /// `AckPong` was sent.
    greeted: bool,
    /// Locations asked about with `GetInfo`.
    locations: BTreeSet<String>,
}

enum Step {
    Bytes(usize),
    Stored(u64, Command, bool),
    Ping,
    Silent,
}

impl Session<'_> {
    async fn run(&mut self) -> Result<(), LinkError> {
        let mut heard = Instant::now();
        let mut next_ping = Instant::now() + PING_EVERY;
        loop {
            loop {
                match mylaps::decode(&mut self.buf) {
                    Ok(Some(m)) => self.handle(m).await?,
                    Ok(None) => break,
                    Err(error) => {
                        self.ctx.emit(LinkEvent::Malformed { reader: self.ctx.id().to_string(), error }).await?
                    }
                }
            }
            let step = tokio::select! {
                n = self.io.read(&mut self.chunk) => Step::Bytes(n?),
                Some((counter, ack, stored)) = self.pending.next(), if !self.pending.is_empty() => {
                    Step::Stored(counter, ack, stored)
                }
                () = tokio::time::sleep_until(next_ping) => Step::Ping,
                () = tokio::time::sleep_until(heard + SILENCE_MAX) => Step::Silent,
            };
            match step {
                Step::Bytes(0) => {
                    if !self.buf.is_empty() {
                        tracing::debug!(reader_id = %self.ctx.id(), n_bytes = self.buf.len(), "partial mylaps record dropped");
                    }
                    return Ok(());
                }
                Step::Bytes(n) => {
                    heard = Instant::now();
                    self.buf.extend_from_slice(&self.chunk[..n]);
                }
                Step::Stored(_, ack, true) => self.send(&ack).await?,
                Step::Stored(counter, _, false) => {
                    return Err(LinkError::Protocol(format!(
                        "the reads of record {counter} were not stored: dropping the connection so that the software resends them"
                    )));
                }
                Step::Ping => {
                    next_ping = Instant::now() + PING_EVERY;
                    self.send(&Command::Ping { name: SERVER_NAME.to_owned() }).await?;
                }
                Step::Silent => return Err(LinkError::Timeout(SILENCE_MAX)),
            }
        }
    }

    async fn handle(&mut self, m: Message) -> Result<(), LinkError> {
        let id = self.ctx.id();
        match &m {
            Message::Pong { name } => {
                tracing::info!(reader_id = %id, software = %name, "mylaps software connected");
                self.greet(&m).await?;
            }
            Message::Ping { .. } => {
                if !self.greeted {
                    self.greet(&Message::Pong { name: String::new() }).await?;
                }
                self.reply(&m).await?;
            }
            Message::AckPing { .. } => {}
            Message::Locations { locations, .. } => {
                for l in locations {
                    if self.locations.insert(l.clone()) {
                        self.send(&Command::GetInfo { name: SERVER_NAME.to_owned(), location: l.clone() }).await?;
                    }
                }
            }
            Message::DeviceInfo { name, info } => {
                tracing::info!(reader_id = %id, location = %name, ?info, "mylaps device");
            }
            Message::Passings { passings, counter, .. } => {
                let reads = passings.iter().enumerate().map(|(i, p)| numbered(p.to_tag_read(), *counter, i)).collect();
                self.store(&m, *counter, reads).await?;
            }
            Message::Stored { passings, counter, .. } => {
                let reads = passings.iter().enumerate().map(|(i, p)| numbered(p.to_tag_read(), *counter, i)).collect();
                self.store(&m, *counter, reads).await?;
            }
            Message::Markers { markers, counter, .. } => {
                for mk in markers {
                    if mk.is_gunshot() {
                        let at = ReaderTime::TimeOfDay(mk.time_of_day_us as i64);
                        self.ctx.emit(LinkEvent::Gun { reader: id.to_string(), at }).await?;
                    } else {
                        tracing::info!(reader_id = %id, counter, marker = %mk.marker_type, "mylaps marker ignored");
                    }
                }
                self.reply(&m).await?;
            }
            Message::Other { function, .. } => {
                tracing::debug!(reader_id = %id, %function, "mylaps record ignored");
            }
        }
        Ok(())
    }

    /// `AckPong` with the fields racetime wants, then the locations.
    async fn greet(&mut self, pong: &Message) -> Result<(), LinkError> {
        self.reply(pong).await?;
        if !self.greeted {
            self.greeted = true;
            self.send(&Command::GetLocations { name: SERVER_NAME.to_owned() }).await?;
        }
        Ok(())
    }

    /// Hands reads to the daemon; their record is acknowledged when the daemon says they are durable.
    async fn store(&mut self, m: &Message, counter: u64, reads: Vec<TagRead>) -> Result<(), LinkError> {
        let Some(ack) = m.ack(SERVER_NAME) else {
            return Ok(());
        };
        if reads.is_empty() {
            return self.send(&ack).await;
        }
        let (tx, rx) = oneshot::channel();
        self.ctx.emit(LinkEvent::Reads { reader: self.ctx.id().to_string(), reads, ack: Some(tx) }).await?;
        self.pending.push(Box::pin(async move { (counter, ack, rx.await.is_ok()) }));
        Ok(())
    }

    async fn reply(&mut self, m: &Message) -> Result<(), LinkError> {
        match m.ack(SERVER_NAME) {
            Some(c) => self.send(&c).await,
            None => Ok(()),
        }
    }

    async fn send(&mut self, c: &Command) -> Result<(), LinkError> {
        let mut out = Vec::new();
        c.encode(&mut out);
        self.io.write_all(&out).await?;
        self.io.flush().await?;
        Ok(())
    }
}

/// The passing number of the `index`th passing of record `counter` (none past `u64`).
fn numbered(mut read: TagRead, counter: u64, index: usize) -> TagRead {
    read.passing_no = counter.checked_mul(COUNTER_SCALE).and_then(|n| n.checked_add(index as u64));
    read
}

#[cfg(test)]
mod tests {
    use super::*;
    use reader_protocol::rfid::mylaps::Passing;

    #[test]
    fn passings_of_one_record_share_its_counter_and_keep_their_order() {
        let read = Passing::new("DX93845", 0).to_tag_read();
        assert_eq!(numbered(read.clone(), 1016, 0).passing_no, Some(10_160_000));
        assert_eq!(numbered(read.clone(), 1016, 1).passing_no, Some(10_160_001));
        assert_eq!(numbered(read, u64::MAX / 2, 0).passing_no, None);
    }
}
