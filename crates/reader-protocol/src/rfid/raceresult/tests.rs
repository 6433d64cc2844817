use proptest::prelude::*;

use super::*;
use crate::testkit::{self, decode_whole, field_text};

fn day_counter(day: u8) -> DecoderDate {
    DecoderDate { year: 0, month: 0, day }
}

fn ms(h: u64, m: u64, s: u64, ms: u64) -> u64 {
    ((h * 60 + m) * 60 + s) * 1_000_000 + ms * 1000
}

#[track_caller]
fn check(bytes: &[u8], expect: Vec<Message>) {
    let got: Vec<Message> = decode_whole(bytes, decode).into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(got, expect);
    let mut again = Vec::new();
    for m in &expect {
        m.encode(&mut again);
    }
    assert_eq!(again, bytes, "re-encoding gives the captured bytes back");
}

#[test]
fn golden_quickstart_session_decoder_side() {
    check(
        include_bytes!("../../../test_data/raceresult/quickstart_decoder.txt"),
        vec![
            Message::Reply { command: "SETPROTOCOL".into(), fields: vec!["2.0".into()] },
            Message::OperationStarted(Some(DecoderTime { date: day_counter(0), time_of_day_us: 0 })),
            Message::Time(DecoderTime { date: day_counter(0), time_of_day_us: ms(0, 2, 12, 942) }),
            Message::Passings { count: 1, file_no: None },
        ],
    );
}

#[test]
fn golden_quickstart_session_host_side() {
    let bytes = include_bytes!("../../../test_data/raceresult/quickstart_host.txt");
    let got: Vec<Command> = decode_whole(bytes, decode_command).into_iter().map(|r| r.unwrap()).collect();
    let expect = vec![Command::SetProtocol("2.0".into()), Command::StartOperation, Command::GetTime, Command::Passings];
    assert_eq!(got, expect);
    let mut again = Vec::new();
    expect.iter().for_each(|c| c.encode(&mut again));
    assert_eq!(again, bytes);
}

#[test]
fn golden_old_protocol_passing_from_crossmgr() {
    let mut p = Passing::new(1, "33", Some(day_counter(0)), ms(0, 0, 2, 773));
    p.event_id = Some(6692);
    p.hits = Some(12);
    p.max_rssi = Some(-68);
    p.internal_data = "09ca52".into();
    p.n_fields = 8;
    check(include_bytes!("../../../test_data/raceresult/passing_v1_crossmgr.txt"), vec![Message::Passing(p.clone())]);
    let read = p.to_tag_read();
    assert_eq!(read.chip, "33");
    assert_eq!(read.time, ReaderTime::TimeOfDay(2_773_000));
    assert_eq!(read.rssi, Some(Rssi(-680)));
    assert_eq!((read.passing_no, read.hits, read.session, read.antenna), (Some(1), Some(12), None, None));
}

#[test]
fn golden_active_raw_data_record_prefix() {
    let mut p = Passing::new(7750, "ZCMBG52", None, ms(10, 50, 0, 477));
    p.event_id = Some(0);
    p.hits = Some(72);
    p.max_rssi = Some(127);
    p.is_active = Some(true);
    p.channel = Some(1);
    p.loop_id = Some(1);
    p.wakeup_counter = Some(16731);
    p.n_fields = 13;
    check(
        include_bytes!("../../../test_data/raceresult/passing_active_raw_v2_truncated.txt"),
        vec![Message::Passing(p.clone())],
    );
    // An active tag's RSSI is on another scale and stays out of the common read.
    assert_eq!(p.to_tag_read().rssi, None);
    assert_eq!(p.to_tag_read().time, ReaderTime::TimeOfDay(39_000_477_000));
}

