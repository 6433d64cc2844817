//! The results desk through the router: corrections with an audit log, undo as a new entry,
//! refusals that change nothing, its own token, filtered exports; and the race after a restart.

mod support;

use aggregator::race::{RaceSetup, Summary};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use timing_wire::desk::{AuditEntry, DeskCorrection, DeskRequest};
use timing_wire::{Batch, UPLINK_VERSION, WireRead};
use tower::ServiceExt;

const DESK: &str = "desk-token-for-the-tests-0123";

use support::edge_token;

struct World {
    app: axum::Router,
    race: race_sim::SimRace,
}

async fn world(db: &std::path::Path) -> World {
    let d = support::demo(db, &race_sim::Scenario::clean(3, vec![20, 10]));
    let handle = aggregator::race::start(d.state.clone(), RaceSetup { desk_token: Some(DESK.into()), ..d.setup() });
    World { app: aggregator::router(d.state, handle), race: d.race }
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (StatusCode, String) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req =
        req.header("content-type", "application/json").body(body.map(Body::from).unwrap_or_else(Body::empty)).unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 26).await.unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// Uploads every read of the race as its edges would (one edge per point in the demo).
async fn upload(w: &World) {
    let mut by_edge: std::collections::BTreeMap<String, Vec<WireRead>> = Default::default();
    for r in w.race.reads() {
        let edge = r.point.to_string();
        let seq = by_edge.get(&edge).map_or(0, |v| v.len()) as u64 + 1;
        let wire = WireRead::from_read(seq, &r, reader_protocol::ReaderTime::Utc(r.at), None, None, r.at);
        by_edge.entry(edge).or_default().push(wire);
    }
    for (edge, reads) in by_edge {
        let batch = Batch { v: UPLINK_VERSION, edge: edge.clone(), reads, signals: vec![] };
        let (status, body) = call(
            &w.app,
            "POST",
            "/api/v1/ingest",
            Some(&edge_token(&edge)),
            Some(serde_json::to_string(&batch).unwrap()),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

/// The line of a bib in the public standings.
async fn line_of(w: &World, bib: &str) -> String {
    // Queries go through the race task after the uploads were published to it.
    let (_, csv) = call(&w.app, "GET", "/api/v1/standings.csv?final=true", None, None).await;
    csv.lines().find(|l| l.split(',').nth(4) == Some(bib)).unwrap_or_default().to_string()
}

async fn settle(w: &World) {
    for _ in 0..200 {
        let (_, s) = call(&w.app, "GET", "/api/v1/summary", None, None).await;
        let s: Summary = serde_json::from_str(&s).unwrap();
        if s.n_reads as usize == w.race.reads().len() {
            return;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the race task never applied the uploads");
}

fn request(correction: DeskCorrection, why: &str) -> String {
    serde_json::to_string(&DeskRequest { v: 1, who: "Chief judge".into(), why: why.into(), correction }).unwrap()
}

#[tokio::test]
async fn corrections_are_audited_undone_by_new_entries_and_refusals_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(&dir.path().join("agg.sqlite")).await;
    upload(&w).await;
    settle(&w).await;
    let before = line_of(&w, "1").await;
    assert!(before.contains(",OK,"), "{before}");

    // Disqualify bib 1.
    let dsq = request(
        DeskCorrection::Status { bib: "1".into(), status: Some("DSQ".into()) },
        "course cut between km 21 and km 35",
    );
    let (status, body) = call(&w.app, "POST", "/api/v1/desk/corrections", Some(DESK), Some(dsq.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let entry: AuditEntry = serde_json::from_str(&body).unwrap();
    assert!(line_of(&w, "1").await.contains(",DSQ,"));

    // Undo: a new entry, and bib 1 is back as it was.
    let undo = r#"{"v":1,"who":"Chief judge","why":"appeal upheld"}"#.to_string();
    let (status, body) = call(&w.app, "POST", &format!("/api/v1/desk/undo/{}", entry.id), Some(DESK), Some(undo)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(line_of(&w, "1").await, before);

    // Refused corrections change nothing and say why.
    let bad = request(DeskCorrection::Status { bib: "9999".into(), status: Some("DNF".into()) }, "typo");
    let (status, body) = call(&w.app, "POST", "/api/v1/desk/corrections", Some(DESK), Some(bad)).await;
    assert_eq!((status, body.as_str()), (StatusCode::BAD_REQUEST, r#"{"error":"unknown bib 9999"}"#));
    let (status, body) = call(&w.app, "POST", "/api/v1/desk/corrections", Some(DESK), Some("{not json".into())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("malformed correction"), "{body}");

    // The desk's own token: none → 401, an edge's → 403; nothing recorded.
    assert_eq!(
        call(&w.app, "POST", "/api/v1/desk/corrections", None, Some(dsq.clone())).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&w.app, "POST", "/api/v1/desk/corrections", Some(&edge_token("finish")), Some(dsq)).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(call(&w.app, "GET", "/api/v1/desk/audit", None, None).await.0, StatusCode::UNAUTHORIZED);

    let (status, body) = call(&w.app, "GET", "/api/v1/desk/audit", Some(DESK), None).await;
    assert_eq!(status, StatusCode::OK);
    let audit: Vec<AuditEntry> = serde_json::from_str(&body).unwrap();
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!((audit[0].why.as_str(), audit[1].undoes), ("course cut between km 21 and km 35", Some(audit[0].id)));
    assert_eq!(audit[1].correction, DeskCorrection::Status { bib: "1".into(), status: None });

    // Exports, filtered: only the 10 km, in the standings' columns.
    let (status, csv) = call(&w.app, "GET", "/api/v1/desk/export.csv?race=10k", Some(DESK), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(csv.starts_with("race,place,gender_place,category_place,bib,"));
    assert_eq!(csv.lines().count(), 1 + 10);
    assert!(csv.lines().skip(1).all(|l| l.starts_with("10k,")));
}

#[tokio::test]
async fn the_audit_log_is_replayed_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("agg.sqlite");
    {
        let w = world(&db).await;
        upload(&w).await;
        settle(&w).await;
        let manual = request(
            DeskCorrection::ManualPassing {
                bib: "2".into(),
                point: "finish".into(),
                at: Some("2024-08-11T00:59:58.25+02:00".into()),
            },
            "finish mat missed, time from video",
        );
        let (status, body) = call(&w.app, "POST", "/api/v1/desk/corrections", Some(DESK), Some(manual)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(line_of(&w, "2").await.contains("manual"));
    }
    // A new aggregator on the same store: reads, then the desk's log, rebuild the same race.
    let w = world(&db).await;
    settle(&w).await;
    let line = line_of(&w, "2").await;
    assert!(line.contains("manual"), "{line}");
}

/// The gun in effect for a wave, and whether it is only the scheduled start.
async fn gun_of(w: &World, race: &str, wave: &str) -> (i64, bool) {
    let (status, body) = call(&w.app, "GET", "/api/v1/desk/guns", Some(DESK), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let guns: Vec<timing_wire::desk::WaveGun> = serde_json::from_str(&body).unwrap();
    let g = guns.iter().find(|g| g.race == race && g.wave == wave).unwrap();
    (g.in_effect_us, g.scheduled_only)
}

#[tokio::test]
async fn undoing_the_desks_only_gun_for_a_wave_gives_back_the_gun_the_other_sources_set() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("agg.sqlite");
    let file_gun_us = {
        let w = world(&db).await;
        upload(&w).await;
        settle(&w).await;
        let (file_gun_us, scheduled_only) = gun_of(&w, "marathon", "sas1").await;
        assert!(!scheduled_only, "the corrections file gives the gun");

        // The desk presses "gun now" by mistake, then undoes it.
        let gun = request(
            DeskCorrection::GunTime {
                race: "marathon".into(),
                wave: "sas1".into(),
                at: Some("2024-08-11T00:30:00.000000Z".into()),
            },
            "gun now",
        );
        let (status, body) = call(&w.app, "POST", "/api/v1/desk/corrections", Some(DESK), Some(gun)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let entry: AuditEntry = serde_json::from_str(&body).unwrap();
        assert_eq!(gun_of(&w, "marathon", "sas1").await, (1_723_336_200_000_000, false));
        let undo = r#"{"v":1,"who":"Chief judge","why":"pressed by mistake"}"#.to_string();
        let (status, body) =
            call(&w.app, "POST", &format!("/api/v1/desk/undo/{}", entry.id), Some(DESK), Some(undo)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(gun_of(&w, "marathon", "sas1").await, (file_gun_us, false), "the corrections file's gun again");

        // A start-gun signal afterwards does not clear it either (the file's gun beats a device's).
        let signal = timing_wire::Signal::GunTime {
            seq: 1,
            race: "marathon".into(),
            wave: "sas1".into(),
            at_us: file_gun_us + 2_000_000,
            source: "modbus:start-gun:0".into(),
            jitter_us: 5_000,
        };
        let batch = Batch { v: UPLINK_VERSION, edge: "start".into(), reads: vec![], signals: vec![signal] };
        let body = serde_json::to_string(&batch).unwrap();
        let (status, body) = call(&w.app, "POST", "/api/v1/ingest", Some(&edge_token("start")), Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let mut got = (0, true);
        for _ in 0..200 {
            let (_, guns) = call(&w.app, "GET", "/api/v1/desk/guns", Some(DESK), None).await;
            if guns.contains("modbus:start-gun:0") {
                got = gun_of(&w, "marathon", "sas1").await;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(got, (file_gun_us, false));
        file_gun_us
    };
    // After a restart the log replays to the same gun.
    let w = world(&db).await;
    settle(&w).await;
    assert_eq!(gun_of(&w, "marathon", "sas1").await, (file_gun_us, false));
}
