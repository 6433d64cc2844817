//! The edge's durable outbox: every read a reader reported, in SQLite, with an edge sequence
//! number, kept for the whole event.
//!
//! Design note.
//! - Durability: WAL journal with `synchronous=FULL`, so a committed batch survives kill -9 and
//!   power loss. [`Outbox::append`] commits a whole batch in one transaction (group commit: the
//!   caller batches by count or a few milliseconds), and only after it returns may a read be
//!   acknowledged to a protocol that expects acks.
//! - Identity: `seq` is assigned here, contiguous, strictly increasing and never reused, so
//!   `(edge, seq)` names a read everywhere upstream. Reads are never deleted before an upstream
//!   ack, and by default never at all (decoders keep their passing files too).
//! - Overlap: a reader's replay after a reconnect re-sends passings already stored; a unique index
//!   on `(reader, session, passing_no)` drops them on insert, so they get no new `seq`. Reads
//!   without a passing number (IPICO, LLRP) are dropped when every field the reader sent (chip,
//!   its own timestamp, line, antenna, RSSI) equals a stored read of the same reader: one read,
//!   once, so the aggregator needs no duplicate filter of its own.
//! - Uplink cursor: the highest contiguous `seq` the aggregator has durably stored; the uplink
//!   resumes after it.
//!
//! This crate is blocking and owns its connection; the edge daemon runs it on a dedicated thread.
//! Deliberately not here: batching policy, retries, the uplink itself.

use std::path::Path;

use reader_protocol::ReaderTime;
use rusqlite::{Connection, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};
use timing_core::{ChipId, Line, PointId, Read, ReaderId, Rssi, Timestamp};

/// Schema migrations, in order; SQL lives in `migrations/`.
pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../migrations/001_reads.sql")),
        M::up(include_str!("../migrations/002_signals.sql")),
        M::up(include_str!("../migrations/003_unnumbered_replays.sql")),
    ])
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("opening the outbox at {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("migrating the outbox schema: {0}")]
    Migrate(#[from] rusqlite_migration::Error),
    #[error("outbox I/O: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("outbox holds an invalid row at seq {seq}: {reason}")]
    Corrupt { seq: u64, reason: String },
}

impl StoreError {
    /// The disk is full: the caller keeps the batch in memory, alarms, and retries.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::DiskFull)
    }
}

/// A read as the edge stores it: the corrected read, and what the reader itself said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRead {
    /// The read with its UTC instant corrected for the reader's measured clock offset.
    pub read: Read,
    /// The reader's own timestamp, in its own time base, kept for audits and re-correction.
    pub reader_time: ReaderTime,
    /// The reader's file / session / boot number, if its passing numbers restart per session.
    pub session: Option<u32>,
    pub hits: Option<u32>,
    /// When the edge received it (diagnostics only; never timing truth).
    pub received_at: Timestamp,
}

/// A stored read with its edge sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRead {
    pub seq: u64,
    pub read: NewRead,
}

/// What one append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Appended {
    /// Sequence numbers given, `first..first + n_stored` (empty when `n_stored == 0`).
    pub first_seq: u64,
    pub n_stored: usize,
    /// Replays of passings already stored, dropped.
    pub n_duplicates: usize,
}

/// A gun time seen by the edge itself (a start-gun contact), to be sent like a read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSignal {
    pub race: String,
    pub wave: String,
    pub at: Timestamp,
    /// `modbus:<device>:<channel>`.
    pub source: String,
    /// How uncertain `at` is (half the polling interval).
    pub jitter_us: i64,
    pub received_at: Timestamp,
}

/// A stored signal with its signal sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSignal {
    pub seq: u64,
    pub signal: NewSignal,
}

/// Reads not yet acknowledged upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Backlog {
    pub n_reads: u64,
    /// When the oldest unacknowledged read was received.
    pub oldest_received_at: Option<Timestamp>,
}

/// The outbox. One per edge; not shared between threads.
#[derive(Debug)]
pub struct Outbox {
    conn: Connection,
    acked: u64,
    last_seq: u64,
}

impl Outbox {
    /// Opens (creating if needed) the outbox at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Outbox, StoreError> {
        let mut conn =
            Connection::open(path).map_err(|source| StoreError::Open { path: path.display().to_string(), source })?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrations().to_latest(&mut conn)?;
        let (last_seq, acked): (i64, i64) =
            conn.query_row("SELECT last_seq, acked_seq FROM outbox_state WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        Ok(Outbox { conn, acked: acked as u64, last_seq: last_seq as u64 })
    }

