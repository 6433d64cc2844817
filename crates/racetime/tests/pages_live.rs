//! The spectator page (`/`) and the results desk page (`/desk`) in a real browser (headless
//! Chromium through chromedriver; see `support/browser.rs` for the environment variables; without
//! them these tests are skipped) against a whole live setup (`racetime::chain`): emulated
//! decoders, one `racetime edge` process per timing point of the demo event and a
//! `racetime aggregator` process on a shared stepped race clock.
//!
//! The race is played in two parts, split where no runner crosses a mat for a while, so the
//! pages can be checked (and photographed) mid-race with the clock standing still, then again
//! after the finish. Every expected value comes from the race generator's truth or from the
//! aggregator's REST answers, never from the page itself.
//! Screenshots go to the directory `RACETIME_SCREENSHOTS` names (`docs/screenshots` to refresh
//! the README's), else the test's temp dir.

#[path = "support/browser.rs"]
mod browser;
#[path = "support/truth.rs"]
mod truth;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use browser::{Browser, DEADLINE, Device};
use fantoccini::Locator;
use firmware_sim::clock::FileClock;
use firmware_sim::player::{Progress, play};
use race_sim::{SimRace, Truth};
use racetime::chain::{Chain, ChainOptions};
use serde_json::{Value, json};
use timing_core::time::Clock;
use timing_core::{Elapsed, Status, Timestamp};
use truth::{bib, finish_at, race_id, repo, split_at, text};

async fn start_chain(dir: &std::path::Path, scenario: &race_sim::Scenario) -> Arc<Chain> {
    let event_text = std::fs::read_to_string(repo().join("config/demo/event.toml")).unwrap();
    let event = event_config::parse_event("demo", &event_text).unwrap();
    let race = race_sim::generate(&event, scenario);
    let options = ChainOptions {
        event_dir: repo().join("config/demo"),
        work_dir: dir.join("chain"),
        exe: PathBuf::from(env!("CARGO_BIN_EXE_racetime")),
        repo: repo(),
        listen: "127.0.0.1:0".into(),
        desk_guns: Vec::new(),
    };
    Arc::new(Chain::start(&options, race).await.unwrap())
}

/// The race in two parts at a quiet moment at or after `after`: no crossing starts within 30 s
/// before the first crossing of the second part. Returns the two parts and the instant the
/// clock is set to between them (20 s after the first part's last crossing began, so every
/// decoder has closed it).
fn split_race(race: &SimRace, after: Timestamp) -> (SimRace, SimRace, Timestamp) {
    let starts: Vec<Timestamp> = race.crossings.iter().map(|c| c.first_read).collect();
    let i = (1..starts.len())
        .find(|&i| starts[i] >= after && starts[i].since(starts[i - 1]) >= Elapsed::from_secs(30))
        .expect("a quiet half minute after the chosen instant");
    let pause = starts[i - 1] + Elapsed::from_secs(20);
    let mut first = race.clone();
    let mut second = race.clone();
    first.crossings.truncate(i);
    second.crossings.drain(..i);
    first.guns.retain(|(_, at)| *at < pause);
    second.guns.retain(|(_, at)| *at >= pause);
    (first, second, pause)
}

/// Plays `part` into the chain's emulators as fast as the machine allows, then moves the race
/// clock to `then`, and waits until the aggregator holds every read the decoders stored.
async fn play_part(chain: &Chain, part: &SimRace, then: Timestamp) {
    let clock = FileClock::open(&chain.clock_path).unwrap();
    play(part, &chain.routes, &clock, &Progress::default()).await;
    if then > clock.now() {
        clock.set(then);
    }
    chain.settle(Duration::from_secs(60)).await.unwrap();
}

/// Types `keys` into the element `css`.
async fn type_into(b: &Browser, css: &str, keys: &str) {
    let e = b.wait_for_element(css, DEADLINE).await.unwrap();
    e.send_keys(keys).await.unwrap_or_else(|e| panic!("typing into {css}: {e}"));
}

async fn click(b: &Browser, css: &str) {
    let e = b.wait_for_element(css, DEADLINE).await.unwrap();
    e.click().await.unwrap_or_else(|e| panic!("clicking {css}: {e}"));
}

