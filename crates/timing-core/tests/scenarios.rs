//! Golden scenarios: generated races whose true times are known; the engine must match exactly.
//!
//! Seeds are fixed so CI is deterministic; `SIM_SEED=<n>` adds one, and every failure prints the
//! seed that reproduces it (`SIM_SEED=<n> cargo test -p timing-core --test scenarios`).

use std::path::PathBuf;

use event_config::{EventConfig, parse_event};
use race_sim::{Scenario, SimRace, generate};
use timing_core::{Engine, EngineOptions, ParticipantIdx, Read, Status, standings};

fn event(name: &str) -> EventConfig {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config").join(name).join("event.toml");
    parse_event(name, &std::fs::read_to_string(path).unwrap()).unwrap()
}

fn seeds(fixed: &[u64]) -> Vec<u64> {
    let mut v = fixed.to_vec();
    if let Ok(s) = std::env::var("SIM_SEED") {
        v.push(s.parse().expect("SIM_SEED is a number"));
    }
    v
}

/// Compares every participant's result with the truth; returns the mismatches, described.
fn mismatches(engine: &Engine, race: &SimRace) -> Vec<String> {
    let mut out = Vec::new();
    for t in &race.truth {
        let p = t.participant;
        let r = engine.result(p);
        let bib = &race.course.participant(p).bib;
        let status = r.status().final_status();
        let splits: Vec<_> = (0..r.passings.len()).map(|i| r.split_elapsed(i)).collect();
        let got = (status, r.gun_time, r.chip_time, &splits, r.flags, engine.places(p));
        let want = (t.status, t.gun_time, t.chip_time, &t.splits, t.flags, t.places);
        if got != want {
            out.push(format!(
                "bib {bib}:\n  got  {got:?} flags {:?}\n  want {want:?} flags {:?}",
                r.flags.names().collect::<Vec<_>>(),
                t.flags.names().collect::<Vec<_>>()
            ));
        }
    }
    out
}

fn shuffled(mut reads: Vec<Read>, seed: u64) -> Vec<Read> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for i in (1..reads.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        reads.swap(i, (s % (i as u64 + 1)) as usize);
    }
    reads
}

#[test]
fn troubled_races_match_the_truth_live_and_batch() {
    let ev = event("demo");
    for seed in seeds(&[1, 2, 3, 2024]) {
        let race = generate(&ev, &Scenario::troubled(seed, vec![400, 300]));
        let reads = race.reads();
        let guns = race.gun_corrections();

        // Batch: the results desk's full recompute.
        let (batch, refused) =
            Engine::replay(race.course.clone(), EngineOptions::default(), reads.clone(), guns.clone());
        assert!(refused.is_empty(), "seed {seed}: {refused:?}");
        let bad = mismatches(&batch, &race);
        assert!(
            bad.is_empty(),
            "seed {seed}: {} of {} differ (batch):\n{}",
            bad.len(),
            race.truth.len(),
            bad[..bad.len().min(8)].join("\n")
        );

        // Live: guns first (as at a real start), then every read out of order, a tenth replayed.
        let mut live = Engine::new(race.course.clone(), EngineOptions::default());
        for g in guns {
            live.handle_correction(g).unwrap();
        }
        let mut order = shuffled(reads.clone(), seed);
        let replays: Vec<Read> = order.iter().step_by(10).cloned().collect();
        order.extend(replays);
        for r in &order {
            live.handle_read(r);
        }
        let bad = mismatches(&live, &race);
        assert!(bad.is_empty(), "seed {seed}: {} differ (live):\n{}", bad.len(), bad[..bad.len().min(8)].join("\n"));

        // Reporting: every stray once, every unknown chip listed, counts exact.
        assert_eq!(live.strays().len(), race.n_strays, "seed {seed}");
        let unknown: Vec<_> = live.unknown_chips().into_iter().map(|u| u.chip).collect();
        assert_eq!(unknown, race.unknown_chips, "seed {seed}");
        assert_eq!(live.counters().n_reads as usize, reads.len(), "seed {seed}");
        assert_eq!(live.counters().n_duplicates as usize, order.len() - reads.len(), "seed {seed}");

        // The scenario really exercised the hard cases.
        let count = |f: timing_core::Flags| race.truth.iter().filter(|t| t.flags.contains(f)).count();
        for (flag, name) in timing_core::Flags::NAMES {
            if ["gun_scheduled", "manual", "accepted", "impossible_pace", "over_time_limit"].contains(&name) {
                continue;
            }
            if seed != 2024 {
                continue;
            }
            assert!(count(flag) > 0, "seed {seed}: no runner with flag {name}");
        }
        let statuses = [Status::Finished, Status::Dnf, Status::Dns, Status::Review];
        for s in statuses {
            assert!(race.truth.iter().any(|t| t.status == s), "seed {seed}: no runner with status {s:?}");
        }
    }
}

#[test]
fn standings_list_finishers_by_place_then_the_rest() {
    let ev = event("demo");
    let race = generate(&ev, &Scenario::troubled(7, vec![150, 100]));
    let (engine, _) =
        Engine::replay(race.course.clone(), EngineOptions::default(), race.reads(), race.gun_corrections());
    let rows = standings(&engine, true);
    assert_eq!(rows.len(), race.course.participants.len());
    // Within a race and division (para athletes are ranked apart), places never go up.
    let mut last: std::collections::HashMap<(u16, String), u32> = Default::default();
    for row in &rows {
        let p = race.course.participant(row.participant);
        if let Some(place) = row.places.overall {
            let prev = last.insert((p.race.0, p.division.as_str().to_string()), place).unwrap_or(0);
            assert!(place >= prev, "places go down the list");
        }
        assert_ne!(row.status, Status::Running, "final standings have no running status");
        assert_ne!(row.status, Status::NotStarted);
    }
    // Every participant appears once.
    let mut seen: Vec<ParticipantIdx> = rows.iter().map(|r| r.participant).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), rows.len());
}

#[test]
fn paris_marathon_past_midnight_matches_the_truth() {
    let ev = event("paris-2024");
    let race = generate(&ev, &Scenario::troubled(11, vec![600, 400]));
    let (engine, _) =
        Engine::replay(race.course.clone(), EngineOptions::default(), race.reads(), race.gun_corrections());
    let bad = mismatches(&engine, &race);
    assert!(bad.is_empty(), "seed 11: {} differ:\n{}", bad.len(), bad[..bad.len().min(8)].join("\n"));
    // Most marathoners finish after midnight in Paris (22:00 UTC) and still get plain elapsed times.
    let midnight = timing_core::Timestamp::from_secs(1_723_327_200);
    let after_midnight = race
        .truth
        .iter()
        .filter(|t| {
            let p = race.course.participant(t.participant);
            race.course.race(p.race).id == "marathon" && t.status == Status::Finished
        })
        .filter(|t| engine.result(t.participant).passings.last().copied().flatten().is_some_and(|f| f.at > midnight))
        .count();
    assert!(after_midnight > 100, "{after_midnight} marathon finishers after midnight");
}
