//! A whole simulated race through every real part (`racetime::chain`): emulated decoders of all
//! seven protocols and the Modbus devices → one `racetime edge` process per timing point → a
//! `racetime aggregator` process → a spectator on the WebSocket live feed, on a shared stepped
//! race clock; the published standings must equal the race generator's truth line for line, and
//! what the spectator saw must equal it too. `SIM_SEED=<n>` replays a run.

use std::path::PathBuf;
use std::time::Duration;

use firmware_sim::player::Progress;
use racetime::chain::{Chain, ChainOptions, standings_mismatch};
use racetime::spectator::Follower;
use timing_core::{Precision, Status};
use timing_wire::live::{RunnerView, Topic};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_race_through_emulators_edges_and_the_aggregator_equals_the_truth() {
    let seed: u64 = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(7);
    println!("seed {seed} (replay with SIM_SEED={seed})");
    let dir = tempfile::tempdir().unwrap();
    let event_text = std::fs::read_to_string(repo().join("config/demo/event.toml")).unwrap();
    let event = event_config::parse_event("demo", &event_text).unwrap();
    let race = race_sim::generate(&event, &race_sim::Scenario::troubled(seed, vec![80, 50]));
    let n_strays = race.n_strays;
    let n_unknown = race.unknown_chips.len();
    let options = ChainOptions {
        event_dir: repo().join("config/demo"),
        work_dir: dir.path().to_path_buf(),
        exe: PathBuf::from(env!("CARGO_BIN_EXE_racetime")),
        repo: repo(),
        listen: "127.0.0.1:0".into(),
        desk_guns: Vec::new(),
    };
    let chain = Chain::start(&options, race).await.unwrap();
    // A spectator follows a few runners, the marathon's leaderboard and the finish line.
    let course = &chain.race.course;
    let finishers: Vec<&race_sim::Truth> = chain.race.truth.iter().filter(|t| t.status == Status::Finished).collect();
    let followed: Vec<String> =
        finishers.iter().step_by(9).map(|t| course.participant(t.participant).bib.as_str().to_string()).collect();
    let mut topics: Vec<Topic> = followed.iter().map(|bib| Topic::Runner { bib: bib.clone() }).collect();
    topics.push(Topic::Arrivals { point: "finish".into() });
    topics.push(Topic::Leaderboard { race: "10k".into(), gender: None, category: None, division: None, top: 10 });
    let spectator = Follower::start(&chain.agg_url, topics).await.unwrap();

    chain.play(None, &Progress::default()).await.unwrap();
    chain.settle(Duration::from_secs(120)).await.unwrap();

    // What the spectator saw equals the truth: every finisher arrived once, followed runners'
    // times and places, the 10 km podium.
    let truth_of =
        |bib: &str| finishers.iter().find(|t| course.participant(t.participant).bib.as_str() == bib).unwrap();
    let text = |e: Option<timing_core::Elapsed>| e.map(|e| results_export::format_time(e, Precision::Seconds));
    let shown = |r: &RunnerView| {
        (
            r.gun_time.as_ref().map(|t| t.text.clone()),
            r.chip_time.as_ref().map(|t| t.text.clone()),
            r.places.overall,
            r.places.gender,
            r.places.category,
        )
    };
    let want = |t: &race_sim::Truth| {
        (text(t.gun_time), text(t.chip_time), t.places.overall, t.places.gender, t.places.category)
    };
    let n_finish_arrivals = chain.race.truth.iter().filter(|t| t.splits.last().copied().flatten().is_some()).count();
    let screen = spectator
        .wait_for(Duration::from_secs(30), |sc| {
            sc.arrived("finish") == n_finish_arrivals
                && followed.iter().all(|b| sc.runners.get(b).is_some_and(|r| shown(r) == want(truth_of(b))))
        })
        .await
        .unwrap_or_else(|e| {
            let sc = spectator.screen();
            let runners: Vec<String> = followed
                .iter()
                .map(|b| format!("{b}: shown {:?} want {:?}", sc.runners.get(b).map(shown), want(truth_of(b))))
                .collect();
            panic!(
                "seed {seed}: the spectator's screen: {e}: {} of {n_finish_arrivals} finish arrivals ({} snapshots, {} deltas)\n{}",
                sc.arrived("finish"),
                sc.n_snapshots,
                sc.n_deltas,
                runners.join("\n")
            )
        });
    let screen_finish: std::collections::BTreeSet<&str> =
        screen.arrivals["finish"].iter().map(|a| a.bib.as_str()).collect();
    assert_eq!(screen_finish.len(), n_finish_arrivals, "seed {seed}: each arrival once");
    let podium: Vec<String> = screen.boards.values().next().unwrap().iter().take(3).map(|r| r.bib.clone()).collect();
    let mut tenk: Vec<&race_sim::Truth> = finishers
        .iter()
        .copied()
        .filter(|t| {
            course.race(course.participant(t.participant).race).id == "10k"
                && course.participant(t.participant).division.as_str() == "running"
        })
        .collect();
    tenk.sort_by_key(|t| (t.places.overall, course.participant(t.participant).bib.sort_key()));
    let want_podium: Vec<String> =
        tenk.iter().take(3).map(|t| course.participant(t.participant).bib.as_str().to_string()).collect();
    assert_eq!(podium, want_podium, "seed {seed}: the 10 km podium on the spectator's screen");
    spectator.finish().await.unwrap();

    let got = chain.standings().await.unwrap();
    let want = chain.truth().unwrap();
    if let Some(mismatch) = standings_mismatch(&got, &want) {
        panic!("seed {seed}: {mismatch}");
    }
    let summary: aggregator::race::Summary =
        reqwest::get(format!("{}/api/v1/summary", chain.agg_url)).await.unwrap().json().await.unwrap();
    assert_eq!(summary.n_strays, n_strays, "seed {seed}: every stray reported once");
    assert_eq!(
        summary.n_reads,
        chain.decoder_records(),
        "seed {seed}: every read the decoders stored counted by the race exactly once"
    );
    assert_eq!(summary.n_unknown_chips, n_unknown, "seed {seed}");
}
