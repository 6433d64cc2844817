//! Whole simulated races through every real part, with faults during the race; the published
//! standings must still equal the generator's truth line for line and every read must be
//! upstream. The km-7 decoder's clock runs 3.2 s fast in every run (the demo's edge file), so
//! the edge's offset correction is always exercised. `SIM_SEED=<n>` replays a run; failures
//! print the seed.
//!
//! (These live in the `racetime` package, not a separate `tests/` package, because they run the
//! `racetime` binary itself as the edge and aggregator processes.)

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use firmware_sim::Fault;
use firmware_sim::player::Progress;
use racetime::chain::{Chain, ChainOptions, standings_mismatch};
use racetime::spectator::Follower;
use timing_core::{Elapsed, Line, Timestamp};
use timing_wire::live::Topic;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Waits until the race clock passes `at`.
async fn race_reaches(progress: &Progress, at: Timestamp) {
    while (progress.sim_now_us.load(Ordering::Relaxed) as i64) < at.as_micros() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_race_with_an_edge_killed_a_desk_gun_an_aggregator_restarted_a_reader_dropped_and_the_uplink_cut() {
    let seed: u64 = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(11);
    println!("seed {seed} (replay with SIM_SEED={seed})");
    let dir = tempfile::tempdir().unwrap();
    let event_text = std::fs::read_to_string(repo().join("config/demo/event.toml")).unwrap();
    let event = event_config::parse_event("demo", &event_text).unwrap();
    let race = race_sim::generate(&event, &race_sim::Scenario::troubled(seed, vec![80, 50]));
    let first_gun = race.guns.iter().map(|g| g.1).min().unwrap();
    let options = ChainOptions {
        event_dir: repo().join("config/demo"),
        work_dir: dir.path().to_path_buf(),
        exe: PathBuf::from(env!("CARGO_BIN_EXE_racetime")),
        repo: repo(),
        listen: "127.0.0.1:0".into(),
        // The desk enters the third marathon corral's gun during the race (test below).
        desk_guns: vec!["marathon/sas3".into()],
    };
    let chain = Arc::new(Chain::start(&options, race).await.unwrap());
    let progress = Arc::new(Progress::default());
    let km7 = chain.edge_index("km7").unwrap();
    let finish_point = chain.event.course.point_by_id("finish").unwrap();
    let at = |minutes: i64| first_gun + Elapsed::from_secs(minutes * 60);

    let faults = {
        let (chain, progress) = (chain.clone(), progress.clone());
        async move {
            // 0:30 into the race: the km-7 edge dies (kill -9) while the marathon passes; back 2 s later.
            race_reaches(&progress, at(30)).await;
            chain.stop_edge(km7, "KILL").unwrap();
            tokio::time::sleep(Duration::from_secs(2)).await;
            chain.start_edge(km7).unwrap();
            // 1:15: the desk enters the official gun of the third marathon corral (until now the
            // start-gun input's provisional time stood).
            race_reaches(&progress, at(75)).await;
            let gun = chain.race.gun_corrections().into_iter().find_map(|c| match c {
                timing_core::Correction::GunTime { race, wave, at: Some(at) }
                    if race == "marathon" && wave == "sas3" =>
                {
                    Some(at)
                }
                _ => None,
            });
            let body = serde_json::json!({
                "v": 1, "who": "Chief timer", "why": "official gun from the starter's sheet",
                "correction": { "kind": "gun_time", "race": "marathon", "wave": "sas3",
                                "at": event_config::units::format_utc(gun.unwrap()) }
            });
            let resp = reqwest::Client::new()
                .post(format!("{}/api/v1/desk/corrections", chain.agg_url))
                .bearer_auth(&chain.desk_token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
            // 2:00: the finish decoder's connection is cut mid-frame; the edge rewinds it.
            race_reaches(&progress, at(120)).await;
            chain.routes.readers.get(&(finish_point, Line::Main)).unwrap().fault(Fault::DropMidFrame);
            // 3:00: the aggregator dies (kill -9) at the height of the finish; back 2 s later.
            race_reaches(&progress, at(180)).await;
            chain.stop_aggregator("KILL").unwrap();
            tokio::time::sleep(Duration::from_secs(2)).await;
            chain.start_aggregator().unwrap();
            // 4:00: the uplink is cut (the aggregator frozen) for 3 s.
            race_reaches(&progress, at(240)).await;
            let pid = chain.aggregator.lock().unwrap().as_ref().unwrap().0.id();
            assert!(std::process::Command::new("kill").args(["-STOP", &pid.to_string()]).status().unwrap().success());
            tokio::time::sleep(Duration::from_secs(3)).await;
            assert!(std::process::Command::new("kill").args(["-CONT", &pid.to_string()]).status().unwrap().success());
        }
    };
    // About 16 s of wall time for the ~7 h from first gun to last finisher.
    let (played, ()) = tokio::join!(chain.play(Some(1_600.0), &progress), faults);
    played.unwrap();
    chain.settle(Duration::from_secs(120)).await.unwrap();

    let got = chain.standings().await.unwrap();
    let want = chain.truth().unwrap();
    if let Some(mismatch) = standings_mismatch(&got, &want) {
        panic!("seed {seed}: {mismatch}");
    }

    let summary: aggregator::race::Summary =
        reqwest::get(format!("{}/api/v1/summary", chain.agg_url)).await.unwrap().json().await.unwrap();
    assert_eq!(
        summary.n_reads,
        chain.decoder_records(),
        "seed {seed}: every read the decoders stored counted by the race exactly once, through every fault"
    );

    // A spectator who opens the page after all that sees the truth: the 10 km podium and the
    // marathon's last finishers on the arrivals feed, with their times.
    let course = &chain.race.course;
    let spectator = Follower::start(
        &chain.agg_url,
        vec![
            Topic::Leaderboard { race: "10k".into(), gender: None, category: None, division: None, top: 10 },
            Topic::Arrivals { point: "finish".into() },
        ],
    )
    .await
    .unwrap();
    let screen = spectator.finish().await.unwrap();
    let mut tenk: Vec<&race_sim::Truth> = chain
        .race
        .truth
        .iter()
        .filter(|t| {
            let p = course.participant(t.participant);
            course.race(p.race).id == "10k" && p.division.as_str() == "running" && t.places.overall.is_some()
        })
        .collect();
    tenk.sort_by_key(|t| (t.places.overall, course.participant(t.participant).bib.sort_key()));
    let want_board: Vec<(u32, String)> = tenk
        .iter()
        .take(10)
        .map(|t| (t.places.overall.unwrap(), course.participant(t.participant).bib.as_str().to_string()))
        .collect();
    let board: Vec<(u32, String)> =
        screen.boards.values().next().unwrap().iter().map(|r| (r.place, r.bib.clone())).collect();
    assert_eq!(board, want_board, "seed {seed}: the 10 km leaderboard a spectator sees");
    for a in &screen.arrivals["finish"] {
        let p = course.participant_by_bib(&a.bib).unwrap();
        let t = chain.race.truth.iter().find(|t| t.participant == p).unwrap();
        let want = t.chip_time.map(|e| results_export::format_time(e, timing_core::Precision::Seconds));
        assert_eq!(a.chip.as_ref().map(|c| c.text.clone()), want, "seed {seed}: bib {} on the arrivals feed", a.bib);
    }
    assert_eq!(screen.arrived("finish"), aggregator::live::ARRIVALS_KEPT, "seed {seed}: a full arrivals snapshot");
}
