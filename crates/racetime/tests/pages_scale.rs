//! The spectator page on a phone with a Paris-size event: 40,048 runners (the Marathon Pour Tous
//! and the 10 km, every race ranked so leaderboards are live), opened in headless Chromium (see
//! `support/browser.rs`; without a browser the test is skipped) against a `racetime aggregator`
//! process holding the race up to a moment when the 10 km is over and the marathon is on the
//! course (every read before then uploaded as the edges would after an outage).
//!
//! It checks what makes the page usable at that size, none of it by timing: every figure it
//! shows equals the race generator's truth, a search answers a page of hits rather than
//! everyone, the page holds a few thousand elements rather than one per runner, and what it
//! downloads and receives over the live feed is bounded by what it shows, not by the event.
//! The times the page took are printed, not asserted (figures belong in benchmarks).
//! Seeded: `SIM_SEED=<n>` replays a run; the seed is printed.

#[path = "support/browser.rs"]
mod browser;
#[path = "support/truth.rs"]
mod truth;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use browser::{Browser, DEADLINE, Device};
use race_sim::Truth;
use racetime::loadtest::{edge_tokens, ranked_event, spawn_aggregator, upload_backlog, wait_applied};
use serde_json::{Value, json};
use timing_core::{Elapsed, Read, Status};
use truth::{bib, finish_at, race_id, repo, split_at, text};

/// What the page may hold and fetch, whatever the size of the event: elements in the document,
/// bytes downloaded over HTTP (the page, its scripts and styles, API answers), and characters
/// received over the live feed. Three to four times what the page needs here (printed).
const MAX_ELEMENTS: u64 = 4_000;
const MAX_HTTP_BYTES: u64 = 400_000;
const MAX_LIVE_CHARS: u64 = 60_000;

async fn type_into(b: &Browser, css: &str, keys: &str) {
    let e = b.wait_for_element(css, DEADLINE).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(keys).await.unwrap_or_else(|e| panic!("typing into {css}: {e}"));
}

async fn click(b: &Browser, css: &str) {
    let e = b.wait_for_element(css, DEADLINE).await.unwrap();
    e.click().await.unwrap_or_else(|e| panic!("clicking {css}: {e}"));
}

