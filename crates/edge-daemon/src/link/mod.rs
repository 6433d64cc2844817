//! Reader links: one task per reader, forever reconnecting, driving that reader's protocol.
//!
//! Design note.
//! A link owns a transport (TCP out, TCP in, or a serial line) and runs one *session* per
//! connection: handshake, rewind from where the store left off, then stream. Sessions are per
//! protocol (`link/<protocol>.rs`) and speak only through [`LinkEvent`]s; they never touch the
//! store, the clock offsets or the uplink. The daemon turns their reader-time tag reads into
//! corrected, durable reads.
//! - Resume: before each session the link reads the [`ResumeTable`] (the last session/file and
//!   passing number *durably stored* for this reader) and rewinds from just after it; overlap
//!   the decoder sends anyway is dropped by the outbox's `(reader, session, passing)` index.
//! - Acks: protocols that expect the host to acknowledge (MYLAPS) send [`LinkEvent::Reads`] with
//!   an `ack` and acknowledge only when the daemon fires it, i.e. after the reads are durable.
//! - Clocks: sessions measure the reader's clock with whatever the protocol offers (GETTIME,
//!   `GT`, clock queries, LLRP UTCTimestamp) and report [`ClockSample`]s: the reader's time and
//!   the edge's clock just before sending the query and just after the answer.
//! - Reconnects: capped exponential backoff with jitter ([`Backoff`]); a session that ran for a
//!   while resets it.

mod chronotrack;
mod ipico;
mod jchip;
mod llrp;
mod mylaps;
mod raceresult;
mod text;
mod transport;
mod ultra;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_config::edge::{Protocol, ReaderConfig};
use reader_protocol::{DecodeError, ReaderTime, TagRead};
use timing_core::Timestamp;
use tokio::sync::{mpsc, oneshot, watch};

pub use transport::{Io, Transport, TransportError};

/// The edge's clock (system time in production, a simulation clock in tests).
pub type EdgeClock = Arc<dyn timing_core::time::Clock + Send + Sync>;

/// One reading of a reader's clock against the edge's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockSample {
    /// What the reader said its clock showed.
    pub reader_time: ReaderTime,
    /// The edge clock just before the query left.
    pub sent: Timestamp,
    /// The edge clock just after the answer arrived.
    pub received: Timestamp,
    /// The step of the reader's clock as it reports it (1 s for Ultra, 1 ms for RACE RESULT):
    /// its time is the true time rounded down to this.
    pub resolution: timing_core::Elapsed,
}

/// What a link reports.
#[derive(Debug)]
pub enum LinkEvent {
    /// A session started (`peer`: address or tty path).
    Up {
        reader: String,
        peer: String,
    },
    /// The session ended; the link will reconnect.
    Down {
        reader: String,
        error: String,
    },
    /// Tag reads as the reader sent them, in order. When `ack` is set, the session waits for
    /// it before acknowledging them to the reader (fired once they are durable).
    Reads {
        reader: String,
        reads: Vec<TagRead>,
        ack: Option<oneshot::Sender<()>>,
    },
    Clock {
        reader: String,
        sample: ClockSample,
    },
    /// A frame that did not decode (already consumed; the stream goes on unless it cannot).
    Malformed {
        reader: String,
        error: DecodeError,
    },
    /// A start trigger the decoder itself reported (MYLAPS `Gunshot`, ChronoTrack `guntime`).
    Gun {
        reader: String,
        at: ReaderTime,
    },
    /// The line's health changed (`None`: healthy again), e.g. "framing errors: check baud rate".
    Health {
        reader: String,
        diagnosis: Option<String>,
    },
}

/// Where each reader's durable history ends: `reader id → (session, last passing number)`.
/// Kept by the store writer after every commit; read by links before every session.
#[derive(Clone, Debug, Default)]
pub struct ResumeTable(Arc<Mutex<HashMap<String, Resume>>>);

/// The newest durably stored passing of one reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Resume {
    pub session: Option<u32>,
    pub last_passing: Option<u64>,
}

impl ResumeTable {
    pub fn get(&self, reader: &str) -> Resume {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(reader).copied().unwrap_or_default()
    }
    /// Records a stored passing; keeps the newest session and, within it, the highest number.
    pub fn advance(&self, reader: &str, session: Option<u32>, passing: u64) {
        let mut t = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let e = t.entry(reader.to_string()).or_default();
        let newer_session = match (e.session, session) {
            (Some(a), Some(b)) => b > a,
            (None, Some(_)) => e.last_passing.is_none(),
            _ => false,
        };
        if newer_session {
            *e = Resume { session, last_passing: Some(passing) };
        } else if e.session == session && e.last_passing.is_none_or(|p| passing > p) {
            e.last_passing = Some(passing);
        }
    }
}

/// Everything a session needs.
#[derive(Clone)]
pub struct LinkCtx {
    pub reader: ReaderConfig,
    /// The event's zone, for readers that report local time without their own `time_zone`.
    pub time_zone: chrono_tz::Tz,
    pub events: mpsc::Sender<LinkEvent>,
    pub resume: ResumeTable,
    pub clock: EdgeClock,
    /// How often to measure the reader's clock during a session.
    pub clock_interval: Duration,
    pub shutdown: watch::Receiver<bool>,
}

