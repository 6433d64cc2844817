//! Reader emulators, one per decoder protocol, speaking `reader-protocol`'s codecs over real TCP
//! sockets and pseudo-terminals.
//!
//! [`spawn`] starts one emulated decoder from a [`ReaderSpec`]; the [`ReaderHandle`] feeds it
//! [`Detection`]s (chips seen at true UTC instants), gun triggers and [`Fault`]s, and reads its
//! [`ReaderStats`]. The emulator stamps every detection with its own [`ReaderClock`] (offset and
//! drift from the true time), keeps it in a passing store with the protocol's sequence numbers,
//! and serves it to its clients the way the real decoder does: live, on request, or replayed.
//!
//! | protocol | endpoint | one record per | sequence number | session |
//! |---|---|---|---|---|
//! | RACE RESULT | `Listen` (3601), `Serial` | crossing (detections merged until 1 s of quiet) | passing number, from 1 per file | file number (`STARTOPERATION`, reboot) |
//! | Ultra | `Listen` (23) | detection | log id, continuous | boot |
//! | IPICO | `Listen` (10000), `Serial` | detection | none on the wire (stored-read download) | boot |
//! | JChip | `Connect`, `Serial` | detection | record index, continuous | boot |
//! | MYLAPS Exporter | `Connect` | detection | message counter, continuous | software restart |
//! | ChronoTrack CTP01 | `Connect` | detection | line number, continuous | software restart |
//! | LLRP | `Listen` (5084) | detection, reported while a ROSpec is active | none | boot |
//!
//! Each protocol module documents the commands it answers and the choices made where the notes
//! in `hardware/readers/<vendor>.md` are unsure.
//!
//! Layout: `emulator` (state shared by handle, transport and connections), `session` (the
//! per-connection protocol interface), `link` (transports, fault injection), `store` (the
//! passing store and its file), `local_time` (reader wall-clock time), one module per protocol.
//!
//! Deliberately not here: radio behaviour (which detections happen is the caller's business,
//! see `race-sim`), TLS LLRP, the binary IPICO and MYLAPS P3 variants.

mod chronotrack;
mod emulator;
mod ipico;
mod jchip;
mod link;
mod llrp;
mod local_time;
mod mylaps;
mod raceresult;
mod session;
mod store;
mod ultra;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use event_config::edge::{Protocol, Transport};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use timing_core::Timestamp;

use crate::clock::{ReaderClock, SharedClock};
use crate::pty::Pty;
use crate::{Detection, Fault};
use emulator::{Device, Shared, State};
use store::{Numbering, Store};

/// What to emulate and where.
#[derive(Clone, Debug)]
pub struct ReaderSpec {
    pub id: String,
    pub protocol: Protocol,
    pub endpoint: Endpoint,
    /// The emulated decoder's clock error (offset, drift).
    pub clock: ReaderClock,
    /// For protocols that report local wall time or time of day.
    pub time_zone: chrono_tz::Tz,
    /// Optional file so the passing store survives an emulator restart.
    pub store: Option<PathBuf>,
}

/// How clients reach the emulator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// The decoder is a TCP server (RACE RESULT 3601, Ultra 23, IPICO 10000, LLRP 5084); port 0 allowed.
    Listen(SocketAddr),
    /// The decoder / vendor software connects to the edge (JChip, MYLAPS Exporter, ChronoTrack),
    /// reconnecting forever with backoff.
    Connect(String),
    /// A pty; the client opens `link` (RACE RESULT RS-232, IPICO serial, JChip serial).
    Serial { link: PathBuf },
}

/// Counters of one emulator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// Records in the passing store, every session (loaded from the store file included).
    pub records_stored: u64,
    /// Passing records written to clients, resends included (a frame cut by a fault is not).
    pub records_sent: u64,
    /// Open client links (a serial line counts as one while the emulator runs).
    pub clients_connected: u32,
    /// Current session: RACE RESULT file number, boot number for the others.
    pub session: u32,
    pub commands_received: u64,
    /// Commands that did not decode or were refused.
    pub bad_commands: u64,
}

/// A running emulator. Dropping it stops the emulator too (without waiting).
#[derive(Debug)]
pub struct ReaderHandle {
    shared: Arc<Shared>,
    local_addr: Option<SocketAddr>,
    tty_path: Option<PathBuf>,
    tasks: Vec<JoinHandle<()>>,
}