fn v16(no: u64, time_of_day_us: u64, hits: u32, rssi: i32, antenna: u8) -> Passing {
    let mut p = Passing::new(no, "ZICAD30", Some(DecoderDate { year: 2024, month: 6, day: 2 }), time_of_day_us);
    p.event_id = Some(0);
    p.hits = Some(hits);
    p.max_rssi = Some(rssi);
    p.is_active = Some(false);
    p.box_name = "D-5432".into();
    p.file_no = Some(3);
    p.max_rssi_antenna = Some(antenna);
    p.box_id = "D-5432".into();
    p.n_fields = 20;
    p
}

#[test]
fn golden_pushed_v16_passing() {
    let p = v16(12, ms(9, 31, 5, 123), 57, -61, 2);
    check(
        include_bytes!("../../../test_data/raceresult/pushed_v16_constructed.txt"),
        vec![Message::PushedPassing(p.clone())],
    );
    let read = p.to_tag_read();
    // 2024-06-02 is 19876 days after 1970-01-01.
    let local = 19_876 * 86_400_000_000 + ms(9, 31, 5, 123) as i64;
    assert_eq!(
        read,
        TagRead {
            chip: "ZICAD30".into(),
            time: ReaderTime::LocalDateTime(local),
            antenna: Some(2),
            rssi: Some(Rssi(-610)),
            passing_no: Some(12),
            session: Some(3),
            hits: Some(57),
        }
    );
}

#[test]
fn golden_pull_batch_ends_with_empty_line() {
    check(
        include_bytes!("../../../test_data/raceresult/pull_batch_constructed.txt"),
        vec![Message::Passing(v16(11, ms(9, 31, 4, 870), 41, -63, 1)), Message::EndOfBatch],
    );
}

#[test]
fn commands_encode_as_documented() {
    let cases: Vec<(Command, &[u8])> = vec![
        (Command::GetPassings { from: 1, count: 32 }, b"1:32\r\n"),
        (Command::GetPassing(7), b"7\r\n"),
        (
            Command::SetTime(DecoderTime {
                date: DecoderDate { year: 2024, month: 6, day: 2 },
                time_of_day_us: ms(9, 0, 0, 5),
            }),
            b"SETTIME;2024-06-02;09:00:00.005\r\n",
        ),
        (Command::SetPushPassings { enabled: true, include_stored: false }, b"SETPUSHPASSINGS;1;0\r\n"),
        (Command::GetConfig { section: "GENERAL".into(), key: "BOXNAME".into() }, b"GETCONFIG;GENERAL;BOXNAME\r\n"),
        (Command::GetFile(2), b"GETFILE;2\r\n"),
        (Command::Other("GETFIRMWAREVERSION".into()), b"GETFIRMWAREVERSION\r\n"),
    ];
    for (cmd, bytes) in cases {
        let mut out = Vec::new();
        cmd.encode(&mut out);
        assert_eq!(out, bytes);
        assert_eq!(decode_command(&mut out), Ok(Some(cmd)));
    }
}

#[test]
fn crossmgr_simulator_short_record_with_microseconds() {
    let mut buf = b"5;413A35;2012-07-24;10:11:16.443300\n".to_vec();
    let p = Passing::new(5, "413A35", Some(DecoderDate { year: 2012, month: 7, day: 24 }), 36_676_443_300);
    assert_eq!(decode(&mut buf), Ok(Some(Message::Passing(p))));
    assert!(buf.is_empty());
}

#[test]
fn day_counter_adds_whole_days() {
    assert_eq!(reader_time(Some(day_counter(2)), 5), ReaderTime::TimeOfDay(2 * 86_400_000_000 + 5));
}

