//! A whole simulated race through every real part: emulated decoders of all seven protocols and
//! the Modbus devices (this process, real TCP ports and ptys) → five `racetime edge` processes
//! → a `racetime aggregator` process → its published standings, which must equal the race
//! generator's truth line for line.
//!
//! All processes share one race clock through a file (`--sim-clock stepped:PATH`): time moves
//! only when the player moves it, so the edges' clock measurements are exact and the race plays
//! as fast as the machine allows. Seeded: `SIM_SEED=<n>` replays a run; failures print the seed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use firmware_sim::clock::{FileClock, SharedClock};
use firmware_sim::player::{Progress, play};
use timing_core::Elapsed;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn token_var(point: &str) -> String {
    format!("RACETIME_EDGE_TOKEN_{}", point.to_uppercase())
}

fn token(point: &str) -> String {
    format!("{point}-token-for-the-full-chain-test")
}

/// The demo's edge files, moved into `event_dir` with free ports, paths under `dir`, the
/// aggregator's URL and a localhost status port.
fn edge_files(dir: &Path, event_dir: &Path, agg_url: &str) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for point in ["start", "km7", "km21", "km35", "finish"] {
        let mut text = std::fs::read_to_string(repo().join(format!("config/demo/edge-{point}.toml"))).unwrap();
        // Every 127.0.0.1:NNNNN address (readers, devices, status, uplink) gets a fresh one.
        let mut rewritten = String::new();
        for line in text.lines() {
            let line = if line.starts_with("url = ") {
                format!("url = \"{agg_url}\"")
            } else if line.starts_with("listen = ") {
                "listen = \"127.0.0.1:0\"".to_string()
            } else if line.starts_with("address = \"127.0.0.1:") {
                format!("address = \"127.0.0.1:{}\"", free_port())
            } else if let Some(rest) = line.strip_prefix("device = \"run/demo/") {
                format!("device = \"{}/{}", dir.display(), rest)
            } else if let Some(rest) = line.strip_prefix("path = \"var/demo/") {
                format!("path = \"{}/{}", dir.display(), rest)
            } else {
                line.to_string()
            };
            rewritten.push_str(&line);
            rewritten.push('\n');
        }
        text = rewritten;
        let file = event_dir.join(format!("edge-{point}.toml"));
        std::fs::write(&file, text).unwrap();
        out.push((point.to_string(), file));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_race_through_emulators_edges_and_the_aggregator_equals_the_truth() {
    let seed: u64 = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(7);
    println!("seed {seed} (replay with SIM_SEED={seed})");
    let dir = tempfile::tempdir().unwrap();
    let event_dir = dir.path().join("event");
    std::fs::create_dir_all(&event_dir).unwrap();
    let event_text = std::fs::read_to_string(repo().join("config/demo/event.toml")).unwrap();
    std::fs::write(event_dir.join("event.toml"), &event_text).unwrap();
    let event = event_config::parse_event("demo", &event_text).unwrap();
    let race = race_sim::generate(&event, &race_sim::Scenario::troubled(seed, vec![80, 50]));
    let race_dir = dir.path().join("race");
    racetime::generate::write_race(&race, &race_dir).unwrap();

    // Edge files first (the aggregator learns the event's edges and their tokens from them).
    let agg_port = free_port();
    let agg_url = format!("http://127.0.0.1:{agg_port}");
    let edges = edge_files(dir.path(), &event_dir, &agg_url);
    let envs: Vec<(String, String)> = edges.iter().map(|(p, _)| (token_var(p), token(p))).collect();

    let mut agg = Command::new(env!("CARGO_BIN_EXE_racetime"));
    agg.args(["aggregator", "--event"])
        .arg(&event_dir)
        .arg("--participants")
        .arg(race_dir.join("participants.csv"))
        .arg("--db")
        .arg(dir.path().join("aggregator.sqlite"))
        .args(["--listen", &format!("127.0.0.1:{agg_port}")])
        .arg("--corrections")
        .arg(race_dir.join("guns.toml"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped());
    for (k, v) in &envs {
        agg.env(k, v);
    }
    let mut agg = agg.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(agg.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("listening"), "{line}");
    let _agg = Proc(agg);

    // The shared race clock, a minute before the first gun.
    let clock_path = dir.path().join("race-clock");
    let first_gun = race.guns.iter().map(|g| g.1).min().unwrap();
    let player_clock = FileClock::create(&clock_path, first_gun - Elapsed::from_secs(60)).unwrap();
    let emulator_clock: SharedClock = Arc::new(FileClock::open(&clock_path).unwrap());

    // Emulated hardware where the edge files expect it.
    let configs: Vec<event_config::EdgeConfig> = edges
        .iter()
        .map(|(_, f)| {
            event_config::parse_edge(&f.display().to_string(), &std::fs::read_to_string(f).unwrap(), &event).unwrap()
        })
        .collect();
    let routes = racetime::sim::start_hardware(&configs, &event, &race, emulator_clock, &repo()).await.unwrap();

    // The edges, on the shared clock.
    let mut procs = Vec::new();
    for (point, file) in &edges {
        let child = Command::new(env!("CARGO_BIN_EXE_racetime"))
            .args(["edge", "--config"])
            .arg(file)
            .arg("--sim-clock")
            .arg(format!("stepped:{}", clock_path.display()))
            .env(token_var(point), token(point))
            .env("RUST_LOG", "warn")
            .current_dir(repo())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        procs.push(Proc(child));
    }

    // Every reader has its edge connected before the gun (an LLRP reader keeps nothing for later).
    let deadline = Instant::now() + Duration::from_secs(60);
    for ((point, line), reader) in &routes.readers {
        while reader.stats().clients_connected == 0 || reader.stats().commands_received < 2 {
            assert!(Instant::now() < deadline, "the edge never connected to reader at {point:?}/{line:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    let progress = Progress::default();
    play(&race, &routes, &player_clock, &progress).await;
    // After the race: a minute more, so every decoder closes its last crossings.
    player_clock.set(timing_core::time::Clock::now(&player_clock) + Elapsed::from_secs(60));

    // Wait until the aggregator holds everything the decoders stored, and it has settled.
    let stored: u64 = routes.readers.values().map(|r| r.stats().records_stored).sum();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = (0u64, Instant::now());
    loop {
        let fleet: Vec<aggregator::FleetEdge> =
            client.get(format!("{agg_url}/api/v1/fleet")).send().await.unwrap().json().await.unwrap();
        let held: u64 = fleet.iter().map(|e| e.counts.n_reads).sum();
        if held != last.0 {
            last = (held, Instant::now());
        }
        if held >= stored && last.1.elapsed() > Duration::from_secs(2) {
            break;
        }
        assert!(Instant::now() < deadline, "seed {seed}: the aggregator holds {held} of {stored} reads");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let got =
        client.get(format!("{agg_url}/api/v1/standings.csv?final=true")).send().await.unwrap().text().await.unwrap();
    let want = std::fs::read_to_string(race_dir.join("truth.csv")).unwrap();
    let differing: Vec<(&str, &str)> = got.lines().zip(want.lines()).filter(|(a, b)| a != b).collect();
    assert!(
        differing.is_empty() && got.lines().count() == want.lines().count(),
        "seed {seed}: {} standings lines differ from the truth (of {}):\n{}",
        differing.len(),
        want.lines().count(),
        differing.iter().take(6).map(|(a, b)| format!("  got:  {a}\n  want: {b}")).collect::<Vec<_>>().join("\n")
    );
    let summary: aggregator::race::Summary =
        client.get(format!("{agg_url}/api/v1/summary")).send().await.unwrap().json().await.unwrap();
    assert_eq!(summary.n_strays, race.n_strays, "seed {seed}: every stray reported once");
    assert_eq!(summary.n_unknown_chips, race.unknown_chips.len(), "seed {seed}");
    drop(procs);
}
