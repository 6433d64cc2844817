use proptest::prelude::*;

use super::*;
use crate::testkit::{self, decode_whole, field_text};

fn cs(h: u64, m: u64, s: u64, hundredths: u64) -> u64 {
    ((h * 60 + m) * 60 + s) * 1_000_000 + hundredths * 10_000
}

/// `[format, seq, location, tag, field5, reader id, field7]` and the time of day.
fn rec([format, seq, loc, tag, f5, reader, f7]: [&str; 7], time: u64) -> CtRecord {
    CtRecord {
        format: format.into(),
        seq: seq.parse().unwrap(),
        location: loc.into(),
        tag: tag.into(),
        time: CtTime::TimeOfDay(time),
        field5: f5.into(),
        reader_id: reader.into(),
        field7: f7.into(),
    }
}

#[test]
fn golden_tag_lines() {
    let bytes = include_bytes!("../../../test_data/chronotrack/tag_lines.txt");
    let got: Vec<Message> = decode_whole(bytes, decode).into_iter().map(|r| r.unwrap()).collect();
    let expect = vec![
        Message::Read(rec(["CT01_33", "1", "start", "9478", "0", "0F2A38", "1"], cs(14, 2, 15, 31))),
        Message::GunTime(rec(["CT01_33", "4", "start", "guntime", "0", "DF239A", "0"], cs(7, 45, 1, 1))),
        Message::NewLocation(rec(["CT01_33", "2038", "30k", "newlocation", "0", "ED932A", "0"], cs(9, 15, 21, 0))),
        Message::Read(rec(["CT01_13", "24", "START", "50101", "1", "117F37", "8"], cs(15, 54, 48, 90))),
    ];
    assert_eq!(got, expect);
    let mut again = Vec::new();
    expect.iter().for_each(|m| m.encode(&mut again));
    assert_eq!(again, bytes);
    let read = got[3].to_tag_read().unwrap();
    assert_eq!(
        read,
        TagRead {
            chip: "50101".into(),
            time: ReaderTime::TimeOfDay(cs(15, 54, 48, 90) as i64),
            antenna: Some(8),
            rssi: None,
            passing_no: Some(24),
            session: None,
            hits: None,
        }
    );
    assert_eq!(got[0].to_tag_read().unwrap().antenna, None, "CT01_33 field 7 is not an antenna");
    assert_eq!(got[1].to_tag_read(), None, "a gun time is not a tag read");
}

#[test]
fn golden_server_handshake() {
    let bytes = include_bytes!("../../../test_data/chronotrack/server_handshake.txt");
    let got: Vec<Command> = decode_whole(bytes, decode_command).into_iter().map(|r| r.unwrap()).collect();
    let mut expect: Vec<Command> = handshake("racetime", "1").into_iter().skip(1).collect();
    expect.extend([Command::Start { location: None, seq: None }, Command::Ping]);
    assert_eq!(got, expect);
    let mut again = Vec::new();
    expect.iter().for_each(|c| c.encode(&mut again));
    assert_eq!(again, bytes);
}

#[test]
fn client_handshake_lines() {
    let mut buf = b"SimpleClient~2.1~CTP01\r\nack~getconnectionid~abc\r\nack~geteventinfo~City Run~42~10k\r\nack~getlocations~start~30k~finish\r\nack~ping\r\nerr~start~no such location\r\n".to_vec();
    let got: Vec<Message> = testkit::drain(&mut buf, decode).into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(
        got,
        vec![
            Message::Greeting { name: "SimpleClient".into(), version: "2.1".into(), protocol: "CTP01".into() },
            Message::ConnectionId("abc".into()),
            Message::EventInfo { name: "City Run".into(), id: "42".into(), description: "10k".into() },
            Message::Locations(vec!["start".into(), "30k".into(), "finish".into()]),
            Message::Pong,
            Message::Error { command: "start".into(), message: "no such location".into() },
        ]
    );
}

#[test]
fn time_formats() {
    // 2008-10-16 is day 14168.
    let iso = 14_168 * 86_400_000_000 + cs(14, 2, 15, 31) as i64;
    assert_eq!(CtTime::parse(b"2008-10-16T14:02:15.31"), Some(CtTime::Iso(iso)));
    assert_eq!(CtTime::parse(b"1224165735.31"), Some(CtTime::Unix(1_224_165_735_310_000)));
    assert_eq!(CtTime::parse(b"50535310"), Some(CtTime::Msecs(50_535_310)));
    assert_eq!(CtTime::Iso(iso).reader_time(), ReaderTime::LocalDateTime(iso));
    let mut out = Vec::new();
    CtTime::Iso(iso).write(&mut out);
    assert_eq!(out, b"2008-10-16T14:02:15.31");
}

#[test]
fn start_with_resume_point() {
    let mut out = Vec::new();
    Command::Start { location: Some("30k".into()), seq: Some(2038) }.encode(&mut out);
    assert_eq!(out, b"start~30k~2038\r\n");
}

