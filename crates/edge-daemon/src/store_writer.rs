//! The only owner of the outbox: a dedicated thread doing group commits.
//!
//! Design note.
//! Reads arrive from every link on one bounded channel. The writer takes whatever is waiting,
//! up to [`WriterConfig::max_batch`] reads or [`WriterConfig::max_delay`] after the first, and
//! commits it in one transaction (`synchronous=FULL`: one fsync per batch, not per read). Only
//! then does it fire the batch's acks (MYLAPS acknowledgements), advance the [`ResumeTable`]
//! (where reconnecting links rewind from) and publish the new durable seq.
//! A failed commit (disk full, I/O error) loses nothing: the batch stays in memory, an alarm is
//! raised, and the commit is retried with backoff. While it fails, the writer stops taking new
//! work once [`WriterConfig::max_pending`] reads are held, so the bounded channel fills and
//! links stop reading: TCP and serial flow control then pause the decoders, which keep
//! everything in their own memory until the disk is back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use edge_store::{NewRead, NewSignal, Outbox, StoreError};
use tokio::sync::{mpsc, oneshot, watch};

use crate::link::ResumeTable;

/// One unit of work: reads to store, and who to tell once they are durable.
#[derive(Debug)]
pub struct Batch {
    pub reads: Vec<NewRead>,
    pub ack: Option<oneshot::Sender<()>>,
    /// Gun times seen by the edge itself (rare; stored after the reads of the same batch).
    pub signals: Vec<NewSignal>,
}

#[derive(Clone, Copy, Debug)]
pub struct WriterConfig {
    /// Most reads per transaction.
    pub max_batch: usize,
    /// Longest a read waits for more to join its transaction.
    pub max_delay: Duration,
    /// Most reads held in memory while commits fail.
    pub max_pending: usize,
}

impl Default for WriterConfig {
    fn default() -> WriterConfig {
        WriterConfig { max_batch: 4096, max_delay: Duration::from_millis(2), max_pending: 1_000_000 }
    }
}

/// What the writer publishes.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub n_stored: AtomicU64,
    pub n_duplicates: AtomicU64,
    pub n_commits: AtomicU64,
    pub n_failed_commits: AtomicU64,
    /// Set while commits fail (cleared by the next good commit).
    pub failing: AtomicBool,
    pub last_error: std::sync::Mutex<Option<String>>,
}

/// A handle to the running writer.
#[derive(Debug)]
pub struct StoreWriter {
    pub tx: mpsc::Sender<Batch>,
    /// The highest durable seq.
    pub durable: watch::Receiver<u64>,
    pub stats: Arc<WriterStats>,
    thread: Option<std::thread::JoinHandle<Outbox>>,
}

impl StoreWriter {
    /// Starts the writer thread on an opened outbox.
    pub fn spawn(outbox: Outbox, resume: ResumeTable, config: WriterConfig) -> StoreWriter {
        let (tx, rx) = mpsc::channel::<Batch>(1024);
        let (durable_tx, durable) = watch::channel(outbox.last_seq());
        let stats = Arc::new(WriterStats::default());
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("edge-store-writer".into())
            .spawn(move || writer_loop(outbox, rx, durable_tx, resume, config, &thread_stats))
            .expect("spawning the store writer thread");
        StoreWriter { tx, durable, stats, thread: Some(thread) }
    }

    /// Stops taking work, commits what is queued, and gives the outbox back.
    pub fn finish(mut self) -> Outbox {
        let thread = self.thread.take().expect("running");
        drop(self.tx);
        thread.join().expect("the store writer thread panicked")
    }
}