async fn select(b: &Browser, css: &str, value: &str) {
    let e = b.wait_for_element(css, DEADLINE).await.unwrap();
    e.select_by_value(value).await.unwrap_or_else(|e| panic!("choosing {value} in {css}: {e}"));
}

/// The leaderboard rows the page shows: `[bib, place, move text, time]`.
const BOARD_ROWS: &str = "return [...document.querySelectorAll('#board-rows tr')].map(tr => [
        tr.dataset.bib, Number(tr.dataset.place), tr.querySelector('.move [aria-hidden]')?.textContent ?? '',
        tr.querySelector('td.time').textContent]);";

/// An instant as the desk shows it: local to the event (Europe/Paris), to the hundredth when
/// there is one.
fn local_text(us: i64) -> String {
    let local = chrono::DateTime::from_timestamp_micros(us).unwrap().with_timezone(&chrono_tz::Europe::Paris);
    let hundredths = us.rem_euclid(1_000_000) / 10_000;
    let text = local.format("%Y-%m-%d %H:%M:%S").to_string();
    if hundredths == 0 { text } else { format!("{text}.{hundredths:02}") }
}

/// How far the page scrolls sideways (0: it fits the screen).
const OVERFLOW: &str = "return document.documentElement.scrollWidth - document.documentElement.clientWidth;";

