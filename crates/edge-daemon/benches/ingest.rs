//! Durable ingest into the edge's outbox (figures go to BENCHMARKS.md).
//!
//! - `store_writer`: reads offered as a busy finish offers them (batches of 50 from a link) to the
//!   real store writer (group commit, WAL, `synchronous=FULL`), until all are durable.
//! - `plain_loop`: the same rows through a plain batched rusqlite insert loop (WAL,
//!   `synchronous=FULL`, 1,000 rows per transaction) on the same disk, for the ratio.
//! - With `--slow-sync MS` (default run: also 5), the benchmark re-runs itself under an
//!   `LD_PRELOAD` shim (`benches/slow_sync.c`, built with `cc`) that delays every fsync.
//!
//! Run: `cargo bench -p edge-daemon --bench ingest`

use std::path::Path;
use std::time::Instant;

use edge_daemon::link::ResumeTable;
use edge_daemon::store_writer::{Batch, StoreWriter, WriterConfig, open_outbox};
use edge_store::NewRead;
use reader_protocol::ReaderTime;
use timing_core::{ChipId, Line, PointId, Read, ReaderId, Rssi, Timestamp};

fn reads(n: usize) -> Vec<NewRead> {
    let point = PointId::new("finish");
    let reader = ReaderId::new("finish-main");
    (0..n)
        .map(|i| {
            let at = Timestamp::from_micros(1_723_329_667_000_000 + i as i64 * 400);
            NewRead {
                read: Read {
                    chip: ChipId::new(&format!("E200{:08X}", i / 50)),
                    at,
                    point: point.clone(),
                    line: Line::Main,
                    reader: reader.clone(),
                    antenna: (i % 4) as u16 + 1,
                    rssi: Some(Rssi(-600 - (i % 50) as i16)),
                    reader_seq: Some(i as u64 + 1),
                },
                reader_time: ReaderTime::Utc(at),
                session: Some(1),
                hits: None,
                received_at: at,
            }
        })
        .collect()
}

fn store_writer(dir: &Path, rows: &[NewRead]) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    rt.block_on(async {
        let w = StoreWriter::spawn(
            open_outbox(&dir.join("outbox.sqlite")).unwrap(),
            ResumeTable::default(),
            WriterConfig::default(),
        );
        let t0 = Instant::now();
        for chunk in rows.chunks(50) {
            w.tx.send(Batch { reads: chunk.to_vec(), ack: None, signals: Vec::new() }).await.unwrap();
        }
        let mut durable = w.durable.clone();
        durable.wait_for(|s| *s == rows.len() as u64).await.unwrap();
        let secs = t0.elapsed().as_secs_f64();
        let commits = w.stats.n_commits.load(std::sync::atomic::Ordering::Relaxed);
        println!(
            "  store_writer: {} reads in {:.3} s, {} commits ({:.0} reads per commit)",
            rows.len(),
            secs,
            commits,
            rows.len() as f64 / commits as f64
        );
        drop(w.finish());
        rows.len() as f64 / secs
    })
}

fn plain_loop(dir: &Path, rows: &[NewRead]) -> f64 {
    let conn = rusqlite::Connection::open(dir.join("plain.sqlite")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch(
        "CREATE TABLE reads (seq INTEGER PRIMARY KEY, chip TEXT, at_us INTEGER, point TEXT, line INTEGER, reader TEXT, antenna INTEGER, \
         rssi INTEGER, reader_seq INTEGER, reader_time_kind INTEGER, reader_time_us INTEGER, session INTEGER, hits INTEGER, received_at_us INTEGER)",
    )
    .unwrap();
    let mut conn = conn;
    let t0 = Instant::now();
    for chunk in rows.chunks(1000) {
        let tx = conn.transaction().unwrap();
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO reads VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )
                .unwrap();
            for r in chunk {
                st.execute(rusqlite::params![
                    r.read.chip.as_str(),
                    r.read.at.as_micros(),
                    r.read.point.as_str(),
                    0,
                    r.read.reader.as_str(),
                    r.read.antenna,
                    r.read.rssi.map(|x| x.0),
                    r.read.reader_seq.map(|s| s as i64),
                    0,
                    r.read.at.as_micros(),
                    r.session,
                    r.hits,
                    r.received_at.as_micros()
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    rows.len() as f64 / t0.elapsed().as_secs_f64()
}

fn measure(label: &str, n: usize) {
    let rows = reads(n);
    // Median of three runs each, on fresh files in one folder on the same disk.
    let mut ours = Vec::new();
    let mut plain = Vec::new();
    for _ in 0..3 {
        let dir =
            tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| env!("CARGO_TARGET_TMPDIR").into()))
                .unwrap();
        ours.push(store_writer(dir.path(), &rows));
        plain.push(plain_loop(dir.path(), &rows));
    }
    ours.sort_by(f64::total_cmp);
    plain.sort_by(f64::total_cmp);
    println!(
        "{label}: store_writer {:.0} reads/s, plain batched insert loop {:.0} reads/s, ratio {:.2}",
        ours[1],
        plain[1],
        ours[1] / plain[1]
    );
}

fn main() {
    if std::env::var("SLOW_SYNC_CHILD").is_ok() {
        measure(&format!("slow sync (+{} ms per fsync)", std::env::var("SLOW_SYNC_MS").unwrap_or_default()), 100_000);
        return;
    }
    measure("durable ingest, synchronous=FULL", 500_000);
    // The same under a slow disk: rebuild the shim and run this benchmark again under it.
    let shim = Path::new(env!("CARGO_TARGET_TMPDIR")).join("slow_sync.so");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/slow_sync.c");
    let built = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&shim)
        .arg(&src)
        .arg("-ldl")
        .status();
    match built {
        Ok(s) if s.success() => {
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .env("LD_PRELOAD", &shim)
                .env("SLOW_SYNC_CHILD", "1")
                .env("SLOW_SYNC_MS", std::env::var("SLOW_SYNC_MS").unwrap_or_else(|_| "5".into()))
                .status()
                .unwrap();
            assert!(status.success());
        }
        _ => println!("slow sync: skipped (no C compiler to build the fsync shim)"),
    }
}
