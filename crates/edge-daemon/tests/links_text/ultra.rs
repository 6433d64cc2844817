//! Ultra: live reads, rewind by log id after a drop and a reboot, garbage, the `r` clock.

use std::sync::Arc;

use event_config::edge::{Protocol, Transport as Kind};
use firmware_sim::Fault;
use firmware_sim::clock::{ManualClock, ReaderClock};
use firmware_sim::readers::{Endpoint, ReaderHandle};
use reader_protocol::{ReaderTime, TagRead};
use timing_core::{Rssi, Timestamp};

use crate::common::*;

fn read(chip: &str, reader_at: Timestamp, antenna: u16, dbm: i16, log_id: u64) -> TagRead {
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

async fn tcp(offset_ms: i64) -> (Arc<ManualClock>, ReaderClock, ReaderHandle, Link) {
    let sim = Arc::new(ManualClock::new(t0() + ms(600_000)));
    let rc = reader_clock(offset_ms);
    let h = emulator("km7-main", Protocol::Ultra, Endpoint::Listen(localhost()), rc, &sim).await;
    let addr = h.local_addr().expect("listening").to_string();
    let link = Link::start(reader("km7-main", Protocol::Ultra, Kind::Tcp, Some(addr)), &sim, CLOCK_INTERVAL).await;
    (sim, rc, h, link)
}

fn at(s: i64) -> Timestamp {
    t0() + ms(s * 1000 + 123)
}

fn log_ids(link: &Link) -> Vec<(u64, String)> {
    let mut v: Vec<_> = link.unique().into_iter().map(|r| (r.passing_no.expect("a log id"), r.chip)).collect();
    v.sort();
    v
}

#[tokio::test]
async fn reads_arrive_with_log_ids_antennas_rssi_and_reader_times() {
    let (_sim, rc, h, mut link) = tcp(-1500).await;
    // Stored before the link is up: the connect rewind brings it.
    h.detect(det("4123", at(1), 1, -640));
    link.wait_unique(1).await;
    h.detect(det("4124", at(2), 2, -710));
    h.gun(at(3));
    link.wait_unique(3).await;
    assert_eq!(
        link.unique(),
        vec![
            read("4123", rc.reader_time(at(1)), 1, -64, 1),
            read("4124", rc.reader_time(at(2)), 2, -71, 2),
            read("0", rc.reader_time(at(3)), 0, 0, 3),
        ]
    );
    let gun = ReaderTime::LocalDateTime(local_us(rc.reader_time(at(3)), 1000));
    assert!(link.log.contains(&Seen::Gun(gun)), "chip 0 is a start trigger: {:?}", link.log);
    link.stop().await;
    h.shutdown().await;
}

#[tokio::test]
async fn a_dropped_connection_is_rewound_by_log_id() {
    let (_sim, _rc, h, mut link) = tcp(0).await;
    for i in 1..=5 {
        h.detect(det(&format!("{}", 1000 + i), at(i), 1, -600));
    }
    link.wait_unique(5).await;
    h.fault(Fault::DropMidFrame);
    for i in 6..=12 {
        h.detect(det(&format!("{}", 1000 + i), at(i), 1, -600));
    }
    link.wait_unique(12).await;
    assert!(link.ups() >= 2, "reconnected: {:?}", link.log);
    assert_eq!(h.stats().records_stored, 12);
    assert_eq!(log_ids(&link), (1..=12).map(|i| (i as u64, format!("{}", 1000 + i))).collect::<Vec<_>>());
    eprintln!("ultra drop: {} reads received, {} overlaps re-sent", link.reads.len(), link.overlaps());
    link.stop().await;
    h.shutdown().await;
}

#[tokio::test]
async fn log_ids_run_on_across_a_reboot() {
    let (_sim, _rc, h, mut link) = tcp(0).await;
    h.detect(det("2001", at(1), 1, -600));
    link.wait_unique(1).await;
    h.fault(Fault::Reboot);
    h.detect(det("2002", at(2), 1, -600));
    h.detect(det("2003", at(3), 1, -600));
    link.wait_unique(3).await;
    assert_eq!(h.stats().session, 2);
    assert_eq!(log_ids(&link), vec![(1, "2001".into()), (2, "2002".into()), (3, "2003".into())]);
    assert!(link.ups() >= 2, "reconnected: {:?}", link.log);
    link.stop().await;
    h.shutdown().await;
}

#[tokio::test]
async fn garbage_is_one_malformed_event_between_intact_neighbours() {
    let (_sim, _rc, h, mut link) = tcp(0).await;
    h.detect(det("3001", at(1), 1, -600));
    link.wait_unique(1).await;
    h.fault(Fault::Garbage(b"\x01\x02\xfe garbled".to_vec()));
    h.detect(det("3002", at(2), 1, -600));
    link.wait_unique(2).await;
    link.until("the malformed frame", |l| !l.malformed.is_empty()).await;
    assert!(link.malformed[0].to_string().contains("01 02 fe"), "{}", link.malformed[0]);
    assert_eq!(log_ids(&link), vec![(1, "3001".into()), (2, "3002".into())]);
    assert_eq!(link.ups(), 1);
    link.stop().await;
    h.shutdown().await;
}

#[tokio::test]
async fn clock_samples_show_the_reader_offset_to_the_second() {
    let (_sim, _rc, h, mut link) = tcp(-1500).await;
    // The `r` answer has whole seconds: the offset is known to within one.
    assert_offset(&link.wait_clock().await, ms(-1500), ms(1000));
    link.stop().await;
    h.shutdown().await;
}
