//! RACE RESULT emulator against `reader_protocol::rfid::raceresult` over TCP and a pty.

use std::time::Instant;

use event_config::edge::Protocol;
use firmware_sim::Fault;
use firmware_sim::readers::Endpoint;
use reader_protocol::rfid::raceresult::{self as rr, Command, DecoderDate, DecoderTime, Message};
use reader_protocol::{DecodeError, ReaderTime, TagRead};
use timing_core::{Rssi, Timestamp};

use crate::common::*;

fn cmd(c: Command) -> Vec<u8> {
    bytes(|o| c.encode(o))
}

fn passing_read(chip: &str, reader_at: Timestamp, no: u64, file: u32, hits: u32, rssi: i16, antenna: u16) -> TagRead {
    TagRead {
        chip: chip.to_owned(),
        time: ReaderTime::LocalDateTime(local_us(reader_at, 1000)),
        antenna: Some(antenna),
        rssi: Some(Rssi(rssi)),
        passing_no: Some(no),
        session: Some(file),
        hits: Some(hits),
    }
}

fn tag_read(m: Message) -> TagRead {
    m.to_tag_read().unwrap_or_else(|| panic!("expected a passing, got {m:?}"))
}

async fn push_on<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(c: &mut Client<S>, include_stored: bool) {
    c.send(&cmd(Command::SetPushPassings { enabled: true, include_stored })).await;
    assert_eq!(
        c.next_ok(rr::decode).await,
        Message::PushPassings { enabled: true, include_stored: Some(include_stored) }
    );
}

#[tokio::test]
async fn crossings_become_one_passing_each_pushed_and_pulled() {
    let clock = manual(t0());
    let rc = reader_clock(2500, 0.0);
    let h = start(spec("finish-main", Protocol::Raceresult, Endpoint::Listen(localhost()), rc), &clock).await;
    let mut c = Client::tcp(h.local_addr().expect("listening")).await;
    push_on(&mut c, false).await;

    let a0 = t0() + ms(100);
    h.detect(det("ZICAD30", a0, 1, -600));
    h.detect(det("ZICAD30", a0 + ms(200), 2, -550));
    h.detect(det("ZCMBG52", a0 + ms(300), 3, -700));
    h.detect(det("ZICAD30", a0 + ms(400), 1, -580));
    assert_eq!(h.stats().records_stored, 0, "crossings stay open until a second of quiet");
    // One second of quiet for both chips in simulation time.
    clock.set(a0 + ms(1500));

    let first = passing_read("ZICAD30", rc.reader_time(a0), 1, 1, 3, -550, 2);
    let second = passing_read("ZCMBG52", rc.reader_time(a0 + ms(300)), 2, 1, 1, -700, 3);
    let p1 = c.next_ok(rr::decode).await;
    assert!(matches!(p1, Message::PushedPassing(_)), "{p1:?}");
    assert_eq!(tag_read(p1), first);
    assert_eq!(tag_read(c.next_ok(rr::decode).await), second);

    c.send(&cmd(Command::Passings)).await;
    assert_eq!(c.next_ok(rr::decode).await, Message::Passings { count: 2, file_no: Some(1) });
    c.send(&cmd(Command::GetPassings { from: 1, count: 2 })).await;
    assert_eq!(tag_read(c.next_ok(rr::decode).await), first);
    assert_eq!(tag_read(c.next_ok(rr::decode).await), second);
    assert_eq!(c.next_ok(rr::decode).await, Message::EndOfBatch);
    c.send(&cmd(Command::GetPassing(2))).await;
    assert_eq!(tag_read(c.next_ok(rr::decode).await), second);

    let stats = h.stats();
    assert_eq!((stats.records_stored, stats.records_sent, stats.clients_connected), (2, 5, 1));
    h.shutdown().await;
}

