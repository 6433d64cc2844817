//! The passing store of an emulated decoder: every record it made, numbered the way its protocol
//! numbers them and grouped in sessions (a RACE RESULT file, a boot), optionally mirrored to a
//! file so that an emulator restarted on the same file still has them.
//!
//! Records are kept in the order they were stored. Connections hold *cursors*, absolute indexes
//! into that order, which stay valid when the store is cleared (`CLEARFILES`, IPICO `0x4b d0`):
//! cleared records move the base forward instead of shifting the indexes.
//!
//! # File format
//! Text, one entry per line, fields separated by tabs, written append-only and flushed per entry:
//! - `racetime-store 1 <protocol>`: the header; a store of another protocol is refused;
//! - `S <session> <reader µs>`: a session starts (reader clock, µs since 1970 UTC);
//! - `R <session> <seq> <T|G> <reader µs> <antenna> <rssi> <hits> <chip>`: a record
//!   (`T` tag, `G` gun / trigger; rssi in tenths of a dBm);
//! - `A <seq>`: the host acknowledged that record (MYLAPS);
//! - `C`: every record so far was cleared.
//!
//! Opening a store always starts a new session: restarting the emulator is a power cycle.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use timing_core::{Rssi, Timestamp};

const HEADER: &str = "racetime-store 1";

/// How sequence numbers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Numbering {
    /// From 1 in every session (RACE RESULT passing numbers per file).
    PerSession,
    /// On and on across sessions (Ultra log ids, JChip indexes, MYLAPS counters).
    Continuous,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecordKind {
    Tag,
    /// A start-gun trigger.
    Gun,
}

/// One stored record, stamped with the reader's clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) session: u32,
    pub(crate) seq: u64,
    pub(crate) kind: RecordKind,
    /// Reader-clock instant, full precision (each protocol truncates to its resolution).
    pub(crate) at: Timestamp,
    pub(crate) chip: String,
    pub(crate) antenna: u16,
    pub(crate) rssi: Rssi,
    pub(crate) hits: u32,
    /// Acknowledged by the host (MYLAPS); unacknowledged records are resent on reconnect.
    pub(crate) acked: bool,
}

/// What a new record carries; the store adds session, sequence number and ack state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NewRecord {
    pub(crate) kind: RecordKind,
    pub(crate) at: Timestamp,
    pub(crate) chip: String,
    pub(crate) antenna: u16,
    pub(crate) rssi: Rssi,
    pub(crate) hits: u32,
}

#[derive(Debug)]
pub(crate) struct Store {
    records: Vec<Record>,
    /// Absolute index of `records[0]`.
    base: usize,
    /// Every session with the reader time it started at, in order.
    sessions: Vec<(u32, Timestamp)>,
    numbering: Numbering,
    last_seq: u64,
    file: Option<(PathBuf, File)>,
}

