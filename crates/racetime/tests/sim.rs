//! `racetime sim`'s machinery on real sockets: emulators started from an edge file, a race played
//! into them at high speed, and a real RACE RESULT client receiving every finish crossing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use firmware_sim::clock::{ManualClock, SharedClock};
use firmware_sim::player::{Progress, play};
use reader_protocol::rfid::raceresult::{self, Command, Message};
use timing_core::{Elapsed, Line};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_played_race_reaches_a_raceresult_client_crossing_by_crossing() {
    let seed = 12;
    println!("seed {seed}");
    let event_text = std::fs::read_to_string(repo().join("config/demo/event.toml")).unwrap();
    let event = event_config::parse_event("demo", &event_text).unwrap();
    let race = race_sim::generate(&event, &race_sim::Scenario::troubled(seed, vec![40, 30]));
    let edge_text = r#"
[edge]
id = "finish"
point = "finish"
[uplink]
url = "http://127.0.0.1:1"
token_env = "UNUSED"
[store]
path = "unused.sqlite"
[[readers]]
id = "finish-main"
line = "main"
protocol = "raceresult"
transport = "tcp"
address = "127.0.0.1:0"
"#;
    let edge = event_config::parse_edge("edge-finish.toml", edge_text, &event).unwrap();
    let first_gun = race.guns.iter().map(|g| g.1).min().unwrap();
    let clock = Arc::new(ManualClock::new(first_gun - Elapsed::from_secs(5)));
    let shared: SharedClock = clock.clone();
    let routes =
        racetime::sim::start_hardware(std::slice::from_ref(&edge), &event, &race, shared, &repo()).await.unwrap();
    let reader = routes.readers.get(&(edge.point, Line::Main)).unwrap().clone();

    // A client connects first and asks for every passing, stored and live.
    let mut sock = tokio::net::TcpStream::connect(reader.local_addr().unwrap()).await.unwrap();
    let mut cmd = Vec::new();
    Command::SetPushPassings { enabled: true, include_stored: true }.encode(&mut cmd);
    sock.write_all(&cmd).await.unwrap();

    let progress = Progress::default();
    play(&race, &routes, &*clock, &progress).await;
    // The race is over: a little later every open crossing has been quiet long enough to close.
    clock.advance(Elapsed::from_secs(60));

    // What the mat saw, crossing by crossing (the decoder makes one passing per crossing).
    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    let finish = edge.point;
    for c in race.crossings.iter().filter(|c| c.point == finish && c.line == Line::Main) {
        *want.entry(c.chip.to_string()).or_default() += 1;
    }
    let n_want: usize = want.values().sum();
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    let mut numbers = Vec::new();
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while numbers.len() < n_want {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout_at(deadline, sock.read(&mut chunk)).await.expect("passings arrive").unwrap();
        assert!(n > 0, "the decoder closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        while let Some(msg) = raceresult::decode(&mut buf).unwrap() {
            if let Message::PushedPassing(p) | Message::Passing(p) = msg {
                *got.entry(p.transponder.clone()).or_default() += 1;
                numbers.push(p.passing_no);
            }
        }
    }
    assert_eq!(got, want, "every finish crossing arrives once, as one passing");
    assert_eq!(numbers, (1..=n_want as u64).collect::<Vec<_>>(), "passing numbers count up from 1");
    assert_eq!(
        progress.reads_unrouted.load(std::sync::atomic::Ordering::Relaxed) as usize,
        race.reads().iter().filter(|r| r.point.as_str() != "finish" || r.line != Line::Main).count()
    );
}
