//! LLRP: the edge is the client of firmware-sim's LLRP reader emulator.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use edge_daemon::link::{ClockSample, LinkEvent};
use event_config::edge::{Protocol, Transport as Kind};
use firmware_sim::Fault;
use firmware_sim::clock::{ManualClock, ReaderClock};
use firmware_sim::readers::{Endpoint, ReaderHandle};
use reader_protocol::rfid::llrp::{
    self, Body, EventTimestamp, LlrpStatus, Message, ReaderCapabilities, ReaderEventNotificationData,
    connection_attempt, status_code,
};
use reader_protocol::{ReaderTime, TagRead};
use timing_core::time::Clock;
use timing_core::{Rssi, Timestamp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::*;

const ID: &str = "finish-llrp";
const EPC_A: &str = "E2001018860B01290700D0D8";
const EPC_B: &str = "300833B2DDD9014000000000ABCD0001";
const EPC_C: &str = "E20000000000000000000C0C";
const EPC_D: &str = "E20000000000000000000D0D";

/// What the emulator reports for a detection: reader UTC time, whole dBm (half away from zero).
fn expected(epc: &str, reader_at: Timestamp, antenna: u16, rssi_tenths: i16) -> TagRead {
    let dbm = if rssi_tenths < 0 { -((-rssi_tenths + 5) / 10) } else { (rssi_tenths + 5) / 10 };
    TagRead {
        chip: epc.to_owned(),
        time: ReaderTime::Utc(reader_at),
        antenna: Some(antenna),
        rssi: Some(Rssi(dbm * 10)),
        passing_no: None,
        session: None,
        hits: Some(1),
    }
}

async fn start(rc: ReaderClock) -> (Arc<ManualClock>, ReaderHandle, Edge) {
    let clock = Arc::new(ManualClock::new(t0() + ms(60_000)));
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("an address");
    let h = emulator(ID, Protocol::Llrp, Endpoint::Listen(listen), rc, &clock).await;
    let addr = h.local_addr().expect("listening").to_string();
    let edge = Edge::start(ID, Protocol::Llrp, Kind::Tcp, &addr, &clock).await;
    (clock, h, edge)
}

/// A session comes up: the connection event and the ROSpec start are both clock samples (the
/// manual clock stands still, so both read the same). After the second one inventory runs.
async fn session_up(edge: &mut Edge, clock: &ManualClock, rc: ReaderClock) {
    edge.up().await;
    let now = clock.now();
    let sample = ClockSample {
        reader_time: ReaderTime::Utc(rc.reader_time(now)),
        sent: now,
        received: now,
        resolution: timing_core::Elapsed::from_micros(1),
    };
    for what in ["connection event", "rospec start event"] {
        match edge.next().await {
            LinkEvent::Clock { sample: s, .. } => assert_eq!(s, sample, "{what}"),
            e => panic!("expected the clock sample of the {what}, got {e:?}"),
        }
    }
}

#[tokio::test]
async fn llrp_flow_reads_a_refused_second_client_keepalives_and_a_silent_reader() {
    let rc = reader_clock(-250, 0.0);
    let (clock, h, mut edge) = start(rc).await;
    session_up(&mut edge, &clock, rc).await;

    let (a, b) = (t0() + ms(1000), t0() + ms(1100));
    h.detect(det(EPC_A, a, 1, -580));
    h.detect(det(EPC_B, b, 2, -615));
    assert_eq!(
        edge.n_reads(2).await,
        vec![expected(EPC_A, rc.reader_time(a), 1, -580), expected(EPC_B, rc.reader_time(b), 2, -615)]
    );

    // Another client is told a connection exists and closed; the edge's session carries on.
    let mut second = TcpStream::connect(h.local_addr().expect("listening")).await.expect("connect");
    let mut refused = Vec::new();
    tokio::time::timeout(WAIT, second.read_to_end(&mut refused)).await.expect("closed in time").expect("read");
    match llrp::decode(&mut refused).expect("decodes").map(|m| m.body) {
        Some(Body::ReaderEventNotification(d)) => {
            assert_eq!(d.connection_attempt, Some(connection_attempt::FAILED_CLIENT_INITIATED_CONNECTION_EXISTS))
        }
        m => panic!("expected the refusal event, got {m:?}"),
    }
    let c = t0() + ms(2000);
    h.detect(det(EPC_C, c, 3, -700));
    assert_eq!(edge.n_reads(1).await, vec![expected(EPC_C, rc.reader_time(c), 3, -700)]);

    // Keepalives every second are acknowledged: the emulator drops a link after three
    // unacknowledged ones, and this one lives through four.
    let acks_from = h.stats().commands_received;
    eventually("four keepalive acks", || h.stats().commands_received >= acks_from + 4).await;
    let d = t0() + ms(3000);
    h.detect(det(EPC_D, d, 4, -500));
    assert_eq!(edge.n_reads(1).await, vec![expected(EPC_D, rc.reader_time(d), 4, -500)]);

    // A reader that goes silent: no keepalive for three and a half periods ends the session.
    // While the stalled link still holds the reader, reconnects are refused; then one works.
    h.fault(Fault::Stall(Duration::from_secs(4)));
    let error = edge.down().await;
    assert!(error.contains("no answer from the reader for 3.5s"), "{error}");
    loop {
        edge.up().await;
        match edge.next().await {
            LinkEvent::Down { error, .. } => {
                assert!(error.contains("the reader refused the connection: another client is connected"), "{error}")
            }
            LinkEvent::Clock { .. } => break,
            e => panic!("expected a refusal or a clock sample, got {e:?}"),
        }
    }
    match edge.next().await {
        LinkEvent::Clock { sample, .. } => assert_eq!(sample.reader_time, ReaderTime::Utc(rc.reader_time(clock.now()))),
        e => panic!("expected the rospec start, got {e:?}"),
    }
    let e = t0() + ms(9000);
    h.detect(det(EPC_A, e, 1, -450));
    assert_eq!(edge.n_reads(1).await, vec![expected(EPC_A, rc.reader_time(e), 1, -450)]);
    edge.stop().await;
    h.shutdown().await;
}

#[tokio::test]
async fn llrp_reconnects_after_a_cut_report_and_after_a_desynced_stream() {
    let rc = reader_clock(1500, 20.0);
    let (clock, h, mut edge) = start(rc).await;
    session_up(&mut edge, &clock, rc).await;
    let a = t0() + ms(1000);
    h.detect(det(EPC_A, a, 1, -580));
    assert_eq!(edge.n_reads(1).await, vec![expected(EPC_A, rc.reader_time(a), 1, -580)]);

    // The report of B is cut and the link closed: B is lost at the reader (LLRP keeps no
    // passing file), the new session reports what comes next.
    h.fault(Fault::DropMidFrame);
    h.detect(det(EPC_B, t0() + ms(2000), 2, -580));
    assert_eq!(edge.down().await, "the reader closed the connection");
    session_up(&mut edge, &clock, rc).await;
    let c = t0() + ms(3000);
    h.detect(det(EPC_C, c, 2, -600));
    assert_eq!(edge.n_reads(1).await, vec![expected(EPC_C, rc.reader_time(c), 2, -600)]);

    // Garbage has no frame boundary to recover at: reported, then the session resets.
    h.fault(Fault::Garbage(b"\xff\xfe not llrp".to_vec()));
    match edge.next().await {
        LinkEvent::Malformed { error, .. } => assert!(error.is_fatal(), "{error}"),
        e => panic!("expected the desync, got {e:?}"),
    }
    let error = edge.down().await;
    assert!(error.starts_with("the reader stream lost its framing"), "{error}");
    session_up(&mut edge, &clock, rc).await;
    let d = t0() + ms(4000);
    h.detect(det(EPC_D, d, 4, -650));
    assert_eq!(edge.n_reads(1).await, vec![expected(EPC_D, rc.reader_time(d), 4, -650)]);
    assert_eq!(h.stats().records_stored, 4, "B was seen, stored and never delivered");
    edge.stop().await;
    h.shutdown().await;
}

/// A reader that refuses the first request: the session ends naming the request and the status.
#[tokio::test]
async fn llrp_a_refused_request_ends_the_session_naming_the_status() {
    let clock = Arc::new(ManualClock::new(t0()));
    let reader = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = reader.local_addr().expect("bound").to_string();
    let mut edge = Edge::start(ID, Protocol::Llrp, Kind::Tcp, &addr, &clock).await;
    let (mut io, _) = tokio::time::timeout(WAIT, reader.accept()).await.expect("the edge connects").expect("accept");
    let mut connected = ReaderEventNotificationData::at(EventTimestamp::Utc(t0().as_micros() as u64));
    connected.connection_attempt = Some(connection_attempt::SUCCESS);
    write(&mut io, Message::new(1, Body::ReaderEventNotification(connected))).await;
    let mut buf = Vec::new();
    let request = loop {
        if let Some(m) = llrp::decode(&mut buf).expect("the edge's request decodes") {
            break m;
        }
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(WAIT, io.read(&mut chunk)).await.expect("a request in time").expect("read");
        assert!(n > 0, "the edge hung up");
        buf.extend_from_slice(&chunk[..n]);
    };
    assert_eq!(request.body, Body::GetReaderCapabilities { requested_data: 1 });
    let status = LlrpStatus::error(status_code::M_FIELD_ERROR, "requested data 1 is not served");
    let refusal = ReaderCapabilities { status, ..ReaderCapabilities::default() };
    write(&mut io, Message::new(request.id, Body::GetReaderCapabilitiesResponse(Box::new(refusal)))).await;

    edge.up().await;
    assert!(matches!(edge.next().await, LinkEvent::Clock { .. }));
    assert_eq!(
        edge.down().await,
        "protocol: GET_READER_CAPABILITIES refused: M_FieldError (101): \"requested data 1 is not served\""
    );
    edge.stop().await;
}

async fn write(io: &mut TcpStream, m: Message) {
    let mut out = Vec::new();
    llrp::encode(&m, &mut out).expect("encodes");
    io.write_all(&out).await.expect("write");
}
