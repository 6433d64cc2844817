//! The neutral reads CSV: `timestamp,chip,point,line,reader,antenna,rssi` (then optional `seq`).
//!
//! `timestamp` is RFC 3339 with fractional seconds (UTC, or any offset, converted to UTC);
//! `line` is `main` or `backup`; `antenna` a small integer; `rssi` in dBm (`-61.5`) or empty;
//! `seq` the reader's own sequence number, if known.
//! Extra columns are ignored. A bad row is reported with its line number and the rest is read.

use chrono::DateTime;
use timing_core::{ChipId, Line, PointId, Read, ReaderId, Rssi, Timestamp};

pub const HEADER: &str = "timestamp,chip,point,line,reader,antenna,rssi,seq";
const REQUIRED: [&str; 7] = ["timestamp", "chip", "point", "line", "reader", "antenna", "rssi"];
/// Longest line accepted; longer lines are reported and skipped.
pub const MAX_LINE: usize = 4096;

/// Reads parsed from a file, and the rows that were not reads.
#[derive(Debug, Default, PartialEq)]
pub struct ParsedReads {
    /// (1-based line, read)
    pub reads: Vec<(usize, Read)>,
    /// (1-based line, what is wrong with it)
    pub errors: Vec<(usize, String)>,
}

/// Does this look like a neutral reads CSV (its first line is a header with the required columns)?
pub fn sniff(bytes: &[u8]) -> bool {
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = String::from_utf8_lossy(first);
    let cols: Vec<String> = first.trim().split(',').map(|c| c.trim().to_ascii_lowercase()).collect();
    REQUIRED.iter().all(|r| cols.iter().any(|c| c == r))
}

/// Parses a whole file. A missing header is one error on line 1 and no reads.
pub fn parse(bytes: &[u8]) -> ParsedReads {
    let mut out = ParsedReads::default();
    let mut lines = bytes.split(|&b| b == b'\n').enumerate();
    let Some((_, header)) = lines.next() else { return out };
    let header = String::from_utf8_lossy(header);
    let cols: Vec<String> = header.trim().split(',').map(|c| c.trim().to_ascii_lowercase()).collect();
    let col = |name: &str| cols.iter().position(|c| c == name);
    let missing: Vec<&str> = REQUIRED.iter().copied().filter(|c| col(c).is_none()).collect();
    if !missing.is_empty() {
        out.errors.push((1, format!("missing column(s) {} in header; expected {HEADER}", missing.join(", "))));
        return out;
    }
    let idx: Vec<usize> = REQUIRED.iter().map(|c| col(c).expect("checked")).collect();
    let seq_col = col("seq");
    for (i, raw) in lines {
        let line_no = i + 1;
        if raw.len() > MAX_LINE {
            out.errors.push((line_no, format!("line of {} bytes is over the {MAX_LINE}-byte limit", raw.len())));
            continue;
        }
        let Ok(text) = std::str::from_utf8(raw) else {
            out.errors.push((line_no, format!("not UTF-8: {}", crate::hex_preview(raw))));
            continue;
        };
        let text = text.trim_end_matches('\r');
        if text.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = text.split(',').map(str::trim).collect();
        match parse_row(&fields, &idx, seq_col) {
            Ok(read) => out.reads.push((line_no, read)),
            Err(e) => out.errors.push((line_no, e)),
        }
    }
    out
}

fn parse_row(f: &[&str], idx: &[usize], seq_col: Option<usize>) -> Result<Read, String> {
    let get = |i: usize| {
        f.get(idx[i]).copied().ok_or_else(|| format!("missing field {}: {} fields on the line", REQUIRED[i], f.len()))
    };
    let ts = get(0)?;
    let at = DateTime::parse_from_rfc3339(ts).map_err(|e| format!("bad timestamp {ts:?}: {e}"))?.timestamp_micros();
    let chip = get(1)?;
    if chip.is_empty() {
        return Err("empty chip".into());
    }
    let point = get(2)?;
    if point.is_empty() {
        return Err("empty point".into());
    }
    let line_s = get(3)?;
    let line = Line::parse(line_s).ok_or_else(|| format!("bad line {line_s:?}: expected main or backup"))?;
    let reader = get(4)?;
    let antenna_s = get(5)?;
    let antenna = if antenna_s.is_empty() {
        0
    } else {
        antenna_s.parse::<u16>().map_err(|_| format!("bad antenna {antenna_s:?}"))?
    };
    let rssi_s = get(6)?;
    let rssi =
        if rssi_s.is_empty() { None } else { Some(parse_rssi(rssi_s).ok_or_else(|| format!("bad rssi {rssi_s:?}"))?) };
    let reader_seq = match seq_col.and_then(|c| f.get(c)).filter(|s| !s.is_empty()) {
        Some(s) => Some(s.parse::<u64>().map_err(|_| format!("bad seq {s:?}"))?),
        None => None,
    };
    Ok(Read {
        chip: ChipId::new(chip),
        at: Timestamp::from_micros(at),
        point: PointId::new(point),
        line,
        reader: ReaderId::new(reader),
        antenna,
        rssi,
        reader_seq,
    })
}

