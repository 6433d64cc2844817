//! The web pages in a real browser (headless Chromium through chromedriver; see
//! `support/browser.rs` for the environment variables; without them these tests are skipped).
//!
//! The fleet page against a whole live setup (`racetime::chain`): emulated decoders, one
//! `racetime edge` process per timing point of the demo event and a `racetime aggregator`
//! process, with a race playing. One edge is killed (it must turn silent), the km-7 decoder's
//! clock runs 3.2 s fast (its offset is shown and raises an alarm), and reads/s change as the
//! runners pass (the sparklines draw). Screenshots at phone and laptop size go to the directory
//! `RACETIME_SCREENSHOTS` names (`docs/screenshots` to refresh the README's), else the temp dir.

#[path = "support/browser.rs"]
mod browser;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use browser::{Browser, DEADLINE, Device};
use firmware_sim::player::Progress;
use racetime::chain::{Chain, ChainOptions};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Race time per wall second: the marathon's corrals cross the start in the first 25 s and its
/// leaders reach km 7 after about 20 s, so reads/s keep changing while the page watches.
const SPEED: f64 = 60.0;

/// `[[x, y], ...]` of a sparkline's path (`M x y L x y ...`).
fn path_points(d: &str) -> Vec<(f64, f64)> {
    d.split(['M', 'L'])
        .filter(|s| !s.trim().is_empty())
        .map(|p| {
            let mut xy = p.split_whitespace().map(|n| n.parse::<f64>().unwrap());
            (xy.next().unwrap(), xy.next().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_page_shows_every_edge_its_readers_clock_offsets_alarms_silence_and_reads_per_second() {
    let Some(paths) = browser::from_env("the fleet page test") else { return };
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let event_text = std::fs::read_to_string(repo().join("config/demo/event.toml")).unwrap();
    let event = event_config::parse_event("demo", &event_text).unwrap();
    let race = race_sim::generate(&event, &race_sim::Scenario::clean(5, vec![120, 60]));
    let options = ChainOptions {
        event_dir: repo().join("config/demo"),
        work_dir: dir.path().join("chain"),
        exe: PathBuf::from(env!("CARGO_BIN_EXE_racetime")),
        repo: repo(),
        listen: "127.0.0.1:0".into(),
        desk_guns: Vec::new(),
    };
    let chain = Arc::new(Chain::start(&options, race).await.unwrap());
    let edge_ids: Vec<String> = chain
        .edges
        .iter()
        .map(|(_, file, _)| {
            event_config::parse_edge("edge", &std::fs::read_to_string(file).unwrap(), &chain.event).unwrap().id
        })
        .collect();
    assert_eq!(edge_ids.len(), 5, "the demo event has five edges");
    // The km-35 edge dies before the race: the page must call it silent.
    chain.stop_edge(chain.edge_index("km35").unwrap(), "KILL").unwrap();
    let progress = Arc::new(Progress::default());
    let play = tokio::spawn({
        let (chain, progress) = (chain.clone(), progress.clone());
        async move { chain.play(Some(SPEED), &progress).await }
    });
    println!("chain up in {:?}", t0.elapsed());

    // A laptop and a phone watch the page from the start (each keeps its own reads/s history).
    let url = format!("{}/fleet", chain.agg_url);
    let (browser, phone) =
        tokio::join!(Browser::launch(&paths, Device::Laptop), Browser::launch(&paths, Device::Phone));
    let (browser, phone) = (browser.unwrap(), phone.unwrap());
    browser.goto(&url).await.unwrap();
    phone.goto(&url).await.unwrap();

    // Every edge of the event has a card, named.
    let listed = browser
        .wait_until(
            "a card for every edge",
            DEADLINE,
            &format!(
                "const cards = [...document.querySelectorAll('article.edge')];
                 return cards.length === {} ? cards.map(c => [c.dataset.edge, c.querySelector('h3').textContent]) : null;",
                edge_ids.len()
            ),
        )
        .await
        .unwrap();
    let mut listed: Vec<(String, String)> = serde_json::from_value(listed).unwrap();
    listed.sort();
    let mut want: Vec<(String, String)> = edge_ids.iter().map(|id| (id.clone(), id.clone())).collect();
    want.sort();
    assert_eq!(listed, want);

    // The km-7 decoder: connected, and its clock 3.2 s fast, measured by the edge.
    let km7 = browser
        .wait_until(
            "the km-7 decoder's clock offset",
            Duration::from_secs(40),
            "const row = document.querySelector('article[data-edge=\"km7\"] tr[data-reader=\"km7-main\"]');
             if (!row) return null;
             const offset = row.querySelector('.offset').textContent;
             return offset === '—' ? null : { state: row.querySelector('.state').textContent.trim(), offset };",
        )
        .await
        .unwrap();
    assert!(km7["state"].as_str().unwrap().contains("Connected"), "{km7}");
    assert_eq!(km7["offset"], "+3.200 s", "{km7}");
    // Every reader of the live edges comes up connected, in words.
    let states = browser
        .wait_until(
            "every reader of the live edges connected",
            DEADLINE,
            "const states = [...document.querySelectorAll('article.edge:not([data-edge=km35]) tr[data-reader] .state')]
                 .map(td => td.textContent.trim());
             return states.every(s => s === '✔ Connected') ? states : null;",
        )
        .await
        .unwrap();
    assert_eq!(states.as_array().unwrap().len(), 7, "the live edges have seven readers: {states}");

    // The clock alarm, listed at the top with its edge and reader, highlighted and worded.
    let alarm = browser
        .wait_until(
            "the km-7 clock alarm in the alarm list",
            DEADLINE,
            "const li = [...document.querySelectorAll('#alarm-list li.alarm[data-edge=\"km7\"]')]
                 .find(li => li.textContent.includes('km7-main') && li.textContent.includes('clock offset'));
             return li ? { text: li.textContent, border: getComputedStyle(li).borderLeftColor,
                           live: li.parentElement.getAttribute('aria-live'),
                           card: document.querySelector('article[data-edge=\"km7\"]').dataset.state } : null;",
        )
        .await
        .unwrap();
    assert!(
        alarm["text"].as_str().unwrap().starts_with("⚠ Alarm: km7 — reader km7-main: clock offset +3.200 s"),
        "{alarm}"
    );
    assert_eq!(alarm["border"], "rgb(176, 0, 32)", "highlighted in the alarm red: {alarm}");
    assert_eq!(alarm["live"], "polite");
    assert_eq!(alarm["card"], "alarm");

    // Reads/s change as the runners pass: a sparkline draws a line that goes up or down (four
    // samples or more, so the screenshots show a line, not a dash).
    let spark = browser
        .wait_until(
            "a sparkline with changing reads/s",
            Duration::from_secs(60),
            "for (const path of document.querySelectorAll('svg.spark path.line')) {
                 const points = path.getAttribute('d').split(/[ML]/).filter(s => s.trim());
                 const ys = new Set(points.map(p => p.trim().split(' ')[1]));
                 if (points.length >= 4 && ys.size >= 2) {
                     const row = path.closest('tr');
                     return { edge: row.closest('article').dataset.edge, reader: row.dataset.reader,
                              d: path.getAttribute('d'), label: path.closest('svg').getAttribute('aria-label') };
                 }
             }
             return null;",
        )
        .await
        .unwrap();
    let points = path_points(spark["d"].as_str().unwrap());
    assert!(points.len() >= 4, "{spark}");
    assert!(points.windows(2).all(|w| w[0].0 < w[1].0), "time runs left to right: {spark}");
    assert!(points.iter().all(|&(x, y)| (0.0..=120.0).contains(&x) && (0.0..=24.0).contains(&y)), "{spark}");
    assert!(spark["label"].as_str().unwrap().starts_with("Reads per second over the last 2 minutes: now "), "{spark}");
    println!("sparkline of {}/{}: {}", spark["edge"], spark["reader"], spark["d"]);

    // The killed edge turns silent, in words and in the alarm list.
    let silent = browser
        .wait_until(
            "the killed km-35 edge shown silent",
            Duration::from_secs(40),
            "const card = document.querySelector('article[data-edge=\"km35\"]');
             const li = document.querySelector('#alarm-list li.alarm[data-edge=\"km35\"]');
             return card.dataset.state === 'silent' && li
                 ? { badge: card.querySelector('header .badge').textContent, alarm: li.textContent } : null;",
        )
        .await
        .unwrap();
    assert!(silent["badge"].as_str().unwrap().starts_with("✖ Silent for "), "{silent}");
    assert!(silent["alarm"].as_str().unwrap().contains("km35 — edge silent: no report for over 10 s"), "{silent}");

    // Laptop: readers as a table with its header row; no sideways scrolling.
    let layout = "return { thead: getComputedStyle(document.querySelector('table.readers thead')).display,
                           overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth };";
    let laptop = browser.js(layout).await.unwrap();
    assert_eq!(laptop, serde_json::json!({ "thead": "table-header-group", "overflow": 0 }));
    let shots = browser::screenshot_dir(&repo(), dir.path());
    browser.screenshot(&shots.join("fleet.png")).await.unwrap();

    // Phone: the same page as stacked cards, each value labelled; still no sideways scrolling.
    let on_phone = phone
        .wait_until(
            "the phone's page with its sparklines and the silent edge",
            DEADLINE,
            &format!(
                "const l = (() => {{ {layout} }})();
                 const drawn = document.querySelectorAll('svg.spark path.line').length;
                 const silent = document.querySelector('article[data-edge=\"km35\"]').dataset.state === 'silent';
                 return drawn && silent ? {{ ...l, width: window.innerWidth }} : null;"
            ),
        )
        .await
        .unwrap();
    assert_eq!(on_phone, serde_json::json!({ "thead": "none", "overflow": 0, "width": 390 }));
    let label = phone
        .js("return getComputedStyle(document.querySelector('tr[data-reader] td.clock'), '::before').content;")
        .await
        .unwrap();
    assert_eq!(label, Value::String("\"Clock offset\"".into()));
    phone.screenshot(&shots.join("fleet-phone.png")).await.unwrap();
    phone.close().await.unwrap();

    browser.close().await.unwrap();
    play.abort();
    println!("the fleet page test took {:?}", t0.elapsed());
}

/// Starts `racetime aggregator` on the demo event with a token for every edge; returns it and
/// its URL.
fn start_aggregator(dir: &std::path::Path, token: impl Fn(&str) -> String) -> (racetime::chain::Proc, String) {
    use std::io::BufRead;
    let event_text = std::fs::read_to_string(repo().join("config/demo/event.toml")).unwrap();
    let event = event_config::parse_event("demo", &event_text).unwrap();
    let race = race_sim::generate(&event, &race_sim::Scenario::clean(1, vec![20, 10]));
    let participants = dir.join("participants.csv");
    std::fs::write(&participants, &race.participants_csv).unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_racetime"));
    command
        .args(["aggregator", "--event"])
        .arg(repo().join("config/demo"))
        .arg("--participants")
        .arg(&participants)
        .arg("--db")
        .arg(dir.join("aggregator.sqlite"))
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    for edge in ["start", "km7", "km21", "km35", "finish"] {
        command.env(format!("RACETIME_EDGE_TOKEN_{}", edge.to_uppercase()), token(edge));
    }
    let mut child = command.spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("aggregator listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (racetime::chain::Proc(child), url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_page_survives_telemetry_with_missing_and_mistyped_fields() {
    let Some(paths) = browser::from_env("the fleet page's missing-fields test") else { return };
    let dir = tempfile::tempdir().unwrap();
    let token = |edge: &str| format!("{edge}-token-for-the-page-tests");
    let (_aggregator, url) = start_aggregator(dir.path(), token);
    // Four edges report what an older, newer or broken edge might send; km35 never reports.
    let client = reqwest::Client::new();
    for (edge, status) in [
        ("finish", serde_json::json!({})),
        ("km21", serde_json::json!("not a status document")),
        (
            "km7",
            serde_json::json!({
                "readers": [
                    { "id": "km7-main", "connected": "yes", "reads_per_s": "fast", "per_antenna": [1, 2],
                      "clock_offset_ms": null, "last_read_us": "yesterday", "alarms": "none" },
                    { "no_id": true }, 5, null
                ],
                "alarms": ["reader km7-main: made-up trouble", 42],
                "devices": "none", "backlog": -1, "disk_free_bytes": "lots", "last_sync_us": []
            }),
        ),
        (
            "start",
            serde_json::json!({
                "readers": [{ "id": "start-main", "connected": false, "last_error": "connection refused" }],
                "devices": [{ "id": "start-battery", "battery_mv": 11900, "battery_soc": 15 }, { "kind": 3 }]
            }),
        ),
    ] {
        let body = serde_json::json!({ "v": 1, "edge": edge, "at_us": 1_723_320_000_000_000_i64, "status": status });
        let response =
            client.post(format!("{url}/api/v1/telemetry")).bearer_auth(token(edge)).json(&body).send().await.unwrap();
        assert!(response.status().is_success(), "{edge}: {}", response.text().await.unwrap());
    }

    let browser = Browser::launch(&paths, Device::Laptop).await.unwrap();
    browser.goto(&format!("{url}/fleet")).await.unwrap();
    // Two complete polls: the page rendered everything twice without throwing.
    let seen = browser
        .wait_until(
            "two complete polls",
            DEADLINE,
            "if (Number(document.body.dataset.polls || 0) < 2) return null;
             const card = (e) => document.querySelector(`article[data-edge=\"${e}\"]`);
             const alarms = [...document.querySelectorAll('#alarm-list li.alarm')].map(li => li.textContent);
             return {
                 error: document.getElementById('error').hidden ? null : document.getElementById('error').textContent,
                 cards: [...document.querySelectorAll('article.edge')].map(c => [c.dataset.edge, c.dataset.state]),
                 km35: card('km35').querySelector('header .badge').textContent,
                 km7_state: card('km7').querySelector('tr[data-reader=\"km7-main\"] .state').textContent.trim(),
                 km7_rows: card('km7').querySelectorAll('tr[data-reader]').length,
                 km21: card('km21').querySelector('p.muted').textContent,
                 facts: Object.fromEntries(['start', 'km7'].map(e => [e, Object.fromEntries(
                     [...card(e).querySelectorAll('.facts > div')].map(d => [d.querySelector('dt').textContent, d.querySelector('dd').textContent]))])),
                 alarms,
             };",
        )
        .await
        .unwrap();
    assert_eq!(seen["error"], Value::Null, "{seen}");
    assert_eq!(
        seen["cards"],
        serde_json::json!([["finish", "ok"], ["km21", "ok"], ["km35", "silent"], ["km7", "alarm"], ["start", "alarm"]]),
        "{seen}"
    );
    assert_eq!(seen["km35"], "✖ Silent: never reported");
    assert_eq!(seen["km7_state"], "? Unknown", "a connected state that is not a boolean is unknown");
    assert_eq!(seen["km7_rows"], 1, "entries without an id are left out");
    assert_eq!(seen["km21"], "No readers reported.");
    assert_eq!(seen["facts"]["start"]["Battery"], "11.9 V · 15 %", "{seen}");
    assert_eq!(seen["facts"]["km7"]["Backlog"], "—", "a negative count is not shown: {seen}");
    assert_eq!(seen["facts"]["km7"]["Disk free"], "—", "{seen}");
    let alarms: Vec<String> = serde_json::from_value(seen["alarms"].clone()).unwrap();
    assert_eq!(
        alarms,
        [
            "⚠ Alarm: km35 — edge silent: it has never reported",
            "⚠ Alarm: km7 — reader km7-main: made-up trouble",
            "⚠ Alarm: start — reader start-main not connected: connection refused",
        ]
    );
    browser.close().await.unwrap();
}
