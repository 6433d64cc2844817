//! RACE RESULT: push with a ranged rewind, files across a reboot, garbage, GETTIME, a pty, and
//! a serial line at the wrong speed.

use std::sync::Arc;

use event_config::edge::{Protocol, Transport as Kind};
use firmware_sim::Fault;
use firmware_sim::clock::{ManualClock, ReaderClock};
use firmware_sim::readers::{Endpoint, ReaderHandle};
use reader_protocol::rfid::raceresult::{DecoderDate, Message, Passing};
use reader_protocol::{DecodeError, ReaderTime, TagRead};
use timing_core::{Rssi, Timestamp};
use tokio::io::AsyncWriteExt;

use crate::common::*;

#[allow(clippy::too_many_arguments)]
fn passing(chip: &str, reader_at: Timestamp, no: u64, file: u32, hits: u32, rssi: i16, antenna: u16) -> TagRead {
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

/// An emulated decoder on TCP port 0 and a link to it; the race is a minute in, so every
/// crossing closes as soon as the emulator's timer looks.
async fn tcp(offset_ms: i64) -> (Arc<ManualClock>, ReaderClock, ReaderHandle, Link) {
    let sim = Arc::new(ManualClock::new(t0() + ms(60_000)));
    let rc = reader_clock(offset_ms);
    let h = emulator("finish-main", Protocol::Raceresult, Endpoint::Listen(localhost()), rc, &sim).await;
    let addr = h.local_addr().expect("listening").to_string();
    let link =
        Link::start(reader("finish-main", Protocol::Raceresult, Kind::Tcp, Some(addr)), &sim, CLOCK_INTERVAL).await;
    (sim, rc, h, link)
}

fn at(s: i64) -> Timestamp {
    t0() + ms(s * 1000 + 250)
}

/// Distinct reads as `(file, passing number, chip)`, sorted.
fn numbered(link: &Link) -> Vec<(Option<u32>, Option<u64>, String)> {
    let mut v: Vec<_> = link.unique().into_iter().map(|r| (r.session, r.passing_no, r.chip)).collect();
    v.sort();
    v
}

#[tokio::test]
async fn passings_arrive_with_numbers_hits_rssi_and_reader_times() {
    let (_sim, rc, h, mut link) = tcp(2500).await;
    let a0 = at(1);
    h.detect(det("ZICAD30", a0, 1, -600));
    h.detect(det("ZICAD30", a0 + ms(200), 2, -550));
    h.detect(det("ZCMBG52", a0 + ms(300), 3, -700));
    h.detect(det("ZICAD30", a0 + ms(400), 1, -580));
    link.wait_unique(2).await;
    h.gun(at(5));
    link.wait_unique(3).await;
    let marker = ReaderTime::LocalDateTime(local_us(rc.reader_time(at(5)), 1000));
    let mut gun = passing("99999", rc.reader_time(at(5)), 3, 1, 1, 0, 0);
    (gun.rssi, gun.antenna) = (None, None);
    assert_eq!(
        link.unique(),
        vec![
            passing("ZICAD30", rc.reader_time(a0), 1, 1, 3, -550, 2),
            passing("ZCMBG52", rc.reader_time(a0 + ms(300)), 2, 1, 1, -700, 3),
            gun,
        ]
    );
    assert!(link.log.contains(&Seen::Gun(marker)), "the marker passing is a gun too: {:?}", link.log);
    link.stop().await;
    h.shutdown().await;
}

#[tokio::test]
async fn a_dropped_connection_is_rewound_from_the_last_stored_passing() {
    let (_sim, _rc, h, mut link) = tcp(0).await;
    for i in 1..=5 {
        h.detect(det(&format!("A{i:03}"), at(i), 1, -600));
    }
    link.wait_unique(5).await;
    h.fault(Fault::DropMidFrame);
    for i in 6..=12 {
        h.detect(det(&format!("A{i:03}"), at(i), 1, -600));
    }
    link.wait_unique(12).await;
    assert!(link.ups() >= 2, "reconnected: {:?}", link.log);
    assert_eq!(h.stats().records_stored, 12);
    let expected: Vec<_> = (1..=12).map(|i| (Some(1), Some(i as u64), format!("A{i:03}"))).collect();
    assert_eq!(numbered(&link), expected, "exactly what the decoder stored");
    eprintln!("raceresult drop: {} reads received, {} overlaps re-sent", link.reads.len(), link.overlaps());
    link.stop().await;
    h.shutdown().await;
}

#[tokio::test]
async fn after_a_reboot_the_old_file_is_finished_and_the_new_one_read() {
    let (_sim, _rc, h, mut link) = tcp(0).await;
    for i in 1..=3 {
        h.detect(det(&format!("B{i:03}"), at(i), 1, -600));
    }
    link.wait_unique(3).await;
    // Two crossings still open when the decoder restarts: stored in file 1, never pushed.
    h.detect(det("B004", at(4), 1, -600));
    h.detect(det("B005", at(5), 1, -600));
    h.fault(Fault::Reboot);
    h.detect(det("B006", at(6), 1, -600));
    h.detect(det("B007", at(7), 1, -600));
    link.wait_unique(7).await;
    assert_eq!(h.stats().session, 2);
    let mut expected: Vec<_> = (1..=5).map(|i| (Some(1), Some(i), format!("B{i:03}"))).collect();
    expected.extend((1..=2).map(|i| (Some(2), Some(i), format!("B{:03}", i + 5))));
    assert_eq!(numbered(&link), expected);
    link.stop().await;
    h.shutdown().await;
}

#[tokio::test]
async fn files_made_while_the_edge_was_away_are_all_fetched() {
    let sim = Arc::new(ManualClock::new(t0() + ms(60_000)));
    let h = emulator("finish-main", Protocol::Raceresult, Endpoint::Listen(localhost()), reader_clock(0), &sim).await;
    // File 1 has three passings, the store the first two; then two restarts: files 2 and 3.
    for (i, fault) in [(1, None), (2, None), (3, Some(Fault::Reboot)), (4, Some(Fault::Reboot)), (5, None)] {
        h.detect(det(&format!("D{i:03}"), at(i), 1, -600));
        h.wait_for_records(i as u64).await;
        if let Some(f) = fault {
            h.fault(f);
        }
    }
    assert_eq!(h.stats().session, 3);
    let resume = edge_daemon::link::ResumeTable::default();
    resume.advance("finish-main", Some(1), 2);
    let addr = h.local_addr().expect("listening").to_string();
    let cfg = reader("finish-main", Protocol::Raceresult, Kind::Tcp, Some(addr));
    let mut link = Link::resuming(cfg, &sim, CLOCK_INTERVAL, resume).await;
    link.wait_unique(5).await;
    let expected = vec![
        (Some(1), Some(1), "D001".to_owned()),
        (Some(1), Some(2), "D002".to_owned()),
        (Some(1), Some(3), "D003".to_owned()),
        (Some(2), Some(1), "D004".to_owned()),
        (Some(3), Some(1), "D005".to_owned()),
    ];
    assert_eq!(numbered(&link), expected, "GETFILE replays whole files: the stored two come again");
    link.stop().await;
    h.shutdown().await;
}

#[tokio::test]
async fn garbage_is_one_malformed_event_between_intact_neighbours() {
    let (_sim, _rc, h, mut link) = tcp(0).await;
    h.detect(det("C001", at(1), 1, -600));
    link.wait_unique(1).await;
    h.fault(Fault::Garbage(b"\x01\x02\xfe garbled".to_vec()));
    h.detect(det("C002", at(2), 1, -600));
    h.detect(det("C003", at(3), 1, -600));
    link.wait_unique(3).await;
    link.until("the malformed frame", |l| !l.malformed.is_empty()).await;
    assert!(
        matches!(&link.malformed[0], DecodeError::Malformed { bytes, .. } if bytes.starts_with(b"\x01\x02\xfe")),
        "{:?}",
        link.malformed
    );
    assert!(link.malformed[0].to_string().contains("01 02 fe"), "hex preview: {}", link.malformed[0]);
    let chips: Vec<_> = link.unique().into_iter().map(|r| (r.chip, r.passing_no)).collect();
    assert_eq!(chips, [("C001".into(), Some(1)), ("C002".into(), Some(2)), ("C003".into(), Some(3))]);
    assert_eq!(link.ups(), 1, "garbage does not cost the connection");
    link.stop().await;
    h.shutdown().await;
}

#[tokio::test]
async fn gettime_samples_show_the_decoder_clock_offset() {
    let (sim, _rc, h, mut link) = tcp(3200).await;
    let first = link.wait_clock().await;
    assert_offset(&first, ms(3200), ms(1));
    // The edge clock moves on and the decoder's with it: the next sample agrees.
    sim.advance(ms(700));
    let next = link.wait_clock().await;
    assert!(next.sent > first.sent);
    assert_offset(&next, ms(3200), ms(1));
    link.stop().await;
    h.shutdown().await;
}

#[tokio::test]
async fn a_silent_decoder_times_the_session_out() {
    let (_sim, _rc, h, mut link) = tcp(0).await;
    link.wait_clock().await;
    h.fault(Fault::Stall(std::time::Duration::from_secs(4)));
    link.until("the session to end", |l| l.log.iter().any(|s| matches!(s, Seen::Down(_)))).await;
    let down = link.log.iter().find_map(|s| if let Seen::Down(e) = s { Some(e.clone()) } else { None });
    assert!(down.as_deref().is_some_and(|e| e.starts_with("no answer from the reader for 1.5s")), "{down:?}");
    link.stop().await;
    h.shutdown().await;
}

#[tokio::test]
async fn passings_over_a_pty() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tty = tty_link(&dir, "start-backup");
    let sim = Arc::new(ManualClock::new(t0() + ms(60_000)));
    let rc = reader_clock(-700);
    let h = emulator("start-backup", Protocol::Raceresult, Endpoint::Serial { link: tty.clone() }, rc, &sim).await;
    let mut link = Link::start(serial_reader("start-backup", Protocol::Raceresult, tty), &sim, CLOCK_INTERVAL).await;
    h.detect(det("ZSER001", at(4), 4, -640));
    link.wait_unique(1).await;
    assert_eq!(link.unique(), vec![passing("ZSER001", rc.reader_time(at(4)), 1, 1, 1, -640, 4)]);
    assert_offset(&link.wait_clock().await, ms(-700), ms(1));
    link.stop().await;
    h.shutdown().await;
}

