use std::path::PathBuf;

use super::*;

fn demo() -> EventConfig {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/demo/event.toml");
    event_config::parse_event("demo", &std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn same_seed_same_race_other_seed_other_race() {
    let ev = demo();
    let a = generate(&ev, &Scenario::troubled(5, vec![50, 30]));
    let b = generate(&ev, &Scenario::troubled(5, vec![50, 30]));
    assert_eq!(a.participants_csv, b.participants_csv);
    assert_eq!(a.crossings, b.crossings);
    assert_eq!(a.truth, b.truth);
    let c = generate(&ev, &Scenario::troubled(6, vec![50, 30]));
    assert_ne!(a.crossings, c.crossings);
}

#[test]
fn reads_follow_the_crossings_and_the_truth_is_inside_the_windows() {
    let ev = demo();
    let race = generate(&ev, &Scenario::clean(9, vec![40, 40]));
    assert_eq!(race.course.participants.len(), 80);
    let reads = race.reads();
    let n_hits: u32 = race.crossings.iter().map(|c| c.hits).sum();
    assert_eq!(reads.len(), n_hits as usize);
    assert!(reads.windows(2).all(|w| w[0].at <= w[1].at), "reads are sorted by instant");
    for t in &race.truth {
        assert_eq!(t.status, Status::Finished, "a clean race has only finishers");
        let chip = t.chip_time.unwrap();
        let gun = t.gun_time.unwrap();
        assert!(chip <= gun && chip > Elapsed::from_secs(25 * 60), "{chip} {gun}");
        assert_eq!(t.splits[0], Some(Elapsed::ZERO));
    }
    // Every burst's reads are closer together than the quiet gap, so each is one crossing.
    for c in &race.crossings {
        assert!(c.gaps_ms.iter().all(|&g| (g as i64) < ev.course.point(c.point).quiet_gap.as_micros() / 1000));
    }
}

#[test]
fn many_hits_stay_one_short_crossing() {
    let ev = demo();
    let mut scenario = Scenario::clean(4, vec![10, 10]);
    scenario.hits = (200, 255);
    let race = generate(&ev, &scenario);
    for c in &race.crossings {
        assert!((200..=255).contains(&c.hits));
        let span_ms: u32 = c.gaps_ms.iter().map(|&g| g as u32).sum();
        assert!(span_ms < 3500, "a crossing of {} reads spans {span_ms} ms", c.hits);
    }
    let (engine, _) = timing_core::Engine::replay(
        race.course.clone(),
        timing_core::EngineOptions::default(),
        race.reads(),
        race.gun_corrections(),
    );
    assert!(engine.strays().is_empty());
    for t in &race.truth {
        assert_eq!(engine.result(t.participant).gun_time, t.gun_time);
    }
}

#[test]
fn true_instants_are_whole_hundredths() {
    let race = generate(&demo(), &Scenario::troubled(3, vec![30, 20]));
    for c in &race.crossings {
        assert_eq!(c.first_read.as_micros() % 10_000, 0, "{c:?}");
    }
    for (_, g) in &race.guns {
        assert_eq!(g.as_micros() % 10_000, 0);
    }
}
