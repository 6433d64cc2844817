use proptest::prelude::*;

use super::*;
use crate::testkit::{self, decode_whole};

/// `[year, month, day, weekday, hour, minute, second, centis]`.
fn clock([year, month, day, weekday, hour, minute, second, centis]: [u8; 8]) -> IpicoClock {
    IpicoClock { year, month, day, weekday, hour, minute, second, centis }
}

#[track_caller]
fn check<M: PartialEq + std::fmt::Debug>(
    bytes: &[u8],
    decode: testkit::DecodeFn<M>,
    encode: fn(&M, &mut Vec<u8>),
    expect: Vec<M>,
) {
    let got: Vec<M> = decode_whole(bytes, decode).into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(got, expect);
    let mut again = Vec::new();
    expect.iter().for_each(|m| encode(m, &mut again));
    assert_eq!(again, bytes, "re-encoding gives the captured bytes back");
}

#[test]
fn golden_tag_records() {
    let tags = [
        TagRecord {
            reader_id: 0x40,
            tag_id: "000000012345".into(),
            i_count: 10,
            q_count: 42,
            time: clock([1, 12, 30, 0, 18, 45, 59, 39]),
            tto: None,
        },
        TagRecord {
            reader_id: 0,
            tag_id: "058000128608".into(),
            i_count: 0,
            q_count: 1,
            time: clock([26, 3, 6, 0, 20, 27, 47, 35]),
            tto: None,
        },
        TagRecord {
            reader_id: 0,
            tag_id: "058000123b32".into(),
            i_count: 0,
            q_count: 1,
            time: clock([26, 3, 8, 0, 12, 22, 2, 47]),
            tto: Some(Tto { index: 6, page: 0, status: 0x80 }),
        },
    ];
    check(
        include_bytes!("../../../test_data/ipico/tags.txt"),
        decode,
        Message::encode,
        tags.iter().cloned().map(Message::Tag).collect(),
    );
    assert!(tags[2].tto.unwrap().first_seen());
    // 2001-12-30 18:45:59.39 local: 11686 days after 1970-01-01.
    let read = tags[0].to_tag_read();
    assert_eq!(read.time, ReaderTime::LocalDateTime(11_686 * 86_400_000_000 + 67_559_390_000));
    assert_eq!((read.chip.as_str(), read.hits, read.antenna), ("000000012345", Some(42), None));
}

#[test]
fn golden_reader_control_frames() {
    check(
        include_bytes!("../../../test_data/ipico/control_reader.txt"),
        decode,
        Message::encode,
        vec![
            Message::Clock { reader_id: 0, clock: clock([26, 3, 6, 5, 18, 55, 44, 55]), config: 0x27 },
            Message::Ack { reader_id: 0, instruction: instruction::SET_DATE_TIME },
            Message::Text(
                "ARM9 Controller for DF Dual DSP TTO Actel FPGA (STK Lite) (38.4kB) v1.4 Jun  5 2013 14:16:40 (RWXLF)"
                    .into(),
            ),
            Message::Control(ControlFrame {
                reader_id: 0,
                instruction: instruction::READ_MODE,
                query: false,
                data: vec![3, 5],
            }),
            Message::Trigger { reader_id: 0, clock: clock([26, 3, 6, 5, 20, 4, 15, 27]), extra: [0x27, 0x82] },
        ],
    );
}

#[test]
fn golden_host_commands() {
    check(
        include_bytes!("../../../test_data/ipico/control_host.txt"),
        decode_command,
        Command::encode,
        vec![
            Command::GetClock,
            Command::SetClock(clock([26, 3, 6, 5, 19, 49, 21, 0])),
            Command::GetBanner,
            Command::QueryReadMode,
            Command::QueryStoredReads,
        ],
    );
}

