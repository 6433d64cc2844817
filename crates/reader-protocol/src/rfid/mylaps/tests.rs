use proptest::prelude::*;

use super::*;
use crate::testkit::{self, decode_whole, field_text};

fn tod(h: u64, m: u64, s: u64, ms: u64) -> u64 {
    ((h * 60 + m) * 60 + s) * 1_000_000 + ms * 1000
}

fn bibtag(time_of_day_us: u64, chip: &str, lap: u32, an: &str, bib: &str) -> Passing {
    let mut p = Passing::new(chip, time_of_day_us);
    p.chip_type = Some("UH".into());
    p.date = Some(MylapsDate { year: 12, month: 6, day: 6 });
    p.lap = Some(lap);
    p.device = Some(4);
    p.reader = Some(0);
    p.antennas = Some(an.into());
    p.group = Some(0);
    p.bib = Some(bib.into());
    p.bib_text = Some(bib.into());
    p
}

#[test]
fn golden_client_records() {
    let bytes = include_bytes!("../../../test_data/mylaps/client_records.txt");
    let got: Vec<Message> = decode_whole(bytes, decode).into_iter().map(|r| r.unwrap()).collect();
    let kv = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    let expect = vec![
        Message::Locations { name: "Toolkit".into(), locations: vec!["Start".into(), "5K".into(), "Finish".into()] },
        Message::DeviceInfo {
            name: "20M".into(),
            info: vec![
                kv("id", "20250558687"),
                kv("n", "BibTagDecoder00DF"),
                kv("mac", "0004B70700DF"),
                kv("ant", "2"),
                kv("time", "954463123529"),
            ],
        },
        Message::Passings {
            name: "10KM".into(),
            passings: vec![
                bibtag(tod(13, 11, 30, 904), "0000041", 13, "00001111", "41"),
                bibtag(tod(13, 12, 21, 830), "0000039", 30, "00001101", "39"),
            ],
            counter: 1016,
        },
        Message::Markers {
            name: "Start".into(),
            markers: vec![Marker {
                time_of_day_us: tod(11, 3, 40, 347),
                marker_type: "Gunshot".into(),
                name: Some("Gunshot 1".into()),
                extra: vec![],
            }],
            counter: 4,
        },
        Message::Stored {
            name: "MTB Split 4Km".into(),
            passings: vec![
                StoredPassing {
                    chip: "KV86583".into(),
                    time_of_day_us: tod(16, 13, 57, 417),
                    columns: " 3 0F  10000".into(),
                    date: MylapsDate { year: 25, month: 3, day: 8 },
                    checksum: "70".into(),
                },
                StoredPassing {
                    chip: "TC39701".into(),
                    time_of_day_us: tod(16, 14, 0, 638),
                    columns: " 3 0F  10001".into(),
                    date: MylapsDate { year: 25, month: 3, day: 8 },
                    checksum: "57".into(),
                },
            ],
            counter: 2,
        },
    ];
    assert_eq!(got, expect);
    let mut again = Vec::new();
    expect.iter().for_each(|m| m.encode(&mut again));
    assert_eq!(again, bytes, "re-encoding gives the captured bytes back");

    // 2012-06-06 is day 15497; racemap decodes the stored passing to 2025-03-08T16:13:57.417 (day 20155).
    assert_eq!(
        got[2].tag_reads()[0].time,
        ReaderTime::LocalDateTime(15_497 * 86_400_000_000 + tod(13, 11, 30, 904) as i64)
    );
    assert_eq!(
        got[4].tag_reads()[0].time,
        ReaderTime::LocalDateTime(20_155 * 86_400_000_000 + tod(16, 13, 57, 417) as i64)
    );
    let Message::Markers { markers, .. } = &got[3] else { unreachable!() };
    assert!(markers[0].is_gunshot());
}

#[test]
fn golden_server_records_are_the_acks() {
    let bytes = include_bytes!("../../../test_data/mylaps/server_records.txt");
    let got: Vec<Command> = decode_whole(bytes, decode_command).into_iter().map(|r| r.unwrap()).collect();
    let name = || "racetime".to_owned();
    let expect = vec![
        Command::AckPong {
            name: name(),
            version: "Version2.1".into(),
            fields: vec!["c".into(), "t".into(), "d".into()],
        },
        Command::AckPassing { name: name(), counter: 1016 },
        Command::AckMarker { name: name(), counter: 4 },
        Command::AckStore { name: name(), counter: 2 },
    ];
    assert_eq!(got, expect);
    let mut again = Vec::new();
    expect.iter().for_each(|c| c.encode(&mut again));
    assert_eq!(again, bytes);
    // The acks racetime owes echo each record's counter.
    let client = decode_whole(include_bytes!("../../../test_data/mylaps/client_records.txt"), decode);
    let acks: Vec<Command> = client.iter().flatten().filter_map(|m| m.ack("racetime")).collect();
    assert_eq!(acks, expect[1..].to_vec());
}

#[test]
fn stray_line_ends_and_nuls_are_dropped() {
    let mut buf = b"\r\nStart@Ping@\0$\r\n$\nStart@Pong@$".to_vec();
    assert_eq!(decode(&mut buf), Ok(Some(Message::Ping { name: "Start".into() })));
    assert_eq!(decode(&mut buf), Ok(Some(Message::Pong { name: "Start".into() })));
    assert_eq!(decode(&mut buf), Ok(None));
}

