//! MYLAPS Exporter emulator against `reader_protocol::rfid::mylaps`: it dials a listening test
//! server, the way MYLAPS software connects to racetime.

use event_config::edge::Protocol;
use firmware_sim::Fault;
use firmware_sim::readers::Endpoint;
use reader_protocol::rfid::mylaps::{self, Command, Message, REQUESTED_FIELDS, SERVER_VERSION};
use reader_protocol::{ReaderTime, TagRead};
use timing_core::{Rssi, Timestamp};
use tokio::net::{TcpListener, TcpStream};

use crate::common::*;

const SERVER: &str = "racetime";

fn cmd(c: Command) -> Vec<u8> {
    bytes(|o| c.encode(o))
}

fn expected(chip: &str, reader_at: Timestamp, antenna: u16, rssi: i16) -> TagRead {
    TagRead {
        chip: chip.to_owned(),
        time: ReaderTime::LocalDateTime(local_us(reader_at, 1000)),
        antenna: Some(antenna),
        rssi: Some(Rssi(rssi)),
        passing_no: None,
        session: None,
        hits: Some(1),
    }
}

/// Accepts the emulator, takes its `Pong` and answers `AckPong` with racetime's field list.
async fn handshake(listener: &TcpListener) -> Client<TcpStream> {
    let mut c = accept(listener).await;
    assert_eq!(c.next_ok(mylaps::decode).await, Message::Pong { name: "finish-backup".to_owned() });
    c.send(&cmd(Command::AckPong {
        name: SERVER.to_owned(),
        version: SERVER_VERSION.to_owned(),
        fields: REQUESTED_FIELDS.iter().map(|f| (*f).to_owned()).collect(),
    }))
    .await;
    c
}

/// The next passing: its counter and tag read.
async fn passing(c: &mut Client<TcpStream>) -> (u64, TagRead) {
    match c.next_ok(mylaps::decode).await {
        m @ Message::Passings { .. } => {
            let Message::Passings { counter, .. } = &m else { unreachable!() };
            let reads = m.tag_reads();
            assert_eq!(reads.len(), 1, "one passing per record");
            (*counter, reads[0].clone())
        }
        m => panic!("expected a passing, got {m:?}"),
    }
}

#[tokio::test]
async fn passings_and_markers_are_resent_until_acknowledged() {
    let listener = TcpListener::bind(localhost()).await.expect("bind");
    let addr = listener.local_addr().expect("bound").to_string();
    let clock = manual(t0() + ms(60_000));
    let rc = reader_clock(-450, 0.0);
    let h = start(spec("finish-backup", Protocol::Mylaps, Endpoint::Connect(addr), rc), &clock).await;
    let (a, b, g) = (t0() + ms(1111), t0() + ms(2222), t0() + ms(3000));

    let mut c = handshake(&listener).await;
    h.detect(det("DX93845", a, 2, -615));
    h.detect(det("0000345", b, 3, -552));
    assert_eq!(passing(&mut c).await, (1, expected("DX93845", rc.reader_time(a), 2, -615)));
    assert_eq!(passing(&mut c).await, (2, expected("0000345", rc.reader_time(b), 3, -552)));
    h.gun(g);
    match c.next_ok(mylaps::decode).await {
        Message::Markers { markers, counter, .. } => {
            assert_eq!(counter, 3);
            assert!(markers[0].is_gunshot());
            assert_eq!(markers[0].time_of_day_us as i64, time_of_day_us(rc.reader_time(g), 1000));
        }
        m => panic!("expected the gun marker, got {m:?}"),
    }
    c.send(&cmd(Command::GetLocations { name: SERVER.to_owned() })).await;
    assert_eq!(
        c.next_ok(mylaps::decode).await,
        Message::Locations { name: "finish-backup".to_owned(), locations: vec!["finish-backup".to_owned()] }
    );
    c.send(&cmd(Command::Ping { name: SERVER.to_owned() })).await;
    assert_eq!(c.next_ok(mylaps::decode).await, Message::AckPing { name: "finish-backup".to_owned() });
    // Passing 2 is never acknowledged.
    c.send(&cmd(Command::AckPassing { name: SERVER.to_owned(), counter: 1 })).await;
    c.send(&cmd(Command::AckMarker { name: SERVER.to_owned(), counter: 3 })).await;
    drop(c);

    // The software reconnects and resends what was not acknowledged, then carries on live.
    let mut c = handshake(&listener).await;
    assert_eq!(passing(&mut c).await, (2, expected("0000345", rc.reader_time(b), 3, -552)));
    let d = t0() + ms(4444);
    h.detect(det("DX93846", d, 1, -700));
    assert_eq!(passing(&mut c).await, (4, expected("DX93846", rc.reader_time(d), 1, -700)));
    c.send(&cmd(Command::AckPassing { name: SERVER.to_owned(), counter: 2 })).await;
    c.send(&cmd(Command::AckPassing { name: SERVER.to_owned(), counter: 4 })).await;
    // A ping round trip: the acks were handled before the fault below.
    c.send(&cmd(Command::Ping { name: SERVER.to_owned() })).await;
    assert_eq!(c.next_ok(mylaps::decode).await, Message::AckPing { name: "finish-backup".to_owned() });

    // A frame cut in half: the next connection resends the whole passing.
    h.fault(Fault::DropMidFrame);
    let e = t0() + ms(5555);
    h.detect(det("DX93847", e, 1, -700));
    let partial = c.until_eof().await;
    assert!(partial.starts_with(b"finish-backup@Passing@"), "{:?}", String::from_utf8_lossy(&partial));
    assert!(!partial.ends_with(b"$"), "the record was cut");
    let mut c = handshake(&listener).await;
    assert_eq!(passing(&mut c).await, (5, expected("DX93847", rc.reader_time(e), 1, -700)));
    assert_eq!(h.stats().session, 1, "reconnects are not restarts");
    h.shutdown().await;
}
