use proptest::prelude::*;

use super::*;
use crate::ReaderTime;

/// Line numbers with `Ok(chip)` or `Err(())`.
fn summary(parsed: &[ParsedLine]) -> Vec<(usize, Result<String, ()>)> {
    parsed.iter().map(|(n, r)| (*n, r.as_ref().map(|t| t.chip.clone()).map_err(|_| ()))).collect()
}

#[test]
fn raceresult_backup_file() {
    let bytes = include_bytes!("../../test_data/files/raceresult_backup.txt");
    assert_eq!(sniff(bytes), Some(FileFormat::RaceResult));
    let parsed = parse(FileFormat::RaceResult, bytes);
    assert_eq!(
        summary(&parsed),
        vec![
            (1, Ok("33".into())),
            (3, Ok("ZICAD30".into())),
            (4, Err(())),
            (5, Ok("ZCMBG52".into())),
            (6, Ok("ZICAD30".into())),
        ]
    );
    let pushed = parsed[1].1.as_ref().unwrap();
    assert_eq!((pushed.passing_no, pushed.session, pushed.antenna), (Some(12), Some(3), Some(2)));
    assert!(parsed[2].1.as_ref().unwrap_err().to_string().contains("bad date"));
}

#[test]
fn ultra_log_file() {
    let bytes = include_bytes!("../../test_data/files/ultra_log.txt");
    assert_eq!(sniff(bytes), Some(FileFormat::Ultra));
    let parsed = parse(FileFormat::Ultra, bytes);
    assert_eq!(summary(&parsed), vec![(2, Ok("11055".into())), (5, Ok("4123".into())), (6, Err(())), (7, Err(()))]);
    assert_eq!(parsed[0].1.as_ref().unwrap().time, ReaderTime::LocalDateTime(1_486_051_501_698_000));
}

#[test]
fn ipico_read_file() {
    let bytes = include_bytes!("../../test_data/files/ipico_reads.txt");
    assert_eq!(sniff(bytes), Some(FileFormat::Ipico));
    let parsed = parse(FileFormat::Ipico, bytes);
    assert_eq!(
        summary(&parsed),
        vec![
            (1, Ok("000000012345".into())),
            (3, Ok("058000128608".into())),
            (5, Err(())),
            (7, Ok("058000123b32".into())),
            (8, Err(())),
        ]
    );
    assert!(matches!(parsed[2].1, Err(DecodeError::Checksum { .. })));
}

#[test]
fn jchip_data_file() {
    let bytes = include_bytes!("../../test_data/files/jchip_data.txt");
    assert_eq!(sniff(bytes), Some(FileFormat::Jchip));
    let parsed = parse(FileFormat::Jchip, bytes);
    assert_eq!(summary(&parsed), vec![(1, Ok("413A35".into())), (2, Ok("413A36".into())), (4, Err(())), (5, Err(()))]);
    // Day counter 1 on line 2: one day after the first midnight.
    assert_eq!(parsed[1].1.as_ref().unwrap().time, ReaderTime::TimeOfDay(86_400_000_000 + 36_677_000_000));
}

#[test]
fn sniff_skips_blank_lines_and_gives_up_on_unknown_text() {
    assert_eq!(sniff(b"\r\n\n  \naa400000000123450a2a01123018455927a7\n"), Some(FileFormat::Ipico));
    assert_eq!(sniff(b"hello\nworld\n"), None);
    assert_eq!(sniff(b""), None);
}

#[test]
fn line_numbers_count_every_line_end_style() {
    let got: Vec<(usize, &[u8])> = lines(b"a\r\nb\rc\n\nd").collect();
    assert_eq!(got, vec![(1, &b"a"[..]), (2, b"b"), (3, b"c"), (4, b""), (5, b"d")]);
}

proptest! {
    #[test]
    fn parsing_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..800)) {
        let _ = sniff(&bytes);
        for f in [FileFormat::RaceResult, FileFormat::Ultra, FileFormat::Ipico, FileFormat::Jchip] {
            let parsed = parse(f, &bytes);
            prop_assert!(parsed.windows(2).all(|w| w[0].0 < w[1].0), "line numbers increase");
        }
    }
}