fn writer_loop(
    mut outbox: Outbox,
    mut rx: mpsc::Receiver<Batch>,
    durable: watch::Sender<u64>,
    resume: ResumeTable,
    config: WriterConfig,
    stats: &WriterStats,
) -> Outbox {
    // Waiting on the channel with a deadline needs a timer: a small runtime of this thread's own.
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a current-thread runtime");
    let mut pending: Vec<Batch> = Vec::new();
    let mut n_pending = 0usize;
    let mut open = true;
    let mut retry = Duration::from_millis(50);
    while open || !pending.is_empty() {
        // Gather: wait for the first batch, then take what arrives within max_delay.
        if pending.is_empty() {
            match rt.block_on(rx.recv()) {
                Some(b) => {
                    n_pending += b.reads.len();
                    pending.push(b);
                }
                None => break,
            }
        }
        let deadline = tokio::time::Instant::from_std(Instant::now() + config.max_delay);
        while open
            && n_pending < config.max_batch
            && (!stats.failing.load(Ordering::Relaxed) || n_pending < config.max_pending)
        {
            match rt.block_on(async { tokio::time::timeout_at(deadline, rx.recv()).await }) {
                Ok(Some(b)) => {
                    n_pending += b.reads.len();
                    pending.push(b);
                }
                Ok(None) => open = false,
                Err(_) => break,
            }
        }

        // Commit: everything pending, in arrival order, in one transaction.
        let all: Vec<NewRead> = pending.iter().flat_map(|b| b.reads.iter().cloned()).collect();
        match outbox.append(&all) {
            Ok(done) => {
                stats.n_commits.fetch_add(1, Ordering::Relaxed);
                stats.n_stored.fetch_add(done.n_stored as u64, Ordering::Relaxed);
                stats.n_duplicates.fetch_add(done.n_duplicates as u64, Ordering::Relaxed);
                if stats.failing.swap(false, Ordering::Relaxed) {
                    tracing::warn!(held = n_pending, "outbox writable again; held reads committed");
                }
                for r in &all {
                    if let Some(p) = r.read.reader_seq {
                        resume.advance(r.read.reader.as_str(), r.session, p);
                    }
                }
                for b in &pending {
                    for sig in &b.signals {
                        // A signal that fails to store is retried on the next commit via the failing path.
                        if let Err(error) = outbox.append_signal(sig) {
                            tracing::error!(%error, race = %sig.race, wave = %sig.wave, "ALARM: cannot store a gun time");
                        }
                    }
                }
                durable.send_replace(outbox.last_seq());
                for b in pending.drain(..) {
                    if let Some(ack) = b.ack {
                        let _ = ack.send(());
                    }
                }
                n_pending = 0;
                retry = Duration::from_millis(50);
            }
            Err(error) => {
                stats.n_failed_commits.fetch_add(1, Ordering::Relaxed);
                let first = !stats.failing.swap(true, Ordering::Relaxed);
                let disk_full = error.is_disk_full();
                *stats.last_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error.to_string());
                if first {
                    tracing::error!(%error, disk_full, held = n_pending, "ALARM: cannot write the outbox; holding reads in memory and retrying");
                }
                std::thread::sleep(retry);
                retry = (retry * 2).min(Duration::from_secs(2));
            }
        }
    }
    outbox
}

/// Opens the outbox, creating its folder.
pub fn open_outbox(path: &std::path::Path) -> Result<Outbox, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    Outbox::open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reader_protocol::ReaderTime;
    use timing_core::{ChipId, Line, PointId, Read, ReaderId, Timestamp};

    fn read(n: u64) -> NewRead {
        NewRead {
            read: Read {
                chip: ChipId::new(&format!("E{n}")),
                at: Timestamp::from_micros(n as i64 * 1000),
                point: PointId::new("finish"),
                line: Line::Main,
                reader: ReaderId::new("rr"),
                antenna: 1,
                rssi: None,
                reader_seq: Some(n),
            },
            reader_time: ReaderTime::Utc(Timestamp::from_micros(n as i64 * 1000)),
            session: Some(1),
            hits: Some(3),
            received_at: Timestamp::from_micros(0),
        }
    }

    #[tokio::test]
    async fn batches_become_durable_then_acked_and_resumable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edge.sqlite");
        let resume = ResumeTable::default();
        let w = StoreWriter::spawn(open_outbox(&path).unwrap(), resume.clone(), WriterConfig::default());
        let (ack_tx, ack_rx) = oneshot::channel();
        w.tx.send(Batch { reads: (1..=100).map(read).collect(), ack: Some(ack_tx), signals: Vec::new() })
            .await
            .unwrap();
        // Overlap from a rewind: 91..=110, of which 91..=100 are already there.
        w.tx.send(Batch { reads: (91..=110).map(read).collect(), ack: None, signals: Vec::new() }).await.unwrap();
        ack_rx.await.expect("acked once durable");
        let mut durable = w.durable.clone();
        durable.wait_for(|s| *s == 110).await.unwrap();
        assert_eq!(resume.get("rr").last_passing, Some(110));
        let stats = w.stats.clone();
        let outbox = w.finish();
        assert_eq!(outbox.count().unwrap(), 110);
        assert_eq!(stats.n_duplicates.load(Ordering::Relaxed), 10);
        assert!(stats.n_commits.load(Ordering::Relaxed) <= 2, "group commit");
    }
}
