use proptest::prelude::*;

use super::*;
use crate::testkit::{self, decode_whole, field_text};

fn read(chip: &str, secs: u64, millis: u16, antenna: u8, rssi: i16, reader_no: u8, log_id: u64) -> ChipRead {
    ChipRead {
        kind: 0,
        chip: chip.into(),
        seconds_since_1980: secs,
        millis,
        antenna,
        rssi,
        rewind: false,
        reader_no,
        ultra_id: 1,
        reader_time: "0000000000000000".into(),
        start_time: 0,
        log_id,
    }
}

#[track_caller]
fn check(bytes: &[u8], expect: Vec<Message>) {
    let got: Vec<Message> = decode_whole(bytes, decode).into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(got, expect);
    let mut again = Vec::new();
    expect.iter().for_each(|m| m.encode(&mut again));
    assert_eq!(again, bytes);
}

#[test]
fn golden_pikatimer_read() {
    let r = read("11055", 1_170_518_701, 698, 1, -71, 2, 29_319);
    check(include_bytes!("../../../test_data/ultra/read_pikatimer.txt"), vec![Message::Read(r.clone())]);
    // 2017-02-02 16:05:01.698 reader-local = 1486051501.698 s after 1970-01-01 local.
    assert_eq!(
        r.to_tag_read(),
        TagRead {
            chip: "11055".into(),
            time: ReaderTime::LocalDateTime(1_486_051_501_698_000),
            antenna: Some(1),
            rssi: Some(Rssi(-710)),
            passing_no: Some(29_319),
            session: None,
            hits: None,
        }
    );
}

#[test]
fn golden_constructed_read() {
    check(
        include_bytes!("../../../test_data/ultra/read_constructed.txt"),
        vec![Message::Read(read("4123", 1_401_357_123, 250, 2, -64, 1, 18))],
    );
}

#[test]
fn golden_enable_extended_status_command() {
    let bytes = include_bytes!("../../../test_data/ultra/enable_extended_status.bin");
    assert_eq!(decode_command(&mut bytes.to_vec()), Ok(Some(Command::EnableExtendedStatus)));
    let mut out = Vec::new();
    Command::EnableExtendedStatus.encode(&mut out);
    assert_eq!(out, bytes);
}

#[test]
fn line_ends_cr_lf_and_crlf_all_work() {
    let line = b"0,4123,1401357123,250,2,-64,0,1,1,0000000000000000,0,18";
    for end in [&b"\n"[..], b"\r", b"\r\n"] {
        let mut buf = [&line[..], end, b"V=12.6", end].concat();
        assert!(matches!(decode(&mut buf), Ok(Some(Message::Read(_)))));
        assert_eq!(decode(&mut buf), Ok(Some(Message::Voltage("12.6".into()))));
        assert_eq!(decode(&mut buf), Ok(None));
    }
}

#[test]
fn other_reader_lines() {
    let bytes =
        b"1,Connected,0,12\nConnected\nV12.4\nS1\nU\x14\x03\n9:05:01 2-2-2017\n16:05:01 02-02-2017 (-1)\nhello\n";
    let clock = UltraClock { year: 2017, month: 2, day: 2, hour: 16, minute: 5, second: 1 };
    let got: Vec<Message> = decode_whole(bytes, decode).into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(
        got,
        vec![
            Message::Connected("1,Connected,0,12".into()),
            Message::Connected("Connected".into()),
            Message::Voltage("12.4".into()),
            Message::Status("1".into()),
            Message::Setting(vec![0x14, 0x03]),
            Message::Clock(UltraClock { hour: 9, ..clock }),
            Message::ClockInfo { clock, value: -1 },
            Message::Text("hello".into()),
        ]
    );
    assert_eq!(clock.local_micros(), 1_486_051_501_000_000);
}

#[test]
fn extended_status_frame_may_contain_line_feeds() {
    let mut payload = vec![0u8; 50];
    payload[0] = b'\n';
    payload[40] = 87; // battery at frame offset 42
    payload[43] = 1; // reading at frame offset 45
    let mut buf = vec![EXTENDED_STATUS, 52];
    buf.extend_from_slice(&payload);
    buf.extend_from_slice(b"V=12.1\n");
    let m = decode(&mut buf).unwrap().unwrap();
    assert_eq!(m.battery_percent(), Some(87));
    assert_eq!(m.is_reading(), Some(true));
    assert_eq!(decode(&mut buf), Ok(Some(Message::Voltage("12.1".into()))));
}

#[test]
fn commands_encode_as_documented() {
    let clock = UltraClock { year: 2024, month: 6, day: 2, hour: 9, minute: 0, second: 0 };
    let cases: Vec<(Command, &[u8])> = vec![
        (Command::StartReading, b"R"),
        (Command::StopReading, b"S"),
        (Command::GetClock, b"r"),
        (Command::SetClock(clock), b"t 09:00:00 02-06-2024\r"),
        (Command::DumpSettings, b"U\n"),
        (Command::WriteSetting { id: setting::TIME_ZONE, value: vec![2] }, b"u\x23\x02\xff"),
        (Command::WriteSetting { id: setting::COMMIT, value: vec![] }, b"u\xff\xff"),
        (Command::RewindByLogId { from: 10, to: 20 }, b"6\0\x0010\r20\r"),
        (Command::RewindByTime { from: 1_401_357_000, to: 1_401_358_000 }, b"8\0\x001401357000\r1401358000\r"),
    ];
    for (cmd, bytes) in cases {
        let mut out = Vec::new();
        cmd.encode(&mut out);
        assert_eq!(out, bytes);
        assert_eq!(decode_command(&mut out), Ok(Some(cmd)));
        assert!(out.is_empty());
    }
}