impl std::fmt::Debug for LinkCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkCtx").field("reader", &self.reader.id).finish_non_exhaustive()
    }
}

impl LinkCtx {
    pub fn id(&self) -> &str {
        &self.reader.id
    }
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
    pub fn zone(&self) -> chrono_tz::Tz {
        self.reader.time_zone.unwrap_or(self.time_zone)
    }
    /// Sends an event; `Err` when the daemon is gone (the session should end).
    pub async fn emit(&self, event: LinkEvent) -> Result<(), LinkError> {
        self.events.send(event).await.map_err(|_| LinkError::Closed)
    }
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("the reader stream lost its framing: {0}")]
    Desync(DecodeError),
    #[error("no answer from the reader for {0:?}")]
    Timeout(Duration),
    #[error("shutting down")]
    Closed,
}

/// Reconnect delays: 100 ms doubling to a 10 s cap, each ±20 % at random.
#[derive(Clone, Debug)]
pub struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { next: Duration::from_millis(100), cap: Duration::from_secs(10) }
    }
}

impl Backoff {
    pub fn reset(&mut self) {
        *self = Backoff { cap: self.cap, ..Backoff::default() };
    }
    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        use rand::Rng;
        let base = self.next;
        self.next = (self.next * 2).min(self.cap);
        base.mul_f64(rand::rng().random_range(0.8..1.2))
    }
}

/// Runs one reader's link until shutdown: connect (or accept, or open the tty), run a session,
/// report why it ended, wait, again.
pub async fn run_link(ctx: LinkCtx) {
    let transport = match Transport::new(&ctx.reader).await {
        Ok(t) => t,
        Err(error) => {
            tracing::error!(reader_id = %ctx.id(), %error, "reader transport cannot start");
            let _ = ctx.emit(LinkEvent::Down { reader: ctx.id().to_string(), error: error.to_string() }).await;
            return;
        }
    };
    run_link_on(ctx, transport).await;
}

/// [`run_link`] over a transport prepared by the caller, e.g. a listening one whose port 0 was
/// bound first so that the peer can be told the real port ([`Transport::local_addr`]).
pub async fn run_link_on(ctx: LinkCtx, mut transport: Transport) {
    let mut backoff = Backoff::default();
    let mut shutdown = ctx.shutdown.clone();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let attempt = tokio::select! {
            r = transport.open() => r,
            _ = shutdown.wait_for(|down| *down) => return,
        };
        let started = std::time::Instant::now();
        let outcome = match attempt {
            Ok((io, peer)) => {
                let _ = ctx.emit(LinkEvent::Up { reader: ctx.id().to_string(), peer: peer.clone() }).await;
                tracing::info!(reader_id = %ctx.id(), %peer, "reader link up");
                let result = tokio::select! {
                    r = session(io, &ctx) => r,
                    _ = shutdown.wait_for(|down| *down) => Err(LinkError::Closed),
                };
                match result {
                    Err(LinkError::Closed) => return,
                    Ok(()) => "the reader closed the connection".to_string(),
                    Err(e) => e.to_string(),
                }
            }
            Err(e) => e.to_string(),
        };
        if started.elapsed() > Duration::from_secs(30) {
            backoff.reset();
        }
        tracing::warn!(reader_id = %ctx.id(), error = %outcome, "reader link down; reconnecting");
        if ctx.emit(LinkEvent::Down { reader: ctx.id().to_string(), error: outcome }).await.is_err() {
            return;
        }
        let delay = backoff.next_delay();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|down| *down) => return,
        }
    }
}

/// One connection's life, by protocol.
async fn session(io: Io, ctx: &LinkCtx) -> Result<(), LinkError> {
    match ctx.reader.protocol {
        Protocol::Raceresult => raceresult::session(io, ctx).await,
        Protocol::Ultra => ultra::session(io, ctx).await,
        Protocol::Ipico => ipico::session(io, ctx).await,
        Protocol::Jchip => jchip::session(io, ctx).await,
        Protocol::Mylaps => mylaps::session(io, ctx).await,
        Protocol::Chronotrack => chronotrack::session(io, ctx).await,
        Protocol::Llrp => llrp::session(io, ctx).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_table_keeps_the_newest_session_and_highest_number() {
        let t = ResumeTable::default();
        assert_eq!(t.get("rr"), Resume::default());
        t.advance("rr", Some(1), 5);
        t.advance("rr", Some(1), 3);
        assert_eq!(t.get("rr"), Resume { session: Some(1), last_passing: Some(5) });
        t.advance("rr", Some(2), 1);
        t.advance("rr", Some(1), 9);
        assert_eq!(t.get("rr"), Resume { session: Some(2), last_passing: Some(1) });
        t.advance("ultra", None, 41);
        assert_eq!(t.get("ultra"), Resume { session: None, last_passing: Some(41) });
    }

    #[test]
    fn backoff_doubles_to_a_cap_with_jitter_and_resets() {
        let mut b = Backoff::default();
        let d: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(80) && d[0] <= Duration::from_millis(120), "{d:?}");
        assert!(d[1] >= Duration::from_millis(160) && d[1] <= Duration::from_millis(240), "{d:?}");
        assert!(d.iter().all(|x| *x <= Duration::from_secs(12)), "{d:?}");
        assert!(d[9] >= Duration::from_secs(8), "{d:?}");
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(120));
    }
}