#[test]
fn malformed_line_is_typed_and_the_next_survives() {
    let mut buf = b"CT01_33~x~start~9478~14:02:15.31~0~0F2A38~1\r\nCT01_33~1~start~9478\r\nack~ping\r\n".to_vec();
    let e = decode(&mut buf).unwrap_err();
    assert!(e.to_string().contains("bad sequence number \"x\""), "{e}");
    assert!(decode(&mut buf).unwrap_err().to_string().contains("4 fields"));
    assert_eq!(decode(&mut buf), Ok(Some(Message::Pong)));
}

// ---- property tests ----

fn word() -> impl Strategy<Value = String> {
    field_text("~=\r\n", 10)
}

fn arb_time() -> impl Strategy<Value = CtTime> {
    prop_oneof![
        (0u64..8_640_000).prop_map(|c| CtTime::TimeOfDay(c * 10_000)),
        (0i64..4_000_000_000 * 100).prop_map(|c| CtTime::Iso(c * 10_000)),
        (0i64..4_000_000_000 * 100).prop_map(|c| CtTime::Unix(c * 10_000)),
        (0u64..86_400_000).prop_map(CtTime::Msecs),
    ]
}

fn arb_record() -> impl Strategy<Value = CtRecord> {
    (
        proptest::sample::select(vec!["CT01_13", "CT01_33"]),
        any::<u64>(),
        word(),
        "[0-9A-Z]{1,8}",
        arb_time(),
        "[0-9]{0,2}",
        "[0-9A-F]{6}",
        "[0-9]{0,2}",
    )
        .prop_map(|(format, seq, location, tag, time, field5, reader_id, field7)| CtRecord {
            format: format.into(),
            seq,
            location,
            tag,
            time,
            field5,
            reader_id,
            field7,
        })
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        4 => arb_record().prop_map(Message::Read),
        1 => arb_record().prop_map(|r| Message::GunTime(CtRecord { tag: "guntime".into(), ..r })),
        1 => arb_record().prop_map(|r| Message::NewLocation(CtRecord { tag: "newlocation".into(), ..r })),
        1 => (word(), word(), "CTP[0-9]{2}").prop_map(|(name, version, protocol)| Message::Greeting { name, version, protocol }),
        1 => word().prop_map(Message::ConnectionId),
        1 => (word(), word(), word()).prop_map(|(name, id, description)| Message::EventInfo { name, id, description }),
        1 => proptest::collection::vec(word(), 0..4).prop_map(Message::Locations),
        1 => Just(Message::Pong),
        1 => ("x[a-z]{0,6}", proptest::collection::vec(word(), 0..3)).prop_map(|(command, args)| Message::Ack { command, args }),
        1 => (word(), word()).prop_map(|(command, message)| Message::Error { command, message }),
    ]
}

fn arb_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        (word(), word(), any::<u32>()).prop_map(|(name, version, n_settings)| Command::Greeting {
            name,
            version,
            n_settings
        }),
        ("[a-z-]{1,12}", field_text("~\r\n", 8)).prop_map(|(key, value)| Command::Setting { key, value }),
        Just(Command::GetConnectionId),
        Just(Command::GetEventInfo),
        Just(Command::GetLocations),
        proptest::option::of((word(), any::<Option<u64>>()))
            .prop_map(|l| Command::Start { location: l.as_ref().map(|(l, _)| l.clone()), seq: l.and_then(|(_, s)| s) }),
        proptest::option::of(word()).prop_map(|location| Command::Stop { location }),
        Just(Command::Ping),
    ]
}

const ALPHABET: &[u8] = b"0123456789~CT01_3:.-Tackpingerrstart=\r\n";

proptest! {
    #[test]
    fn decode_never_panics(bytes in testkit::noisy_bytes(ALPHABET, 600), cuts in proptest::collection::vec(any::<usize>(), 0..6)) {
        testkit::check_no_panic(&bytes, &cuts, decode);
        testkit::check_no_panic(&bytes, &cuts, decode_command);
    }

    #[test]
    fn message_roundtrip(m in arb_message()) {
        let mut out = Vec::new();
        m.encode(&mut out);
        prop_assert_eq!(decode(&mut out), Ok(Some(m)));
        prop_assert!(out.is_empty());
    }

    #[test]
    fn command_roundtrip(c in arb_command()) {
        let mut out = Vec::new();
        c.encode(&mut out);
        prop_assert_eq!(decode_command(&mut out), Ok(Some(c)));
        prop_assert!(out.is_empty());
    }

    #[test]
    fn rechunking_changes_nothing(ms in proptest::collection::vec(arb_message(), 1..8), cuts in proptest::collection::vec(any::<usize>(), 0..10)) {
        let mut stream = Vec::new();
        ms.iter().for_each(|m| m.encode(&mut stream));
        testkit::check_rechunk(&stream, &cuts, decode, &ms)?;
    }

    #[test]
    fn garbage_between_frames_loses_nothing(
        ms in proptest::collection::vec(arb_message(), 1..6),
        garbage in proptest::collection::vec(testkit::garbage_frame(b"\r\n", b"\r\n"), 6),
    ) {
        let mut stream = Vec::new();
        for (m, g) in ms.iter().zip(&garbage) {
            stream.extend_from_slice(g);
            m.encode(&mut stream);
        }
        testkit::check_garbage(&stream, decode, &ms)?;
    }
}
