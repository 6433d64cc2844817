//! The harness: an emulator, a `run_link` task with its `LinkCtx`, and an event log that plays
//! the store writer (every read received advances the resume table, as a commit would).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use edge_daemon::link::{ClockSample, LinkCtx, LinkEvent, ResumeTable, Transport, run_link_on};
use event_config::edge::{FlowControl, Parity, Protocol, ReaderConfig, ReaderSim, SerialSettings, Transport as Kind};
use firmware_sim::Detection;
use firmware_sim::clock::{ManualClock, ReaderClock};
use firmware_sim::readers::{Endpoint, ReaderHandle, ReaderSpec, spawn};
use reader_protocol::{DecodeError, ReaderTime, TagRead};
use timing_core::{Elapsed, Line, Rssi, Timestamp};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Failure guard for every wait.
pub(crate) const WAIT: Duration = Duration::from_secs(10);
/// The clock interval of most tests: the silence limit is three of them.
pub(crate) const CLOCK_INTERVAL: Duration = Duration::from_millis(500);

/// 2024-08-10T07:00:00Z: 09:00 in Paris, race morning.
pub(crate) fn t0() -> Timestamp {
    Timestamp::from_secs(1_723_273_200)
}

pub(crate) fn ms(n: i64) -> Elapsed {
    Elapsed::from_millis(n)
}

pub(crate) fn paris() -> Tz {
    chrono_tz::Europe::Paris
}

/// A reader clock `offset_ms` off true time, no drift.
pub(crate) fn reader_clock(offset_ms: i64) -> ReaderClock {
    ReaderClock { offset: ms(offset_ms), drift_ppm: 0.0, epoch: t0() }
}

pub(crate) fn det(chip: &str, at: Timestamp, antenna: u16, rssi_tenths: i16) -> Detection {
    Detection { chip: chip.to_owned(), at, antenna, rssi: Rssi(rssi_tenths) }
}

/// `ReaderTime::LocalDateTime` microseconds of `at` in Paris, truncated to `unit_us`.
pub(crate) fn local_us(at: Timestamp, unit_us: i64) -> i64 {
    let us = reader_protocol::time::local_micros(at, paris()).expect("in range");
    us.div_euclid(unit_us) * unit_us
}

/// The reader clock's offset a sample shows: the reader's instant minus the edge's midpoint.
pub(crate) fn sample_offset(s: &ClockSample) -> (Elapsed, Elapsed) {
    let reader = reader_protocol::time::resolve(s.reader_time, paris(), s.sent).expect("a reader instant");
    let half_round_trip = Elapsed::from_micros(s.received.since(s.sent).as_micros() / 2);
    let midpoint = s.sent + half_round_trip;
    (reader.since(midpoint), half_round_trip)
}

/// Asserts a sample's offset matches the emulator's within the round trip and `resolution`.
#[track_caller]
pub(crate) fn assert_offset(s: &ClockSample, expected: Elapsed, resolution: Elapsed) {
    let (offset, half_round_trip) = sample_offset(s);
    let error = (offset - expected).as_micros().abs();
    assert!(
        error <= (half_round_trip + resolution).as_micros(),
        "offset {offset:?}, expected {expected:?} ± {half_round_trip:?} + {resolution:?} ({s:?})"
    );
}

pub(crate) async fn emulator(
    id: &str,
    protocol: Protocol,
    endpoint: Endpoint,
    clock: ReaderClock,
    sim: &Arc<ManualClock>,
) -> ReaderHandle {
    let spec = ReaderSpec { id: id.to_owned(), protocol, endpoint, clock, time_zone: paris(), store: None };
    spawn(spec, sim.clone()).await.expect("emulator starts")
}

pub(crate) fn localhost() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().expect("an address")
}

pub(crate) fn tty_link(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join("tty").join(name)
}

/// The edge's configuration of one reader.
pub(crate) fn reader(id: &str, protocol: Protocol, transport: Kind, address: Option<String>) -> ReaderConfig {
    ReaderConfig {
        id: id.to_owned(),
        line: Line::Main,
        protocol,
        transport,
        address,
        serial: None,
        time_zone: Some(paris()),
        clock_alarm: ms(500),
        sim: ReaderSim::default(),
        gun_waves: Vec::new(),
    }
}

pub(crate) fn serial_reader(id: &str, protocol: Protocol, device: PathBuf) -> ReaderConfig {
    let mut r = reader(id, protocol, Kind::Serial, None);
    r.serial = Some(SerialSettings {
        device,
        baud: 9600,
        data_bits: 8,
        parity: Parity::None,
        stop_bits: 1,
        flow_control: FlowControl::None,
    });
    r
}

/// What the link reported, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    Up,
    Down(String),
    /// The reads of one batch: `reads[from..to]`.
    Reads(usize, usize),
    Malformed,
    Clock,
    Gun(ReaderTime),
    Health(Option<String>),
}

/// A running link and everything it reported.
pub(crate) struct Link {
    id: String,
    events: mpsc::Receiver<LinkEvent>,
    pub(crate) resume: ResumeTable,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
    pub(crate) log: Vec<Seen>,
    pub(crate) reads: Vec<TagRead>,
    pub(crate) malformed: Vec<DecodeError>,
    pub(crate) clocks: Vec<ClockSample>,
    /// A listening transport's address (JChip: the emulator dials it).
    pub(crate) listen_addr: Option<String>,
}

impl Link {
    pub(crate) async fn start(reader: ReaderConfig, edge_clock: &Arc<ManualClock>, clock_interval: Duration) -> Link {
        Link::resuming(reader, edge_clock, clock_interval, ResumeTable::default()).await
    }

