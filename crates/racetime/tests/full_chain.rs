//! A whole simulated race through every real part (`racetime::chain`): emulated decoders of all
//! seven protocols and the Modbus devices → one `racetime edge` process per timing point → a
//! `racetime aggregator` process, on a shared stepped race clock; the published standings must
//! equal the race generator's truth line for line. `SIM_SEED=<n>` replays a run.

use std::path::PathBuf;
use std::time::Duration;

use firmware_sim::player::Progress;
use racetime::chain::{Chain, ChainOptions, diff_lines};

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
    chain.play(None, &Progress::default()).await.unwrap();
    chain.settle(Duration::from_secs(120)).await.unwrap();

    let got = chain.standings().await.unwrap();
    let want = chain.truth().unwrap();
    let (differing, same_count) = diff_lines(&got, &want);
    assert!(
        differing.is_empty() && same_count,
        "seed {seed}: {} standings lines differ from the truth (of {}):\n{}",
        differing.len(),
        want.lines().count(),
        differing.iter().take(6).map(|(a, b)| format!("  got:  {a}\n  want: {b}")).collect::<Vec<_>>().join("\n")
    );
    let summary: aggregator::race::Summary =
        reqwest::get(format!("{}/api/v1/summary", chain.agg_url)).await.unwrap().json().await.unwrap();
    assert_eq!(summary.n_strays, n_strays, "seed {seed}: every stray reported once");
    assert_eq!(summary.n_unknown_chips, n_unknown, "seed {seed}");
}
