//! The ChronoTrack CTP01 session: ChronoTrack SimpleClient (or a CTP01 exporter) connects to the
//! edge, which is the server, and streams `~`-separated CR LF lines.
//!
//! Per connection:
//! 1. The edge sends its side of the handshake at once ([`chronotrack::handshake`]: greeting,
//!    the settings `guntimes=true`, `newlocations=true`, `stream-mode=push`, `time-format=iso`
//!    and the rest, then `getconnectionid`, `geteventinfo`, `getlocations`). Which side greets
//!    first is uncertain (racemap: the client; PointCam: the server), so the edge does not wait:
//!    the client's greeting is logged whenever it comes.
//! 2. When the locations arrive: `start~<location>~<seq>` for each, `seq` being the last passing
//!    number durably stored for this reader ([`super::ResumeTable`]); without one,
//!    `start~<location>`, which streams the whole history from the first line.
//! 3. Stream: tag lines → [`LinkEvent::Reads`] with the line number as passing number (the
//!    reads of one socket read go together); `guntime` lines → [`LinkEvent::Gun`];
//!    `newlocation` → `getlocations` again, and the new location is started.
//! 4. The edge sends `ping` every [`PING_EVERY`]; the client answers `ack~ping`.
//!
//! Design note.
//! - Resume: the line number is one sequence over the client's stream, so a reconnect replays
//!   exactly what the store lacks: lines after the last stored one. Reads handed over but not
//!   yet stored when the link dropped come again; the outbox's `(reader, session, passing)`
//!   index drops them. Gun lines are not reads, so a gun after the last stored read is also
//!   sent again after a reconnect (same reader time; the daemon keeps one). No session number:
//!   the line number runs on across the software's restarts (the emulator's model).
//! - Clocks: CTP01 has no time query and no timestamped answer, so no [`LinkEvent::Clock`]; the
//!   daemon measures the offset from the reads' times against their arrival.
//! - Liveness: any line resets the timer; [`SILENCE_MAX`] (three pings) without one ends the
//!   session with [`LinkError::Timeout`].
//! - A refused `start` (`err~start~…`, e.g. an unknown location) ends the session: staying
//!   connected would stream nothing. Other `err~` lines are logged.
//! - Malformed lines → [`LinkEvent::Malformed`]; LF ends every line, so the next one decodes.

use std::collections::BTreeSet;
use std::time::Duration;

