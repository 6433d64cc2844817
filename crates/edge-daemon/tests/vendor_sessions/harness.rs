//! The edge side of a test: a link task over a real transport, its events, and a pretend store.

use std::sync::Arc;
use std::time::Duration;

use edge_daemon::link::{LinkCtx, LinkEvent, ResumeTable, Transport, run_link_on};
use event_config::edge::{Protocol, ReaderConfig, ReaderSim, Transport as Kind};
use firmware_sim::Detection;
use firmware_sim::clock::{ManualClock, ReaderClock};
use firmware_sim::readers::{Endpoint, ReaderHandle, ReaderSpec, spawn};
use reader_protocol::TagRead;
use timing_core::{Elapsed, Line, Rssi, Timestamp};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Failure guard for every wait.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// 2024-08-10T07:00:00Z: 09:00 in Paris, race morning.
pub(crate) fn t0() -> Timestamp {
    Timestamp::from_secs(1_723_273_200)
}

pub(crate) fn ms(n: i64) -> Elapsed {
    Elapsed::from_millis(n)
}

pub(crate) fn paris() -> chrono_tz::Tz {
    chrono_tz::Europe::Paris
}

/// A reader clock `offset_ms` ahead of true time (behind when negative), drifting `ppm`.
pub(crate) fn reader_clock(offset_ms: i64, ppm: f64) -> ReaderClock {
    ReaderClock { offset: ms(offset_ms), drift_ppm: ppm, epoch: t0() }
}

pub(crate) fn det(chip: &str, at: Timestamp, antenna: u16, rssi_tenths: i16) -> Detection {
    Detection { chip: chip.to_owned(), at, antenna, rssi: Rssi(rssi_tenths) }
}

/// `at` on the Paris wall clock, truncated to `unit_us` ([`reader_protocol::ReaderTime::LocalDateTime`]).
pub(crate) fn local_us(at: Timestamp, unit_us: i64) -> i64 {
    let us = reader_protocol::time::local_date_time(at, paris()).expect("in range");
    us.div_euclid(unit_us) * unit_us
}

/// An emulator with the test's manual clock.
pub(crate) async fn emulator(
    id: &str,
    protocol: Protocol,
    endpoint: Endpoint,
    rc: ReaderClock,
    clock: &Arc<ManualClock>,
) -> ReaderHandle {
    let spec = ReaderSpec { id: id.to_owned(), protocol, endpoint, clock: rc, time_zone: paris(), store: None };
    spawn(spec, clock.clone()).await.expect("emulator starts")
}

/// Polls `done` until it holds (the emulators' counters have no change signal).
pub(crate) async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let polled = tokio::time::timeout(WAIT, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(polled.is_ok(), "{what}: not within {WAIT:?}");
}

/// One reader's link, run by the daemon's own loop.
pub(crate) struct Edge {
    pub(crate) id: String,
    pub(crate) resume: ResumeTable,
    /// Where a listening transport listens.
    pub(crate) addr: Option<String>,
    events: mpsc::Receiver<LinkEvent>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Edge {
    /// `address`: the reader's for `Tcp`, `127.0.0.1:0` for `Listen`.
    pub(crate) async fn start(
        id: &str,
        protocol: Protocol,
        transport: Kind,
        address: &str,
        clock: &Arc<ManualClock>,
    ) -> Edge {
        let reader = ReaderConfig {
            id: id.to_owned(),
            line: Line::Main,
            protocol,
            transport,
            address: Some(address.to_owned()),
            serial: None,
            time_zone: Some(paris()),
            clock_alarm: ms(50),
            sim: ReaderSim::default(),
            gun_waves: Vec::new(),
        };
        let transport = Transport::new(&reader).await.expect("the transport starts");
        let addr = transport.local_addr();
        let (events_tx, events) = mpsc::channel(64);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let resume = ResumeTable::default();
        let ctx = LinkCtx {
            reader,
            time_zone: paris(),
            events: events_tx,
            resume: resume.clone(),
            clock: clock.clone(),
            clock_interval: Duration::from_secs(60),
            shutdown: shutdown_rx,
        };
        let task = tokio::spawn(run_link_on(ctx, transport));
        Edge { id: id.to_owned(), resume, addr, events, shutdown, task }
    }

    pub(crate) async fn next(&mut self) -> LinkEvent {
        tokio::time::timeout(WAIT, self.events.recv()).await.expect("a link event in time").expect("the link runs")
    }

    pub(crate) async fn up(&mut self) {
        match self.next().await {
            LinkEvent::Up { reader, .. } => assert_eq!(reader, self.id),
            e => panic!("expected the link up, got {e:?}"),
        }
    }

    /// The next event, which must be `Down`: its error.
    pub(crate) async fn down(&mut self) -> String {
        match self.next().await {
            LinkEvent::Down { error, .. } => error,
            e => panic!("expected the link down, got {e:?}"),
        }
    }

    /// The next event, which must be `Reads`.
    pub(crate) async fn reads(&mut self) -> (Vec<TagRead>, Option<oneshot::Sender<()>>) {
        match self.next().await {
            LinkEvent::Reads { reads, ack, .. } => (reads, ack),
            e => panic!("expected reads, got {e:?}"),
        }
    }

    /// The next `n` reads, over as many events as they come in, for protocols without acks.
    pub(crate) async fn n_reads(&mut self, n: usize) -> Vec<TagRead> {
        let mut all = Vec::new();
        while all.len() < n {
            let (reads, ack) = self.reads().await;
            assert!(ack.is_none(), "no acks in this protocol");
            all.extend(reads);
        }
        assert_eq!(all.len(), n, "{all:?}");
        all
    }

    /// What the store writer does after a commit: the resume point moves on.
    pub(crate) fn store(&self, reads: &[TagRead]) {
        for r in reads {
            if let Some(p) = r.passing_no {
                self.resume.advance(&self.id, r.session, p);
            }
        }
    }

    pub(crate) async fn stop(self) {
        self.shutdown.send_replace(true);
        tokio::time::timeout(WAIT, self.task).await.expect("the link stops in time").expect("the link task ends");
    }
}
