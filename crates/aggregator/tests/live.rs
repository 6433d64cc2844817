//! The live feed over real sockets: an aggregator served on port 0, real WebSocket clients
//! (tokio-tungstenite), edges' uploads in time order; spectators' runner views, leaderboards
//! and arrivals equal the race generator's truth. Bad clients are closed; a stalled client
//! holds up no one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use aggregator::live::ws::LiveConfig;
use aggregator::race::{RaceSetup, Summary};
use futures::{SinkExt, StreamExt};
use timing_core::{Precision, RaceIdx, Status};
use timing_wire::live::{ClientMessage, LIVE_VERSION, RunnerView, Topic};
use timing_wire::{Batch, UPLINK_VERSION, WireRead};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

mod support;

use support::edge_token;

fn seed() -> u64 {
    let seed = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(17);
    eprintln!("live-feed test seed {seed} (SIM_SEED=<n> to change)");
    seed
}

struct Server {
    addr: SocketAddr,
    race: race_sim::SimRace,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn server(runners: Vec<usize>, live: LiveConfig) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let d = support::demo(&dir.path().join("agg.sqlite"), &race_sim::Scenario::clean(seed(), runners));
    let handle = aggregator::race::start(d.state.clone(), RaceSetup { live, ..d.setup() });
    let (state, race) = (d.state, d.race);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = aggregator::router(state, handle);
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    Server { addr, race, http: reqwest::Client::new(), _dir: dir }
}

impl Server {
    /// Uploads every read in time order, in small batches per edge (as edges stream them).
    async fn upload_all(&self, batch_size: usize) {
        self.upload(&self.race.reads(), batch_size).await;
    }

    /// Uploads `reads` in their order, in small batches per edge.
    async fn upload(&self, reads: &[timing_core::Read], batch_size: usize) {
        let mut seqs: BTreeMap<String, u64> = BTreeMap::new();
        let mut i = 0;
        while i < reads.len() {
            let edge = reads[i].point.to_string();
            let mut batch = Vec::new();
            while i < reads.len() && reads[i].point.to_string() == edge && batch.len() < batch_size {
                let seq = seqs.entry(edge.clone()).or_insert(0);
                *seq += 1;
                let r = &reads[i];
                batch.push(WireRead::from_read(*seq, r, reader_protocol::ReaderTime::Utc(r.at), None, None, r.at));
                i += 1;
            }
            let body = Batch { v: UPLINK_VERSION, edge: edge.clone(), reads: batch, signals: vec![] };
            let resp = self
                .http
                .post(format!("http://{}/api/v1/ingest", self.addr))
                .bearer_auth(edge_token(&edge))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        }
    }