/// A runner's card as the test reads it.
fn card_script(bib: &str) -> String {
    format!(
        "const card = document.querySelector('article.runner[data-bib=\"{bib}\"]');
         if (!card || card.dataset.status === 'loading') return null;
         const split = (p) => {{ const tr = card.querySelector(`tr[data-point=\"${{p}}\"]`);
             return tr ? {{ at: tr.querySelector('td.at').textContent, chip: tr.querySelector('td.chip').textContent,
                           pace: tr.querySelector('td.pace').textContent }} : null; }};
         const place = (k) => card.querySelector(`dd[data-place=\"${{k}}\"]`)?.textContent ?? null;
         const dot = card.querySelector('svg.profile circle.runner');
         return {{ status: card.dataset.status, name: card.querySelector('h3').textContent,
                  badge: card.querySelector('header .badge').textContent,
                  km7: split('km7'), finish: split('finish'),
                  overall: place('overall'), gender: place('gender'), category: place('category'),
                  chip_time: card.querySelector('dd.chip-time')?.textContent ?? null,
                  prediction: card.querySelector('.prediction')?.textContent ?? null,
                  overdue: card.querySelector('.prediction')?.dataset.overdue ?? null,
                  dot: dot ? {{ at_m: Number(dot.dataset.atM), estimated: dot.classList.contains('estimated') }} : null,
                  profile: card.querySelector('svg.profile').getAttribute('aria-label'),
                  pace_bars: card.querySelectorAll('svg.pace rect.bar').length }};"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_at_an_edge_reaches_a_followed_runner_the_finish_feed_and_the_leaderboard_on_a_phone() {
    let Some(paths) = browser::from_env("the spectator page test") else { return };
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let chain = start_chain(dir.path(), &race_sim::Scenario::clean(21, vec![30, 30])).await;
    let race = &chain.race;
    let course = &race.course;
    println!("chain up in {:?}", t0.elapsed());

    // The runner: the 10 km finisher in the middle of the field.
    let mut finishers: Vec<&Truth> =
        race.truth.iter().filter(|t| t.status == Status::Finished && race_id(race, t) == "10k").collect();
    finishers.sort_by_key(|t| finish_at(race, t));
    let runner = finishers[finishers.len() / 2];
    let runner_bib = bib(race, runner);
    let person = course.participant(runner.participant);
    // Part of the name, typed without accents (the server ignores them).
    let fold = |s: &str| aggregator::api::fold(s);
    let typed = format!("{} {}", fold(&person.first_name), fold(&person.last_name).chars().take(4).collect::<String>());
    println!("following bib {runner_bib}, {} {}, typing {typed:?}", person.first_name, person.last_name);

    let phone = Browser::launch(&paths, Device::Phone).await.unwrap();
    let url = format!("{}/", chain.agg_url);
    phone.goto(&url).await.unwrap();
    phone.wait_until("the page ready", DEADLINE, "return document.body.dataset.ready === 'true';").await.unwrap();

    // Search by part of the name; follow from the hits.
    type_into(&phone, "#search", &typed).await;
    click(&phone, &format!("#search-results button[data-follow=\"{runner_bib}\"]")).await;
    let before = phone
        .wait_until("the followed runner's card, before the start", DEADLINE, &card_script(&runner_bib))
        .await
        .unwrap();
    assert_eq!(before["status"], "not_started", "{before}");
    assert_eq!(before["name"], format!("{} {}", person.first_name, person.last_name));
    // Remembered on this device: the card is back after a reload.
    phone.goto(&url).await.unwrap();
    phone.wait_until("the card after a reload", DEADLINE, &card_script(&runner_bib)).await.unwrap();
    select(&phone, "#board-race", "10k").await;

    // First part: until the runner is past km 7 and short of the finish.
    let km7_at = split_at(runner, 1).unwrap();
    let (first, second, pause) = split_race(race, km7_at + Elapsed::from_secs(240));
    assert!(pause < finish_at(race, runner).unwrap(), "the pause falls before the runner's finish");
    play_part(&chain, &first, pause).await;
    println!("first part played by {:?}", t0.elapsed());
    let km7_text = text(runner.splits[1].unwrap());
    let mid = phone
        .wait_until(
            "the runner's km-7 split on the card",
            DEADLINE,
            &format!(
                "const c = (() => {{ {} }})();
                 const now = Number(document.getElementById('live-state').dataset.nowUs);
                 return c && c.km7 && c.km7.chip === '{km7_text}' && c.dot && now >= {} ? c : null;",
                card_script(&runner_bib),
                pause.as_micros()
            ),
        )
        .await
        .unwrap();
    assert_eq!(mid["status"], "running", "{mid}");
    assert_eq!(mid["finish"]["chip"], "—", "{mid}");
    assert!(mid["km7"]["pace"].as_str().unwrap().contains(':'), "a pace per km: {mid}");
    let prediction = mid["prediction"].as_str().unwrap();
    // The next point is the finish: its predicted time, how long until then, the chip time.
    assert!(prediction.starts_with("Predicted finish "), "{mid}");
    assert!(prediction.contains(" min") && prediction.contains("chip time, at "), "{mid}");
    assert_eq!(mid["overdue"], "false", "{mid}");
    // The dot is between km 7 and the finish, estimated from the predicted time.
    let at_m = mid["dot"]["at_m"].as_f64().unwrap();
    assert!(mid["dot"]["estimated"] == true && (7000.0..10_000.0).contains(&at_m), "{mid}");
    // The race clock stands at the pause: where the truth's pace puts the runner, within 10 %.
    let (km7, finish) = (split_at(runner, 1).unwrap(), finish_at(race, runner).unwrap());
    let truth_m = 7000.0 + 3000.0 * pause.since(km7).as_micros() as f64 / finish.since(km7).as_micros() as f64;
    assert!((at_m - truth_m).abs() < 300.0, "the dot at {at_m} m, the runner at {truth_m:.0} m: {mid}");
    assert!(mid["profile"].as_str().unwrap().starts_with("Along the course: About "), "{mid}");
    assert!(mid["pace_bars"].as_u64().unwrap() >= 1, "{mid}");
    // Clear the search, so the picture shows the card.
    phone.js("const s = document.getElementById('search'); s.value = ''; s.dispatchEvent(new Event('input')); window.scrollTo(0, 0);").await.unwrap();
    phone
        .wait_until(
            "the hits cleared",
            DEADLINE,
            "return document.querySelectorAll('#search-results li').length === 0;",
        )
        .await
        .unwrap();
    assert_eq!(phone.js(OVERFLOW).await.unwrap(), 0, "no sideways scrolling on a phone");
    let shots = browser::screenshot_dir(&repo(), dir.path());
    phone.screenshot(&shots.join("spectator-phone.png")).await.unwrap();

    // The aggregator is killed and started again: the page sees the feed go, reconnects, and
    // subscribes again (the finish below comes only over the new connection).
    chain.stop_aggregator("KILL").unwrap();
    phone
        .wait_until(
            "the page telling the feed is gone",
            DEADLINE,
            "const s = document.getElementById('live-state'); return s.dataset.state === 'waiting' ? s.textContent : null;",
        )
        .await
        .unwrap();
    chain.start_aggregator().unwrap();
    let connects = phone
        .wait_until(
            "the page live again",
            DEADLINE,
            "return document.getElementById('live-state').dataset.state === 'open' ? Number(document.body.dataset.connects) : null;",
        )
        .await
        .unwrap();
    assert_eq!(connects, 2, "one reconnection");

    // Second part: the rest of the race.
    play_part(&chain, &second, second.crossings.last().unwrap().first_read + Elapsed::from_secs(60)).await;
    println!("second part played by {:?}", t0.elapsed());
    let finish_text = text(runner.chip_time.unwrap());
    let places = |p: Option<u32>| p.map_or(Value::Null, |p| Value::String(p.to_string()));
    let done = phone
        .wait_until(
            "the runner's finish and final places on the card",
            Duration::from_secs(30),
            &format!(
                "const c = (() => {{ {} }})();
                 return c && c.finish && c.finish.chip === '{finish_text}' && c.overall === {} && c.gender === {} ? c : null;",
                card_script(&runner_bib),
                places(runner.places.overall),
                places(runner.places.gender),
            ),
        )
        .await
        .unwrap();
    assert_eq!(done["status"], "finished", "{done}");
    assert_eq!(done["badge"], "✔ Finished");
    assert_eq!(done["chip_time"], finish_text);
    assert_eq!(done["category"], places(runner.places.category), "{done}");
    assert_eq!(done["prediction"], Value::Null, "no prediction once finished");

    // The finish feed: the 50 latest finishers, newest first, with the truth's chip times (ten
    // until all are asked for).
    let mut arrivals: Vec<(Timestamp, String, String)> = race
        .truth
        .iter()
        .filter(|t| t.chip_time.is_some())
        .map(|t| (finish_at(race, t).unwrap(), bib(race, t), text(t.chip_time.unwrap())))
        .collect();
    arrivals.sort_by_key(|a| std::cmp::Reverse(a.0));
    arrivals.truncate(50);
    phone
        .wait_until(
            "ten finishers listed",
            DEADLINE,
            "const n = document.querySelectorAll('#arrivals li').length; return n === 10 && !document.getElementById('arrivals-more').hidden;",
        )
        .await
        .unwrap();
    click(&phone, "#arrivals-more").await;
    let shown = phone
        .wait_until(
            "the finish feed",
            DEADLINE,
            &format!(
                "const items = [...document.querySelectorAll('#arrivals li')];
                 return items.length === {} ? items.map(li => [li.dataset.bib, li.querySelector('.chip').textContent]) : null;",
                arrivals.len()
            ),
        )
        .await
        .unwrap();
    let shown: Vec<(String, String)> = serde_json::from_value(shown).unwrap();
    let want: Vec<(String, String)> = arrivals.iter().map(|(_, b, c)| (b.clone(), c.clone())).collect();
    assert_eq!(shown, want, "the newest 50 finishers, newest first");

    // The 10 km leaderboard (the running division): the truth's podium, with their gun times (the
    // race ranks on gun time).
    let mut podium: Vec<&Truth> = race
        .truth
        .iter()
        .filter(|t| race_id(race, t) == "10k" && course.participant(t.participant).division.as_str() == "running")
        .filter(|t| t.places.overall.is_some_and(|p| p <= 3))
        .collect();
    podium.sort_by_key(|t| t.places.overall);
    let want: Vec<Value> =
        podium.iter().map(|t| json!([bib(race, t), t.places.overall.unwrap(), text(t.gun_time.unwrap())])).collect();
    let board = phone
        .wait_until(
            "the 10 km podium on the leaderboard",
            DEADLINE,
            &format!(
                "const rows = (() => {{ {BOARD_ROWS} }})().slice(0, 3).map(r => [r[0], r[1], r[3]]);
                 return JSON.stringify(rows) === JSON.stringify({}) ? rows : null;",
                Value::Array(want.clone())
            ),
        )
        .await
        .unwrap();
    assert_eq!(board, Value::Array(want));

    // The pictures: each race's finishers in words, the histogram drawn.
    let n_finished_10k =
        race.truth.iter().filter(|t| t.status == Status::Finished && race_id(race, t) == "10k").count();
    // The pictures refresh every 30 s, and at once when the page is shown again (as here).
    phone.js("document.dispatchEvent(new Event('visibilitychange'));").await.unwrap();
    let charts = phone
        .wait_until(
            "the 10 km pictures with every finisher",
            DEADLINE,
            &format!(
                "const a = document.querySelector('article.race-charts[data-race=\"10k\"]');
                 return a && a.dataset.finished === '{n_finished_10k}'
                     ? {{ bars: a.querySelectorAll('svg.histogram rect.bar').length,
                         label: a.querySelector('svg.histogram').getAttribute('aria-label'),
                         caption: a.querySelector('figure.per-minute figcaption').textContent }} : null;"
            ),
        )
        .await
        .unwrap();
    assert!(charts["bars"].as_u64().unwrap() >= 1, "{charts}");
    let label = charts["label"].as_str().unwrap();
    assert!(
        label.starts_with(&format!("Finish-time histogram of the 10 km Pour Tous: {n_finished_10k} finish times")),
        "{charts}"
    );
    let caption = charts["caption"].as_str().unwrap();
    assert!(caption.starts_with(&format!("Finishers per minute. {n_finished_10k} finishers from ")), "{charts}");

    // Never the whole list: every search asked for a query, and no standings were fetched.
    let fetched = phone
        .js("return performance.getEntriesByType('resource').map(e => new URL(e.name).pathname + new URL(e.name).search);")
        .await
        .unwrap();
    for url in fetched.as_array().unwrap().iter().map(|u| u.as_str().unwrap()) {
        assert!(!url.contains("standings"), "{url}");
        assert!(!url.starts_with("/api/v1/participants") || url.contains("q="), "{url}");
    }
    phone.close().await.unwrap();
    println!("the spectator page test took {:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dsq_at_the_desk_drops_the_leader_from_the_spectators_leaderboard_live_and_undo_restores_them() {
    let Some(paths) = browser::from_env("the desk page test") else { return };
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    // A race with trouble, so the desk has a review queue.
    let chain = start_chain(dir.path(), &race_sim::Scenario::troubled(5, vec![40, 30])).await;
    let race = &chain.race;
    println!("chain up in {:?}", t0.elapsed());

    // Play until six 10 km runners have finished, while most are still out there.
    let mut finishes: Vec<Timestamp> =
        race.truth.iter().filter(|t| race_id(race, t) == "10k").filter_map(|t| finish_at(race, t)).collect();
    finishes.sort();
    let (first, _, pause) = split_race(race, finishes[5] + Elapsed::from_secs(60));
    play_part(&chain, &first, pause).await;
    println!("first part played by {:?}", t0.elapsed());
    let client = reqwest::Client::new();
    let board: Value =
        client.get(format!("{}/api/v1/leaderboards/10k", chain.agg_url)).send().await.unwrap().json().await.unwrap();
    let rows = board["rows"].as_array().unwrap();
    assert!(rows.len() >= 4, "{board}");
    let column = |k: &str| rows.iter().map(|r| r[k].clone()).collect::<Vec<_>>();
    let (leader, second) = (rows[0]["bib"].as_str().unwrap().to_string(), rows[1]["bib"].as_str().unwrap().to_string());
    assert_eq!((rows[0]["place"].as_u64(), rows[1]["place"].as_u64()), (Some(1), Some(2)), "{board}");

    // The spectator, on a laptop, follows a marathon and a 10 km runner still on the course.
    let running = |id: &str| {
        race.truth
            .iter()
            .filter(|t| race_id(race, t) == id && t.status == Status::Finished)
            .find(|t| split_at(t, 1).is_some_and(|at| at < pause) && finish_at(race, t).is_some_and(|at| at > pause))
            .map(|t| bib(race, t))
            .unwrap_or_else(|| panic!("a runner of the {id} on the course at the pause"))
    };
    let followed = [running("marathon"), running("10k")];
    let url = format!("{}/", chain.agg_url);
    let (spectator, desk) =
        tokio::join!(Browser::launch(&paths, Device::Laptop), Browser::launch(&paths, Device::Laptop));
    let (spectator, desk) = (spectator.unwrap(), desk.unwrap());
    spectator.goto(&url).await.unwrap();
    spectator
        .js(&format!("localStorage.setItem('racetime.followed', JSON.stringify({}));", json!(followed)))
        .await
        .unwrap();
    spectator.goto(&url).await.unwrap();
    select(&spectator, "#board-race", "10k").await;
    let want_bibs = column("bib");
    spectator
        .wait_until(
            "the 10 km leaderboard as the aggregator has it",
            DEADLINE,
            &format!(
                "const r = (() => {{ {BOARD_ROWS} }})(); return JSON.stringify(r.map(x => x[0])) === '{}';",
                json!(want_bibs)
            ),
        )
        .await
        .unwrap();
    for bib in &followed {
        spectator.wait_until("a followed runner's card", DEADLINE, &card_script(bib)).await.unwrap();
    }
    // From here on the page must update itself: a reload would lose this mark.
    spectator.js("window.sameDocument = true;").await.unwrap();

    // The desk: a wrong token is refused in words; then the right one.
    desk.goto(&format!("{}/desk", chain.agg_url)).await.unwrap();
    type_into(&desk, "#token", "not-the-desk-token").await;
    type_into(&desk, "#signin-who", "Desk 1 (AB)").await;
    click(&desk, "#signin button[type=submit]").await;
    let refused = desk
        .wait_until(
            "the wrong token refused",
            DEADLINE,
            "const e = document.getElementById('error'); return !e.hidden && !document.getElementById('signin-section').hidden ? e.textContent : null;",
        )
        .await
        .unwrap();
    assert!(refused.as_str().unwrap().starts_with("That is not the desk token"), "{refused}");
    desk.client.find(Locator::Css("#token")).await.unwrap().clear().await.unwrap();
    type_into(&desk, "#token", &chain.desk_token).await;
    click(&desk, "#signin button[type=submit]").await;
    let queue = desk
        .wait_until(
            "the desk's views",
            DEADLINE,
            "return !document.getElementById('desk').hidden && Number(document.body.dataset.refreshes || 0) >= 1
                 ? { review: [...document.querySelectorAll('#review > li')].map(li => [li.dataset.kind, li.dataset.bib ?? null]),
                     guns: document.querySelectorAll('#gun-rows tr').length } : null;",
        )
        .await
        .unwrap();
    let review: Vec<(String, Option<String>)> = serde_json::from_value(queue["review"].clone()).unwrap();
    let api_review: Value = client
        .get(format!("{}/api/v1/desk/review", chain.agg_url))
        .bearer_auth(&chain.desk_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let api_kinds: Vec<String> =
        api_review.as_array().unwrap().iter().take(100).map(|i| i["kind"].as_str().unwrap().to_string()).collect();
    assert_eq!(
        review.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        api_kinds,
        "the queue as the aggregator has it"
    );
    assert_eq!(queue["guns"], race.guns.len(), "a row per wave");

    // One click: accept the first result in review; it leaves the queue.
    let in_review = review.iter().find(|(k, _)| k == "result").and_then(|(_, b)| b.clone());
    if let Some(bib) = &in_review {
        click(&desk, &format!("#review > li[data-kind=result][data-bib=\"{bib}\"] button[data-action=accept]")).await;
        desk.wait_until(
            "the accepted result gone from the queue, its entry in the log",
            DEADLINE,
            &format!(
                "return !document.querySelector('#review > li[data-kind=result][data-bib=\"{bib}\"]')
                     && document.querySelector('#audit-rows tr[data-kind=status][data-bib=\"{bib}\"]');"
            ),
        )
        .await
        .unwrap();
    }

    // The corrections form: DSQ the leader, with a reason.
    let reason = "cut the course at km 4 (marshal's report)";
    select(&desk, "#c-kind", "status").await;
    type_into(&desk, "#c-status-bib", &leader).await;
    select(&desk, "#c-status", "DSQ").await;
    type_into(&desk, "#c-why", reason).await;
    click(&desk, "#c-submit").await;
    let entry = desk
        .wait_until(
            "the DSQ in the audit log",
            DEADLINE,
            &format!(
                "const tr = document.querySelector('#audit-rows tr[data-kind=status][data-bib=\"{leader}\"]:not(.undone)');
                 return tr && tr.querySelector('td.why').textContent === \"{reason}\"
                     ? {{ id: tr.dataset.id, what: tr.querySelector('td.what').textContent, who: tr.children[2].textContent,
                         notice: document.getElementById('notice').textContent }} : null;"
            ),
        )
        .await
        .unwrap();
    assert_eq!(entry["what"], format!("Status of bib {leader}: DSQ"), "{entry}");
    assert_eq!(entry["who"], "Desk 1 (AB)");
    let id = entry["id"].as_str().unwrap().to_string();
    assert!(
        entry["notice"].as_str().unwrap().starts_with(&format!("Recorded entry #{id}: Status of bib {leader}: DSQ")),
        "{entry}"
    );

    // The spectator's leaderboard, live: the leader gone, the second now first (▲ 1).
    let after = spectator
        .wait_until(
            "the leader dropped from the leaderboard",
            DEADLINE,
            &format!(
                "const r = (() => {{ {BOARD_ROWS} }})();
                 return !r.some(x => x[0] === '{leader}') && r[0][0] === '{second}' ? {{ rows: r, same: window.sameDocument === true }} : null;"
            ),
        )
        .await
        .unwrap();
    assert_eq!(after["same"], true, "updated without a reload");
    assert_eq!(after["rows"][0][1], 1, "{after}");
    assert_eq!(after["rows"][0][2], "▲ 1", "{after}");
    let flashed = spectator.js("return document.querySelectorAll('#board-rows tr.flash').length;").await.unwrap();
    assert!(flashed.as_u64().unwrap() >= 1, "the changed rows are highlighted");
    assert_eq!(desk.js(OVERFLOW).await.unwrap(), 0, "no sideways scrolling on the desk's laptop");
    let guns_overflow = desk
        .js("const t = document.querySelector('.table-scroll'); return t.scrollWidth - t.clientWidth;")
        .await
        .unwrap();
    assert_eq!(guns_overflow, 0, "the gun table fits its column on a laptop");
    desk.js("window.scrollTo(0, 0);").await.unwrap();
    desk.screenshot(&browser::screenshot_dir(&repo(), dir.path()).join("desk.png")).await.unwrap();
    desk.js("document.getElementById('correct-heading').scrollIntoView();").await.unwrap();
    desk.screenshot(&browser::screenshot_dir(&repo(), dir.path()).join("desk-log.png")).await.unwrap();

    // Undo from the desk: the leader is back in first place.
    click(&desk, &format!("#audit-rows tr[data-id=\"{id}\"] button[data-undo=\"{id}\"]")).await;
    click(&desk, &format!("#audit-rows tr[data-id=\"{id}\"] form.inline button[type=submit]")).await;
    let undone = desk
        .wait_until(
            "the undo in the audit log",
            DEADLINE,
            &format!(
                "const tr = [...document.querySelectorAll('#audit-rows tr')].find(tr => tr.querySelector('td.what')?.textContent.includes('undoes #{id}'));
                 const old = document.querySelector('#audit-rows tr[data-id=\"{id}\"]');
                 return tr && old.classList.contains('undone')
                     ? [tr.querySelector('td.what').firstChild.textContent, old.querySelector('td.what').textContent] : null;"
            ),
        )
        .await
        .unwrap();
    assert_eq!(undone[0], format!("Status of bib {leader}: override removed (computed status)"));
    assert!(
        undone[1].as_str().unwrap().ends_with(&format!("undone by #{}", id.parse::<u64>().unwrap() + 1)),
        "{undone}"
    );
    let restored = spectator
        .wait_until(
            "the leaderboard restored",
            DEADLINE,
            &format!(
                "const r = (() => {{ {BOARD_ROWS} }})();
                 return JSON.stringify(r.map(x => x[0])) === '{}' ? {{ rows: r, same: window.sameDocument === true }} : null;",
                json!(want_bibs)
            ),
        )
        .await
        .unwrap();
    assert_eq!(restored["same"], true);
    let places: Vec<Value> = restored["rows"].as_array().unwrap().iter().map(|r| r[1].clone()).collect();
    assert_eq!(places, column("place"), "{restored}");
    // Back on the list (new to it since the DSQ), and the one who led meanwhile moves down.
    assert_eq!(restored["rows"][0][2], "new", "{restored}");
    assert_eq!(restored["rows"][1][2], "▼ 1", "{restored}");

    // "Gun now" for the marathon's first wave: the gun at the aggregator's race clock, shown in
    // the event's zone; then undone.
    let event: Value =
        client.get(format!("{}/api/v1/event", chain.agg_url)).send().await.unwrap().json().await.unwrap();
    let now_us = event["now_us"].as_i64().unwrap();
    let now_text = local_text(now_us);
    click(&desk, "#gun-rows tr[data-wave=\"marathon/sas1\"] button[data-action=gun-now]").await;
    let gun = desk
        .wait_until(
            "the desk's gun in the audit log and the gun table",
            DEADLINE,
            "const tr = document.querySelector('#audit-rows tr[data-kind=gun_time]:not(.undone)');
             const cell = document.querySelector('#gun-rows tr[data-wave=\"marathon/sas1\"] td.in-effect div');
             return tr ? { id: tr.dataset.id, what: tr.querySelector('td.what').textContent } : null;",
        )
        .await
        .unwrap();
    assert_eq!(gun["what"], format!("Gun of marathon/sas1: {now_text}"), "{gun}");
    desk.wait_until(
        "the gun table showing the desk's gun",
        DEADLINE,
        &format!(
            "const cell = document.querySelector('#gun-rows tr[data-wave=\"marathon/sas1\"] td.in-effect div');
             return cell.getAttribute('title') === '{now_text}';"
        ),
    )
    .await
    .unwrap();
    let gun_id = gun["id"].as_str().unwrap().to_string();
    click(&desk, &format!("#audit-rows tr[data-id=\"{gun_id}\"] button[data-undo=\"{gun_id}\"]")).await;
    click(&desk, &format!("#audit-rows tr[data-id=\"{gun_id}\"] form.inline button[type=submit]")).await;
    let (_, file_gun) = race
        .guns
        .iter()
        .find(|(w, _)| {
            let wave = race.course.wave(*w);
            wave.id == "sas1" && race.course.race(wave.race).id == "marathon"
        })
        .unwrap();
    let file_gun = local_text(file_gun.as_micros());
    desk.wait_until(
        "the gun back to the corrections file's",
        DEADLINE,
        &format!(
            "const cell = document.querySelector('#gun-rows tr[data-wave=\"marathon/sas1\"] td.in-effect div');
             return cell.getAttribute('title') === '{file_gun}'
                 && document.querySelector('#audit-rows tr[data-id=\"{gun_id}\"]').classList.contains('undone');"
        ),
    )
    .await
    .unwrap();

    // Exports: a CSV of the 10 km, fetched with the token and saved.
    select(&desk, "#x-race", "10k").await;
    click(&desk, "button[data-export=csv]").await;
    let saved = desk
        .wait_until(
            "the CSV export saved",
            DEADLINE,
            "const b = document.body.dataset; return b.lastExport ? [b.lastExport, Number(b.lastExportBytes)] : null;",
        )
        .await
        .unwrap();
    let csv = client
        .get(format!("{}/api/v1/desk/export.csv?race=10k&precision=s", chain.agg_url))
        .bearer_auth(&chain.desk_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(saved, json!(["standings-10k.csv", csv.len()]), "the aggregator's 10 km standings, saved");

    let shots = browser::screenshot_dir(&repo(), dir.path());
    assert_eq!(spectator.js(OVERFLOW).await.unwrap(), 0, "no sideways scrolling on a laptop");
    spectator.js("window.scrollTo(0, 0);").await.unwrap();
    spectator.screenshot(&shots.join("spectator.png")).await.unwrap();
    spectator.close().await.unwrap();
    desk.close().await.unwrap();
    println!("the desk page test took {:?}", t0.elapsed());
}
