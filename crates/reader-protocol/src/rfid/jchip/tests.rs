use proptest::prelude::*;

use super::*;
use crate::testkit::{self, decode_whole};

fn tod(h: u64, m: u64, s: u64, us: u64) -> u64 {
    ((h * 60 + m) * 60 + s) * 1_000_000 + us
}

#[test]
fn golden_simulator_data_line() {
    let bytes = include_bytes!("../../../test_data/jchip/sim_data_line.txt");
    let got: Vec<Message> = decode_whole(bytes, decode).into_iter().map(|r| r.unwrap()).collect();
    let rec = Record {
        kind: b'J',
        tag: "413A35".into(),
        time_of_day_us: tod(10, 11, 16, 443_300),
        flag: b'1',
        day: 0,
        index: Some(0x1a),
        column: Some("C7".into()),
        date: Some(JchipDate { year: 2012, month: 7, day: 24 }),
    };
    assert_eq!(got, vec![Message::Data(rec.clone())]);
    assert_eq!(
        rec.to_tag_read(),
        TagRead {
            chip: "413A35".into(),
            time: ReaderTime::TimeOfDay(tod(10, 11, 16, 443_300) as i64),
            antenna: None,
            rssi: None,
            passing_no: Some(26),
            session: None,
            hits: None,
        }
    );
    // Re-encoding keeps every value; the fraction is written with the hardware's four digits.
    let mut out = Vec::new();
    Message::Data(rec).encode(&mut out);
    assert_eq!(out, b"DJ413A35 10:11:16.4433 10  0001A      C7 date=20120724\r");
}

#[test]
fn golden_raw_record() {
    let line = include_bytes!("../../../test_data/jchip/raw_record.txt");
    let rec = Record::parse(line.strip_suffix(b"\r\n").unwrap()).unwrap();
    assert_eq!(
        rec,
        Record {
            kind: b'Z',
            tag: "413A35".into(),
            time_of_day_us: tod(10, 11, 16, 443_300),
            flag: b'1',
            day: 0,
            index: Some(0x10000),
            column: Some("C7".into()),
            date: None,
        }
    );
    let mut out = Vec::new();
    rec.write(&mut out);
    assert_eq!(out, b"Z413A35 10:11:16.4433 10  10000      C7");
}

#[test]
fn golden_host_commands() {
    let bytes = include_bytes!("../../../test_data/jchip/host_commands.txt");
    let got: Vec<Command> = decode_whole(bytes, decode_command).into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(got, vec![Command::GetTime, Command::StartTransmission { from: 0 }]);
    let mut out = Vec::new();
    got.iter().for_each(|c| c.encode(&mut out));
    assert_eq!(out, bytes);
}

#[test]
fn time_and_name_lines() {
    let mut buf = b"N0012JCHIP-1\rGT110111644 date=20120724\rGT0235959\rGT1101116443 date=20120724\r".to_vec();
    assert_eq!(decode(&mut buf), Ok(Some(Message::Name { recorded: 12, name: "JCHIP-1".into() })));
    assert_eq!(
        decode(&mut buf),
        Ok(Some(Message::Time {
            days: 1,
            time_of_day_us: tod(10, 11, 16, 440_000),
            date: Some(JchipDate { year: 2012, month: 7, day: 24 }),
        }))
    );
    // Hundredths missing, then one digit too many: both malformed.
    assert!(matches!(decode(&mut buf), Err(DecodeError::Malformed { .. })));
    assert!(matches!(decode(&mut buf), Err(DecodeError::Malformed { .. })));
    assert_eq!(decode(&mut buf), Ok(None));
}

#[test]
fn day_counter_extends_the_time_of_day() {
    let rec = Record::parse(b"J413A35 00:00:01.0000 12").unwrap();
    assert_eq!(rec.to_tag_read().time, ReaderTime::TimeOfDay(2 * 86_400_000_000 + 1_000_000));
}

#[test]
fn bad_time_is_malformed_and_names_the_field() {
    let mut buf = b"DJ413A35 25:11:16.4433 10\rN0001X\r".to_vec();
    let e = decode(&mut buf).unwrap_err();
    assert!(e.to_string().contains("bad time"), "{e}");
    assert_eq!(decode(&mut buf), Ok(Some(Message::Name { recorded: 1, name: "X".into() })));
}

// ---- property tests ----

fn arb_record() -> impl Strategy<Value = Record> {
    (
        (proptest::sample::select(b"JZ".to_vec()), "[0-9A-F]{6}", 0u64..86_400_000_000, b'0'..=b'9', 0u8..=9),
        proptest::option::of((0u32..0x100000, proptest::option::of("[A-Z][0-9]"))),
        proptest::option::of((2000u16..2100, 1u8..=12, 1u8..=28)),
    )
        .prop_map(|((kind, tag, t, flag, day), idx, date)| Record {
            kind,
            tag,
            time_of_day_us: t,
            flag,
            day,
            index: idx.as_ref().map(|(i, _)| *i),
            column: idx.and_then(|(_, c)| c),
            date: date.map(|(year, month, day)| JchipDate { year, month, day }),
        })
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        4 => arb_record().prop_map(Message::Data),
        1 => (0u32..10_000, "[A-Za-z0-9 -]{0,12}").prop_map(|(recorded, name)| Message::Name { recorded, name }),
        1 => (0u8..=9, 0u64..8_640_000, proptest::option::of((2000u16..2100, 1u8..=12, 1u8..=28))).prop_map(
            |(days, cs, date)| Message::Time {
                days,
                time_of_day_us: cs * 10_000,
                date: date.map(|(year, month, day)| JchipDate { year, month, day }),
            }
        ),
        1 => "[a-z][ -~]{0,20}".prop_map(Message::Text),
    ]
}

fn arb_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::GetTime),
        any::<u32>().prop_map(|from| Command::StartTransmission { from }),
        "[a-z][ -~]{0,10}".prop_map(Command::Other),
    ]
}

const ALPHABET: &[u8] = b"0123456789ABCDEFJZDGTN :.=date\r\n";

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
        garbage in proptest::collection::vec(testkit::garbage_frame(b"\r\n", b"\r"), 6),
    ) {
        let mut stream = Vec::new();
        for (m, g) in ms.iter().zip(&garbage) {
            stream.extend_from_slice(g);
            m.encode(&mut stream);
        }
        testkit::check_garbage(&stream, decode, &ms)?;
    }
}