#[test]
fn status_accessors_follow_the_documented_order() {
    let line = b"GETSTATUS;2024-06-02;09:00:00.000;1;00011001;1;3;1;48.1,11.5;1;87;35;40;866;0;;;;;;1;1;0;0;0;\r\n";
    let Ok(Some(Message::Status(s))) = decode(&mut line.to_vec()) else { panic!("status expected") };
    assert_eq!(s.time().map(|t| t.time_of_day_us), Some(ms(9, 0, 0, 0)));
    assert_eq!(s.has_power(), Some(true));
    assert_eq!(s.antennas(), Some("00011001"));
    assert_eq!(s.in_operation(), Some(true));
    assert_eq!(s.file_no(), Some(3));
    assert_eq!(s.gps_fix(), Some(true));
    assert_eq!(s.reader_healthy(), Some(true));
    assert_eq!(s.battery_charge(), Some(87));
    assert_eq!(s.time_source(), Some(1));
}

#[test]
fn malformed_lines_are_typed_errors_with_their_bytes() {
    let mut buf = b"12;ZICAD30;2024-13-02;09:31:05.123\r\nPASSINGS;x\r\n\x01\r\nPASSINGS;4\r\n".to_vec();
    let e = decode(&mut buf).unwrap_err();
    assert!(matches!(&e, DecodeError::Malformed { protocol: "raceresult", .. }));
    let shown = e.to_string();
    assert!(shown.contains("bad date \"2024-13-02\""), "{shown}");
    assert!(shown.contains("31 32 3b"), "{shown}");
    assert!(matches!(decode(&mut buf), Err(DecodeError::Malformed { .. })));
    assert!(matches!(decode(&mut buf), Err(DecodeError::Malformed { .. })));
    assert_eq!(decode(&mut buf), Ok(Some(Message::Passings { count: 4, file_no: None })));
}

#[test]
fn over_long_line_is_dropped_and_the_next_line_survives() {
    let mut buf = vec![b'7'; MAX_LINE + 10];
    assert_eq!(decode(&mut buf), Ok(None));
    assert!(buf.len() <= MAX_LINE + 1);
    buf.extend_from_slice(b"77\r\nPASSINGS;2;1\r\n");
    assert_eq!(decode(&mut buf), Err(DecodeError::TooLong { protocol: PROTOCOL, limit: MAX_LINE }));
    assert_eq!(decode(&mut buf), Ok(Some(Message::Passings { count: 2, file_no: Some(1) })));
}

// ---- property tests ----

fn arb_date() -> impl Strategy<Value = DecoderDate> {
    prop_oneof![
        (0u8..=99).prop_map(day_counter),
        (1u16..=9999, 1u8..=12, 1u8..=28).prop_map(|(year, month, day)| DecoderDate { year, month, day }),
    ]
}

fn arb_tod() -> impl Strategy<Value = u64> {
    prop_oneof![(0u64..86_400_000).prop_map(|m| m * 1000), 0u64..86_400_000_000]
}

fn arb_time() -> impl Strategy<Value = DecoderTime> {
    (arb_date(), arb_tod()).prop_map(|(date, time_of_day_us)| DecoderTime { date, time_of_day_us })
}

fn opt_text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), field_text(";\r\n", 8)]
}

