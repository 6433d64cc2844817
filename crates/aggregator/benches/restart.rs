//! Restart and memory figures for the aggregator (BENCHMARKS.md).
//!
//! - `restart`: a store holding `AGG_BENCH_RESTART_READS` reads (default 1,000,000) of a
//!   generated Paris-size race; timed from opening the SQLite file to the first answer of the
//!   race task that has every read applied (store scan + engine replay + first query).
//!   Target: under 3 s. Five runs, median printed.
//! - `memory`: resident memory the race state of 100,000 runners takes (Paris event, 50,000 per
//!   race, every read of a whole race replayed), measured as the growth of this process's RSS
//!   with the reads freed again. Target: under 100 MiB.
//!
//! Run: `cargo bench -p aggregator --bench restart`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aggregator::race::{RaceSetup, Summary};
use aggregator::{AggregatorStore, AppState, IngestConfig, SystemClock, Tokens, UploadScope};
use timing_core::{Engine, EngineOptions, Timestamp};
use timing_wire::WireRead;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn event() -> event_config::EventConfig {
    let dir = repo().join("config/paris-2024");
    event_config::parse_event("paris", &std::fs::read_to_string(dir.join("event.toml")).unwrap()).unwrap()
}

/// Counts live heap bytes, so the engine's state is measured exactly (RSS would include what
/// the allocator keeps after the reads are freed).
#[global_allocator]
static GLOBAL: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

fn live_bytes() -> usize {
    let s = GLOBAL.stats();
    (s.bytes_allocated as isize - s.bytes_deallocated as isize + s.bytes_reallocated).max(0) as usize
}

fn restart(n_reads: usize) {
    let event = event();
    // Enough runners for the reads asked for (a Paris runner leaves about 100 reads).
    let per_race = (n_reads / 150).clamp(1000, 20_024);
    let race = race_sim::generate(&event, &race_sim::Scenario::clean(41, vec![per_race, per_race]));
    let mut reads = race.reads();
    reads.truncate(n_reads);
    let n = reads.len();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("agg.sqlite");
    {
        let mut store = AggregatorStore::open(&db).unwrap();
        let mut seqs: std::collections::BTreeMap<String, Vec<WireRead>> = Default::default();
        for r in &reads {
            let edge = r.point.to_string();
            let v = seqs.entry(edge).or_default();
            let seq = v.len() as u64 + 1;
            v.push(WireRead::from_read(seq, r, reader_protocol::ReaderTime::Utc(r.at), None, None, r.at));
        }
        for (edge, reads) in seqs {
            for chunk in reads.chunks(50_000) {
                store.ingest(&edge, chunk, &[], Timestamp::from_micros(0)).unwrap();
            }
        }
    }
    drop(reads);
    eprintln!("restart: a store of {n} reads ({} runners) at {}", race.course.participants.len(), db.display());
    let scope = UploadScope::load_dir(&repo().join("config/paris-2024")).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..5 {
        let t = rt.block_on(async {
            let t0 = Instant::now();
            let store = AggregatorStore::open(&db).unwrap();
            let tokens = Tokens::load(&scope, None, |var| Some(format!("{var}-restart-bench-token"))).unwrap();
            let state = AppState::new(store, scope.clone(), tokens, IngestConfig::default(), SystemClock);
            let handle = aggregator::race::start(
                state,
                RaceSetup {
                    course: race.course.clone(),
                    corrections: race.gun_corrections(),
                    event_name: event.name.clone(),
                    zone: event.time_zone,
                    desk_token: None,
                    live: Default::default(),
                },
            );
            let s: Summary = handle.summary().await.unwrap();
            let took = t0.elapsed();
            assert_eq!(s.n_reads as usize, n);
            took
        });
        eprintln!("  restart with {n} reads: {:.2} s", t.as_secs_f64());
        times.push(t);
    }
    times.sort();
    println!("restart/{n}_reads: median {:.2} s (target < 3 s)", times[2].as_secs_f64());
}

fn memory() {
    let event = event();
    let race = race_sim::generate(&event, &race_sim::Scenario::clean(43, vec![50_000, 50_000]));
    // Ranked (Paris published no places), so the rank indices are part of the state measured.
    let mut course = race.course.clone();
    for r in &mut course.races {
        r.ranked = true;
    }
    let corrections = race.gun_corrections();
    let reads = race.reads();
    let n = reads.len();
    drop(race);
    for (name, dedup) in [("with the duplicate filter", true), ("without", false)] {
        let before = live_bytes();
        let (engine, _) = Engine::replay(
            course.clone(),
            EngineOptions { dedup_reads: dedup, events: true },
            reads.clone(),
            corrections.clone(),
        );
        let after = live_bytes();
        assert_eq!(engine.results().len(), 100_000);
        println!(
            "memory/100k_runners ({name}): {:.1} MiB for {n} reads (target < 100 MiB)",
            (after.saturating_sub(before)) as f64 / (1 << 20) as f64
        );
        drop(engine);
    }
}

fn main() {
    let n: usize = std::env::var("AGG_BENCH_RESTART_READS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    // `AGG_BENCH_ONLY=restart` or `=memory` runs one part.
    let only = std::env::var("AGG_BENCH_ONLY").unwrap_or_default();
    if only != "memory" {
        restart(n);
    }
    if only != "restart" {
        memory();
    }
}