    /// Reloads the sequence and cursor from the file: for a second handle on the same outbox
    /// (the uplink's), which reads and acknowledges while the writer's handle appends.
    /// Exactly one handle may append.
    pub fn refresh(&mut self) -> Result<(), StoreError> {
        let (last_seq, acked): (i64, i64) =
            self.conn.query_row("SELECT last_seq, acked_seq FROM outbox_state WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        self.last_seq = last_seq as u64;
        self.acked = acked as u64;
        Ok(())
    }

    /// The highest sequence number given so far (0 when empty).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The uplink cursor: every read up to here is durably stored upstream.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Stores a batch in one transaction. Replayed passings (same reader, session and passing
    /// number as a stored one) and exact copies of reads without a passing number are dropped and
    /// counted. Returns only once the batch is durable.
    pub fn append(&mut self, batch: &[NewRead]) -> Result<Appended, StoreError> {
        let tx = self.conn.transaction()?;
        let mut out = Appended { first_seq: self.last_seq + 1, ..Appended::default() };
        let mut last = self.last_seq;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO reads (seq, chip, at_us, point, line, reader, antenna, rssi, reader_seq, \
                 reader_time_kind, reader_time_us, session, hits, received_at_us) \
                 VALUES (?14, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?;
            // Unnumbered: stored unless the same reader already gave exactly this read.
            let mut insert_unnumbered = tx.prepare_cached(
                "INSERT INTO reads (seq, chip, at_us, point, line, reader, antenna, rssi, reader_seq, \
                 reader_time_kind, reader_time_us, session, hits, received_at_us) \
                 SELECT ?14, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13 WHERE NOT EXISTS ( \
                 SELECT 1 FROM reads WHERE reader_seq IS NULL AND reader = ?5 AND reader_time_us = ?10 \
                 AND chip = ?1 AND reader_time_kind = ?9 AND line = ?4 AND antenna = ?6 AND rssi IS ?7)",
            )?;
            for n in batch {
                let r = &n.read;
                let insert = if r.reader_seq.is_some() { &mut insert } else { &mut insert_unnumbered };
                let (kind, value) = encode_reader_time(n.reader_time);
                let changed = insert.execute(params![
                    r.chip.as_str(),
                    r.at.as_micros(),
                    r.point.as_str(),
                    line_code(r.line),
                    r.reader.as_str(),
                    r.antenna,
                    r.rssi.map(|x| x.0),
                    r.reader_seq.map(|s| s as i64),
                    kind,
                    value,
                    n.session,
                    n.hits,
                    n.received_at.as_micros(),
                    (last + 1) as i64,
                ])?;
                if changed == 1 {
                    // Seqs are given here, not by SQLite: an ignored replay must not leave a gap.
                    last += 1;
                    out.n_stored += 1;
                } else {
                    out.n_duplicates += 1;
                }
            }
        }
        if out.n_stored > 0 {
            tx.execute("UPDATE outbox_state SET last_seq = ?1 WHERE id = 1", params![last as i64])?;
        }
        tx.commit()?;
        assert!(out.n_stored == 0 || last == out.first_seq + out.n_stored as u64 - 1, "edge seqs are contiguous");
        self.last_seq = last;
        Ok(out)
    }

    /// Up to `limit` reads with `seq > after`, in order.
    pub fn read_after(&self, after: u64, limit: usize) -> Result<Vec<StoredRead>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, chip, at_us, point, line, reader, antenna, rssi, reader_seq, reader_time_kind, reader_time_us, \
             session, hits, received_at_us FROM reads WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after as i64, limit as i64], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, String>(5)?,
                row.get::<_, i64>(6)?,
                row.get::<_, Option<i64>>(7)?,
                row.get::<_, Option<i64>>(8)?,
                row.get::<_, i64>(9)?,
                row.get::<_, i64>(10)?,
                row.get::<_, Option<i64>>(11)?,
                row.get::<_, Option<i64>>(12)?,
                row.get::<_, i64>(13)?,
            ))
        })?;
        let mut out = Vec::new();
        let mut prev = after;
        for row in rows {
            let (seq, chip, at, point, line, reader, antenna, rssi, reader_seq, kind, value, session, hits, received) =
                row?;
            let seq = seq as u64;
            assert!(seq > prev, "rows come back in seq order");
            prev = seq;
            let corrupt = |reason: &str| StoreError::Corrupt { seq, reason: reason.to_string() };
            out.push(StoredRead {
                seq,
                read: NewRead {
                    read: Read {
                        chip: ChipId::new(&chip),
                        at: Timestamp::from_micros(at),
                        point: PointId::new(&point),
                        line: decode_line(line).ok_or_else(|| corrupt("bad line code"))?,
                        reader: ReaderId::new(&reader),
                        antenna: u16::try_from(antenna).map_err(|_| corrupt("antenna out of range"))?,
                        rssi: rssi
                            .map(|x| i16::try_from(x).map(Rssi))
                            .transpose()
                            .map_err(|_| corrupt("rssi out of range"))?,
                        reader_seq: reader_seq.map(|s| s as u64),
                    },
                    reader_time: decode_reader_time(kind, value).ok_or_else(|| corrupt("bad reader time kind"))?,
                    session: session.map(|s| s as u32),
                    hits: hits.map(|h| h as u32),
                    received_at: Timestamp::from_micros(received),
                },
            });
        }
        Ok(out)
    }

    /// Moves the uplink cursor forward (never back: an older ack is ignored).
    pub fn set_acked(&mut self, seq: u64) -> Result<(), StoreError> {
        assert!(seq <= self.last_seq, "ack {seq} beyond the last stored seq {}", self.last_seq);
        if seq <= self.acked {
            return Ok(());
        }
        self.conn.execute("UPDATE outbox_state SET acked_seq = ?1 WHERE id = 1", params![seq as i64])?;
        self.acked = seq;
        Ok(())
    }

    pub fn backlog(&self) -> Result<Backlog, StoreError> {
        let (n, oldest): (i64, Option<i64>) = self.conn.query_row(
            "SELECT COUNT(*), MIN(received_at_us) FROM reads WHERE seq > ?1",
            params![self.acked as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(Backlog { n_reads: n as u64, oldest_received_at: oldest.map(Timestamp::from_micros) })
    }

    /// Stores a signal durably and returns its signal seq.
    pub fn append_signal(&mut self, s: &NewSignal) -> Result<u64, StoreError> {
        let tx = self.conn.transaction()?;
        let last: i64 = tx.query_row("SELECT last_signal_seq FROM outbox_state WHERE id = 1", [], |r| r.get(0))?;
        let seq = last + 1;
        tx.execute(
            "INSERT INTO signals (seq, kind, race, wave, at_us, source, jitter_us, received_at_us) VALUES (?1, 'gun_time', ?2, ?3, ?4, ?5, ?6, ?7)",
            params![seq, s.race, s.wave, s.at.as_micros(), s.source, s.jitter_us, s.received_at.as_micros()],
        )?;
        tx.execute("UPDATE outbox_state SET last_signal_seq = ?1 WHERE id = 1", params![seq])?;
        tx.commit()?;
        Ok(seq as u64)
    }

    /// Signals with a seq above `after`, in order.
    pub fn signals_after(&self, after: u64, limit: usize) -> Result<Vec<StoredSignal>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, race, wave, at_us, source, jitter_us, received_at_us FROM signals WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after as i64, limit as i64], |r| {
            Ok(StoredSignal {
                seq: r.get::<_, i64>(0)? as u64,
                signal: NewSignal {
                    race: r.get(1)?,
                    wave: r.get(2)?,
                    at: Timestamp::from_micros(r.get(3)?),
                    source: r.get(4)?,
                    jitter_us: r.get(5)?,
                    received_at: Timestamp::from_micros(r.get(6)?),
                },
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The signal cursor upstream.
    pub fn acked_signals(&self) -> Result<u64, StoreError> {
        let v: i64 = self.conn.query_row("SELECT acked_signal_seq FROM outbox_state WHERE id = 1", [], |r| r.get(0))?;
        Ok(v as u64)
    }

    /// Moves the signal cursor forward (never back).
    pub fn set_acked_signals(&mut self, seq: u64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE outbox_state SET acked_signal_seq = ?1 WHERE id = 1 AND acked_signal_seq < ?1 AND ?1 <= last_signal_seq",
            params![seq as i64],
        )?;
        Ok(())
    }

    /// The highest passing number stored for a reader's session: where a rewind starts.
    pub fn last_passing(&self, reader: &str, session: Option<u32>) -> Result<Option<u64>, StoreError> {
        let v: Option<i64> = self
            .conn
            .query_row(
                "SELECT MAX(reader_seq) FROM reads WHERE reader = ?1 AND COALESCE(session, -1) = COALESCE(?2, -1)",
                params![reader, session],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        Ok(v.map(|v| v as u64))
    }

    /// The newest session number stored for a reader.
    pub fn last_session(&self, reader: &str) -> Result<Option<u32>, StoreError> {
        let v: Option<i64> =
            self.conn.query_row("SELECT MAX(session) FROM reads WHERE reader = ?1", params![reader], |r| r.get(0))?;
        Ok(v.map(|v| v as u32))
    }

    pub fn count(&self) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row("SELECT COUNT(*) FROM reads", [], |r| r.get(0))?;
        Ok(n as u64)
    }
}

fn line_code(line: Line) -> i64 {
    match line {
        Line::Main => 0,
        Line::Backup => 1,
    }
}

fn decode_line(code: i64) -> Option<Line> {
    match code {
        0 => Some(Line::Main),
        1 => Some(Line::Backup),
        _ => None,
    }
}

fn encode_reader_time(t: ReaderTime) -> (i64, i64) {
    match t {
        ReaderTime::Utc(t) => (0, t.as_micros()),
        ReaderTime::LocalDateTime(us) => (1, us),
        ReaderTime::TimeOfDay(us) => (2, us),
    }
}

fn decode_reader_time(kind: i64, value: i64) -> Option<ReaderTime> {
    match kind {
        0 => Some(ReaderTime::Utc(Timestamp::from_micros(value))),
        1 => Some(ReaderTime::LocalDateTime(value)),
        2 => Some(ReaderTime::TimeOfDay(value)),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