    /// Waits (polling with a deadline) until the race task has applied every read.
    async fn settle(&self) {
        let n = self.race.reads().len() as u64;
        for _ in 0..500 {
            let s: Summary = self
                .http
                .get(format!("http://{}/api/v1/summary", self.addr))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if s.n_reads == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the race task never applied the uploads");
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        self.http.get(format!("http://{}{path}", self.addr)).send().await.unwrap().json().await.unwrap()
    }

    async fn metrics(&self) -> String {
        self.http.get(format!("http://{}/metrics", self.addr)).send().await.unwrap().text().await.unwrap()
    }

    /// Polls `/metrics` until `name` reads `value` (connections close asynchronously).
    async fn wait_metric(&self, name: &str, value: u64) {
        let line = format!("{name} {value}");
        for _ in 0..500 {
            if self.metrics().await.lines().any(|l| l == line) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{name} never reached {value}:\n{}", self.metrics().await);
    }

    fn bib_truth(&self, bib: &str) -> &race_sim::Truth {
        let p = self.race.course.participant_by_bib(bib).unwrap();
        self.race.truth.iter().find(|t| t.participant == p).unwrap()
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(addr: SocketAddr) -> Ws {
    tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/live")).await.unwrap().0
}

async fn subscribe(ws: &mut Ws, topic: Topic) {
    let m = ClientMessage::Subscribe { v: LIVE_VERSION, topic };
    ws.send(Message::text(serde_json::to_string(&m).unwrap())).await.unwrap();
}

use timing_wire::live::client::{Screen, board_key as board_name};

/// Reads messages into `screen` until `done` holds (or panics after `within`).
async fn read_until(ws: &mut Ws, screen: &mut Screen, within: Duration, done: impl Fn(&Screen) -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !done(screen) {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("the screen never got there: {screen:#?}"))
            .expect("the server closed the live feed")
            .unwrap();
        if let Message::Text(t) = msg {
            screen.apply(serde_json::from_str(t.as_str()).unwrap());
        }
    }
}

fn truth_board(s: &Server, race: RaceIdx, gender: Option<&str>, top: usize) -> Vec<(u32, String)> {
    let course = &s.race.course;
    let mut v: Vec<(u32, String)> = s
        .race
        .truth
        .iter()
        .filter(|t| {
            let p = course.participant(t.participant);
            p.race == race
                && p.division.as_str() == "running"
                && t.status == Status::Finished
                && gender.is_none_or(|g| p.gender.code() == g)
        })
        .map(|t| {
            let place = if gender.is_some() { t.places.gender } else { t.places.overall };
            (place.unwrap(), course.participant(t.participant).bib.as_str().to_string())
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.parse::<u32>().unwrap().cmp(&b.1.parse::<u32>().unwrap())));
    v.truncate(top);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spectators_follow_runners_leaderboards_and_arrivals_to_the_truth() {
    let s = server(vec![60, 40], LiveConfig { refresh: Duration::from_millis(200), ..LiveConfig::default() }).await;
    let course = &s.race.course;
    let finishers: Vec<String> = s
        .race
        .truth
        .iter()
        .filter(|t| t.status == Status::Finished && course.participant(t.participant).race == RaceIdx(0))
        .take(3)
        .map(|t| course.participant(t.participant).bib.as_str().to_string())
        .collect();
    assert_eq!(finishers.len(), 3);

    let mut ws = connect(s.addr).await;
    let mut screen = Screen::default();
    for bib in &finishers {
        subscribe(&mut ws, Topic::Runner { bib: bib.clone() }).await;
    }
    let overall = Topic::Leaderboard { race: "marathon".into(), gender: None, category: None, division: None, top: 10 };
    let women = Topic::Leaderboard {
        race: "marathon".into(),
        gender: Some("F".into()),
        category: None,
        division: None,
        top: 10,
    };
    subscribe(&mut ws, overall).await;
    subscribe(&mut ws, women).await;
    subscribe(&mut ws, Topic::Arrivals { point: "finish".into() }).await;
    // A topic that does not exist is refused with a message; the connection stays.
    subscribe(&mut ws, Topic::Runner { bib: "no-such-bib".into() }).await;
    read_until(&mut ws, &mut screen, Duration::from_secs(10), |sc| sc.n_snapshots == 6 && sc.errors.len() == 1).await;
    assert!(screen.errors[0].contains("no runner with bib"), "{:?}", screen.errors);
    assert!(screen.runners.values().all(|r| r.status == "not_started" && r.splits.iter().all(|s| s.at_us.is_none())));

    s.upload_all(40).await;
    s.settle().await;

    let n_finishers = s.race.truth.iter().filter(|t| t.status == Status::Finished).count();
    let expected_overall = truth_board(&s, RaceIdx(0), None, 10);
    let expected_women = truth_board(&s, RaceIdx(0), Some("F"), 10);
    let board_bibs = |sc: &Screen, t: &Topic| -> Vec<(u32, String)> {
        sc.boards.get(&board_name(t)).map(|b| b.iter().map(|r| (r.place, r.bib.clone())).collect()).unwrap_or_default()
    };
    let overall_key = Topic::Leaderboard {
        race: "marathon".into(),
        gender: None,
        category: None,
        division: Some("running".into()),
        top: 10,
    };
    let women_key = Topic::Leaderboard {
        race: "marathon".into(),
        gender: Some("F".into()),
        category: None,
        division: Some("running".into()),
        top: 10,
    };
    // Places of runners already home move as later waves finish ahead of them: the page gets
    // them at the next refresh.
    let settled = |sc: &Screen, bib: &str| {
        let t = s.bib_truth(bib);
        sc.runners.get(bib).is_some_and(|r| {
            r.status == "finished"
                && (r.places.overall, r.places.gender, r.places.category)
                    == (t.places.overall, t.places.gender, t.places.category)
        })
    };
    read_until(&mut ws, &mut screen, Duration::from_secs(20), |sc| {
        sc.arrived("finish") == n_finishers
            && board_bibs(sc, &overall_key) == expected_overall
            && board_bibs(sc, &women_key) == expected_women
            && finishers.iter().all(|b| settled(sc, b))
    })
    .await;
    assert!(screen.n_deltas > 20, "the page was updated by deltas, not reloads: {}", screen.n_deltas);

    // Every followed runner's page equals the truth, time for time and place for place.
    for bib in &finishers {
        let t = s.bib_truth(bib);
        let r = &screen.runners[bib];
        let text = |e: Option<timing_core::Elapsed>| e.map(|e| results_export::format_time(e, Precision::Seconds));
        assert_eq!(r.gun_time.as_ref().map(|t| t.text.clone()), text(t.gun_time), "bib {bib} gun time");
        assert_eq!(r.chip_time.as_ref().map(|t| t.text.clone()), text(t.chip_time), "bib {bib} chip time");
        assert_eq!(r.places.overall, t.places.overall, "bib {bib} place");
        assert_eq!(r.places.gender, t.places.gender, "bib {bib} gender place");
        assert_eq!(r.places.category, t.places.category, "bib {bib} category place");
        let start = course.race(RaceIdx(0)).start_split();
        for (i, split) in r.splits.iter().enumerate().filter(|(i, _)| Some(*i) != start) {
            assert_eq!(
                split.chip.as_ref().map(|t| t.text.clone()),
                text(t.splits[i]),
                "bib {bib} split {}",
                split.point
            );
        }
        assert!(r.prediction.is_none(), "a finished runner has no prediction");
        assert_eq!(r.distance_m, 42_195);
        // The REST view says the same.
        let rest: RunnerView = s.get(&format!("/api/v1/runners/{bib}")).await;
        assert_eq!(&rest, r);
    }
    // The page's leaderboards are the REST leaderboards.
    let rest: timing_wire::live::BoardView = s.get("/api/v1/leaderboards/marathon?top=10").await;
    assert_eq!(rest.rows.iter().map(|r| (r.place, r.bib.clone())).collect::<Vec<_>>(), expected_overall);
    assert_eq!(board_bibs(&screen, &overall_key), expected_overall);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaderboard_goes_out_at_most_once_an_interval_and_a_new_subscriber_brings_it_up_to_date() {
    // An interval no test lasts: the first change goes out at once, every later one waits.
    let config = LiveConfig { board_every: Duration::from_secs(600), ..LiveConfig::default() };
    let s = server(vec![60, 40], config).await;
    let overall = Topic::Leaderboard { race: "marathon".into(), gender: None, category: None, division: None, top: 10 };
    let key = Topic::Leaderboard {
        race: "marathon".into(),
        gender: None,
        category: None,
        division: Some("running".into()),
        top: 10,
    };
    let bibs = |sc: &Screen| -> Vec<(u32, String)> {
        sc.boards
            .get(&board_name(&key))
            .map(|b| b.iter().map(|r| (r.place, r.bib.clone())).collect())
            .unwrap_or_default()
    };
    let mut early = connect(s.addr).await;
    let mut seen = Screen::default();
    subscribe(&mut early, overall.clone()).await;
    read_until(&mut early, &mut seen, Duration::from_secs(10), |sc| sc.n_snapshots == 1).await;

    // The finishers come in over many small batches, each changing the head of the board.
    s.upload_all(10).await;
    s.settle().await;
    let expected = truth_board(&s, RaceIdx(0), None, 10);
    read_until(&mut early, &mut seen, Duration::from_secs(10), |sc| sc.n_deltas == 1).await;

    // A newcomer's snapshot is the board as it stands; the change waiting for the interval goes
    // to the early subscriber first, or it would stay behind until the interval passed.
    let mut late = connect(s.addr).await;
    let mut fresh = Screen::default();
    subscribe(&mut late, overall).await;
    read_until(&mut late, &mut fresh, Duration::from_secs(10), |sc| sc.n_snapshots == 1).await;
    assert_eq!(bibs(&fresh), expected, "the newcomer's snapshot");
    read_until(&mut early, &mut seen, Duration::from_secs(10), |sc| bibs(sc) == expected).await;
    assert_eq!(seen.n_deltas, 2, "every change after the first was merged into one delta");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finish_arrival_shown_before_its_start_passing_came_in_gets_the_right_chip_time() {
    let s = server(vec![30, 20], LiveConfig::default()).await;
    let mut ws = connect(s.addr).await;
    let mut screen = Screen::default();
    subscribe(&mut ws, Topic::Arrivals { point: "finish".into() }).await;
    read_until(&mut ws, &mut screen, Duration::from_secs(10), |sc| sc.n_snapshots == 1).await;

    // The finish edge uploads first: until the start edge catches up, chip times run from the
    // gun. Then everything else.
    let (finish, others): (Vec<_>, Vec<_>) = s.race.reads().into_iter().partition(|r| r.point.as_str() == "finish");
    s.upload(&finish, 40).await;
    s.upload(&others, 40).await;
    s.settle().await;

    let course = &s.race.course;
    let want: BTreeMap<String, String> = s
        .race
        .truth
        .iter()
        .filter_map(|t| {
            let chip = results_export::format_time(t.chip_time?, Precision::Seconds);
            Some((course.participant(t.participant).bib.as_str().to_string(), chip))
        })
        .collect();
    let shown = |sc: &Screen| -> BTreeMap<String, String> {
        sc.arrivals
            .get("finish")
            .map(|a| {
                a.iter().map(|a| (a.bib.clone(), a.chip.as_ref().map_or(String::new(), |c| c.text.clone()))).collect()
            })
            .unwrap_or_default()
    };
    read_until(&mut ws, &mut screen, Duration::from_secs(20), |sc| shown(sc) == want).await;
    // A new subscriber's snapshot has them right too.
    let mut late = connect(s.addr).await;
    let mut fresh = Screen::default();
    subscribe(&mut late, Topic::Arrivals { point: "finish".into() }).await;
    read_until(&mut late, &mut fresh, Duration::from_secs(10), |sc| sc.n_snapshots == 1).await;
    let snapshot = shown(&fresh);
    assert_eq!(snapshot.len(), want.len().min(aggregator::live::ARRIVALS_KEPT));
    assert!(snapshot.iter().all(|(bib, chip)| want.get(bib) == Some(chip)), "{snapshot:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_spectator_holds_up_neither_the_engine_nor_other_spectators() {
    let config = LiveConfig {
        topic_capacity: 4,
        send_timeout: Duration::from_millis(500),
        refresh: Duration::from_millis(200),
        ..LiveConfig::default()
    };
    let s = server(vec![300, 200], config).await;
    let bibs: Vec<String> = s.race.course.participants.iter().take(60).map(|p| p.bib.as_str().to_string()).collect();

    // The stalled spectator: a tiny receive buffer, many topics, and it stops reading.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(s.addr).await.unwrap();
    let (mut stalled, _) = tokio_tungstenite::client_async(
        format!("ws://{}/api/v1/live", s.addr),
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
    )
    .await
    .unwrap();
    for bib in &bibs {
        subscribe(&mut stalled, Topic::Runner { bib: bib.clone() }).await;
    }
    for point in ["start", "km7", "km21", "km35", "finish"] {
        subscribe(&mut stalled, Topic::Arrivals { point: point.into() }).await;
    }

    let mut fast = connect(s.addr).await;
    let mut screen = Screen::default();
    subscribe(&mut fast, Topic::Arrivals { point: "finish".into() }).await;
    read_until(&mut fast, &mut screen, Duration::from_secs(10), |sc| sc.n_snapshots == 1).await;

    // Every upload is accepted and applied while one spectator reads nothing and another reads along.
    let n_finishers = s.race.truth.iter().filter(|t| t.status == Status::Finished).count();
    let reader = tokio::spawn(async move {
        read_until(&mut fast, &mut screen, Duration::from_secs(60), |sc| sc.arrived("finish") == n_finishers).await;
        screen
    });
    s.upload_all(25).await;
    s.settle().await;
    let screen = reader.await.unwrap();
    assert_eq!(screen.arrived("finish"), n_finishers);

    // The stalled one was resynced or dropped; either way what it ends up with is right or gone.
    let mut late = Screen::default();
    let mut closed = false;
    loop {
        match tokio::time::timeout(Duration::from_secs(3), stalled.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => late.apply(serde_json::from_str(t.as_str()).unwrap()),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                closed = true;
                break;
            }
            Ok(Some(Ok(_))) => {}
            // Quiet: it has everything the server holds for it.
            Err(_) => break,
        }
    }
    let metrics = s.metrics().await;
    let value = |name: &str| -> u64 {
        metrics.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok()).unwrap_or(0)
    };
    eprintln!(
        "stalled spectator: resyncs {}, dropped {}",
        value("racetime_live_resyncs_total"),
        value("racetime_live_dropped_slow_total")
    );
    if closed {
        assert!(value("racetime_live_dropped_slow_total") >= 1, "closed without being counted as too slow");
    } else {
        // Resynced: its last view of every runner is the current one.
        for bib in &bibs {
            let rest: RunnerView = s.get(&format!("/api/v1/runners/{bib}")).await;
            assert_eq!(late.runners.get(bib), Some(&rest), "bib {bib} after resync");
        }
    }
}

async fn close_code(ws: &mut Ws) -> Option<CloseCode> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("the server never closed") {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_floods_and_crowds_are_turned_away() {
    let s = server(vec![5, 5], LiveConfig { max_per_ip: 3, ..LiveConfig::default() }).await;

    let mut garbage = connect(s.addr).await;
    garbage.send(Message::text("hello")).await.unwrap();
    assert_eq!(close_code(&mut garbage).await, Some(CloseCode::Unsupported));

    let mut binary = connect(s.addr).await;
    binary.send(Message::binary(vec![0u8, 1, 2])).await.unwrap();
    assert_eq!(close_code(&mut binary).await, Some(CloseCode::Unsupported));

    let mut old = connect(s.addr).await;
    let m = r#"{"op":"subscribe","v":99,"topic":{"kind":"arrivals","point":"finish"}}"#;
    old.send(Message::text(m)).await.unwrap();
    assert_eq!(close_code(&mut old).await, Some(CloseCode::Unsupported));

    let mut flood = connect(s.addr).await;
    for _ in 0..300 {
        if flood.send(Message::text(r#"{"op":"unsubscribe","v":1,"topic":{"kind":"runner","bib":"1"}}"#)).await.is_err()
        {
            break;
        }
    }
    assert_eq!(close_code(&mut flood).await, Some(CloseCode::Policy));

    // Three connections from one address are allowed; the fourth is refused before the upgrade.
    s.wait_metric("racetime_live_clients", 0).await;
    let _a = connect(s.addr).await;
    let _b = connect(s.addr).await;
    let _c = connect(s.addr).await;
    match tokio_tungstenite::connect_async(format!("ws://{}/api/v1/live", s.addr)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 429),
        other => panic!("a fourth connection from one address was not refused: {other:?}"),
    }
    s.wait_metric("racetime_live_clients", 3).await;
    let metrics = s.metrics().await;
    for line in
        ["racetime_live_closed_garbage_total 3", "racetime_live_closed_flood_total 1", "racetime_live_refused_total 1"]
    {
        assert!(metrics.lines().any(|l| l == line), "missing {line:?} in\n{metrics}");
    }
}
