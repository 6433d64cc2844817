//! Engine benchmarks (figures go to BENCHMARKS.md).
//!
//! - `recompute`: a full recompute of a 40,000-runner marathon (11 timing points, 10–30 reads per
//!   crossing: about 8.8 million reads) from reads to ranked results, with and without the
//!   exact-duplicate filter. Target: under 2 s on one core.
//! - `incremental`: the latency of one live update (`handle_read`) at the finish of the same
//!   race, every other read already applied. Criterion reports the mean; the p50/p99/p99.9 of
//!   single calls are printed by `latency_percentiles`. Target: p99 under 50 µs.
//!
//! Run: `cargo bench -p timing-core --bench engine`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput};
use event_config::parse_event;
use race_sim::{Scenario, SimRace, generate};
use timing_core::{Engine, EngineOptions, Read};

const RUNNERS: usize = 40_000;

fn race() -> SimRace {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/paris-2024/event.toml");
    let event = parse_event("paris-2024", &std::fs::read_to_string(path).unwrap()).unwrap();
    generate(&event, &Scenario::clean(42, vec![RUNNERS, 0]))
}

fn recompute(c: &mut Criterion, race: &SimRace, reads: &[Read]) {
    let mut g = c.benchmark_group("recompute");
    g.sample_size(10).measurement_time(Duration::from_secs(30)).throughput(Throughput::Elements(reads.len() as u64));
    let guns = race.gun_corrections();
    for (name, dedup_reads) in [("40k_runners_dedup", true), ("40k_runners_no_dedup", false)] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || reads.to_vec(),
                |reads| {
                    let (engine, _) = Engine::replay(
                        race.course.clone(),
                        EngineOptions { dedup_reads, events: false },
                        reads,
                        guns.clone(),
                    );
                    assert_eq!(engine.counters().n_reads as usize, reads_len(&engine));
                    engine
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn reads_len(engine: &Engine) -> usize {
    engine.counters().n_reads as usize
}

/// Splits the reads into "everything before the finish" and the finish reads.
fn split_at_finish(race: &SimRace, reads: &[Read]) -> (Vec<Read>, Vec<Read>) {
    let finish = &race.course.points.last().unwrap().id;
    reads.iter().cloned().partition(|r| r.point != *finish)
}

fn incremental(c: &mut Criterion, race: &SimRace, reads: &[Read]) {
    let (before, finish) = split_at_finish(race, reads);
    let (mut engine, _) = Engine::replay(race.course.clone(), EngineOptions::default(), before, race.gun_corrections());
    let mut g = c.benchmark_group("incremental");
    let mut i = 0;
    g.bench_function("handle_read_at_the_finish", |b| {
        b.iter(|| {
            let r = &finish[i % finish.len()];
            i += 1;
            let out = engine.handle_read(r);
            while engine.poll_event().is_some() {}
            out
        })
    });
    g.finish();
}

/// Single-call latencies of live updates at the finish, in arrival order, as percentiles.
fn latency_percentiles(race: &SimRace, reads: &[Read]) {
    let (before, finish) = split_at_finish(race, reads);
    let (mut engine, _) = Engine::replay(race.course.clone(), EngineOptions::default(), before, race.gun_corrections());
    let mut all = Vec::with_capacity(finish.len());
    let mut new_passing = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in &finish {
        let t0 = Instant::now();
        engine.handle_read(r);
        while engine.poll_event().is_some() {}
        let dt = t0.elapsed();
        all.push(dt);
        if seen.insert(r.chip.clone()) {
            new_passing.push(dt);
        }
    }
    let pct = |v: &mut Vec<Duration>, q: f64| {
        v.sort_unstable();
        v[((v.len() as f64 - 1.0) * q).round() as usize]
    };
    for (name, v) in [("every finish read", &mut all), ("first read of a crossing (a new passing)", &mut new_passing)] {
        println!(
            "incremental/{name}: n={} p50={:?} p99={:?} p99.9={:?} max={:?}",
            v.len(),
            pct(v, 0.5),
            pct(v, 0.99),
            pct(v, 0.999),
            pct(v, 1.0)
        );
    }
}

fn main() {
    let t0 = Instant::now();
    let race = race();
    let reads = race.reads();
    println!(
        "generated {} runners, {} crossings, {} reads in {:?}",
        race.course.participants.len(),
        race.crossings.len(),
        reads.len(),
        t0.elapsed()
    );
    latency_percentiles(&race, &reads);
    let mut c = Criterion::default().configure_from_args();
    recompute(&mut c, &race, &reads);
    incremental(&mut c, &race, &reads);
    c.final_summary();
}