fn arb_passing() -> impl Strategy<Value = Passing> {
    (
        (any::<u64>(), field_text(";\r\n", 10), proptest::option::of(arb_date()), arb_tod(), 4u8..=20),
        (
            any::<Option<u32>>(),
            any::<Option<u32>>(),
            any::<Option<i32>>(),
            opt_text(),
            any::<Option<bool>>(),
            any::<Option<u8>>(),
            any::<Option<u8>>(),
            any::<Option<bool>>(),
        ),
        (
            any::<Option<u32>>(),
            opt_text(),
            any::<Option<i32>>(),
            opt_text(),
            opt_text(),
            any::<Option<u32>>(),
            any::<Option<u8>>(),
            opt_text(),
        ),
    )
        .prop_map(|((no, code, date, tod, n), a, b)| {
            let mut p = Passing::new(no, &code, date, tod);
            let n_us = usize::from(n);
            let keep = |i: usize| i < n_us;
            p.n_fields = n;
            p.event_id = a.0.filter(|_| keep(4));
            p.hits = a.1.filter(|_| keep(5));
            p.max_rssi = a.2.filter(|_| keep(6));
            p.internal_data = if keep(7) { a.3 } else { String::new() };
            p.is_active = a.4.filter(|_| keep(8));
            p.channel = a.5.filter(|_| keep(9));
            p.loop_id = a.6.filter(|_| keep(10));
            p.loop_only = a.7.filter(|_| keep(11));
            p.wakeup_counter = b.0.filter(|_| keep(12));
            p.battery = if keep(13) { b.1 } else { String::new() };
            p.temperature = b.2.filter(|_| keep(14));
            p.internal_active_data = if keep(15) { b.3 } else { String::new() };
            p.box_name = if keep(16) { b.4 } else { String::new() };
            p.file_no = b.5.filter(|_| keep(17));
            p.max_rssi_antenna = b.6.filter(|_| keep(18));
            p.box_id = if keep(19) { b.7 } else { String::new() };
            p
        })
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        4 => arb_passing().prop_map(Message::Passing),
        4 => arb_passing().prop_map(Message::PushedPassing),
        1 => Just(Message::EndOfBatch),
        1 => field_text("\r\n", 20).prop_map(Message::Only),
        1 => arb_time().prop_map(Message::Time),
        1 => arb_time().prop_map(Message::TimeSet),
        1 => (any::<u64>(), any::<Option<u32>>()).prop_map(|(count, file_no)| Message::Passings { count, file_no }),
        1 => (arb_time(), proptest::collection::vec(opt_text(), 0..26)).prop_map(|(t, rest)| {
            let mut head = Vec::new();
            t.write(&mut head);
            let head = String::from_utf8(head).unwrap();
            let mut fields: Vec<String> = head.split(';').map(str::to_owned).collect();
            fields.extend(rest);
            Message::Status(Status { fields })
        }),
        1 => proptest::option::of(arb_time()).prop_map(Message::OperationStarted),
        1 => Just(Message::OperationStopped),
        1 => (any::<bool>(), any::<Option<bool>>())
            .prop_map(|(enabled, include_stored)| Message::PushPassings { enabled, include_stored }),
        1 => Just(Message::Pong),
        1 => (
            proptest::sample::select(vec!["GETPROTOCOL", "SETPROTOCOL", "GETCONFIG", "GETFIRMWAREVERSION", "GETMODE"]),
            proptest::collection::vec(opt_text(), 0..4)
        )
            .prop_map(|(c, fields)| Message::Reply { command: c.into(), fields }),
    ]
}

fn arb_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::GetProtocol),
        field_text(";\r\n", 5).prop_map(Command::SetProtocol),
        Just(Command::GetStatus),
        Just(Command::StartOperation),
        Just(Command::StopOperation),
        Just(Command::GetTime),
        arb_time().prop_map(Command::SetTime),
        Just(Command::Passings),
        (any::<u64>(), any::<u64>()).prop_map(|(from, count)| Command::GetPassings { from, count }),
        any::<u64>().prop_map(Command::GetPassing),
        (any::<bool>(), any::<bool>())
            .prop_map(|(enabled, include_stored)| { Command::SetPushPassings { enabled, include_stored } }),
        any::<bool>().prop_map(Command::SetPushPrewarns),
        (field_text(";\r\n", 8), field_text(";\r\n", 8)).prop_map(|(section, key)| Command::GetConfig { section, key }),
        any::<u32>().prop_map(Command::GetFile),
        Just(Command::ClearFiles),
        Just(Command::Ping),
        proptest::sample::select(vec!["GETFIRMWAREVERSION", "GETMODE", "GETACTIVESTATUS", "GETINTERFACES"])
            .prop_map(|s| Command::Other(s.into())),
    ]
}

const ALPHABET: &[u8] = b"0123456789;:-.#PONLY GETIMSA\r\n";

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