/// Pushed passings as the decoder's serial port sends them.
fn pushed(first: u64, n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let date = DecoderDate { year: 2024, month: 8, day: 10 };
    for no in first..first + n {
        Message::PushedPassing(Passing::new(no, &format!("E2000{no:07}"), Some(date), 33_000_000_000 + no * 1_000_000))
            .encode(&mut out);
    }
    out
}

#[tokio::test]
async fn a_serial_line_at_the_wrong_speed_is_diagnosed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tty = tty_link(&dir, "wrong-baud");
    let mut pty = firmware_sim::pty::Pty::open(Some(&tty)).expect("a pty");
    let sim = Arc::new(ManualClock::new(t0()));
    // Nobody answers the clock queries here: a long interval keeps the session up.
    let mut link =
        Link::start(serial_reader("wrong-baud", Protocol::Raceresult, tty), &sim, std::time::Duration::from_secs(30))
            .await;
    link.wait_ups(1).await;
    // The decoder sends at 19200 baud into a port read at 9600.
    pty.master.write_all(&resample(&pushed(1, 40), 19_200, 9_600)).await.expect("write");
    link.until("a health diagnosis", |l| l.log.iter().any(|s| matches!(s, Seen::Health(Some(_))))).await;
    let diagnosis = link.log.iter().find_map(|s| if let Seen::Health(Some(d)) = s { Some(d.clone()) } else { None });
    assert!(diagnosis.as_deref().is_some_and(|d| d.starts_with("framing errors: check baud rate")), "{diagnosis:?}");
    assert!(link.reads.is_empty(), "noise makes no reads: {:?}", link.reads);
    // The speed is fixed: clean passings heal the line. The first one ends the garbled line
    // it was glued to and is lost with it (a real line loses it too); the rest come through.
    pty.master.write_all(&pushed(41, 40)).await.expect("write");
    link.until("the line healthy again", |l| l.log.contains(&Seen::Health(None))).await;
    link.wait_unique(39).await;
    let numbers: Vec<_> = link.unique().into_iter().filter_map(|r| r.passing_no).collect();
    assert_eq!(numbers, (42..=80).collect::<Vec<u64>>());
    link.stop().await;
}
