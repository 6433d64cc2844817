//! The loop shared by the line-oriented reader sessions (RACE RESULT, Ultra, IPICO, JChip).
//!
//! Design note.
//! A text session is a small protocol state machine ([`TextProtocol`]) driven by one loop:
//! - on connect it sends the clock query, then the protocol's handshake and rewind commands;
//! - every chunk read is fed to [`LineHealth`] and decoded frame by frame with the codec's
//!   `decode_slice`; each frame goes to the protocol, which answers with [`Out`] items (tag
//!   reads, guns, clock answers) and commands to send;
//! - the items are emitted in arrival order, consecutive reads batched into one
//!   [`LinkEvent::Reads`] per chunk; a frame that does not decode becomes a
//!   [`LinkEvent::Malformed`] and the stream goes on (a fatal one ends the session);
//! - the clock is queried every `clock_interval`, the edge clock read just before the query is
//!   written and just after the chunk holding the answer arrived; answers pair with queries in
//!   order;
//! - liveness: the session ends with [`LinkError::Timeout`] when nothing at all arrived for
//!   [`SILENT_INTERVALS`] clock intervals, or when [`SILENT_INTERVALS`] clock queries are
//!   unanswered (a reader that talks but no longer listens), so `run_link` reconnects.
//!
//! Bounds: one read chunk of [`CHUNK`] bytes at a time; the codecs keep at most one line limit of
//! an unterminated line, so the buffer stays under [`MAX_BUFFERED`] (checked); a batch holds the
//! reads of one chunk; unanswered clock queries are at most [`SILENT_INTERVALS`].

use std::collections::VecDeque;
use std::time::Duration;

use reader_protocol::line_health::{LineHealth, LineKind};
use reader_protocol::{DecodeError, Decoded, ReaderTime, TagRead};
use timing_core::Timestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, MissedTickBehavior};

use super::{ClockSample, Io, LinkCtx, LinkError, LinkEvent};

/// Bytes read from the transport at a time.
pub(super) const CHUNK: usize = 4096;
/// Undecoded bytes a session may hold: two line limits and a chunk, with room to spare.
pub(super) const MAX_BUFFERED: usize = 16 * 1024;
/// Clock intervals of silence (or unanswered clock queries) after which the reader is gone.
pub(super) const SILENT_INTERVALS: u32 = 3;

/// What a protocol makes of one frame, in order.
#[derive(Debug)]
pub(super) enum Out {
    Read(TagRead),
    /// A start trigger the reader reported.
    Gun(ReaderTime),
    /// The answer to the oldest unanswered clock query.
    Clock(ReaderTime),
}

/// Where a protocol puts its reactions to one chunk: items to report, bytes to send.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    items: Vec<Out>,
    commands: Vec<u8>,
}

impl Outbox {
    pub(super) fn read(&mut self, read: TagRead) {
        self.items.push(Out::Read(read));
    }
    pub(super) fn gun(&mut self, at: ReaderTime) {
        self.items.push(Out::Gun(at));
    }
    pub(super) fn clock(&mut self, at: ReaderTime) {
        self.items.push(Out::Clock(at));
    }
    /// Queues a command: `encode` appends its bytes.
    pub(super) fn command(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        encode(&mut self.commands);
    }
    #[cfg(test)]
    pub(super) fn commands(&self) -> &[u8] {
        &self.commands
    }
}

/// One line-oriented reader protocol, as the shared loop drives it.
pub(super) trait TextProtocol {
    type Message;
    /// Decodes one frame from the front of `bytes` (the codec's `decode_slice`).
    fn decode(bytes: &[u8]) -> Decoded<Self::Message>;
    /// Appends the clock query.
    fn clock_query(out: &mut Vec<u8>);
    /// The step of the clock the query answers with.
    const CLOCK_RESOLUTION: timing_core::Elapsed;
    /// Handshake and rewind, sent right after the first clock query.
    fn open(&mut self, out: &mut Outbox);
    /// One decoded frame.
    fn handle(&mut self, message: Self::Message, out: &mut Outbox);
}

