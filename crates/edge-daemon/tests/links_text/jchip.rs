//! JChip: the receiver dials the edge; `S<index>` after a drop and a reboot, garbage, `GT`, a pty.

use std::sync::Arc;

use event_config::edge::{Protocol, Transport as Kind};
use firmware_sim::Fault;
use firmware_sim::clock::{ManualClock, ReaderClock};
use firmware_sim::readers::{Endpoint, ReaderHandle};
use reader_protocol::{ReaderTime, TagRead};
use timing_core::Timestamp;

use crate::common::*;

const DAY_US: i64 = 86_400_000_000;

fn record(chip: &str, reader_at: Timestamp, index: u64) -> TagRead {
    TagRead {
        chip: chip.to_owned(),
        // The receiver booted the same day: day 0.
        time: ReaderTime::TimeOfDay(local_us(reader_at, 100).rem_euclid(DAY_US)),
        antenna: None,
        rssi: None,
        passing_no: Some(index),
        session: None,
        hits: None,
    }
}

/// The edge listens on port 0; the emulated receiver dials the port it got.
async fn dialled(offset_ms: i64) -> (Arc<ManualClock>, ReaderClock, ReaderHandle, Link) {
    let sim = Arc::new(ManualClock::new(t0() + ms(60_000)));
    let rc = reader_clock(offset_ms);
    let cfg = reader("km21-main", Protocol::Jchip, Kind::Listen, Some(localhost().to_string()));
    let link = Link::start(cfg, &sim, CLOCK_INTERVAL).await;
    let addr = link.listen_addr.clone().expect("listening");
    let h = emulator("km21-main", Protocol::Jchip, Endpoint::Connect(addr), rc, &sim).await;
    (sim, rc, h, link)
}

fn at(s: i64) -> Timestamp {
    t0() + ms(s * 1000 + 4433)
}

fn chip(i: i64) -> String {
    format!("413A{i:02}")
}

fn indexes(link: &Link) -> Vec<(u64, String)> {
    let mut v: Vec<_> = link.unique().into_iter().map(|r| (r.passing_no.expect("an index"), r.chip)).collect();
    v.sort();
    v
}

#[tokio::test]
async fn records_arrive_with_indexes_and_reader_times() {
    let (_sim, rc, h, mut link) = dialled(2750).await;
    // Stored before the receiver dialled in: `S0000` brings it.
    h.detect(det(&chip(1), at(1), 1, -600));
    link.wait_unique(1).await;
    h.detect(det(&chip(2), at(2), 1, -600));
    link.wait_unique(2).await;
    assert_eq!(
        link.unique(),
        vec![record(&chip(1), rc.reader_time(at(1)), 1), record(&chip(2), rc.reader_time(at(2)), 2)]
    );
    link.stop().await;
    h.shutdown().await;
}

#[tokio::test]
async fn a_dropped_connection_resumes_after_the_last_stored_index() {
    let (_sim, _rc, h, mut link) = dialled(0).await;
    for i in 1..=5 {
        h.detect(det(&chip(i), at(i), 1, -600));
    }
    link.wait_unique(5).await;
    h.fault(Fault::DropMidFrame);
    for i in 6..=12 {
        h.detect(det(&chip(i), at(i), 1, -600));
    }
    link.wait_unique(12).await;
    assert!(link.ups() >= 2, "reconnected: {:?}", link.log);
    assert_eq!(h.stats().records_stored, 12);
    assert_eq!(indexes(&link), (1..=12).map(|i| (i as u64, chip(i))).collect::<Vec<_>>());
    eprintln!("jchip drop: {} reads received, {} overlaps re-sent", link.reads.len(), link.overlaps());
    link.stop().await;
    h.shutdown().await;
}

#[tokio::test]
async fn indexes_run_on_across_a_reboot() {
    let (_sim, _rc, h, mut link) = dialled(0).await;
    h.detect(det(&chip(1), at(1), 1, -600));
    link.wait_unique(1).await;
    h.fault(Fault::Reboot);
    h.detect(det(&chip(2), at(2), 1, -600));
    h.detect(det(&chip(3), at(3), 1, -600));
    link.wait_unique(3).await;
    assert_eq!(h.stats().session, 2);
    assert_eq!(indexes(&link), (1..=3).map(|i| (i as u64, chip(i))).collect::<Vec<_>>());
    link.stop().await;
    h.shutdown().await;
}

#[tokio::test]
async fn garbage_is_one_malformed_event_between_intact_neighbours() {
    let (_sim, _rc, h, mut link) = dialled(0).await;
    h.detect(det(&chip(1), at(1), 1, -600));
    link.wait_unique(1).await;
    h.fault(Fault::Garbage(b"\x01\x02\xfe garbled".to_vec()));
    h.detect(det(&chip(2), at(2), 1, -600));
    link.wait_unique(2).await;
    link.until("the malformed frame", |l| !l.malformed.is_empty()).await;
    assert!(link.malformed[0].to_string().contains("01 02 fe"), "{}", link.malformed[0]);
    assert_eq!(indexes(&link), vec![(1, chip(1)), (2, chip(2))]);
    assert_eq!(link.ups(), 1);
    link.stop().await;
    h.shutdown().await;
}

#[tokio::test]
async fn gt_samples_show_the_receiver_offset() {
    let (_sim, _rc, h, mut link) = dialled(2750).await;
    assert_offset(&link.wait_clock().await, ms(2750), ms(10));
    link.stop().await;
    h.shutdown().await;
}

#[tokio::test]
async fn records_over_a_pty() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tty = tty_link(&dir, "jchip");
    let sim = Arc::new(ManualClock::new(t0() + ms(60_000)));
    let rc = reader_clock(0);
    let h = emulator("km21-main", Protocol::Jchip, Endpoint::Serial { link: tty.clone() }, rc, &sim).await;
    let mut link = Link::start(serial_reader("km21-main", Protocol::Jchip, tty), &sim, CLOCK_INTERVAL).await;
    h.detect(det("SER001", at(7), 1, -600));
    link.wait_unique(1).await;
    assert_eq!(link.unique(), vec![record("SER001", rc.reader_time(at(7)), 1)]);
    assert_offset(&link.wait_clock().await, ms(0), ms(10));
    link.stop().await;
    h.shutdown().await;
}