    /// A link whose store already holds what `resume` says (an edge restarted mid-race).
    pub(crate) async fn resuming(
        reader: ReaderConfig,
        edge_clock: &Arc<ManualClock>,
        clock_interval: Duration,
        resume: ResumeTable,
    ) -> Link {
        let transport = Transport::new(&reader).await.expect("the transport starts");
        let listen_addr = transport.local_addr();
        let (events_tx, events) = mpsc::channel(64);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let ctx = LinkCtx {
            reader: reader.clone(),
            time_zone: paris(),
            events: events_tx,
            resume: resume.clone(),
            clock: edge_clock.clone(),
            clock_interval,
            shutdown: shutdown_rx,
        };
        let task = tokio::spawn(run_link_on(ctx, transport));
        Link {
            id: reader.id,
            events,
            resume,
            shutdown,
            task,
            log: Vec::new(),
            reads: Vec::new(),
            malformed: Vec::new(),
            clocks: Vec::new(),
            listen_addr,
        }
    }

    fn record(&mut self, event: LinkEvent) {
        match event {
            LinkEvent::Up { reader, .. } => {
                assert_eq!(reader, self.id);
                self.log.push(Seen::Up);
            }
            LinkEvent::Down { error, .. } => self.log.push(Seen::Down(error)),
            LinkEvent::Reads { reader, reads, ack } => {
                assert_eq!(reader, self.id);
                assert!(ack.is_none(), "text protocols need no ack");
                assert!(!reads.is_empty(), "an empty batch");
                // The store writer commits, then the resume point moves.
                for r in &reads {
                    if let Some(no) = r.passing_no {
                        self.resume.advance(&self.id, r.session, no);
                    }
                }
                let from = self.reads.len();
                self.reads.extend(reads);
                self.log.push(Seen::Reads(from, self.reads.len()));
            }
            LinkEvent::Malformed { error, .. } => {
                self.malformed.push(error);
                self.log.push(Seen::Malformed);
            }
            LinkEvent::Clock { sample, .. } => {
                self.clocks.push(sample);
                self.log.push(Seen::Clock);
            }
            LinkEvent::Gun { at, .. } => self.log.push(Seen::Gun(at)),
            LinkEvent::Health { diagnosis, .. } => self.log.push(Seen::Health(diagnosis)),
        }
    }

    /// Takes events until `done` holds; panics after [`WAIT`] naming `what`.
    pub(crate) async fn until(&mut self, what: &str, mut done: impl FnMut(&Link) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !done(self) {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => self.record(event),
                Ok(None) => panic!("the link ended while waiting for {what}"),
                Err(_) => panic!("timed out waiting for {what}; log: {:?}; reads: {:?}", self.log, self.reads),
            }
        }
    }

    /// Every distinct read received, in first-arrival order.
    pub(crate) fn unique(&self) -> Vec<TagRead> {
        let mut seen = HashSet::new();
        self.reads.iter().filter(|r| seen.insert((*r).clone())).cloned().collect()
    }

    pub(crate) fn overlaps(&self) -> usize {
        self.reads.len() - self.unique().len()
    }

    pub(crate) fn ups(&self) -> usize {
        self.log.iter().filter(|s| **s == Seen::Up).count()
    }

    pub(crate) async fn wait_unique(&mut self, n: usize) {
        self.until(&format!("{n} distinct reads"), |l| l.unique().len() >= n).await;
    }

    pub(crate) async fn wait_ups(&mut self, n: usize) {
        self.until(&format!("{n} sessions"), |l| l.ups() >= n).await;
    }

    pub(crate) async fn wait_clock(&mut self) -> ClockSample {
        let n = self.clocks.len();
        self.until("a clock sample", |l| l.clocks.len() > n).await;
        self.clocks[n]
    }

    pub(crate) async fn stop(self) {
        self.shutdown.send_replace(true);
        tokio::time::timeout(WAIT, self.task).await.expect("the link stops in time").expect("the link task");
    }
}

/// What a UART receiving at `rx_baud` makes of `bytes` sent at `tx_baud` (8N1), a framing error
/// delivered as NUL: a copy of firmware-sim's `modbus::line::resample`, which is crate-private.
pub(crate) fn resample(bytes: &[u8], tx_baud: u32, rx_baud: u32) -> Vec<u8> {
    let (tx, rx) = (u64::from(tx_baud), u64::from(rx_baud));
    let n_bits = bytes.len() as u64 * 10;
    let level = |bit: u64| -> bool {
        if bit >= n_bits {
            return true;
        }
        match bit % 10 {
            0 => false,
            9 => true,
            k => (bytes[(bit / 10) as usize] >> (k - 1)) & 1 == 1,
        }
    };
    let level_at = |t: u64| level(t / (2 * rx));
    let mut out = Vec::new();
    let mut t = 0u64;
    loop {
        let mut k = t.div_ceil(2 * rx);
        while k < n_bits && !(!level(k) && (k == 0 || level(k - 1))) {
            k += 1;
        }
        if k >= n_bits {
            return out;
        }
        let t0 = k * 2 * rx;
        if level_at(t0 + tx) {
            t = t0 + tx;
            continue;
        }
        let mut byte = 0u8;
        for j in 1..=8u64 {
            if level_at(t0 + (2 * j + 1) * tx) {
                byte |= 1 << (j - 1);
            }
        }
        let stop = t0 + 19 * tx;
        out.push(if level_at(stop) { byte } else { 0 });
        t = stop + 1;
    }
}
