//! The aggregator's durable store: every read and signal each edge uploaded, once per
//! `(edge, seq)`, and each edge's cursors.
//!
//! Design note.
//! - Durability: WAL journal with `synchronous=FULL`; [`AggregatorStore::ingest`] stores a whole
//!   batch in one transaction and returns only once it is committed, so an [`Ingested`]'s cursors
//!   may be acknowledged to the edge (which may then forget nothing, but stops re-sending).
//! - Idempotence: `(edge, seq)` is unique. A read already stored is ignored and counted as a
//!   duplicate; if its content differs from the stored one (an edge whose outbox was wiped and
//!   renumbered from 1), the first one stays and the duplicate is also counted as a conflict.
//! - Cursors: per edge, the highest `seq` up to which every read is stored (signals likewise, in
//!   their own series). Batches may arrive out of order or with gaps; the cursor moves over any
//!   run that became contiguous. It is computed from the batch's own sorted new seqs plus, only
//!   when the cursor moved, a walk over rows stored earlier above it: no query per row.
//!   Invariant after every ingest: `cursor + 1` is not stored.
//! - Order: rows keep their ingest order (the rowid), which [`AggregatorStore::for_each_read`]
//!   replays to rebuild the race state after a restart.
//!
//! Blocking, and the only owner of its connection: the HTTP layer calls it on a blocking thread.
//! Deliberately not here: authentication, validation against the event (points, waves), the race
//! engine, pruning (reads are kept for the whole event).

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use rusqlite_migration::{M, Migrations};
use timing_core::Timestamp;
use timing_wire::{Signal, WireLine, WireRead, WireReaderTime};

/// Schema migrations, in order; SQL lives in `migrations/`.
pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../migrations/001_store.sql")),
        M::up(include_str!("../migrations/002_audit.sql")),
    ])
}

/// One entry of the desk's audit log as stored: (id, recorded at, who, why, the correction as
/// JSON, the entry it undoes).
pub type AuditRow = (u64, Timestamp, String, String, String, Option<u64>);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("opening the aggregator store at {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("migrating the aggregator store schema: {0}")]
    Migrate(#[from] rusqlite_migration::Error),
    #[error("aggregator store I/O: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A seq outside `1..=i64::MAX` (SQLite integers are signed; edges number from 1).
    #[error("{what} seq {seq} of edge {edge} is out of range (1..=9223372036854775807)")]
    InvalidSeq { edge: String, what: &'static str, seq: u64 },
    #[error("aggregator store holds an invalid {what} row for edge {edge} seq {seq}: {reason}")]
    Corrupt { edge: String, what: &'static str, seq: u64, reason: String },
}

impl StoreError {
    /// The disk is full: the batch was not stored; the edge keeps it and retries.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::DiskFull)
    }
}

/// An edge's cursors: everything up to here is durably stored, with no gap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Cursor {
    pub acked_seq: u64,
    pub acked_signal_seq: u64,
}

/// What one [`AggregatorStore::ingest`] did.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Ingested {
    /// The edge's read cursor after this batch.
    pub acked_seq: u64,
    /// The edge's signal cursor after this batch.
    pub acked_signal_seq: u64,
    /// Reads stored by this batch (not stored before), in batch order.
    pub new_reads: Vec<WireRead>,
    /// Signals stored by this batch, in batch order.
    pub new_signals: Vec<Signal>,
    /// Reads and signals ignored because their `(edge, seq)` was already stored (or repeated in
    /// the batch).
    pub n_duplicates: usize,
    /// Of those, how many differed from what is stored: the stored one was kept.
    pub n_conflicts: usize,
}

/// How much the store holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Counts {
    pub n_edges: u64,
    pub n_reads: u64,
    pub n_signals: u64,
}

#[derive(Clone, Debug)]
struct EdgeRow {
    no: i64,
    cursor: Cursor,
}

/// The store. One per aggregator; not shared between threads without a lock.
#[derive(Debug)]
pub struct AggregatorStore {
    conn: Connection,
    /// Every edge in the `edges` table, by id (a mirror: written only after a commit).
    edges: HashMap<String, EdgeRow>,
}

const INSERT_READ: &str = "INSERT OR IGNORE INTO reads (edge_no, seq, chip, at_us, point, line, reader, antenna, rssi, \
     reader_seq, session, hits, reader_time_kind, reader_time_us, received_at_us, ingested_at_us) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";
const READ_COLUMNS: &str = "seq, chip, at_us, point, line, reader, antenna, rssi, reader_seq, session, hits, \
     reader_time_kind, reader_time_us, received_at_us";
