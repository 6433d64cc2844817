//! MYLAPS Exporter: firmware-sim's exporter emulator dials the edge's listening transport.

use std::sync::Arc;

use edge_daemon::link::LinkEvent;
use event_config::edge::{Protocol, Transport as Kind};
use firmware_sim::Fault;
use firmware_sim::clock::ManualClock;
use firmware_sim::readers::{Endpoint, ReaderHandle};
use reader_protocol::{DecodeError, ReaderTime, TagRead};
use timing_core::{Rssi, Timestamp};

use crate::harness::*;

const ID: &str = "finish-mylaps";

/// What the emulator sends for a detection stored as record `counter`: Paris wall time in
/// milliseconds, one hit, amplitude and strongest antenna as asked in `AckPong`.
fn expected(chip: &str, reader_at: Timestamp, antenna: u16, rssi_tenths: i16, counter: u64) -> TagRead {
    TagRead {
        chip: chip.to_owned(),
        time: ReaderTime::LocalDateTime(local_us(reader_at, 1000)),
        antenna: Some(antenna),
        rssi: Some(Rssi(rssi_tenths)),
        passing_no: Some(counter * 10_000),
        session: None,
        hits: Some(1),
    }
}

/// Commands the emulator gets on each connection before any ack: `AckPong`, `GetLocations`,
/// `GetInfo` for its one location.
const HANDSHAKE_COMMANDS: u64 = 3;

async fn acked(h: &ReaderHandle, n_commands: u64) {
    eventually(&format!("{n_commands} commands at the exporter"), || h.stats().commands_received >= n_commands).await;
}

#[tokio::test]
async fn mylaps_acks_only_stored_passings_and_the_exporter_resends_the_rest() {
    let clock = Arc::new(ManualClock::new(t0() + ms(60_000)));
    let rc = reader_clock(-450, 0.0);
    let mut edge = Edge::start(ID, Protocol::Mylaps, Kind::Listen, "127.0.0.1:0", &clock).await;
    let addr = edge.addr.clone().expect("listening");
    let h = emulator(ID, Protocol::Mylaps, Endpoint::Connect(addr), rc, &clock).await;
    edge.up().await;
    let at = |n: i64| t0() + ms(1000 * n + 123);

    // A is handed over but not yet durable; B is stored and acknowledged.
    h.detect(det("DX93845", at(1), 2, -615));
    let (reads, ack_a) = edge.reads().await;
    assert_eq!(reads, vec![expected("DX93845", rc.reader_time(at(1)), 2, -615, 1)]);
    let ack_a = ack_a.expect("passings wait for an ack");
    h.detect(det("0000345", at(2), 3, -552));
    let (reads, ack_b) = edge.reads().await;
    assert_eq!(reads, vec![expected("0000345", rc.reader_time(at(2)), 3, -552, 2)]);
    edge.store(&reads);
    ack_b.expect("an ack").send(()).expect("the session waits for it");
    let mut n_commands = HANDSHAKE_COMMANDS + 1;
    acked(&h, n_commands).await;

    // C's record is cut mid-frame and the link closed: nothing is lost. The exporter resends
    // A (never acknowledged) and C, not B.
    h.fault(Fault::DropMidFrame);
    h.detect(det("DX93846", at(3), 1, -700));
    assert_eq!(edge.down().await, "the reader closed the connection");
    edge.up().await;
    let mut resent = Vec::new();
    for _ in 0..2 {
        let (reads, ack) = edge.reads().await;
        edge.store(&reads);
        ack.expect("an ack").send(()).expect("the session waits for it");
        resent.extend(reads);
    }
    assert_eq!(
        resent,
        vec![
            expected("DX93845", rc.reader_time(at(1)), 2, -615, 1),
            expected("DX93846", rc.reader_time(at(3)), 1, -700, 3),
        ]
    );
    assert!(ack_a.send(()).is_err(), "the first session is gone with its acks");
    n_commands += HANDSHAKE_COMMANDS + 2;
    acked(&h, n_commands).await;

    // The daemon drops D's ack (its store failed): no ack, the session ends, D comes again.
    h.detect(det("DX93847", at(4), 4, -580));
    let (reads, ack_d) = edge.reads().await;
    assert_eq!(reads, vec![expected("DX93847", rc.reader_time(at(4)), 4, -580, 4)]);
    drop(ack_d);
    let error = edge.down().await;
    assert!(error.contains("the reads of record 4 were not stored"), "{error}");
    edge.up().await;
    let (reads, ack) = edge.reads().await;
    assert_eq!(reads, vec![expected("DX93847", rc.reader_time(at(4)), 4, -580, 4)]);
    edge.store(&reads);
    ack.expect("an ack").send(()).expect("the session waits for it");
    n_commands += HANDSHAKE_COMMANDS + 1;
    acked(&h, n_commands).await;

    // The gunshot marker is a gun event (a time of day: markers carry no date), acknowledged.
    h.gun(at(5));
    match edge.next().await {
        LinkEvent::Gun { at: gun, .. } => {
            let tod = local_us(rc.reader_time(at(5)), 1000).rem_euclid(86_400_000_000);
            assert_eq!(gun, ReaderTime::TimeOfDay(tod));
        }
        e => panic!("expected the gun, got {e:?}"),
    }
    n_commands += 1;
    acked(&h, n_commands).await;

    // Garbage between two passings: reported, the neighbours intact.
    h.detect(det("DX93848", at(6), 1, -600));
    let (e_reads, ack) = edge.reads().await;
    ack.expect("an ack").send(()).expect("the session waits for it");
    h.fault(Fault::Garbage(b"no function here".to_vec()));
    h.detect(det("DX93849", at(7), 2, -610));
    match edge.next().await {
        LinkEvent::Malformed { error: DecodeError::Malformed { protocol, reason, .. }, .. } => {
            assert_eq!((protocol, reason.as_str()), ("mylaps", "record without a function"))
        }
        e => panic!("expected the garbage reported, got {e:?}"),
    }
    let (f_reads, ack) = edge.reads().await;
    ack.expect("an ack").send(()).expect("the session waits for it");
    assert_eq!(
        (e_reads, f_reads),
        (
            vec![expected("DX93848", rc.reader_time(at(6)), 1, -600, 6)],
            vec![expected("DX93849", rc.reader_time(at(7)), 2, -610, 7)]
        )
    );
    acked(&h, n_commands + 2).await;
    assert_eq!(h.stats().records_stored, 7);
    edge.stop().await;
    h.shutdown().await;
}
