//! `GET /api/v1/fleet` through the router: every edge of the event, and how long ago each one's
//! telemetry arrived, by the aggregator's own clock whatever the edge's clock says.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use aggregator::{AggregatorStore, AppState, FleetEdge, IngestConfig, Tokens, UploadScope};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use timing_core::Timestamp;
use timing_core::time::Clock;
use tower::ServiceExt;

/// A clock the test moves.
#[derive(Clone, Default)]
struct ManualClock(Arc<AtomicI64>);

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.0.load(Ordering::SeqCst))
    }
}

async fn fleet(app: &axum::Router) -> Vec<FleetEdge> {
    let response = app.clone().oneshot(Request::get("/api/v1/fleet").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    serde_json::from_slice(&axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap()).unwrap()
}

#[tokio::test]
async fn the_fleet_says_how_long_ago_each_edge_last_reported_by_the_aggregators_clock() {
    let dir = tempfile::tempdir().unwrap();
    let scope = UploadScope::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/demo")).unwrap();
    let tokens = Tokens::load(&scope, None, |var| {
        (var == "RACETIME_EDGE_TOKEN_KM7").then(|| "km7-token-for-the-fleet-test".to_string())
    })
    .unwrap();
    let clock = ManualClock::default();
    clock.0.store(1_723_320_000_000_000, Ordering::SeqCst);
    let store = AggregatorStore::open(&dir.path().join("aggregator.sqlite")).unwrap();
    let app = aggregator::app(AppState::new(store, scope, tokens, IngestConfig::default(), clock.clone()));

    assert!(fleet(&app).await.iter().all(|e| e.telemetry.is_none() && e.telemetry_age_ms.is_none()));

    // The edge's clock is a day behind: it does not matter, its report arrives now.
    let body = serde_json::json!({ "v": 1, "edge": "km7", "at_us": 1_723_233_600_000_000_i64, "status": {} });
    let request = Request::post("/api/v1/telemetry")
        .header(header::AUTHORIZATION, "Bearer km7-token-for-the-fleet-test")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    assert_eq!(app.clone().oneshot(request).await.unwrap().status(), StatusCode::OK);
    clock.0.fetch_add(12_345_000, Ordering::SeqCst);

    let edges = fleet(&app).await;
    let km7 = edges.iter().find(|e| e.edge == "km7").unwrap();
    assert_eq!(km7.telemetry_age_ms, Some(12_345));
    assert_eq!(km7.telemetry.as_ref().unwrap().at_us, 1_723_233_600_000_000);
    assert!(edges.iter().filter(|e| e.edge != "km7").all(|e| e.telemetry_age_ms.is_none()));
}