const INSERT_SIGNAL: &str = "INSERT OR IGNORE INTO signals (edge_no, seq, kind, race, wave, at_us, source, jitter_us, \
     ingested_at_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
const SIGNAL_COLUMNS: &str = "seq, kind, race, wave, at_us, source, jitter_us";

impl AggregatorStore {
    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<AggregatorStore, StoreError> {
        let mut conn =
            Connection::open(path).map_err(|source| StoreError::Open { path: path.display().to_string(), source })?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrations().to_latest(&mut conn)?;
        let mut edges = HashMap::new();
        {
            let mut stmt = conn.prepare("SELECT edge_no, id, acked_seq, acked_signal_seq FROM edges")?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
            })?;
            for row in rows {
                let (no, id, acked, acked_signal) = row?;
                let cursor = Cursor { acked_seq: acked as u64, acked_signal_seq: acked_signal as u64 };
                edges.insert(id, EdgeRow { no, cursor });
            }
        }
        Ok(AggregatorStore { conn, edges })
    }

    /// An edge's cursors (zero for an edge that never uploaded).
    pub fn cursor(&self, edge: &str) -> Cursor {
        self.edges.get(edge).map(|e| e.cursor).unwrap_or_default()
    }

    /// Every edge that ever uploaded, with its cursors, by id.
    pub fn cursors(&self) -> Vec<(String, Cursor)> {
        let mut out: Vec<(String, Cursor)> = self.edges.iter().map(|(id, e)| (id.clone(), e.cursor)).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub fn counts(&self) -> Result<Counts, StoreError> {
        let count = |table: &str| -> Result<u64, StoreError> {
            let n: i64 = self.conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
            Ok(n as u64)
        };
        Ok(Counts { n_edges: count("edges")?, n_reads: count("reads")?, n_signals: count("signals")? })
    }

    /// Stores an edge's batch in one transaction and moves its cursors over any run of seqs
    /// that became contiguous. Returns only once the batch is durable.
    ///
    /// Reads and signals whose `(edge, seq)` is already stored are ignored and counted. A seq
    /// of 0 or above `i64::MAX` refuses the whole batch (nothing is stored).
    pub fn ingest(
        &mut self,
        edge: &str,
        reads: &[WireRead],
        signals: &[Signal],
        now: Timestamp,
    ) -> Result<Ingested, StoreError> {
        for r in reads {
            check_seq(edge, "read", r.seq)?;
        }
        for s in signals {
            check_seq(edge, "signal", signal_seq(s))?;
        }
        let now_us = now.as_micros();
        let tx = self.conn.transaction()?;
        let (edge_no, before) = match self.edges.get(edge) {
            Some(e) => (e.no, e.cursor),
            None => {
                tx.execute("INSERT INTO edges (id) VALUES (?1)", params![edge])?;
                (tx.last_insert_rowid(), Cursor::default())
            }
        };
        let mut out = Ingested::default();

        let mut new_seqs = Vec::with_capacity(reads.len());
        {
            let mut insert = tx.prepare_cached(INSERT_READ)?;
            for r in reads {
                let (kind, value) = encode_reader_time(r.reader_time);
                let changed = insert.execute(params![
                    edge_no,
                    r.seq as i64,
                    r.chip,
                    r.at_us,
                    r.point,
                    line_code(r.line),
                    r.reader,
                    r.antenna,
                    r.rssi,
                    r.reader_seq.map(|s| s as i64),
                    r.session,
                    r.hits,
                    kind,
                    value,
                    r.received_at_us,
                    now_us,
                ])?;
                if changed == 1 {
                    new_seqs.push(r.seq);
                    out.new_reads.push(r.clone());
                } else {
                    out.n_duplicates += 1;
                    if stored_read(&tx, edge, edge_no, r.seq)?.as_ref() != Some(r) {
                        out.n_conflicts += 1;
                    }
                }
            }
        }
        let acked_seq = advance(&tx, "reads", edge_no, before.acked_seq, &mut new_seqs)?;

        let mut new_signal_seqs = Vec::with_capacity(signals.len());
        {
            let mut insert = tx.prepare_cached(INSERT_SIGNAL)?;
            for s in signals {
                let Signal::GunTime { seq, race, wave, at_us, source, jitter_us } = s;
                let changed = insert.execute(params![
                    edge_no,
                    *seq as i64,
                    "gun_time",
                    race,
                    wave,
                    at_us,
                    source,
                    jitter_us,
                    now_us
                ])?;
                if changed == 1 {
                    new_signal_seqs.push(*seq);
                    out.new_signals.push(s.clone());
                } else {
                    out.n_duplicates += 1;
                    if stored_signal(&tx, edge, edge_no, *seq)?.as_ref() != Some(s) {
                        out.n_conflicts += 1;
                    }
                }
            }
        }
        let acked_signal_seq = advance(&tx, "signals", edge_no, before.acked_signal_seq, &mut new_signal_seqs)?;

        let after = Cursor { acked_seq, acked_signal_seq };
        if after != before {
            tx.execute(
                "UPDATE edges SET acked_seq = ?2, acked_signal_seq = ?3 WHERE edge_no = ?1",
                params![edge_no, acked_seq as i64, acked_signal_seq as i64],
            )?;
        }
        tx.commit()?;
        assert!(after.acked_seq >= before.acked_seq && after.acked_signal_seq >= before.acked_signal_seq);
        self.edges.insert(edge.to_string(), EdgeRow { no: edge_no, cursor: after });
        out.acked_seq = acked_seq;
        out.acked_signal_seq = acked_signal_seq;
        Ok(out)
    }

    /// Calls `f` with every stored read, in ingest order; returns how many there were.
    pub fn for_each_read(&self, mut f: impl FnMut(&str, WireRead)) -> Result<u64, StoreError> {
        let names = self.edge_names();
        let mut stmt = self.conn.prepare(&format!("SELECT edge_no, {READ_COLUMNS} FROM reads ORDER BY ingest_no"))?;
        let mut rows = stmt.query([])?;
        let mut n = 0;
        while let Some(row) = rows.next()? {
            let edge = edge_name(&names, row.get(0)?);
            f(edge, decode_read(edge, row, 1)?);
            n += 1;
        }
        Ok(n)
    }

    /// Calls `f` with every stored signal, in ingest order; returns how many there were.
    /// Appends a desk correction to the audit log; returns its id.
    pub fn append_audit(
        &mut self,
        at: Timestamp,
        who: &str,
        why: &str,
        correction_json: &str,
        undoes: Option<u64>,
    ) -> Result<u64, StoreError> {
        self.conn.execute(
            "INSERT INTO audit (at_us, who, why, correction, undoes) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![at.as_micros(), who, why, correction_json, undoes.map(|u| u as i64)],
        )?;
        Ok(self.conn.last_insert_rowid() as u64)
    }

    /// The audit log in order.
    pub fn audit(&self) -> Result<Vec<AuditRow>, StoreError> {
        let mut st =
            self.conn.prepare_cached("SELECT id, at_us, who, why, correction, undoes FROM audit ORDER BY id")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                Timestamp::from_micros(r.get(1)?),
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get::<_, Option<i64>>(5)?.map(|u| u as u64),
            ))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    pub fn for_each_signal(&self, mut f: impl FnMut(&str, Signal)) -> Result<u64, StoreError> {
        let names = self.edge_names();
        let mut stmt =
            self.conn.prepare(&format!("SELECT edge_no, {SIGNAL_COLUMNS} FROM signals ORDER BY ingest_no"))?;
        let mut rows = stmt.query([])?;
        let mut n = 0;
        while let Some(row) = rows.next()? {
            let edge = edge_name(&names, row.get(0)?);
            f(edge, decode_signal(edge, row, 1)?);
            n += 1;
        }
        Ok(n)
    }

    fn edge_names(&self) -> HashMap<i64, &str> {
        self.edges.iter().map(|(id, e)| (e.no, id.as_str())).collect()
    }
}