#[test]
fn wrong_lrc_is_a_checksum_error_and_the_next_record_survives() {
    let mut buf = b"aa400000000123450a2a01123018455927a8\r\naa0005800012860800012603062027472353\r\n".to_vec();
    let e = decode(&mut buf).unwrap_err();
    assert!(matches!(e, DecodeError::Checksum { protocol: "ipico", expected: 0xa7, got: 0xa8, .. }), "{e:?}");
    assert!(e.to_string().contains("expected 0xa7, got 0xa8"), "{e}");
    assert!(e.to_string().contains("61 61 34 30"), "{e}");
    assert!(matches!(decode(&mut buf), Ok(Some(Message::Tag(_)))));
}

#[test]
fn stored_read_commands() {
    for (cmd, bytes) in
        [(Command::DownloadStoredReads, &b"ab00024b0101"[..]), (Command::ClearStoredReads, &b"ab00014bd0"[..])]
    {
        let mut out = Vec::new();
        cmd.encode(&mut out);
        assert!(out.starts_with(bytes), "{}", String::from_utf8_lossy(&out));
        assert_eq!(decode_command(&mut out), Ok(Some(cmd)));
    }
}

#[test]
fn unchecked_ac_frames_are_accepted() {
    let mut buf = b"ac00000200\r\n".to_vec();
    assert_eq!(decode_command(&mut buf), Ok(Some(Command::GetClock)));
}

#[test]
fn bad_length_is_malformed() {
    let mut buf = b"aa4000000001234\r\n".to_vec();
    assert!(matches!(decode(&mut buf), Err(DecodeError::Malformed { .. })));
}

// ---- property tests ----

fn arb_clock(with_weekday: bool) -> impl Strategy<Value = IpicoClock> {
    (0u8..100, 1u8..=12, 1u8..=28, 0u8..7, 0u8..24, 0u8..60, 0u8..60, 0u8..100).prop_map(
        move |(year, month, day, weekday, hour, minute, second, centis)| IpicoClock {
            year,
            month,
            day,
            weekday: if with_weekday { weekday } else { 0 },
            hour,
            minute,
            second,
            centis,
        },
    )
}

fn arb_tag() -> impl Strategy<Value = TagRecord> {
    (any::<u8>(), "[0-9a-f]{12}", any::<u8>(), any::<u8>(), arb_clock(false), any::<Option<(u8, u8, u8)>>()).prop_map(
        |(reader_id, tag_id, i_count, q_count, time, tto)| TagRecord {
            reader_id,
            tag_id,
            i_count,
            q_count,
            time,
            tto: tto.map(|(index, page, status)| Tto { index, page, status }),
        },
    )
}

fn arb_control() -> impl Strategy<Value = ControlFrame> {
    (any::<u8>(), any::<u8>(), any::<bool>(), proptest::collection::vec(any::<u8>(), 1..20)).prop_map(
        |(reader_id, instruction, query, data)| ControlFrame {
            reader_id,
            instruction: if instruction == instruction::GET_DATE_TIME || instruction == instruction::TRIGGER_EVENT {
                0x10
            } else {
                instruction
            },
            query,
            data: if query { vec![] } else { data },
        },
    )
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        4 => arb_tag().prop_map(Message::Tag),
        1 => (any::<u8>(), arb_clock(true), any::<u8>())
            .prop_map(|(reader_id, clock, config)| Message::Clock { reader_id, clock, config }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(reader_id, instruction)| Message::Ack { reader_id, instruction }),
        1 => (any::<u8>(), arb_clock(true), any::<[u8; 2]>())
            .prop_map(|(reader_id, clock, extra)| Message::Trigger { reader_id, clock, extra }),
        1 => arb_control().prop_map(Message::Control),
        1 => "[A-Z][ -~]{0,40}".prop_map(Message::Text),
    ]
}

fn arb_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::GetClock),
        arb_clock(true).prop_map(|c| Command::SetClock(IpicoClock { centis: 0, ..c })),
        Just(Command::GetBanner),
        Just(Command::QueryReadMode),
        Just(Command::QueryStoredReads),
        Just(Command::DownloadStoredReads),
        Just(Command::ClearStoredReads),
        arb_control().prop_map(|c| Command::Control(ControlFrame { reader_id: c.reader_id.max(1), ..c })),
    ]
}

const ALPHABET: &[u8] = b"0123456789abcdef\r\n";

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