/// Starts an emulated decoder.
///
/// Fails when the endpoint does not suit the protocol (e.g. a serial Ultra), when the socket or
/// pty cannot be opened, or when the store file cannot be read or belongs to another protocol.
pub async fn spawn(spec: ReaderSpec, clock: SharedClock) -> io::Result<ReaderHandle> {
    check_endpoint(&spec)?;
    let numbering = match spec.protocol {
        Protocol::Raceresult => Numbering::PerSession,
        _ => Numbering::Continuous,
    };
    let reader_now = spec.clock.reader_time(clock.now());
    let store = Store::open(spec.store.as_deref(), spec.protocol.as_str(), numbering, reader_now)?;
    let state = State {
        clock: spec.clock,
        store,
        counters: Default::default(),
        device: Device::new(spec.protocol),
        pending_faults: Vec::new(),
    };
    let shared = Arc::new(Shared::new(spec.id.clone(), spec.protocol, spec.time_zone, clock, state));
    let mut handle = ReaderHandle { shared: shared.clone(), local_addr: None, tty_path: None, tasks: Vec::new() };
    match &spec.endpoint {
        Endpoint::Listen(addr) => {
            let listener = TcpListener::bind(addr).await?;
            handle.local_addr = Some(listener.local_addr()?);
            handle.tasks.push(tokio::spawn(link::listen(shared.clone(), listener)));
        }
        Endpoint::Connect(address) => handle.tasks.push(tokio::spawn(link::connect(shared.clone(), address.clone()))),
        Endpoint::Serial { link: path } => {
            let pty = Pty::open(Some(path))?;
            handle.tty_path = Some(pty.path().to_path_buf());
            handle.tasks.push(tokio::spawn(link::serial(shared.clone(), pty)));
        }
    }
    if spec.protocol == Protocol::Raceresult {
        handle.tasks.push(tokio::spawn(raceresult::crossing_timer(shared.clone())));
    }
    tracing::info!(
        reader_id = %spec.id,
        protocol = spec.protocol.as_str(),
        endpoint = ?spec.endpoint,
        local_addr = ?handle.local_addr,
        "reader emulator started"
    );
    Ok(handle)
}

/// The emulator's endpoint is the other side of the edge's transport.
fn check_endpoint(spec: &ReaderSpec) -> io::Result<()> {
    let (needed, what) = match spec.endpoint {
        Endpoint::Listen(_) => (Transport::Tcp, "listen for"),
        Endpoint::Connect(_) => (Transport::Listen, "connect to"),
        Endpoint::Serial { .. } => (Transport::Serial, "use a serial line with"),
    };
    if spec.protocol.transports().contains(&needed) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a {} reader ({}) cannot {what} the edge", spec.protocol.as_str(), spec.id),
        ))
    }
}

impl ReaderHandle {
    /// The bound address of a `Listen` endpoint (the real port when 0 was asked for).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The path clients open for a `Serial` endpoint.
    pub fn tty_path(&self) -> Option<PathBuf> {
        self.tty_path.clone()
    }

    /// The antenna saw a chip at a true UTC instant; the emulator stamps it with its own clock.
    pub fn detect(&self, d: Detection) {
        self.shared.detect(d);
    }

    /// A start-gun trigger at a true UTC instant, where the protocol has one (RACE RESULT marker
    /// passing, Ultra chip `0`, IPICO trigger event, MYLAPS `Gunshot` marker, ChronoTrack
    /// `guntime`); no-op for JChip and LLRP.
    pub fn gun(&self, at: Timestamp) {
        self.shared.gun(at);
    }

    pub fn fault(&self, f: Fault) {
        self.shared.fault(f);
    }

    pub fn stats(&self) -> ReaderStats {
        self.shared.stats()
    }

    /// Returns once the store holds at least `n` records (a RACE RESULT crossing is stored
    /// when it has been quiet for a second of race time, so after `detect` it may take a tick).
    pub async fn wait_for_records(&self, n: u64) {
        let mut changes = self.shared.records_tx.subscribe();
        while self.stats().records_stored < n {
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// Closes every link and stops the emulator; a RACE RESULT crossing still open is stored.
    pub async fn shutdown(mut self) {
        self.shared.shutdown_tx.send_replace(true);
        for task in std::mem::take(&mut self.tasks) {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task).await.is_err() {
                tracing::warn!(reader_id = %self.shared.id, "emulator task did not stop; aborting it");
                abort.abort();
            }
        }
        if self.shared.protocol == Protocol::Raceresult {
            raceresult::close_all_crossings(&mut self.shared.lock());
        }
        tracing::info!(reader_id = %self.shared.id, "reader emulator stopped");
    }
}

impl Drop for ReaderHandle {
    fn drop(&mut self) {
        self.shared.shutdown_tx.send_replace(true);
    }
}