/// # Panics
/// If a row names an edge the `edges` table does not hold (the foreign key forbids it).
fn edge_name<'a>(names: &HashMap<i64, &'a str>, edge_no: i64) -> &'a str {
    names.get(&edge_no).unwrap_or_else(|| panic!("row for unknown edge_no {edge_no}"))
}

fn check_seq(edge: &str, what: &'static str, seq: u64) -> Result<(), StoreError> {
    if seq == 0 || seq > i64::MAX as u64 {
        return Err(StoreError::InvalidSeq { edge: edge.to_string(), what, seq });
    }
    Ok(())
}

fn signal_seq(s: &Signal) -> u64 {
    match s {
        Signal::GunTime { seq, .. } => *seq,
    }
}

/// The cursor after storing `new_seqs` (seqs not stored before this batch) on top of `cursor`.
///
/// First over the batch's own run, then, only if the cursor moved, over rows stored by earlier
/// batches above it (a gap this batch filled).
fn advance(
    tx: &Transaction<'_>,
    table: &str,
    edge_no: i64,
    cursor: u64,
    new_seqs: &mut [u64],
) -> Result<u64, StoreError> {
    new_seqs.sort_unstable();
    let mut c = cursor;
    for &s in new_seqs.iter() {
        if s == c + 1 {
            c = s;
        } else if s > c + 1 {
            break;
        }
    }
    if c == cursor {
        // Nothing filled `cursor + 1`, which (invariant) was not stored before: no walk needed.
        return Ok(c);
    }
    let mut stmt =
        tx.prepare_cached(&format!("SELECT seq FROM {table} WHERE edge_no = ?1 AND seq > ?2 ORDER BY seq"))?;
    let mut rows = stmt.query(params![edge_no, c as i64])?;
    while let Some(row) = rows.next()? {
        let s = row.get::<_, i64>(0)? as u64;
        if s != c + 1 {
            break;
        }
        c = s;
    }
    Ok(c)
}