#[tokio::test]
async fn a_reconnecting_client_replays_the_missed_passings_once() {
    // The simulation is well past the detections: each is a finished crossing the moment it is seen.
    let clock = manual(t0() + ms(60_000));
    let rc = reader_clock(-1200, 15.0);
    let h = start(spec("km7-main", Protocol::Raceresult, Endpoint::Listen(localhost()), rc), &clock).await;
    let addr = h.local_addr().expect("listening");

    let mut a = Client::tcp(addr).await;
    push_on(&mut a, false).await;
    h.detect(det("1001", t0() + ms(1000), 1, -610));
    assert_eq!(tag_read(a.next_ok(rr::decode).await).passing_no, Some(1));
    drop(a);

    h.detect(det("1002", t0() + ms(3000), 2, -620));
    h.detect(det("1003", t0() + ms(3500), 1, -630));
    within(h.wait_for_records(3)).await;

    let mut b = Client::tcp(addr).await;
    b.send(&cmd(Command::Passings)).await;
    assert_eq!(b.next_ok(rr::decode).await, Message::Passings { count: 3, file_no: Some(1) });
    b.send(&cmd(Command::GetPassings { from: 2, count: 32 })).await;
    let mut replayed = Vec::new();
    loop {
        match b.next_ok(rr::decode).await {
            Message::EndOfBatch => break,
            m => replayed.push(tag_read(m)),
        }
    }
    assert_eq!(
        replayed,
        vec![
            passing_read("1002", rc.reader_time(t0() + ms(3000)), 2, 1, 1, -620, 2),
            passing_read("1003", rc.reader_time(t0() + ms(3500)), 3, 1, 1, -630, 1),
        ]
    );
    // Push with stored passings: the whole file once, then live ones.
    push_on(&mut b, true).await;
    let nos: Vec<Option<u64>> = [b.next_ok(rr::decode).await, b.next_ok(rr::decode).await, b.next_ok(rr::decode).await]
        .into_iter()
        .map(|m| tag_read(m).passing_no)
        .collect();
    assert_eq!(nos, vec![Some(1), Some(2), Some(3)]);
    h.gun(t0() + ms(5000));
    let gun = tag_read(b.next_ok(rr::decode).await);
    assert_eq!((gun.chip.as_str(), gun.passing_no), (rr::MARKER_PREFIX, Some(4)));
    h.shutdown().await;
}

#[tokio::test]
async fn reboot_starts_a_new_file_and_the_store_file_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("store/finish-main.txt");
    let clock = manual(t0() + ms(60_000));
    let rc = reader_clock(0, 0.0);
    let mut s = spec("finish-main", Protocol::Raceresult, Endpoint::Listen(localhost()), rc);
    s.store = Some(store.clone());
    let h = start(s.clone(), &clock).await;
    let addr = h.local_addr().expect("listening");
    h.detect(det("AAA", t0() + ms(1000), 1, -600));
    within(h.wait_for_records(1)).await;

    let mut c = Client::tcp(addr).await;
    c.send(&cmd(Command::Passings)).await;
    assert_eq!(c.next_ok(rr::decode).await, Message::Passings { count: 1, file_no: Some(1) });
    h.fault(Fault::Reboot);
    c.until_eof().await;
    assert_eq!(h.stats().session, 2);

    let mut c = Client::tcp(addr).await;
    c.send(&cmd(Command::Passings)).await;
    assert_eq!(c.next_ok(rr::decode).await, Message::Passings { count: 0, file_no: Some(2) });
    h.detect(det("BBB", t0() + ms(2000), 1, -600));
    c.send(&cmd(Command::GetFile(1))).await;
    let old = tag_read(c.next_ok(rr::decode).await);
    assert_eq!((old.chip.as_str(), old.passing_no, old.session), ("AAA", Some(1), Some(1)));
    assert_eq!(c.next_ok(rr::decode).await, Message::EndOfBatch);
    drop(c);
    h.shutdown().await;

    // A restarted emulator on the same store is a power cycle: file 3, files 1 and 2 kept.
    let h = start(s, &clock).await;
    let mut c = Client::tcp(h.local_addr().expect("listening")).await;
    c.send(&cmd(Command::Passings)).await;
    assert_eq!(c.next_ok(rr::decode).await, Message::Passings { count: 0, file_no: Some(3) });
    c.send(&cmd(Command::GetFile(2))).await;
    let kept = tag_read(c.next_ok(rr::decode).await);
    assert_eq!((kept.chip.as_str(), kept.passing_no, kept.session), ("BBB", Some(1), Some(2)));
    assert_eq!(h.stats().records_stored, 2);
    h.shutdown().await;
}

