//! The public REST API, the desk's review queue, gun claims, XLSX export, metrics and the
//! OpenAPI document, through the router (`oneshot`) over a real SQLite store.

mod support;

use std::io::Read as _;

use aggregator::race::{RaceSetup, Summary};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use timing_core::Status;
use timing_wire::desk::{DeskCorrection, DeskRequest, ReviewItem, WaveGun};
use timing_wire::live::{BoardView, EventView, ParticipantHit, RaceStats, RunnerView};
use timing_wire::{Batch, Signal, UPLINK_VERSION, WireRead};
use tower::ServiceExt;

const DESK: &str = "desk-token-for-the-rest-tests-0";

use support::edge_token;

struct World {
    app: axum::Router,
    race: race_sim::SimRace,
    _dir: tempfile::TempDir,
}

/// A troubled race (unknown chips, strays, misses) on the demo event, every read uploaded.
async fn world() -> World {
    let seed = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(23);
    eprintln!("REST test seed {seed} (SIM_SEED=<n> to change)");
    let dir = tempfile::tempdir().unwrap();
    let d = support::demo(&dir.path().join("agg.sqlite"), &race_sim::Scenario::troubled(seed, vec![80, 40]));
    let handle = aggregator::race::start(d.state.clone(), RaceSetup { desk_token: Some(DESK.into()), ..d.setup() });
    let w = World { app: aggregator::router(d.state, handle), race: d.race, _dir: dir };
    let mut by_edge: std::collections::BTreeMap<String, Vec<WireRead>> = Default::default();
    for r in w.race.reads() {
        let edge = r.point.to_string();
        let seq = by_edge.get(&edge).map_or(0, Vec::len) as u64 + 1;
        by_edge.entry(edge).or_default().push(WireRead::from_read(
            seq,
            &r,
            reader_protocol::ReaderTime::Utc(r.at),
            None,
            None,
            r.at,
        ));
    }
    let n: usize = by_edge.values().map(Vec::len).sum();
    for (edge, reads) in by_edge {
        let batch = Batch { v: UPLINK_VERSION, edge: edge.clone(), reads, signals: vec![] };
        let (status, body) = call(&w.app, "POST", "/api/v1/ingest", Some(&edge_token(&edge)), Some(json(&batch))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    for _ in 0..500 {
        let s: Summary = get(&w, "/api/v1/summary", None).await;
        if s.n_reads as usize == n {
            return w;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the race task never applied the uploads");
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap()
}

async fn call_bytes(
    app: &axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (StatusCode, Vec<u8>, String) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req =
        req.header("content-type", "application/json").body(body.map(Body::from).unwrap_or_else(Body::empty)).unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, axum::body::to_bytes(resp.into_body(), 1 << 26).await.unwrap().to_vec(), ct)
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (StatusCode, String) {
    let (s, b, _) = call_bytes(app, method, uri, token, body).await;
    (s, String::from_utf8_lossy(&b).into_owned())
}

async fn get<T: serde::de::DeserializeOwned>(w: &World, uri: &str, token: Option<&str>) -> T {
    let (status, body) = call(&w.app, "GET", uri, token, None).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{uri}: {e}: {body}"))
}

#[tokio::test]
async fn the_public_api_describes_the_event_finds_runners_and_shows_no_private_data() {
    let w = world().await;
    let event: EventView = get(&w, "/api/v1/event", None).await;
    assert_eq!(event.time_zone, "Europe/Paris");
    assert_eq!(event.races.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["marathon", "10k"]);
    let marathon = &event.races[0];
    assert_eq!(marathon.n_participants, 80);
    assert_eq!(marathon.splits.last().unwrap().distance_m, 42_195);
    assert!(marathon.waves.iter().all(|wv| wv.gun_known), "the actual guns are known");
    assert!(event.points.iter().any(|p| p.id == "km7"));

    // Search: exact bib first, then names (case and accents ignored).
    let hits: Vec<ParticipantHit> = get(&w, "/api/v1/participants?q=7", None).await;
    assert_eq!(hits[0].bib, "7");
    let someone = &w.race.course.participants[12];
    let q = aggregator::api::fold(&someone.last_name).to_uppercase();
    let hits: Vec<ParticipantHit> = get(&w, &format!("/api/v1/participants?q={}", urlencode(&q)), None).await;
    assert!(hits.iter().any(|h| h.bib == someone.bib.as_str()), "{q}: {hits:?}");
    let (status, body) = call(&w.app, "GET", &format!("/api/v1/participants?q={}", "x".repeat(101)), None, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // A runner's page: no birth date or contact data anywhere in the public document.
    let (status, body) = call(&w.app, "GET", "/api/v1/runners/1", None, None).await;
    assert_eq!(status, StatusCode::OK);
    for private in ["birth", "email", "phone", "address"] {
        assert!(!body.contains(private), "{private} in {body}");
    }
    let r: RunnerView = serde_json::from_str(&body).unwrap();
    assert_eq!(r.bib, "1");
    let (status, body) = call(&w.app, "GET", "/api/v1/runners/99999", None, None).await;
    assert_eq!((status, body.contains("no runner with bib")), (StatusCode::NOT_FOUND, true));

    // Leaderboards by gender and category; bad parameters say what is wrong.
    let women: BoardView = get(&w, "/api/v1/leaderboards/marathon?gender=F&top=5", None).await;
    assert!(women.rows.len() <= 10 && women.rows.iter().all(|r| r.gender == "F"));
    assert!(women.rows.windows(2).all(|p| p[0].place <= p[1].place));
    let (status, body) = call(&w.app, "GET", "/api/v1/leaderboards/marathon?gender=Q", None, None).await;
    assert_eq!((status, body.contains("unknown gender")), (StatusCode::NOT_FOUND, true), "{body}");
    let (status, _) = call(&w.app, "GET", "/api/v1/leaderboards/ultra", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Charts: the histogram counts every finisher once.
    let stats: RaceStats = get(&w, "/api/v1/stats/marathon", None).await;
    let finished = w
        .race
        .truth
        .iter()
        .filter(|t| {
            w.race.course.participant(t.participant).race.idx() == 0
                && t.status == Status::Finished
                && t.chip_time.is_some()
        })
        .count() as u32;
    assert!(stats.histogram.iter().sum::<u32>() >= finished, "{stats:?}");
    assert_eq!(stats.per_minute.iter().map(|(_, n)| n).sum::<u32>(), stats.histogram.iter().sum::<u32>());

    // Arrivals at the finish, newest first.
    let arrivals: Vec<timing_wire::live::Arrival> = get(&w, "/api/v1/arrivals/finish?n=10", None).await;
    assert_eq!(arrivals.len(), 10);
    assert!(arrivals.windows(2).all(|p| p[0].at_us >= p[1].at_us));
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

#[test]
fn folding_ignores_case_and_accents() {
    assert_eq!(aggregator::api::fold("Élodie Nguyễn-Düring"), "elodie nguyễn-during");
    assert_eq!(aggregator::api::fold("ŁUKASZ Żółć"), "lukasz zolc");
}

#[tokio::test]
async fn the_desk_sees_the_review_queue_and_gun_conflicts_and_exports_xlsx() {
    let w = world().await;
    // Desk views need the desk token.
    let (status, _) = call(&w.app, "GET", "/api/v1/desk/review", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(&w.app, "GET", "/api/v1/desk/review", Some(&edge_token("finish")), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let review: Vec<ReviewItem> = get(&w, "/api/v1/desk/review", Some(DESK)).await;
    let unknown: Vec<&str> = review
        .iter()
        .filter_map(|i| match i {
            ReviewItem::UnknownChip { chip, .. } => Some(chip.as_str()),
            _ => None,
        })
        .collect();
    let mut expected: Vec<String> = w.race.unknown_chips.iter().map(|c| c.as_str().to_string()).collect();
    expected.sort();
    assert_eq!(unknown, expected.iter().map(String::as_str).collect::<Vec<_>>());
    let in_review = w.race.truth.iter().filter(|t| t.status == Status::Review).count();
    let listed = review.iter().filter(|i| matches!(i, ReviewItem::Result { .. })).count();
    assert_eq!(listed, in_review);
    assert!(!review.iter().any(|i| matches!(i, ReviewItem::GunConflict { .. })));

    // Two edges' start-gun inputs disagree by 3 s on the first marathon wave.
    let (race, wave, at) = {
        let (wv, at) = w.race.guns[0];
        let wave = w.race.course.wave(wv);
        (w.race.course.race(wave.race).id.clone(), wave.id.clone(), at.as_micros())
    };
    for (edge, at_us) in [("start", at), ("km7", at + 3_000_000)] {
        let sig = Signal::GunTime {
            seq: 1,
            race: race.clone(),
            wave: wave.clone(),
            at_us,
            source: "modbus:gun:0".into(),
            jitter_us: 5_000,
        };
        let batch = Batch { v: UPLINK_VERSION, edge: edge.into(), reads: vec![], signals: vec![sig] };
        let (status, body) = call(&w.app, "POST", "/api/v1/ingest", Some(&edge_token(edge)), Some(json(&batch))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let mut guns: Vec<WaveGun> = Vec::new();
    for _ in 0..500 {
        guns = get(&w, "/api/v1/desk/guns", Some(DESK)).await;
        if guns[0].claims.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let g = &guns[0];
    assert_eq!((g.race.as_str(), g.wave.as_str()), (race.as_str(), wave.as_str()));
    assert!(g.conflict && !g.resolved_by_desk, "{g:?}");
    assert_eq!(g.claims.len(), 3, "the corrections file and two edges: {g:?}");
    let review: Vec<ReviewItem> = get(&w, "/api/v1/desk/review", Some(DESK)).await;
    assert!(review.iter().any(|i| matches!(i, ReviewItem::GunConflict { wave: wv, .. } if *wv == wave)));

    // The desk decides: the conflict is resolved and leaves the queue, the claims stay visible.
    let decide = DeskRequest {
        v: 1,
        who: "Chief judge".into(),
        why: "video of the start".into(),
        correction: DeskCorrection::GunTime { race: race.clone(), wave: wave.clone(), at: Some(format!("{}", at)) },
    };
    let decide = serde_json::to_string(&decide).unwrap().replace(&format!("\"{at}\""), &format!("\"{}\"", rfc3339(at)));
    let (status, body) = call(&w.app, "POST", "/api/v1/desk/corrections", Some(DESK), Some(decide)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let guns: Vec<WaveGun> = get(&w, "/api/v1/desk/guns", Some(DESK)).await;
    assert!(guns[0].conflict && guns[0].resolved_by_desk, "{:?}", guns[0]);
    assert_eq!(guns[0].in_effect_us, at);
    let review: Vec<ReviewItem> = get(&w, "/api/v1/desk/review", Some(DESK)).await;
    assert!(!review.iter().any(|i| matches!(i, ReviewItem::GunConflict { .. })));

    // XLSX: a real workbook with the CSV's columns and rows.
    let (status, bytes, ct) = call_bytes(&w.app, "GET", "/api/v1/desk/export.xlsx?race=10k", Some(DESK), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.contains("spreadsheetml"), "{ct}");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut strings = String::new();
    zip.by_name("xl/sharedStrings.xml").unwrap().read_to_string(&mut strings).unwrap();
    for column in ["gun_time", "chip_time", "split_finish", "category_place"] {
        assert!(strings.contains(column), "{column}");
    }
    let (_, csv) = call(&w.app, "GET", "/api/v1/desk/export.csv?race=10k", Some(DESK), None).await;
    let mut sheet = String::new();
    zip.by_name("xl/worksheets/sheet1.xml").unwrap().read_to_string(&mut sheet).unwrap();
    assert_eq!(sheet.matches("<row ").count(), csv.lines().count(), "one row per CSV line");
    let (status, _) = call(&w.app, "GET", "/api/v1/desk/export.pdf", Some(DESK), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

fn rfc3339(us: i64) -> String {
    event_config::units::format_utc(timing_core::Timestamp::from_micros(us))
}

#[tokio::test]
async fn metrics_and_the_openapi_document_cover_the_service() {
    let w = world().await;
    let (status, text) = call(&w.app, "GET", "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    for family in [
        "racetime_ingest_reads_total{edge=\"finish\"}",
        "racetime_ingest_batches_total{edge=\"km7\"}",
        "racetime_edge_last_upload_age_seconds{edge=\"start\"}",
        "racetime_live_clients 0",
        "racetime_engine_apply_seconds_count",
        "racetime_engine_apply_seconds_bucket{le=\"+Inf\"}",
    ] {
        assert!(text.contains(family), "{family} missing:\n{text}");
    }
    let applied: u64 =
        text.lines().find_map(|l| l.strip_prefix("racetime_engine_applied_reads_total ")).unwrap().parse().unwrap();
    assert_eq!(applied as usize, w.race.reads().len());
    assert!(text.lines().any(|l| l == "racetime_engine_feed_reads 0"), "everything applied, nothing held:\n{text}");

    let doc: serde_json::Value = get(&w, "/api/v1/openapi.json", None).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    // Every route the router serves is documented, and every documented route is served.
    let served = [
        "/api/v1/event",
        "/api/v1/participants",
        "/api/v1/runners/{bib}",
        "/api/v1/leaderboards/{race}",
        "/api/v1/arrivals/{point}",
        "/api/v1/stats/{race}",
        "/api/v1/standings.csv",
        "/api/v1/standings.json",
        "/api/v1/summary",
        "/api/v1/fleet",
        "/api/v1/live",
        "/api/v1/ingest",
        "/api/v1/edges/{id}/cursor",
        "/api/v1/telemetry",
        "/api/v1/desk/corrections",
        "/api/v1/desk/undo/{id}",
        "/api/v1/desk/audit",
        "/api/v1/desk/review",
        "/api/v1/desk/guns",
        "/api/v1/desk/export.csv",
        "/api/v1/desk/export.json",
        "/api/v1/desk/export.xlsx",
        "/metrics",
        "/api/v1/openapi.json",
    ];
    let mut documented: Vec<&str> = paths.keys().map(String::as_str).collect();
    documented.sort();
    let mut expected = served.to_vec();
    expected.sort();
    assert_eq!(documented, expected);
    for path in served {
        let concrete =
            path.replace("{bib}", "1").replace("{race}", "marathon").replace("{point}", "finish").replace("{id}", "1");
        let method = paths[path].as_object().unwrap().keys().next().unwrap().to_uppercase();
        let (status, body) = call(&w.app, &method, &concrete, None, None).await;
        assert_ne!(status, StatusCode::NOT_FOUND, "{method} {concrete} is documented but not served: {body}");
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {concrete}: {body}");
    }
}