#[test]
fn malformed_read_is_typed_and_neighbour_survives() {
    let mut buf = b"0,4123,1401357123,2500,2,-64,0,1,1,0,0,18\n\xff\xfe\nV=1\n".to_vec();
    let e = decode(&mut buf).unwrap_err();
    assert!(e.to_string().contains("bad milliseconds \"2500\""), "{e}");
    assert!(matches!(decode(&mut buf), Err(DecodeError::Malformed { .. })));
    assert_eq!(decode(&mut buf), Ok(Some(Message::Voltage("1".into()))));
}

#[test]
fn unknown_command_byte_is_consumed_alone() {
    let mut buf = b"xR".to_vec();
    assert!(matches!(decode_command(&mut buf), Err(DecodeError::Malformed { .. })));
    assert_eq!(decode_command(&mut buf), Ok(Some(Command::StartReading)));
}

// ---- property tests ----

fn arb_clock() -> impl Strategy<Value = UltraClock> {
    (1980u16..=2100, 1u8..=12, 1u8..=28, 0u8..24, 0u8..60, 0u8..60)
        .prop_map(|(year, month, day, hour, minute, second)| UltraClock { year, month, day, hour, minute, second })
}

fn arb_read() -> impl Strategy<Value = ChipRead> {
    (
        (0u8..=1, "[0-9A-F]{1,12}", any::<u32>(), 0u16..1000, any::<u8>(), any::<i16>()),
        (any::<bool>(), any::<u8>(), any::<u32>(), "[0-9A-F]{0,16}", any::<u32>(), any::<u64>()),
    )
        .prop_map(
            |((kind, chip, secs, millis, antenna, rssi), (rewind, reader_no, ultra_id, rt, start, log_id))| ChipRead {
                kind,
                chip,
                seconds_since_1980: u64::from(secs),
                millis,
                antenna,
                rssi,
                rewind,
                reader_no,
                ultra_id,
                reader_time: rt,
                start_time: u64::from(start),
                log_id,
            },
        )
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        4 => arb_read().prop_map(Message::Read),
        1 => field_text("\r\n", 20).prop_map(|s| Message::Connected(format!("1,Connected,{s}"))),
        1 => "[0-9.]{0,6}".prop_map(Message::Voltage),
        1 => field_text("\r\n", 10).prop_map(Message::Status),
        1 => proptest::collection::vec(any::<u8>(), 0..10)
            .prop_map(|v| Message::Setting(v.into_iter().filter(|b| *b != b'\r' && *b != b'\n').collect())),
        1 => arb_clock().prop_map(Message::Clock),
        1 => (arb_clock(), any::<i32>()).prop_map(|(clock, v)| Message::ClockInfo { clock, value: i64::from(v) }),
        1 => proptest::collection::vec(any::<u8>(), 0..253).prop_map(Message::ExtendedStatus),
        1 => "[a-z][ -~]{0,20}".prop_map(Message::Text),
    ]
}

fn arb_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::StartReading),
        Just(Command::StopReading),
        Just(Command::ConfirmStop),
        Just(Command::GetClock),
        arb_clock().prop_map(Command::SetClock),
        Just(Command::DumpSettings),
        (any::<u8>(), proptest::collection::vec(0u8..0xff, 0..MAX_COMMAND))
            .prop_map(|(id, value)| Command::WriteSetting { id, value }),
        (any::<u64>(), any::<u64>()).prop_map(|(from, to)| Command::RewindByLogId { from, to }),
        (any::<u64>(), any::<u64>()).prop_map(|(from, to)| Command::RewindByTime { from, to }),
        Just(Command::EnableExtendedStatus),
    ]
}

const ALPHABET: &[u8] = b"0123456789,-:V=SUConected \x03\x00\xff\r\n6 8Rrtu";

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
    fn command_rechunking_changes_nothing(cs in proptest::collection::vec(arb_command(), 1..8), cuts in proptest::collection::vec(any::<usize>(), 0..10)) {
        let mut stream = Vec::new();
        cs.iter().for_each(|c| c.encode(&mut stream));
        testkit::check_rechunk(&stream, &cuts, decode_command, &cs)?;
    }

    #[test]
    fn garbage_between_frames_loses_nothing(
        ms in proptest::collection::vec(arb_message(), 1..6),
        garbage in proptest::collection::vec(testkit::garbage_frame(b"\r\n\x03", b"\n"), 6),
    ) {
        let mut stream = Vec::new();
        for (m, g) in ms.iter().zip(&garbage) {
            stream.extend_from_slice(g);
            m.encode(&mut stream);
        }
        testkit::check_garbage(&stream, decode, &ms)?;
    }
}