#[tokio::test]
async fn gettime_shows_the_reader_clock_its_steps_and_settime() {
    let clock = manual(t0());
    let rc = reader_clock(3200, 20.0);
    let h = start(spec("start", Protocol::Raceresult, Endpoint::Listen(localhost()), rc), &clock).await;
    let mut c = Client::tcp(h.local_addr().expect("listening")).await;

    assert_eq!(get_time(&mut c).await, ReaderTime::LocalDateTime(local_us(rc.reader_time(t0()), 1000)));
    h.fault(Fault::ClockStep(ms(5000)));
    let mut stepped = rc;
    stepped.step(ms(5000));
    assert_eq!(get_time(&mut c).await, ReaderTime::LocalDateTime(local_us(stepped.reader_time(t0()), 1000)));

    let noon = DecoderTime { date: DecoderDate { year: 2024, month: 8, day: 10 }, time_of_day_us: 12 * 3_600_000_000 };
    c.send(&cmd(Command::SetTime(noon))).await;
    assert_eq!(c.next_ok(rr::decode).await, Message::TimeSet(noon));
    assert_eq!(get_time(&mut c).await, noon.reader_time());
    clock.advance(ms(1500));
    let later = DecoderTime { time_of_day_us: noon.time_of_day_us + 1_500_000, ..noon };
    assert_eq!(get_time(&mut c).await, later.reader_time());
    h.shutdown().await;
}

async fn get_time(c: &mut Client<tokio::net::TcpStream>) -> ReaderTime {
    c.send(&cmd(Command::GetTime)).await;
    match c.next_ok(rr::decode).await {
        Message::Time(t) => t.reader_time(),
        m => panic!("expected GETTIME, got {m:?}"),
    }
}

#[tokio::test]
async fn serial_line_over_a_pty() {
    let dir = tempfile::tempdir().expect("temp dir");
    let link = tty_link(&dir, "start-backup");
    let clock = manual(t0() + ms(60_000));
    let rc = reader_clock(-700, 0.0);
    let h =
        start(spec("start-backup", Protocol::Raceresult, Endpoint::Serial { link: link.clone() }, rc), &clock).await;
    assert_eq!(h.tty_path(), Some(link.clone()));
    let mut c = Client::tty(&link);
    c.send(&cmd(Command::Ping)).await;
    assert_eq!(c.next_ok(rr::decode).await, Message::Pong);
    push_on(&mut c, false).await;
    h.detect(det("ZSER001", t0() + ms(4000), 4, -640));
    assert_eq!(
        tag_read(c.next_ok(rr::decode).await),
        passing_read("ZSER001", rc.reader_time(t0() + ms(4000)), 1, 1, 1, -640, 4)
    );
    assert_eq!(h.stats().clients_connected, 1);
    h.shutdown().await;
    assert!(!link.exists(), "the tty link goes with the emulator");
}

