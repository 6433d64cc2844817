//! Ultra emulator against `reader_protocol::rfid::ultra` over TCP.

use chrono::{Datelike, Timelike};
use event_config::edge::Protocol;
use firmware_sim::Fault;
use firmware_sim::readers::Endpoint;
use reader_protocol::rfid::ultra::{self, ChipRead, Command, EPOCH_1980_SECS, Message, UltraClock};
use reader_protocol::{ReaderTime, TagRead};
use timing_core::{Rssi, Timestamp};
use tokio::net::TcpStream;

use crate::common::*;

fn cmd(c: Command) -> Vec<u8> {
    bytes(|o| c.encode(o))
}

/// The next read line, skipping heartbeats.
async fn next_read(c: &mut Client<TcpStream>) -> ChipRead {
    c.next_where(ultra::decode, |m| match m {
        Message::Read(r) => Some(r),
        _ => None,
    })
    .await
}

async fn banner(c: &mut Client<TcpStream>) {
    assert!(matches!(c.next_ok(ultra::decode).await, Message::Connected(s) if s.contains("km7-main")));
}

async fn get_clock(c: &mut Client<TcpStream>) -> UltraClock {
    c.send(&cmd(Command::GetClock)).await;
    c.next_where(ultra::decode, |m| match m {
        Message::Clock(k) => Some(k),
        _ => None,
    })
    .await
}

fn ultra_clock(at: Timestamp) -> UltraClock {
    let l = local(at);
    UltraClock {
        year: l.year() as u16,
        month: l.month() as u8,
        day: l.day() as u8,
        hour: l.hour() as u8,
        minute: l.minute() as u8,
        second: l.second() as u8,
    }
}

fn expected(chip: &str, reader_at: Timestamp, antenna: u16, dbm: i16, log_id: u64) -> TagRead {
    TagRead {
        chip: chip.to_owned(),
        time: ReaderTime::LocalDateTime(local_us(reader_at, 1000)),
        antenna: Some(antenna),
        rssi: Some(Rssi(dbm * 10)),
        passing_no: Some(log_id),
        session: None,
        hits: None,
    }
}

#[tokio::test]
async fn reads_stream_live_and_rewind_by_log_id_and_time_after_a_reconnect() {
    let clock = manual(t0() + ms(600_000));
    let rc = reader_clock(-1500, 10.0);
    let h = start(spec("km7-main", Protocol::Ultra, Endpoint::Listen(localhost()), rc), &clock).await;
    let addr = h.local_addr().expect("listening");
    let at = |s: i64| t0() + ms(s * 1000 + 123);

    let mut c = Client::tcp(addr).await;
    banner(&mut c).await;
    h.detect(det("4123", at(1), 1, -640));
    h.detect(det("4124", at(2), 2, -710));
    h.detect(det("4125", at(3), 3, -580));
    for (chip, s, antenna, dbm, log) in [("4123", 1, 1, -64, 1), ("4124", 2, 2, -71, 2), ("4125", 3, 3, -58, 3)] {
        let r = next_read(&mut c).await;
        assert!(!r.rewind);
        assert_eq!(r.to_tag_read(), expected(chip, rc.reader_time(at(s)), antenna, dbm, log));
    }
    drop(c);

    h.detect(det("4126", at(10), 4, -600));
    h.detect(det("4127", at(11), 1, -600));
    let mut c = Client::tcp(addr).await;
    banner(&mut c).await;
    c.send(&cmd(Command::RewindByLogId { from: 4, to: 5 })).await;
    let (r4, r5) = (next_read(&mut c).await, next_read(&mut c).await);
    assert!(r4.rewind && r5.rewind);
    assert_eq!(r4.to_tag_read(), expected("4126", rc.reader_time(at(10)), 4, -60, 4));
    assert_eq!(r5.to_tag_read(), expected("4127", rc.reader_time(at(11)), 1, -60, 5));

    let secs = (local_us(rc.reader_time(at(2)), 1_000_000) / 1_000_000 - EPOCH_1980_SECS) as u64;
    c.send(&cmd(Command::RewindByTime { from: secs, to: secs })).await;
    assert_eq!(next_read(&mut c).await.log_id, 2);
    // Nothing else came: the next read is a live one.
    h.detect(det("4128", at(12), 1, -600));
    assert_eq!(next_read(&mut c).await.to_tag_read(), expected("4128", rc.reader_time(at(12)), 1, -60, 6));
    // Reads 4 and 5 may also have gone to the first link before it noticed the hang-up.
    assert!((7..=9).contains(&h.stats().records_sent), "{:?}", h.stats());
    h.shutdown().await;
}

#[tokio::test]
async fn clock_commands_stop_start_and_reboot() {
    let clock = manual(t0());
    let rc = reader_clock(4000, 0.0);
    let h = start(spec("km7-main", Protocol::Ultra, Endpoint::Listen(localhost()), rc), &clock).await;
    let addr = h.local_addr().expect("listening");
    let mut c = Client::tcp(addr).await;
    banner(&mut c).await;

    assert_eq!(get_clock(&mut c).await, ultra_clock(rc.reader_time(t0())));
    h.fault(Fault::ClockStep(ms(-7000)));
    assert_eq!(get_clock(&mut c).await, ultra_clock(rc.reader_time(t0()) - ms(7000)));
    let ten = UltraClock { year: 2024, month: 8, day: 10, hour: 10, minute: 0, second: 0 };
    c.send(&cmd(Command::SetClock(ten))).await;
    assert_eq!(get_clock(&mut c).await, ten);

    // Stopped: detections are not stored. The clock reply shows the stop was handled.
    c.send(&cmd(Command::StopReading)).await;
    c.send(&cmd(Command::ConfirmStop)).await;
    get_clock(&mut c).await;
    h.detect(det("5000", t0(), 1, -600));
    assert_eq!(h.stats().records_stored, 0);
    c.send(&cmd(Command::StartReading)).await;
    get_clock(&mut c).await;
    h.detect(det("5001", t0(), 1, -600));
    assert_eq!(next_read(&mut c).await.log_id, 1);

    h.fault(Fault::Reboot);
    c.until_eof().await;
    assert_eq!(h.stats().session, 2);
    let mut c = Client::tcp(addr).await;
    banner(&mut c).await;
    h.detect(det("5002", t0(), 1, -600));
    let r = next_read(&mut c).await;
    assert_eq!((r.chip.as_str(), r.log_id), ("5002", 2), "log ids run on across a reboot");
    // An unknown command byte is counted and skipped.
    c.send(b"Z").await;
    get_clock(&mut c).await;
    let stats = h.stats();
    assert_eq!(stats.bad_commands, 1);
    assert!(stats.commands_received >= 9, "{stats:?}");

    // The heartbeat (every 2 s of wall time): a voltage line, then the extended status asked for.
    c.send(&cmd(Command::EnableExtendedStatus)).await;
    let mut voltage = None;
    let status = c
        .next_where(ultra::decode, |m| match m {
            Message::Voltage(v) => {
                voltage = Some(v);
                None
            }
            m @ Message::ExtendedStatus(_) => Some(m),
            _ => None,
        })
        .await;
    assert_eq!(voltage.as_deref(), Some("12.60"));
    assert_eq!((status.battery_percent(), status.is_reading()), (Some(87), Some(true)));
    h.shutdown().await;
}