/// dBm with at most one decimal (`-61`, `-61.5`) to tenths of a dBm.
fn parse_rssi(s: &str) -> Option<Rssi> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let (whole, frac) = body.split_once('.').unwrap_or((body, "0"));
    if whole.is_empty() || frac.len() != 1 || !whole.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i32 = whole.parse::<i32>().ok()? * 10 + frac.parse::<i32>().ok()?;
    i16::try_from(if neg { -v } else { v }).ok().map(Rssi)
}

/// Appends one read as a CSV line (with `seq`), the inverse of [`parse`].
pub fn write_row(read: &Read, out: &mut String) {
    use std::fmt::Write;
    let ts = DateTime::from_timestamp_micros(read.at.as_micros())
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .unwrap_or_default();
    let rssi = read.rssi.map(|r| r.to_string()).unwrap_or_default();
    let seq = read.reader_seq.map(|s| s.to_string()).unwrap_or_default();
    let _ = writeln!(
        out,
        "{ts},{},{},{},{},{},{rssi},{seq}",
        read.chip,
        read.point,
        read.line.as_str(),
        read.reader,
        read.antenna
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_good_rows_and_reports_bad_ones_by_line() {
        let file = b"timestamp,chip,point,line,reader,antenna,rssi,note\n\
            2024-08-10T22:41:07.250000Z,E2000001,finish,main,fin-a,2,-61.5,ok\n\
            2024-08-11T00:41:07.25+02:00,E2000001,finish,backup,fin-b,1,,ok\n\
            \n\
            yesterday,E2000002,finish,main,fin-a,1,-60,\n\
            2024-08-10T22:41:08Z,E2000003,finish,side,fin-a,1,-60,\n\
            2024-08-10T22:41:08Z,E2000003,finish,main,fin-a,one,-60,\n\
            2024-08-10T22:41:08Z,E2000003,finish,main,fin-a,1,loud,\n\
            2024-08-10T22:41:08Z,E2000003\r\n\
            2024-08-10T22:41:09Z,E2000004,km5,MAIN,km5-a,1,-70.0,\r\n";
        let p = parse(file);
        assert_eq!(p.reads.len(), 3);
        assert_eq!(p.reads[0].1.at, p.reads[1].1.at, "offsets are converted to UTC");
        assert_eq!((p.reads[0].1.rssi, p.reads[1].1.rssi, p.reads[0].1.antenna), (Some(Rssi(-615)), None, 2));
        assert_eq!(p.reads[1].1.line, Line::Backup);
        let lines: Vec<usize> = p.errors.iter().map(|e| e.0).collect();
        assert_eq!(lines, vec![5, 6, 7, 8, 9]);
        assert!(p.errors[0].1.starts_with("bad timestamp \"yesterday\""), "{}", p.errors[0].1);
        assert_eq!(p.errors[1].1, "bad line \"side\": expected main or backup");
        assert_eq!(p.errors[4].1, "missing field point: 2 fields on the line");
    }

    #[test]
    fn a_file_without_the_header_reads_nothing_and_says_why() {
        let p = parse(b"2024-08-10T22:41:07Z,E1,finish,main,a,1,-60\n");
        assert!(p.reads.is_empty());
        assert_eq!(p.errors.len(), 1);
        assert!(p.errors[0].1.starts_with("missing column(s)"));
        assert!(!sniff(b"2024-08-10T22:41:07Z,E1\n"));
        assert!(sniff(HEADER.as_bytes()));
    }

    proptest! {
        #[test]
        fn write_then_parse_is_identity(
            us in 1_600_000_000_000_000i64..1_900_000_000_000_000,
            chip in "[A-F0-9]{8,24}", antenna in 0u16..64, rssi in proptest::option::of(-1200i16..0), seq in proptest::option::of(any::<u64>()), backup in any::<bool>(),
        ) {
            let read = Read { chip: ChipId::new(&chip), at: Timestamp::from_micros(us), point: PointId::new("km7"),
                line: if backup { Line::Backup } else { Line::Main }, reader: ReaderId::new("r1"), antenna, rssi: rssi.map(Rssi), reader_seq: seq };
            let mut s = format!("{HEADER}\n");
            write_row(&read, &mut s);
            let p = parse(s.as_bytes());
            prop_assert!(p.errors.is_empty(), "{:?}", p.errors);
            prop_assert_eq!(p.reads, vec![(2, read)]);
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let mut file = format!("{HEADER}\n").into_bytes();
            file.extend(body);
            let _ = parse(&file);
        }
    }
}
