//! IPICO emulator against `reader_protocol::rfid::ipico` over TCP and a pty.

use event_config::edge::Protocol;
use firmware_sim::readers::Endpoint;
use reader_protocol::rfid::ipico::{self, Command, IpicoClock, Message, instruction};
use reader_protocol::{ReaderTime, TagRead};
use timing_core::Timestamp;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::common::*;

fn cmd(c: Command) -> Vec<u8> {
    bytes(|o| c.encode(o))
}

fn expected(tag: &str, reader_at: Timestamp) -> TagRead {
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

async fn get_clock<S: AsyncRead + AsyncWrite + Unpin>(c: &mut Client<S>) -> IpicoClock {
    c.send(&cmd(Command::GetClock)).await;
    match c.next_ok(ipico::decode).await {
        Message::Clock { clock, .. } => clock,
        m => panic!("expected the clock, got {m:?}"),
    }
}

#[tokio::test]
async fn tag_records_clock_set_latency_and_stored_read_download() {
    let clock = manual(t0() + ms(60_000));
    let rc = reader_clock(800, 0.0);
    let h = start(spec("km21-backup", Protocol::Ipico, Endpoint::Listen(localhost()), rc), &clock).await;
    let addr = h.local_addr().expect("listening");
    let mut c = Client::tcp(addr).await;
    // Reads go live to the links open when they happen: make sure this one is.
    let now = get_clock(&mut c).await;
    assert_eq!(now.local_micros(), local_us(rc.reader_time(t0() + ms(60_000)), 10_000));
    assert_eq!(now.weekday, 6, "2024-08-10 is a Saturday");

    let (a, b) = (t0() + ms(1234), t0() + ms(2345));
    h.detect(det("058000128608", a, 1, -600));
    h.detect(det("ABC123", b, 2, -600));
    assert_eq!(c.next_ok(ipico::decode).await.to_tag_read(), Some(expected("058000128608", rc.reader_time(a))));
    assert_eq!(c.next_ok(ipico::decode).await.to_tag_read(), Some(expected("000000abc123", rc.reader_time(b))));

    // Set to 11:00:00: the reader shows it 500 ms after receipt.
    let eleven = IpicoClock { year: 24, month: 8, day: 10, weekday: 6, hour: 11, minute: 0, second: 0, centis: 0 };
    c.send(&cmd(Command::SetClock(eleven))).await;
    assert_eq!(c.next_ok(ipico::decode).await, Message::Ack { reader_id: 0, instruction: instruction::SET_DATE_TIME });
    let shown = get_clock(&mut c).await;
    assert_eq!(shown, IpicoClock { hour: 10, minute: 59, second: 59, centis: 50, ..eleven });
    clock.advance(ms(600));
    assert_eq!(get_clock(&mut c).await, IpicoClock { centis: 10, ..eleven });
    drop(c);

    // A later link downloads every stored read with its original time.
    h.detect(det("0000000000ff", t0() + ms(3000), 1, -600));
    let mut c = Client::tcp(addr).await;
    c.send(&cmd(Command::DownloadStoredReads)).await;
    assert_eq!(c.next_ok(ipico::decode).await, Message::Ack { reader_id: 0, instruction: instruction::STORED_READS });
    let tags: Vec<String> =
        [c.next_ok(ipico::decode).await, c.next_ok(ipico::decode).await, c.next_ok(ipico::decode).await]
            .into_iter()
            .map(|m| m.to_tag_read().expect("a tag record").chip)
            .collect();
    assert_eq!(tags, ["058000128608", "000000abc123", "0000000000ff"]);

    // A frame with a wrong LRC: error frame f1, counted, the link carries on.
    c.send(b"ab00000223\r\n").await;
    assert_eq!(c.next_ok(ipico::decode).await, Message::Ack { reader_id: 0, instruction: instruction::ERROR_BAD_LRC });
    c.send(&cmd(Command::ClearStoredReads)).await;
    assert_eq!(c.next_ok(ipico::decode).await, Message::Ack { reader_id: 0, instruction: instruction::STORED_READS });
    let stats = h.stats();
    assert_eq!((stats.bad_commands, stats.records_stored), (1, 0));
    h.gun(t0() + ms(4000));
    assert!(matches!(c.next_ok(ipico::decode).await, Message::Trigger { .. }));
    h.shutdown().await;
}

#[tokio::test]
async fn serial_line_over_a_pty() {
    let dir = tempfile::tempdir().expect("temp dir");
    let link = tty_link(&dir, "ipico");
    let clock = manual(t0() + ms(60_000));
    let rc = reader_clock(-300, 0.0);
    let h = start(spec("km21-ipico", Protocol::Ipico, Endpoint::Serial { link: link.clone() }, rc), &clock).await;
    let mut c = Client::tty(&h.tty_path().expect("a tty"));
    assert_eq!(get_clock(&mut c).await.local_micros(), local_us(rc.reader_time(t0() + ms(60_000)), 10_000));
    let at = t0() + ms(5555);
    h.detect(det("0123456789ab", at, 1, -600));
    assert_eq!(c.next_ok(ipico::decode).await.to_tag_read(), Some(expected("0123456789ab", rc.reader_time(at))));
    h.shutdown().await;
}