impl Store {
    /// Loads the store at `path` (creating it when missing) and starts a new session at
    /// `reader_now`. Without a path the store lives in memory only.
    pub(crate) fn open(
        path: Option<&Path>,
        protocol: &str,
        numbering: Numbering,
        reader_now: Timestamp,
    ) -> io::Result<Store> {
        let mut store =
            Store { records: Vec::new(), base: 0, sessions: Vec::new(), numbering, last_seq: 0, file: None };
        if let Some(path) = path {
            let header = format!("{HEADER} {protocol}");
            match File::open(path) {
                Ok(f) => store.load(BufReader::new(f), path, &header)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                        std::fs::create_dir_all(dir)?;
                    }
                    let mut f = File::create(path)?;
                    writeln!(f, "{header}")?;
                }
                Err(e) => return Err(e),
            }
            let f = OpenOptions::new().append(true).open(path)?;
            store.file = Some((path.to_path_buf(), f));
        }
        store.new_session(reader_now);
        Ok(store)
    }

    fn load(&mut self, input: impl BufRead, path: &Path, header: &str) -> io::Result<()> {
        let bad = |n: usize, what: &str| {
            io::Error::new(io::ErrorKind::InvalidData, format!("store {} line {n}: {what}", path.display()))
        };
        let mut lines = input.lines();
        let first = lines.next().transpose()?;
        if first.as_deref() != Some(header) {
            return Err(bad(1, &format!("not a {header:?} store")));
        }
        for (i, line) in lines.enumerate() {
            let line = line?;
            let n = i + 2;
            let f: Vec<&str> = line.splitn(9, '\t').collect();
            let num = |s: &str| s.parse::<i64>().map_err(|_| bad(n, &format!("bad number {s:?}")));
            match f.as_slice() {
                [] | [""] => {}
                ["S", session, at] => {
                    self.sessions.push((num(session)? as u32, Timestamp::from_micros(num(at)?)));
                }
                ["R", session, seq, kind, at, antenna, rssi, hits, chip] => {
                    let kind = match *kind {
                        "T" => RecordKind::Tag,
                        "G" => RecordKind::Gun,
                        k => return Err(bad(n, &format!("bad record kind {k:?}"))),
                    };
                    let seq = num(seq)? as u64;
                    self.last_seq = self.last_seq.max(seq);
                    self.records.push(Record {
                        session: num(session)? as u32,
                        seq,
                        kind,
                        at: Timestamp::from_micros(num(at)?),
                        chip: (*chip).to_owned(),
                        antenna: num(antenna)? as u16,
                        rssi: Rssi(num(rssi)? as i16),
                        hits: num(hits)? as u32,
                        acked: false,
                    });
                }
                ["A", seq] => {
                    let seq = num(seq)? as u64;
                    if let Some(r) = self.records.iter_mut().rev().find(|r| r.seq == seq) {
                        r.acked = true;
                    }
                }
                ["C"] => {
                    self.base += self.records.len();
                    self.records.clear();
                }
                _ => return Err(bad(n, "unrecognised entry")),
            }
        }
        Ok(())
    }

    /// Appends a line to the file, if there is one; a failing file is logged and dropped, the
    /// store carries on in memory.
    fn log(&mut self, line: std::fmt::Arguments<'_>) {
        if let Some((path, f)) = &mut self.file
            && let Err(error) = writeln!(f, "{line}").and_then(|()| f.flush())
        {
            tracing::warn!(%error, path = %path.display(), "cannot write the passing store; keeping it in memory only");
            self.file = None;
        }
    }

    /// Starts a new session (file number, boot) at `reader_now`.
    pub(crate) fn new_session(&mut self, reader_now: Timestamp) {
        let session = self.sessions.last().map_or(1, |(s, _)| s + 1);
        self.sessions.push((session, reader_now));
        self.log(format_args!("S\t{session}\t{}", reader_now.as_micros()));
    }

    pub(crate) fn session(&self) -> u32 {
        self.sessions.last().map_or(1, |(s, _)| *s)
    }

    /// The reader time `session` started at.
    pub(crate) fn session_start(&self, session: u32) -> Option<Timestamp> {
        self.sessions.iter().find(|(s, _)| *s == session).map(|(_, at)| *at)
    }

    pub(crate) fn append(&mut self, new: NewRecord) -> &Record {
        let session = self.session();
        let seq = match self.numbering {
            Numbering::PerSession => self.records.last().filter(|r| r.session == session).map_or(1, |r| r.seq + 1),
            Numbering::Continuous => self.last_seq + 1,
        };
        self.last_seq = self.last_seq.max(seq);
        // Tabs and line ends would break the file's lines.
        let chip: String = new.chip.chars().map(|c| if c.is_control() { '_' } else { c }).collect();
        let kind = match new.kind {
            RecordKind::Tag => "T",
            RecordKind::Gun => "G",
        };
        self.log(format_args!(
            "R\t{session}\t{seq}\t{kind}\t{}\t{}\t{}\t{}\t{chip}",
            new.at.as_micros(),
            new.antenna,
            new.rssi.0,
            new.hits
        ));
        self.records.push(Record {
            session,
            seq,
            kind: new.kind,
            at: new.at,
            chip,
            antenna: new.antenna,
            rssi: new.rssi,
            hits: new.hits,
            acked: false,
        });
        self.records.last().expect("just pushed")
    }

    /// Marks the record with sequence number `seq` acknowledged; false when there is none or it
    /// already was.
    pub(crate) fn ack(&mut self, seq: u64) -> bool {
        let Some(r) = self.records.iter_mut().rev().find(|r| r.seq == seq) else {
            return false;
        };
        if r.acked {
            return false;
        }
        r.acked = true;
        self.log(format_args!("A\t{seq}"));
        true
    }

    /// Forgets every record (sessions and sequence numbers carry on).
    pub(crate) fn clear(&mut self) {
        self.base += self.records.len();
        self.records.clear();
        self.log(format_args!("C"));
    }

    /// Every record still stored, oldest first.
    pub(crate) fn records(&self) -> &[Record] {
        &self.records
    }

    /// The cursor just past the last record.
    pub(crate) fn end(&self) -> usize {
        self.base + self.records.len()
    }

    /// The cursor of the first stored record.
    pub(crate) fn start(&self) -> usize {
        self.base
    }

    /// Records from cursor `from` on.
    pub(crate) fn since(&self, from: usize) -> &[Record] {
        &self.records[from.saturating_sub(self.base).min(self.records.len())..]
    }

    /// The records of `session` (contiguous: sessions only ever start at the end).
    pub(crate) fn session_records(&self, session: u32) -> &[Record] {
        let first = self.records.partition_point(|r| r.session < session);
        let end = self.records.partition_point(|r| r.session <= session);
        &self.records[first..end]
    }

    /// The cursor of the first record of `session` (the end when it has none yet).
    pub(crate) fn session_cursor(&self, session: u32) -> usize {
        self.base + self.records.partition_point(|r| r.session < session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(chip: &str, at_s: i64) -> NewRecord {
        NewRecord {
            kind: RecordKind::Tag,
            at: Timestamp::from_secs(at_s),
            chip: chip.to_owned(),
            antenna: 1,
            rssi: Rssi(-600),
            hits: 1,
        }
    }

    #[test]
    fn numbering_per_session_restarts_and_continuous_does_not() {
        let t = Timestamp::from_secs(1_000);
        let mut rr = Store::open(None, "raceresult", Numbering::PerSession, t).unwrap();
        rr.append(tag("A", 1));
        rr.append(tag("B", 2));
        rr.new_session(t);
        assert_eq!(rr.append(tag("C", 3)).seq, 1);
        assert_eq!((rr.session(), rr.session_records(1).len(), rr.session_records(2).len()), (2, 2, 1));
        assert_eq!(rr.session_cursor(2), 2);

        let mut ultra = Store::open(None, "ultra", Numbering::Continuous, t).unwrap();
        ultra.append(tag("A", 1));
        ultra.new_session(t);
        assert_eq!(ultra.append(tag("B", 2)).seq, 2);
        ultra.clear();
        assert_eq!((ultra.records().len(), ultra.end(), ultra.since(1).len()), (0, 2, 0));
        assert_eq!(ultra.append(tag("C", 3)).seq, 3);
        assert_eq!(ultra.since(2)[0].chip, "C");
    }

    #[test]
    fn a_reopened_file_keeps_records_acks_and_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store/reader.txt");
        let t = Timestamp::from_secs(1_000);
        {
            let mut s = Store::open(Some(&path), "mylaps", Numbering::Continuous, t).unwrap();
            s.append(tag("A", 1));
            s.append(tag("B\tX", 2));
            assert!(s.ack(1));
            assert!(!s.ack(1), "acked twice");
        }
        let s = Store::open(Some(&path), "mylaps", Numbering::Continuous, t).unwrap();
        assert_eq!(s.session(), 2);
        let r = s.records();
        assert_eq!((r.len(), r[0].acked, r[1].acked, r[1].chip.as_str()), (2, true, false, "B_X"));
        assert_eq!(r[1].at, Timestamp::from_secs(2));
        let err = Store::open(Some(&path), "ultra", Numbering::Continuous, t).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("not a \"racetime-store 1 ultra\" store"), "{err}");
    }
}