#[tokio::test]
async fn faults_cut_frames_write_garbage_and_stall_without_losing_passings() {
    let clock = manual(t0() + ms(60_000));
    let rc = reader_clock(0, 0.0);
    let h = start(spec("finish-main", Protocol::Raceresult, Endpoint::Listen(localhost()), rc), &clock).await;
    let addr = h.local_addr().expect("listening");

    // Drop mid-frame: half a pushed passing, then the connection closes.
    let mut c = Client::tcp(addr).await;
    push_on(&mut c, false).await;
    h.fault(Fault::DropMidFrame);
    h.detect(det("CUT0001", t0() + ms(1000), 1, -600));
    let partial = c.until_eof().await;
    assert!(partial.starts_with(b"#P;1;CUT"), "{:?}", String::from_utf8_lossy(&partial));
    assert!(!partial.ends_with(b"\n"), "the frame was cut: {:?}", String::from_utf8_lossy(&partial));

    // The next connection works and still has the passing.
    let mut c = Client::tcp(addr).await;
    c.send(&cmd(Command::GetPassings { from: 1, count: 1 })).await;
    assert_eq!(tag_read(c.next_ok(rr::decode).await).chip, "CUT0001");
    assert_eq!(c.next_ok(rr::decode).await, Message::EndOfBatch);

    // Garbage between frames: one bad line at the client, the neighbours intact.
    push_on(&mut c, false).await;
    h.fault(Fault::Garbage(b"\x01\x02\xfe garbled".to_vec()));
    h.detect(det("NEXT002", t0() + ms(2000), 1, -600));
    h.detect(det("NEXT003", t0() + ms(2500), 1, -600));
    assert!(matches!(c.next(rr::decode).await, Err(DecodeError::Malformed { .. })));
    assert_eq!(tag_read(c.next_ok(rr::decode).await).passing_no, Some(2));
    assert_eq!(tag_read(c.next_ok(rr::decode).await).passing_no, Some(3));

    // Stall: nothing answered for the stall's length, detections still stored meanwhile.
    let stall = std::time::Duration::from_millis(400);
    let began = Instant::now();
    h.fault(Fault::Stall(stall));
    c.send(&cmd(Command::Ping)).await;
    h.detect(det("STALL04", t0() + ms(3000), 1, -600));
    within(h.wait_for_records(4)).await;
    assert!(began.elapsed() < stall, "stored during the stall");
    let first = c.next_ok(rr::decode).await;
    assert!(began.elapsed() >= stall - std::time::Duration::from_millis(50), "answered during the stall");
    let second = c.next_ok(rr::decode).await;
    let (pong, pushed) = if first == Message::Pong { (first, second) } else { (second, first) };
    assert_eq!(pong, Message::Pong);
    assert_eq!(tag_read(pushed).passing_no, Some(4));

    // A malformed command is answered, counted, and the link carries on.
    c.send(b"SETTIME;yesterday;noon\r\n").await;
    assert_eq!(
        c.next_ok(rr::decode).await,
        Message::Reply { command: "ERROR".to_owned(), fields: vec!["SETTIME".to_owned()] }
    );
    c.send(&cmd(Command::Ping)).await;
    assert_eq!(c.next_ok(rr::decode).await, Message::Pong);
    assert_eq!(h.stats().bad_commands, 1);
    h.shutdown().await;
}

#[tokio::test]
async fn an_accelerated_race_clock_closes_crossings_by_itself() {
    use firmware_sim::clock::{AcceleratedClock, SharedClock};
    use timing_core::time::Clock;
    let race: std::sync::Arc<AcceleratedClock> = std::sync::Arc::new(AcceleratedClock::new(t0(), 20.0));
    let rc = reader_clock(900, 0.0);
    let shared: SharedClock = race.clone();
    let h = firmware_sim::readers::spawn(
        spec("finish-main", Protocol::Raceresult, Endpoint::Listen(localhost()), rc),
        shared,
    )
    .await
    .expect("emulator starts");
    let mut c = Client::tcp(h.local_addr().expect("listening")).await;
    push_on(&mut c, false).await;
    // Two seconds of race time ahead (100 ms of wall time), so both detections join one crossing.
    let first = race.now() + ms(2000);
    h.detect(det("ZFAST01", first, 1, -600));
    h.detect(det("ZFAST01", first + ms(100), 2, -580));
    // A second of race time is 50 ms of wall time: the crossing closes without help.
    assert_eq!(tag_read(c.next_ok(rr::decode).await), passing_read("ZFAST01", rc.reader_time(first), 1, 1, 2, -580, 2));
    h.shutdown().await;
}

/// Awaits `f`, failing the test after 10 s instead of hanging.
async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(10), f).await.expect("timed out")
}
