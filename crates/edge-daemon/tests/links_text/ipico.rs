//! IPICO: live records and the stored-read download after a drop and a reboot, garbage, the
//! clock, a pty.

use std::sync::Arc;

use event_config::edge::{Protocol, Transport as Kind};
use firmware_sim::Fault;
use firmware_sim::clock::{ManualClock, ReaderClock};
use firmware_sim::readers::{Endpoint, ReaderHandle};
use reader_protocol::{ReaderTime, TagRead};
use timing_core::Timestamp;

use crate::common::*;

fn record(tag: &str, reader_at: Timestamp) -> TagRead {
    TagRead {
        chip: tag.to_owned(),
        time: ReaderTime::LocalDateTime(local_us(reader_at, 10_000)),
        antenna: None,
        rssi: None,
        passing_no: None,
        session: None,
        hits: Some(1),
    }
}

async fn tcp(offset_ms: i64) -> (Arc<ManualClock>, ReaderClock, ReaderHandle, Link) {
    let sim = Arc::new(ManualClock::new(t0() + ms(60_000)));
    let rc = reader_clock(offset_ms);
    let h = emulator("km21-backup", Protocol::Ipico, Endpoint::Listen(localhost()), rc, &sim).await;
    let addr = h.local_addr().expect("listening").to_string();
    let link = Link::start(reader("km21-backup", Protocol::Ipico, Kind::Tcp, Some(addr)), &sim, CLOCK_INTERVAL).await;
    (sim, rc, h, link)
}

fn at(s: i64) -> Timestamp {
    t0() + ms(s * 1000 + 340)
}

fn tag(i: i64) -> String {
    format!("0580001286{i:02}")
}

/// Distinct reads sorted by time.
fn by_time(link: &Link) -> Vec<TagRead> {
    let mut v = link.unique();
    v.sort_by_key(|r| match r.time {
        ReaderTime::LocalDateTime(t) => t,
        other => panic!("an IPICO time is local: {other:?}"),
    });
    v
}

#[tokio::test]
async fn records_arrive_with_hits_and_reader_times() {
    let (_sim, rc, h, mut link) = tcp(800).await;
    h.detect(det("058000128608", at(1), 1, -600));
    link.wait_unique(1).await;
    h.detect(det("ABC123", at(2), 2, -600));
    link.wait_unique(2).await;
    assert_eq!(
        link.unique(),
        vec![record("058000128608", rc.reader_time(at(1))), record("000000abc123", rc.reader_time(at(2)))]
    );
    h.gun(at(3));
    link.until("the trigger", |l| l.log.iter().any(|s| matches!(s, Seen::Gun(_)))).await;
    let gun = ReaderTime::LocalDateTime(local_us(rc.reader_time(at(3)), 10_000));
    assert!(link.log.contains(&Seen::Gun(gun)), "{:?}", link.log);
    link.stop().await;
    h.shutdown().await;
}

#[tokio::test]
async fn a_dropped_connection_downloads_the_stored_reads() {
    let (_sim, rc, h, mut link) = tcp(0).await;
    for i in 1..=5 {
        h.detect(det(&tag(i), at(i), 1, -600));
    }
    link.wait_unique(5).await;
    h.fault(Fault::DropMidFrame);
    for i in 6..=12 {
        h.detect(det(&tag(i), at(i), 1, -600));
    }
    link.wait_unique(12).await;
    assert!(link.ups() >= 2, "reconnected: {:?}", link.log);
    assert_eq!(h.stats().records_stored, 12);
    assert_eq!(by_time(&link), (1..=12).map(|i| record(&tag(i), rc.reader_time(at(i)))).collect::<Vec<_>>());
    // No sequence number: the download sends the whole memory again, copies and all.
    assert!(link.overlaps() >= 5, "{} overlaps", link.overlaps());
    eprintln!("ipico drop: {} reads received, {} overlaps re-sent", link.reads.len(), link.overlaps());
    link.stop().await;
    h.shutdown().await;
}

#[tokio::test]
async fn stored_reads_survive_a_reboot() {
    let (_sim, rc, h, mut link) = tcp(0).await;
    h.detect(det(&tag(1), at(1), 1, -600));
    link.wait_unique(1).await;
    h.fault(Fault::Reboot);
    h.detect(det(&tag(2), at(2), 1, -600));
    h.detect(det(&tag(3), at(3), 1, -600));
    link.wait_unique(3).await;
    assert_eq!(h.stats().session, 2);
    assert_eq!(by_time(&link), (1..=3).map(|i| record(&tag(i), rc.reader_time(at(i)))).collect::<Vec<_>>());
    link.stop().await;
    h.shutdown().await;
}

#[tokio::test]
async fn garbage_is_one_malformed_event_between_intact_neighbours() {
    let (_sim, _rc, h, mut link) = tcp(0).await;
    h.detect(det(&tag(1), at(1), 1, -600));
    link.wait_unique(1).await;
    h.fault(Fault::Garbage(b"\x01\x02\xfe garbled".to_vec()));
    h.detect(det(&tag(2), at(2), 1, -600));
    link.wait_unique(2).await;
    link.until("the malformed frame", |l| !l.malformed.is_empty()).await;
    assert!(link.malformed[0].to_string().contains("01 02 fe"), "{}", link.malformed[0]);
    let chips: Vec<_> = by_time(&link).into_iter().map(|r| r.chip).collect();
    assert_eq!(chips, [tag(1), tag(2)]);
    assert_eq!(link.ups(), 1);
    link.stop().await;
    h.shutdown().await;
}

#[tokio::test]
async fn clock_samples_show_the_reader_offset() {
    let (_sim, _rc, h, mut link) = tcp(800).await;
    assert_offset(&link.wait_clock().await, ms(800), ms(10));
    link.stop().await;
    h.shutdown().await;
}

#[tokio::test]
async fn records_over_a_pty() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tty = tty_link(&dir, "ipico");
    let sim = Arc::new(ManualClock::new(t0() + ms(60_000)));
    let rc = reader_clock(-300);
    let h = emulator("km21-ipico", Protocol::Ipico, Endpoint::Serial { link: tty.clone() }, rc, &sim).await;
    let mut link = Link::start(serial_reader("km21-ipico", Protocol::Ipico, tty), &sim, CLOCK_INTERVAL).await;
    h.detect(det("0123456789ab", at(5), 1, -600));
    link.wait_unique(1).await;
    assert_eq!(link.unique(), vec![record("0123456789ab", rc.reader_time(at(5)))]);
    assert_offset(&link.wait_clock().await, ms(-300), ms(10));
    link.stop().await;
    h.shutdown().await;
}