use reader_protocol::TagRead;
use reader_protocol::rfid::chronotrack::{self, Command, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::{Io, LinkCtx, LinkError, LinkEvent};

/// The name racetime gives in its greeting.
const SERVER_NAME: &str = "racetime";
const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The edge pings the client this often (racemap's period).
const PING_EVERY: Duration = Duration::from_secs(10);
/// Nothing from the client for this long ends the session.
const SILENCE_MAX: Duration = Duration::from_secs(30);

pub(super) async fn session(io: Io, ctx: &LinkCtx) -> Result<(), LinkError> {
    let mut s = Session {
        ctx,
        io,
        buf: Vec::with_capacity(8192),
        chunk: vec![0; 8192],
        reads: Vec::new(),
        started: BTreeSet::new(),
    };
    for c in chronotrack::handshake(SERVER_NAME, SERVER_VERSION) {
        s.send(&c).await?;
    }
    s.run().await
}

struct Session<'a> {
    ctx: &'a LinkCtx,
    io: Io,
    buf: Vec<u8>,
    chunk: Vec<u8>,
    /// Tag reads decoded and not yet emitted.
    reads: Vec<TagRead>,
    /// Locations streaming on this connection (`""`: a bare `start`).
    started: BTreeSet<String>,
}

enum Step {
    Bytes(usize),
    Ping,
    Silent,
}

impl Session<'_> {
    async fn run(&mut self) -> Result<(), LinkError> {
        let mut heard = Instant::now();
        let mut next_ping = Instant::now() + PING_EVERY;
        loop {
            loop {
                match chronotrack::decode(&mut self.buf) {
                    Ok(Some(m)) => self.handle(m).await?,
                    Ok(None) => break,
                    Err(error) => {
                        self.flush_reads().await?;
                        self.ctx.emit(LinkEvent::Malformed { reader: self.ctx.id().to_string(), error }).await?;
                    }
                }
            }
            self.flush_reads().await?;
            let step = tokio::select! {
                n = self.io.read(&mut self.chunk) => Step::Bytes(n?),
                () = tokio::time::sleep_until(next_ping) => Step::Ping,
                () = tokio::time::sleep_until(heard + SILENCE_MAX) => Step::Silent,
            };
            match step {
                Step::Bytes(0) => {
                    if !self.buf.is_empty() {
                        tracing::debug!(reader_id = %self.ctx.id(), n_bytes = self.buf.len(), "partial chronotrack line dropped");
                    }
                    return Ok(());
                }
                Step::Bytes(n) => {
                    heard = Instant::now();
                    self.buf.extend_from_slice(&self.chunk[..n]);
                }
                Step::Ping => {
                    next_ping = Instant::now() + PING_EVERY;
                    self.send(&Command::Ping).await?;
                }
                Step::Silent => return Err(LinkError::Timeout(SILENCE_MAX)),
            }
        }
    }

    async fn handle(&mut self, m: Message) -> Result<(), LinkError> {
        let id = self.ctx.id();
        match m {
            Message::Read(r) => self.reads.push(r.to_tag_read()),
            Message::GunTime(r) => {
                self.flush_reads().await?;
                self.ctx.emit(LinkEvent::Gun { reader: id.to_string(), at: r.time.reader_time() }).await?;
            }
            Message::NewLocation(r) => {
                tracing::info!(reader_id = %id, location = %r.location, "chronotrack location added");
                self.send(&Command::GetLocations).await?;
            }
            Message::Locations(locations) => self.start(locations).await?,
            Message::Greeting { name, version, protocol } => {
                if protocol != "CTP01" {
                    tracing::warn!(reader_id = %id, %protocol, "chronotrack client speaks another protocol version");
                }
                tracing::info!(reader_id = %id, client = %name, %version, %protocol, "chronotrack client connected");
            }
            Message::EventInfo { name, id: event_id, description } => {
                tracing::info!(reader_id = %id, event = %name, %event_id, %description, "chronotrack event");
            }
            Message::ConnectionId(conn) => {
                tracing::debug!(reader_id = %id, connection_id = %conn, "chronotrack connection")
            }
            Message::Pong => {}
            Message::Ack { command, args } => tracing::debug!(reader_id = %id, %command, ?args, "chronotrack ack"),
            Message::Error { command, message } if command == "start" => {
                return Err(LinkError::Protocol(format!("the chronotrack client refused start: {message}")));
            }
            Message::Error { command, message } => {
                tracing::warn!(reader_id = %id, %command, %message, "chronotrack client error");
            }
        }
        Ok(())
    }

    /// Starts every location not yet streaming, after the last stored line.
    async fn start(&mut self, locations: Vec<String>) -> Result<(), LinkError> {
        let seq = self.ctx.resume.get(self.ctx.id()).last_passing;
        if locations.is_empty() && self.started.is_empty() {
            // Without a location there is no resume point to give: everything comes again and
            // the outbox drops what it has.
            self.started.insert(String::new());
            return self.send(&Command::Start { location: None, seq: None }).await;
        }
        for l in locations {
            if self.started.insert(l.clone()) {
                tracing::info!(reader_id = %self.ctx.id(), location = %l, after = ?seq, "chronotrack stream starting");
                self.send(&Command::Start { location: Some(l), seq }).await?;
            }
        }
        Ok(())
    }

    async fn flush_reads(&mut self) -> Result<(), LinkError> {
        if self.reads.is_empty() {
            return Ok(());
        }
        let reads = std::mem::take(&mut self.reads);
        self.ctx.emit(LinkEvent::Reads { reader: self.ctx.id().to_string(), reads, ack: None }).await
    }

    async fn send(&mut self, c: &Command) -> Result<(), LinkError> {
        let mut out = Vec::new();
        c.encode(&mut out);
        self.io.write_all(&out).await?;
        self.io.flush().await?;
        Ok(())
    }
}
