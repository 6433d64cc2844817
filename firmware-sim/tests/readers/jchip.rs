//! JChip emulator against `reader_protocol::rfid::jchip`: it dials a listening test server, and
//! sits on a pty.

use event_config::edge::Protocol;
use firmware_sim::readers::Endpoint;
use reader_protocol::rfid::jchip::{self, Command, JchipDate, Message};
use reader_protocol::{ReaderTime, TagRead};
use timing_core::Timestamp;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::common::*;

fn cmd(c: Command) -> Vec<u8> {
    bytes(|o| c.encode(o))
}

fn expected(chip: &str, reader_at: Timestamp, index: u64) -> TagRead {
    TagRead {
        chip: chip.to_owned(),
        // Same day as the receiver's boot: day 0.
        time: ReaderTime::TimeOfDay(time_of_day_us(reader_at, 100)),
        antenna: None,
        rssi: None,
        passing_no: Some(index),
        session: None,
        hits: None,
    }
}

async fn data<S: AsyncRead + AsyncWrite + Unpin>(c: &mut Client<S>) -> TagRead {
    match c.next_ok(jchip::decode).await {
        m @ Message::Data(_) => m.to_tag_read().expect("a data record"),
        m => panic!("expected a data line, got {m:?}"),
    }
}

async fn name<S: AsyncRead + AsyncWrite + Unpin>(c: &mut Client<S>) {
    assert!(matches!(c.next_ok(jchip::decode).await, Message::Name { name, .. } if name == "km21-main"));
}

#[tokio::test]
async fn dials_in_answers_gt_and_resumes_from_an_index_after_a_reconnect() {
    let listener = TcpListener::bind(localhost()).await.expect("bind");
    let addr = listener.local_addr().expect("bound").to_string();
    let clock = manual(t0() + ms(60_000));
    let rc = reader_clock(2750, 0.0);
    let h = start(spec("km21-main", Protocol::Jchip, Endpoint::Connect(addr), rc), &clock).await;
    let at = |n: i64| t0() + ms(1000 * n + 4433);
    h.detect(det("413A35", at(1), 1, -600));
    h.detect(det("413A36", at(2), 1, -600));

    let mut c = accept(&listener).await;
    name(&mut c).await;
    c.send(&cmd(Command::GetTime)).await;
    let reader_now = rc.reader_time(t0() + ms(60_000));
    let l = local(reader_now);
    match c.next_ok(jchip::decode).await {
        Message::Time { days, time_of_day_us: tod, date } => {
            assert_eq!((days, tod as i64), (0, time_of_day_us(reader_now, 10_000)));
            assert_eq!(date, Some(JchipDate { year: 2024, month: 8, day: 10 }));
            assert_eq!(l.date(), chrono::NaiveDate::from_ymd_opt(2024, 8, 10).expect("a date"));
        }
        m => panic!("expected the GT reply, got {m:?}"),
    }
    // Nothing is sent before S; S0000 sends everything stored, then live records.
    c.send(&cmd(Command::StartTransmission { from: 0 })).await;
    assert_eq!(data(&mut c).await, expected("413A35", rc.reader_time(at(1)), 1));
    assert_eq!(data(&mut c).await, expected("413A36", rc.reader_time(at(2)), 2));
    h.detect(det("413A37", at(3), 2, -600));
    assert_eq!(data(&mut c).await, expected("413A37", rc.reader_time(at(3)), 3));
    drop(c);

    // The receiver redials; the host resumes after the last index it has.
    h.detect(det("413A38", at(4), 2, -600));
    let mut c = accept(&listener).await;
    name(&mut c).await;
    c.send(&cmd(Command::StartTransmission { from: 4 })).await;
    assert_eq!(data(&mut c).await, expected("413A38", rc.reader_time(at(4)), 4));
    h.detect(det("413A39", at(5), 2, -600));
    assert_eq!(data(&mut c).await, expected("413A39", rc.reader_time(at(5)), 5));
    h.gun(at(6));
    c.send(b"XYZ\r").await;
    c.send(&cmd(Command::GetTime)).await;
    assert!(matches!(c.next_ok(jchip::decode).await, Message::Time { .. }), "the link carries on");
    h.detect(det("413A40", at(7), 2, -600));
    assert_eq!(data(&mut c).await.passing_no, Some(6), "the gun is no JChip record");
    assert_eq!(h.stats().bad_commands, 1);
    h.shutdown().await;
}

#[tokio::test]
async fn serial_line_over_a_pty() {
    let dir = tempfile::tempdir().expect("temp dir");
    let link = tty_link(&dir, "jchip");
    let clock = manual(t0() + ms(60_000));
    let rc = reader_clock(0, 0.0);
    let h = start(spec("km21-main", Protocol::Jchip, Endpoint::Serial { link: link.clone() }, rc), &clock).await;
    let mut c = Client::tty(&link);
    name(&mut c).await;
    h.detect(det("SER001", t0() + ms(7000), 1, -600));
    c.send(&cmd(Command::StartTransmission { from: 1 })).await;
    assert_eq!(data(&mut c).await, expected("SER001", rc.reader_time(t0() + ms(7000)), 1));
    h.shutdown().await;
}