/// How long a reader may stay silent.
pub(super) fn silence_limit(clock_interval: Duration) -> Duration {
    clock_interval * SILENT_INTERVALS
}

/// Runs one session of `protocol` over `io` until the reader hangs up (`Ok`), goes silent, or
/// the stream fails.
pub(super) async fn run<P: TextProtocol>(io: Io, ctx: &LinkCtx, mut protocol: P) -> Result<(), LinkError> {
    let mut wire = Wire::new(io, ctx);
    let mut clock = ClockQueries::default();
    let limit = silence_limit(ctx.clock_interval);
    let mut ticks = tokio::time::interval(ctx.clock_interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks.tick().await; // the first tick is immediate: the query below is it

    clock.query::<P>(&mut wire, ctx).await?;
    let mut out = Outbox::default();
    protocol.open(&mut out);
    wire.send(&out.commands).await?;

    let mut heard = Instant::now();
    loop {
        tokio::select! {
            n = wire.fill() => {
                if n? == 0 {
                    return Ok(());
                }
                let received = ctx.now();
                let mut out = Outbox::default();
                let mut errors: Vec<(usize, DecodeError)> = Vec::new();
                wire.decode::<P>(|frame| match frame {
                    Ok(message) => protocol.handle(message, &mut out),
                    // Keep the error's place among the items.
                    Err(error) => errors.push((out.items.len(), error)),
                });
                report(ctx, out.items, errors, &mut clock, received, P::CLOCK_RESOLUTION).await?;
                wire.report_health(ctx).await?;
                if !out.commands.is_empty() {
                    wire.send(&out.commands).await?;
                }
                // Time spent waiting on a busy daemon is not the reader's silence.
                heard = Instant::now();
            }
            _ = ticks.tick() => {
                if clock.unanswered() >= SILENT_INTERVALS as usize {
                    return Err(LinkError::Timeout(limit));
                }
                clock.query::<P>(&mut wire, ctx).await?;
            }
            () = tokio::time::sleep_until(heard + limit) => return Err(LinkError::Timeout(limit)),
        }
    }
}

/// Emits one chunk's items and decode errors in order, consecutive reads as one batch.
async fn report(
    ctx: &LinkCtx,
    items: Vec<Out>,
    errors: Vec<(usize, DecodeError)>,
    clock: &mut ClockQueries,
    received: Timestamp,
    resolution: timing_core::Elapsed,
) -> Result<(), LinkError> {
    let reader = || ctx.id().to_string();
    let mut errors = errors.into_iter().peekable();
    let mut batch: Vec<TagRead> = Vec::new();
    let n_items = items.len();
    let mut items = items.into_iter();
    for i in 0..=n_items {
        while let Some((_, error)) = errors.next_if(|(at, _)| *at == i) {
            flush(ctx, &mut batch).await?;
            tracing::warn!(reader_id = %ctx.id(), %error, "malformed frame");
            let fatal = error.is_fatal();
            if fatal {
                return Err(LinkError::Desync(error));
            }
            ctx.emit(LinkEvent::Malformed { reader: reader(), error }).await?;
        }
        match items.next() {
            Some(Out::Read(read)) => batch.push(read),
            Some(Out::Gun(at)) => {
                flush(ctx, &mut batch).await?;
                ctx.emit(LinkEvent::Gun { reader: reader(), at }).await?;
            }
            Some(Out::Clock(reader_time)) => {
                flush(ctx, &mut batch).await?;
                match clock.answered() {
                    Some(sent) => {
                        let sample = ClockSample { reader_time, sent, received, resolution };
                        ctx.emit(LinkEvent::Clock { reader: reader(), sample }).await?;
                    }
                    None => tracing::debug!(reader_id = %ctx.id(), "clock answer without a query; ignored"),
                }
            }
            None => {}
        }
    }
    flush(ctx, &mut batch).await
}

async fn flush(ctx: &LinkCtx, batch: &mut Vec<TagRead>) -> Result<(), LinkError> {
    if batch.is_empty() {
        return Ok(());
    }
    let reads = std::mem::take(batch);
    ctx.emit(LinkEvent::Reads { reader: ctx.id().to_string(), reads, ack: None }).await
}

/// Clock queries sent and not answered yet: the edge clock just before each was written.
#[derive(Debug, Default)]
struct ClockQueries {
    sent: VecDeque<Timestamp>,
}

impl ClockQueries {
    async fn query<P: TextProtocol>(&mut self, wire: &mut Wire, ctx: &LinkCtx) -> Result<(), LinkError> {
        let mut bytes = Vec::new();
        P::clock_query(&mut bytes);
        self.sent.push_back(ctx.now());
        wire.send(&bytes).await
    }
    fn answered(&mut self) -> Option<Timestamp> {
        self.sent.pop_front()
    }
    fn unanswered(&self) -> usize {
        self.sent.len()
    }
}

/// The byte stream of one session: bounded buffer, line health, timed writes.
struct Wire {
    io: Io,
    buf: Vec<u8>,
    chunk: Box<[u8; CHUNK]>,
    health: LineHealth,
    diagnosis: Option<String>,
    write_limit: Duration,
    reader: String,
}

impl Wire {
    fn new(io: Io, ctx: &LinkCtx) -> Wire {
        Wire {
            io,
            buf: Vec::with_capacity(CHUNK),
            chunk: Box::new([0; CHUNK]),
            health: LineHealth::new(LineKind::Text),
            diagnosis: None,
            write_limit: silence_limit(ctx.clock_interval),
            reader: ctx.id().to_string(),
        }
    }

    /// Writes `bytes`; a reader that does not take them within the silence limit is gone.
    async fn send(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let write = async {
            self.io.write_all(bytes).await?;
            self.io.flush().await
        };
        match tokio::time::timeout(self.write_limit, write).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(LinkError::Timeout(self.write_limit)),
        }
    }

    /// Reads one chunk (cancel-safe); `0` at end of stream.
    async fn fill(&mut self) -> Result<usize, LinkError> {
        let n = self.io.read(&mut self.chunk[..]).await?;
        self.health.observe_bytes(&self.chunk[..n]);
        self.buf.extend_from_slice(&self.chunk[..n]);
        Ok(n)
    }

    /// Decodes every complete frame in the buffer, in order.
    fn decode<P: TextProtocol>(&mut self, mut frame: impl FnMut(Result<P::Message, DecodeError>)) {
        let mut pos = 0;
        loop {
            let Decoded { consumed, result } = P::decode(&self.buf[pos..]);
            pos += consumed;
            match result {
                Ok(None) => break,
                Ok(Some(m)) => {
                    self.health.observe_frame(true);
                    frame(Ok(m));
                }
                Err(e) => {
                    self.health.observe_frame(false);
                    frame(Err(e));
                }
            }
        }
        self.buf.drain(..pos);
        if self.buf.len() > MAX_BUFFERED {
            // The codecs bound an unterminated line; this would be a codec bug. Drop rather than grow.
            tracing::error!(reader_id = %self.reader, n_bytes = self.buf.len(), "undecoded bytes over the bound; dropped");
            self.buf.clear();
        }
    }

    /// Emits [`LinkEvent::Health`] when the line's diagnosis changed.
    async fn report_health(&mut self, ctx: &LinkCtx) -> Result<(), LinkError> {
        let diagnosis = self.health.diagnosis();
        if diagnosis == self.diagnosis {
            return Ok(());
        }
        match &diagnosis {
            Some(d) => tracing::warn!(reader_id = %ctx.id(), diagnosis = %d, "reader line unhealthy"),
            None => tracing::info!(reader_id = %ctx.id(), "reader line healthy again"),
        }
        self.diagnosis.clone_from(&diagnosis);
        ctx.emit(LinkEvent::Health { reader: ctx.id().to_string(), diagnosis }).await
    }
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wire").field("reader", &self.reader).field("buffered", &self.buf.len()).finish_non_exhaustive()
    }
}