#[test]
fn rssi_and_antenna_come_from_amd_and_ans() {
    let mut buf = b"F@Passing@t=09:00:00.000|c=AB12345|h=12|amd=-61.5|ans=3@7@$".to_vec();
    let Ok(Some(m)) = decode(&mut buf) else { panic!("passing expected") };
    let read = &m.tag_reads()[0];
    assert_eq!((read.rssi, read.antenna, read.hits), (Some(Rssi(-615)), Some(3), Some(12)));
    assert_eq!(read.time, ReaderTime::TimeOfDay(9 * 3_600_000_000));
}

#[test]
fn malformed_records_are_typed_and_the_next_survives() {
    let mut buf = b"F@Passing@t=25:00:00.000|c=AB12345@7@$F@Passing@c=X@$F@Ping@$".to_vec();
    let e = decode(&mut buf).unwrap_err();
    assert!(e.to_string().contains("bad passing value t=\"25:00:00.000\""), "{e}");
    assert!(matches!(decode(&mut buf), Err(DecodeError::Malformed { .. })));
    assert_eq!(decode(&mut buf), Ok(Some(Message::Ping { name: "F".into() })));
}

// ---- property tests ----

const NAME_FORBIDDEN: &str = "@$|=\r\n";

fn name() -> impl Strategy<Value = String> {
    field_text(NAME_FORBIDDEN, 10)
}

fn opt_name() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(name())
}

fn arb_date() -> impl Strategy<Value = MylapsDate> {
    (0u8..100, 1u8..=12, 1u8..=28).prop_map(|(year, month, day)| MylapsDate { year, month, day })
}

fn arb_extra() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec(("x[a-z]{0,3}", name()), 0..3)
}

fn arb_passing() -> impl Strategy<Value = Passing> {
    (
        (0u64..86_400_000, "[A-Z0-9]{7}", opt_name(), proptest::option::of(arb_date()), any::<Option<u32>>()),
        (any::<Option<u32>>(), any::<Option<u32>>(), opt_name(), any::<Option<u32>>(), opt_name(), opt_name()),
        (any::<Option<u32>>(), opt_name(), arb_extra()),
    )
        .prop_map(|((ms, chip, ct, date, lap), (dv, re, an, g, b, n), (h, amd, extra))| Passing {
            time_of_day_us: ms * 1000,
            chip,
            chip_type: ct,
            date,
            lap,
            device: dv,
            reader: re,
            antennas: an,
            group: g,
            bib: b,
            bib_text: n,
            hits: h,
            amplitude_dbm: amd,
            extra,
        })
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        4 => (name(), proptest::collection::vec(arb_passing(), 0..4), any::<u64>())
            .prop_map(|(name, passings, counter)| Message::Passings { name, passings, counter }),
        1 => name().prop_map(|name| Message::Pong { name }),
        1 => name().prop_map(|name| Message::Ping { name }),
        1 => name().prop_map(|name| Message::AckPing { name }),
        1 => (name(), proptest::collection::vec(name(), 0..4)).prop_map(|(name, locations)| Message::Locations { name, locations }),
        1 => (name(), proptest::collection::vec(("[a-z]{1,4}", name()), 0..4)).prop_map(|(name, info)| Message::DeviceInfo { name, info }),
        1 => (name(), proptest::collection::vec((0u64..86_400_000, name(), opt_name(), arb_extra()), 0..3), any::<u64>())
            .prop_map(|(name, ms, counter)| Message::Markers {
                name,
                markers: ms
                    .into_iter()
                    .map(|(t, marker_type, n, extra)| Marker { time_of_day_us: t * 1000, marker_type, name: n, extra })
                    .collect(),
                counter,
            }),
        1 => (name(), proptest::collection::vec(("[A-Z0-9]{7}", 0u64..86_400_000, "[ 0-9A-F]{12}", arb_date(), "[0-9A-F]{2}"), 0..3), any::<u64>())
            .prop_map(|(name, ps, counter)| Message::Stored {
                name,
                passings: ps
                    .into_iter()
                    .map(|(chip, ms, columns, date, checksum)| StoredPassing { chip, time_of_day_us: ms * 1000, columns, date, checksum })
                    .collect(),
                counter,
            }),
        1 => (name(), "Get[A-Z][a-z]{1,5}", proptest::collection::vec(field_text("@$\r\n", 6), 0..3))
            .prop_map(|(name, function, args)| Message::Other { name, function, args }),
    ]
}

fn arb_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        (name(), name(), proptest::collection::vec("[a-z]{1,3}", 0..5))
            .prop_map(|(name, version, fields)| Command::AckPong { name, version, fields }),
        name().prop_map(|name| Command::GetLocations { name }),
        (name(), name()).prop_map(|(name, location)| Command::GetInfo { name, location }),
        (name(), any::<u64>()).prop_map(|(name, counter)| Command::AckPassing { name, counter }),
        (name(), any::<u64>()).prop_map(|(name, counter)| Command::AckMarker { name, counter }),
        (name(), any::<u64>()).prop_map(|(name, counter)| Command::AckStore { name, counter }),
        name().prop_map(|name| Command::Ping { name }),
        name().prop_map(|name| Command::AckPing { name }),
    ]
}

const ALPHABET: &[u8] = b"0123456789@$|=:.tcdPassingMarkerStore\r\n\0";

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
        garbage in proptest::collection::vec(testkit::garbage_frame(b"$", b"$"), 6),
    ) {
        let mut stream = Vec::new();
        for (m, g) in ms.iter().zip(&garbage) {
            stream.extend_from_slice(g);
            m.encode(&mut stream);
        }
        testkit::check_garbage(&stream, decode, &ms)?;
    }
}
