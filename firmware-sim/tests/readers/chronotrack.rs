//! ChronoTrack CTP01 emulator against `reader_protocol::rfid::chronotrack`: it dials a listening
//! test server, the way SimpleClient connects to racetime.

use event_config::edge::Protocol;
use firmware_sim::readers::Endpoint;
use reader_protocol::rfid::chronotrack::{self, Command, Message, handshake};
use reader_protocol::{ReaderTime, TagRead};
use timing_core::Timestamp;
use tokio::net::{TcpListener, TcpStream};

use crate::common::*;

const LOCATION: &str = "km35-main";

fn cmd(c: Command) -> Vec<u8> {
    bytes(|o| c.encode(o))
}

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

/// Accepts SimpleClient's greeting and runs the server side of the handshake (iso times).
async fn connect(listener: &TcpListener) -> Client<TcpStream> {
    let mut c = accept(listener).await;
    match c.next_ok(chronotrack::decode).await {
        Message::Greeting { name, protocol, .. } => {
            assert_eq!((name.as_str(), protocol.as_str()), ("SimpleClient", "CTP01"))
        }
        m => panic!("expected the greeting, got {m:?}"),
    }
    for command in handshake("racetime", "1.0") {
        c.send(&cmd(command)).await;
    }
    assert!(matches!(c.next_ok(chronotrack::decode).await, Message::ConnectionId(_)));
    assert!(matches!(c.next_ok(chronotrack::decode).await, Message::EventInfo { .. }));
    assert_eq!(c.next_ok(chronotrack::decode).await, Message::Locations(vec![LOCATION.to_owned()]));
    c
}

async fn read(c: &mut Client<TcpStream>) -> TagRead {
    match c.next_ok(chronotrack::decode).await {
        m @ Message::Read(_) => m.to_tag_read().expect("a tag read"),
        m => panic!("expected a tag line, got {m:?}"),
    }
}

#[tokio::test]
async fn handshake_stream_gun_times_and_resume_after_a_sequence_number() {
    let listener = TcpListener::bind(localhost()).await.expect("bind");
    let addr = listener.local_addr().expect("bound").to_string();
    let clock = manual(t0() + ms(60_000));
    let rc = reader_clock(1300, -25.0);
    let h = start(spec(LOCATION, Protocol::Chronotrack, Endpoint::Connect(addr), rc), &clock).await;
    let at = |n: i64| t0() + ms(1000 * n + 317);
    h.detect(det("9478", at(1), 1, -600));
    h.detect(det("9479", at(2), 2, -600));

    let mut c = connect(&listener).await;
    c.send(&cmd(Command::Start { location: Some(LOCATION.to_owned()), seq: None })).await;
    assert_eq!(read(&mut c).await, expected("9478", rc.reader_time(at(1)), 1, 1));
    assert_eq!(read(&mut c).await, expected("9479", rc.reader_time(at(2)), 2, 2));
    h.gun(at(3));
    match c.next_ok(chronotrack::decode).await {
        Message::GunTime(r) => {
            assert_eq!(r.seq, 3);
            assert_eq!(r.time.reader_time(), ReaderTime::LocalDateTime(local_us(rc.reader_time(at(3)), 10_000)));
        }
        m => panic!("expected the gun time, got {m:?}"),
    }
    h.detect(det("9480", at(4), 3, -600));
    assert_eq!(read(&mut c).await, expected("9480", rc.reader_time(at(4)), 3, 4));
    c.send(&cmd(Command::Ping)).await;
    assert_eq!(c.next_ok(chronotrack::decode).await, Message::Pong);
    drop(c);

    // SimpleClient redials; the server resumes after the last line it has.
    h.detect(det("9481", at(5), 4, -600));
    let mut c = connect(&listener).await;
    c.send(&cmd(Command::Start { location: Some(LOCATION.to_owned()), seq: Some(4) })).await;
    assert_eq!(read(&mut c).await, expected("9481", rc.reader_time(at(5)), 4, 5));
    c.send(&cmd(Command::Start { location: Some("elsewhere".to_owned()), seq: None })).await;
    assert!(matches!(c.next_ok(chronotrack::decode).await, Message::Error { command, .. } if command == "start"));
    c.send(&cmd(Command::Stop { location: None })).await;
    assert!(matches!(c.next_ok(chronotrack::decode).await, Message::Ack { command, .. } if command == "stop"));
    let stats = h.stats();
    assert_eq!((stats.records_stored, stats.bad_commands), (5, 1));
    // Line 5 may also have gone to the first link before it noticed the hang-up.
    assert!((5..=6).contains(&stats.records_sent), "{stats:?}");
    h.shutdown().await;
}
