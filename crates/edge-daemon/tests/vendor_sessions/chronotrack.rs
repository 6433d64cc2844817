//! ChronoTrack CTP01: firmware-sim's SimpleClient emulator dials the edge's listening transport.

use std::collections::BTreeSet;
use std::sync::Arc;

use edge_daemon::link::LinkEvent;
use event_config::edge::{Protocol, Transport as Kind};
use firmware_sim::Fault;
use firmware_sim::clock::ManualClock;
use firmware_sim::readers::Endpoint;
use reader_protocol::{DecodeError, ReaderTime, TagRead};
use timing_core::Timestamp;

use crate::harness::*;

const ID: &str = "km35-main";

/// What the emulator sends for a detection on line `seq`: Paris wall time (`time-format=iso`)
/// in hundredths, the antenna port of `CT01_13`.
fn expected(chip: &str, reader_at: Timestamp, antenna: u16, seq: u64) -> TagRead {
    TagRead {
        chip: chip.to_owned(),
        time: ReaderTime::LocalDateTime(local_us(reader_at, 10_000)),
        antenna: Some(antenna),
        rssi: None,
        passing_no: Some(seq),
        session: None,
        hits: None,
    }
}

#[tokio::test]
async fn chronotrack_streams_history_then_resumes_after_the_last_stored_line() {
    let clock = Arc::new(ManualClock::new(t0() + ms(60_000)));
    let rc = reader_clock(1300, -25.0);
    let mut edge = Edge::start(ID, Protocol::Chronotrack, Kind::Listen, "127.0.0.1:0", &clock).await;
    let addr = edge.addr.clone().expect("listening");
    let h = emulator(ID, Protocol::Chronotrack, Endpoint::Connect(addr), rc, &clock).await;
    let at = |n: i64| t0() + ms(1000 * n + 317);
    let chips = ["9478", "9479", "9480", "9481", "9482", "9483", "9484"];
    let antenna = |n: usize| (n % 4 + 1) as u16;
    let seen = |n: usize| h.detect(det(chips[n], at(n as i64), antenna(n), -600));
    let tag = |n: usize, seq: u64| expected(chips[n], rc.reader_time(at(n as i64)), antenna(n), seq);
    let gun_at = t0() + ms(2500);
    // Two reads before the software first connects: a first session streams the history.
    seen(0);
    seen(1);

    edge.up().await;
    let mut received = Vec::new();
    let first = edge.n_reads(2).await;
    assert_eq!(first, vec![tag(0, 1), tag(1, 2)]);
    edge.store(&first);
    received.extend(first);

    // The gun line (line 3) is a gun event in reader wall time.
    h.gun(gun_at);
    match edge.next().await {
        LinkEvent::Gun { at: gun, .. } => {
            assert_eq!(gun, ReaderTime::LocalDateTime(local_us(rc.reader_time(gun_at), 10_000)))
        }
        e => panic!("expected the gun, got {e:?}"),
    }

    // Line 4 arrives but is not yet durable when line 5 is cut and the link drops.
    seen(2);
    let pending = edge.n_reads(1).await;
    assert_eq!(pending, vec![tag(2, 4)]);
    received.extend(pending);
    h.fault(Fault::DropMidFrame);
    seen(3);
    assert_eq!(edge.down().await, "the reader closed the connection");
    seen(4);

    // The new session starts after line 2, the last stored: the gun and line 4 come again.
    edge.up().await;
    match edge.next().await {
        LinkEvent::Gun { at: gun, .. } => {
            assert_eq!(gun, ReaderTime::LocalDateTime(local_us(rc.reader_time(gun_at), 10_000)))
        }
        e => panic!("expected the gun again, got {e:?}"),
    }
    let second = edge.n_reads(3).await;
    assert_eq!(second, vec![tag(2, 4), tag(3, 5), tag(4, 6)]);
    edge.store(&second);
    received.extend(second);
    let numbers: Vec<u64> = received.iter().filter_map(|r| r.passing_no).collect();
    let union: BTreeSet<u64> = numbers.iter().copied().collect();
    assert_eq!(union, BTreeSet::from([1, 2, 4, 5, 6]), "every tag line the emulator stored");
    assert_eq!(numbers.len() - union.len(), 1, "one line received twice: the one not yet stored");
    assert_eq!(edge.resume.get(ID).last_passing, Some(6));

    // Garbage between two lines: reported, the neighbours intact.
    h.fault(Fault::Garbage(b"CT01_13~x~garbage".to_vec()));
    seen(5);
    match edge.next().await {
        LinkEvent::Malformed { error: DecodeError::Malformed { protocol, .. }, .. } => {
            assert_eq!(protocol, "chronotrack")
        }
        e => panic!("expected the garbage reported, got {e:?}"),
    }
    seen(6);
    assert_eq!(edge.n_reads(1).await, vec![tag(5, 7)]);
    assert_eq!(edge.n_reads(1).await, vec![tag(6, 8)]);
    assert_eq!(h.stats().records_stored, 8);
    edge.stop().await;
    h.shutdown().await;
}