/// A split on a runner's card: `{at, chip}` or null.
fn card_split(bib: &str, point: &str) -> String {
    format!(
        "(() => {{ const card = document.querySelector('article.runner[data-bib=\"{bib}\"]');
             if (!card || card.dataset.status === 'loading') return null;
             const tr = card.querySelector('tr[data-point=\"{point}\"]');
             return tr ? {{ status: card.dataset.status, chip: tr.querySelector('td.chip').textContent }} : null; }})()"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spectator_page_on_a_phone_stays_small_with_40_000_runners_and_shows_the_truth() {
    let Some(paths) = browser::from_env("the spectator page scale test") else { return };
    let seed: u64 = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(40_048);
    println!("seed {seed} (SIM_SEED={seed} replays this run)");
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let event_dir = out.join("event");
    let event = ranked_event(&repo().join("config/paris-2024"), &event_dir).unwrap();
    let mut scenario = race_sim::Scenario::clean(seed, vec![20_024, 20_024]);
    scenario.hits = (1, 1); // one read per crossing: the page's load, not the engine's
    let race = race_sim::generate(&event, &scenario);
    racetime::generate::write_race(&race, &out.join("race")).unwrap();
    println!("race generated and written after {:?}", t0.elapsed());
    let course = &race.course;
    assert_eq!(course.participants.len(), 40_048);

    // The moment the phone opens the page: a minute after the last 10 km finisher.
    let last_10k =
        race.truth.iter().filter(|t| race_id(&race, t) == "10k").filter_map(|t| finish_at(&race, t)).max().unwrap();
    let cut = last_10k + Elapsed::from_secs(60);
    let wall_now_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros();
    // The aggregator's race clock stands at `cut` when it starts and runs at real speed.
    let race_clock = format!("{}@{}x1", cut.as_micros(), wall_now_us);
    let (edges, envs) = edge_tokens(&event_dir, &event).unwrap();
    let (_agg, url) = spawn_aggregator(
        PathBuf::from(env!("CARGO_BIN_EXE_racetime")).as_path(),
        &event_dir,
        out,
        &race_clock,
        &envs,
        &[],
    )
    .unwrap();
    let mut backlog: BTreeMap<String, Vec<Read>> = BTreeMap::new();
    let mut n_reads = 0u64;
    for r in race.reads().into_iter().filter(|r| r.at <= cut) {
        n_reads += 1;
        backlog.entry(r.point.to_string()).or_default().push(r);
    }
    let http = reqwest::Client::new();
    upload_backlog(&http, &url, &edges, backlog).await.unwrap();
    println!("{n_reads} reads up to the cut uploaded after {:?}", t0.elapsed());
    wait_applied(&http, &url, n_reads, Duration::from_secs(600)).await.unwrap();
    println!("{n_reads} reads up to the cut applied by the aggregator after {:?}", t0.elapsed());

    // The runners followed: the 10 km's median finisher, and a marathon runner on the course
    // whose latest split is as far as the truth has them at the cut.
    let mut finishers_10k: Vec<&Truth> =
        race.truth.iter().filter(|t| t.status == Status::Finished && race_id(&race, t) == "10k").collect();
    finishers_10k.sort_by_key(|t| finish_at(&race, t));
    let ten_k = finishers_10k[finishers_10k.len() / 2];
    let marathon_splits = &course.race(timing_core::RaceIdx(0)).splits;
    let on_course = race
        .truth
        .iter()
        .filter(|t| race_id(&race, t) == "marathon" && finish_at(&race, t).is_some_and(|f| f > cut))
        .filter_map(|t| {
            let last = (0..marathon_splits.len()).rev().find(|&i| split_at(t, i).is_some_and(|at| at <= cut))?;
            (last >= 4).then_some((t, last))
        })
        .nth(seed as usize % 100)
        .expect("a marathon runner past km 15 at the cut");
    let (marathoner, last_split) = on_course;
    let last_point = course.point(marathon_splits[last_split].point).id.to_string();

    let phone = Browser::launch(&paths, Device::Phone).await.unwrap();
    let t_open = Instant::now();
    phone.goto(&format!("{url}/")).await.unwrap();
    phone.wait_until("the page ready", DEADLINE, "return document.body.dataset.ready === 'true';").await.unwrap();
    let ready = t_open.elapsed();

    // A common first name: the server answers a page of hits, never everyone.
    let mut names: HashMap<String, usize> = HashMap::new();
    for p in &course.participants {
        *names.entry(aggregator::api::fold(&p.first_name)).or_default() += 1;
    }
    let (common, n_common) = names.into_iter().max_by_key(|(n, k)| (*k, n.clone())).unwrap();
    assert!(n_common > 20, "{common} is shared by {n_common} runners");
    type_into(&phone, "#search", &common).await;
    let hits = phone
        .wait_until(
            "hits for a common first name",
            DEADLINE,
            "const n = document.querySelectorAll('#search-results li').length; return n > 0 ? n : null;",
        )
        .await
        .unwrap();
    assert!(hits.as_u64().unwrap() <= 20, "{n_common} runners are called {common}: the page lists {hits}");

    // Follow both runners by bib.
    for t in [ten_k, marathoner] {
        let b = bib(&race, t);
        type_into(&phone, "#search", &b).await;
        click(&phone, &format!("#search-results button[data-follow=\"{b}\"]")).await;
    }
    let t_cards = Instant::now();
    let want_10k = text(ten_k.chip_time.unwrap());
    let got = phone
        .wait_until(
            "the 10 km runner's finish on their card",
            DEADLINE,
            &format!(
                "const s = {}; return s && s.chip === '{want_10k}' ? s : null;",
                card_split(&bib(&race, ten_k), "finish")
            ),
        )
        .await
        .unwrap();
    assert_eq!(got["status"], "finished", "{got}");
    let want_last = text(marathoner.splits[last_split].unwrap());
    let got = phone
        .wait_until(
            "the marathon runner's latest split on their card",
            DEADLINE,
            &format!(
                "const s = {}; const f = {};
                 return s && s.chip === '{want_last}' && f ? [s, f] : null;",
                card_split(&bib(&race, marathoner), &last_point),
                card_split(&bib(&race, marathoner), "finish"),
            ),
        )
        .await
        .unwrap();
    assert_eq!(got[0]["status"], "running", "{got}");
    assert_eq!(got[1]["chip"], "—", "not finished at the cut: {got}");
    let cards = t_cards.elapsed();

    // The 10 km leaderboard: the truth's top 10 with their gun times (the race ranks on gun time).
    phone.wait_for_element("#board-race", DEADLINE).await.unwrap().select_by_value("10k").await.unwrap();
    let mut top: Vec<&Truth> = race
        .truth
        .iter()
        .filter(|t| race_id(&race, t) == "10k" && t.places.overall.is_some_and(|p| p <= 10))
        .filter(|t| course.participant(t.participant).division.as_str() == "running")
        .collect();
    top.sort_by_key(|t| t.places.overall);
    let want: Vec<Value> =
        top.iter().map(|t| json!([bib(&race, t), t.places.overall.unwrap(), text(t.gun_time.unwrap())])).collect();
    let t_board = Instant::now();
    const ROWS: &str = "return [...document.querySelectorAll('#board-rows tr')].map(tr =>
        [tr.dataset.bib, Number(tr.dataset.place), tr.querySelector('td.time').textContent]);";
    let want = Value::Array(want);
    let shown = phone
        .wait_until(
            "the 10 km top 10",
            DEADLINE,
            &format!("const rows = (() => {{ {ROWS} }})(); return JSON.stringify(rows) === JSON.stringify({want});"),
        )
        .await;
    if let Err(e) = shown {
        panic!("{e}\nthe board: {}\nthe truth: {want}", phone.js(ROWS).await.unwrap());
    }
    let board = t_board.elapsed();

    // The pictures count every 10 km finisher.
    let n_10k = finishers_10k.len();
    phone.js("document.dispatchEvent(new Event('visibilitychange'));").await.unwrap();
    phone
        .wait_until(
            "the 10 km pictures with every finisher",
            Duration::from_secs(40),
            &format!(
                "const a = document.querySelector('article.race-charts[data-race=\"10k\"]');
                 return a && a.dataset.finished === '{n_10k}';"
            ),
        )
        .await
        .unwrap();

    // What the page holds and what it cost.
    let cost = phone
        .js("const res = performance.getEntriesByType('resource');
             const nav = performance.getEntriesByType('navigation')[0];
             return { elements: document.getElementsByTagName('*').length,
                      http_bytes: res.reduce((a, e) => a + e.transferSize, 0) + (nav ? nav.transferSize : 0),
                      requests: res.length,
                      urls: res.map(e => new URL(e.name).pathname + new URL(e.name).search),
                      live_chars: window.racetimeFeed.nChars, live_messages: window.racetimeFeed.nMessages };")
        .await
        .unwrap();
    println!(
        "page ready in {ready:?}, both cards in {cards:?}, the 10 km board in {board:?}; \
         {} elements, {} requests, {} bytes over HTTP, {} characters in {} live messages",
        cost["elements"], cost["requests"], cost["http_bytes"], cost["live_chars"], cost["live_messages"]
    );
    let n = |k: &str| cost[k].as_u64().unwrap_or_else(|| panic!("{k}: {cost}"));
    assert!(n("elements") < MAX_ELEMENTS, "{cost}");
    assert!(n("http_bytes") > 0 && n("http_bytes") < MAX_HTTP_BYTES, "{cost}");
    assert!(n("live_chars") > 0 && n("live_chars") < MAX_LIVE_CHARS, "{cost}");
    for url in cost["urls"].as_array().unwrap().iter().map(|u| u.as_str().unwrap()) {
        assert!(!url.contains("standings"), "no whole list is fetched: {url}");
        assert!(!url.starts_with("/api/v1/participants") || url.contains("q="), "{url}");
    }
    phone.close().await.unwrap();
    println!("the scale test took {:?}", t0.elapsed());
}