fn stored_read(tx: &Transaction<'_>, edge: &str, edge_no: i64, seq: u64) -> Result<Option<WireRead>, StoreError> {
    let mut stmt = tx.prepare_cached(&format!("SELECT {READ_COLUMNS} FROM reads WHERE edge_no = ?1 AND seq = ?2"))?;
    let mut rows = stmt.query(params![edge_no, seq as i64])?;
    rows.next()?.map(|row| decode_read(edge, row, 0)).transpose()
}

fn stored_signal(tx: &Transaction<'_>, edge: &str, edge_no: i64, seq: u64) -> Result<Option<Signal>, StoreError> {
    tx.prepare_cached(&format!("SELECT {SIGNAL_COLUMNS} FROM signals WHERE edge_no = ?1 AND seq = ?2"))?
        .query_row(params![edge_no, seq as i64], |row| Ok(decode_signal(edge, row, 0)))
        .optional()?
        .transpose()
}

/// A read from `READ_COLUMNS`, starting at column `at`.
fn decode_read(edge: &str, row: &Row<'_>, at: usize) -> Result<WireRead, StoreError> {
    let seq = row.get::<_, i64>(at)? as u64;
    let corrupt =
        |reason: &str| StoreError::Corrupt { edge: edge.to_string(), what: "read", seq, reason: reason.to_string() };
    let line = match row.get::<_, i64>(at + 4)? {
        0 => WireLine::Main,
        1 => WireLine::Backup,
        _ => return Err(corrupt("bad line code")),
    };
    let reader_time =
        decode_reader_time(row.get(at + 11)?, row.get(at + 12)?).ok_or_else(|| corrupt("bad reader time kind"))?;
    Ok(WireRead {
        seq,
        chip: row.get(at + 1)?,
        at_us: row.get(at + 2)?,
        point: row.get(at + 3)?,
        line,
        reader: row.get(at + 5)?,
        antenna: row.get(at + 6)?,
        rssi: row.get(at + 7)?,
        reader_seq: row.get::<_, Option<i64>>(at + 8)?.map(|s| s as u64),
        session: row.get(at + 9)?,
        hits: row.get(at + 10)?,
        reader_time,
        received_at_us: row.get(at + 13)?,
    })
}

/// A signal from `SIGNAL_COLUMNS`, starting at column `at`.
fn decode_signal(edge: &str, row: &Row<'_>, at: usize) -> Result<Signal, StoreError> {
    let seq = row.get::<_, i64>(at)? as u64;
    let kind: String = row.get(at + 1)?;
    match kind.as_str() {
        "gun_time" => Ok(Signal::GunTime {
            seq,
            race: row.get(at + 2)?,
            wave: row.get(at + 3)?,
            at_us: row.get(at + 4)?,
            source: row.get(at + 5)?,
            jitter_us: row.get(at + 6)?,
        }),
        _ => Err(StoreError::Corrupt {
            edge: edge.to_string(),
            what: "signal",
            seq,
            reason: format!("unknown signal kind {kind:?}"),
        }),
    }
}

fn line_code(line: WireLine) -> i64 {
    match line {
        WireLine::Main => 0,
        WireLine::Backup => 1,
    }
}

fn encode_reader_time(t: WireReaderTime) -> (i64, i64) {
    match t {
        WireReaderTime::Utc(us) => (0, us),
        WireReaderTime::Local(us) => (1, us),
        WireReaderTime::TimeOfDay(us) => (2, us),
    }
}

fn decode_reader_time(kind: i64, value: i64) -> Option<WireReaderTime> {
    match kind {
        0 => Some(WireReaderTime::Utc(value)),
        1 => Some(WireReaderTime::Local(value)),
        2 => Some(WireReaderTime::TimeOfDay(value)),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
