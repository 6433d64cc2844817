//! The ingest API through the router (`oneshot`) and, once, through `serve()` with a real client.

use std::path::Path;

use aggregator::feed::FeedItem;
use aggregator::{AggregatorStore, AppState, EdgeCounts, IngestConfig, StoredBatch, Tokens, TokensFile, UploadScope};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use timing_core::Timestamp;
use timing_core::time::Clock;
use timing_wire::{Ack, Batch, ErrorBody, Signal, UPLINK_VERSION, WireLine, WireRead, WireReaderTime};
use tower::ServiceExt;

const FINISH: &str = "finish-token-0123456789abcdef";
const KM7: &str = "km7-token-0123456789abcdef";

struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_micros(1_723_329_700_000_000)
    }
}

fn scope() -> UploadScope {
    UploadScope::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/demo")).unwrap()
}

fn state_with(path: &Path, config: IngestConfig) -> AppState {
    let scope = scope();
    // finish's token from its edge file's variable, km7's from the tokens file.
    let file = TokensFile::parse("tokens.toml", &format!("km7 = \"{KM7}\"")).unwrap();
    let env = |var: &str| (var == "RACETIME_EDGE_TOKEN_FINISH").then(|| FINISH.to_string());
    let tokens = Tokens::load(&scope, Some(&file), env).unwrap();
    AppState::new(AggregatorStore::open(path).unwrap(), scope, tokens, config, FixedClock)
}

fn state(dir: &tempfile::TempDir) -> AppState {
    state_with(&dir.path().join("aggregator.sqlite"), IngestConfig::default())
}

fn read(seq: u64, point: &str) -> WireRead {
    WireRead {
        seq,
        chip: format!("E200{seq:04}"),
        at_us: 1_723_329_667_250_000 + seq as i64 * 1000,
        point: point.into(),
        line: WireLine::Main,
        reader: format!("{point}-main"),
        antenna: 1,
        rssi: Some(-615),
        reader_seq: Some(seq),
        session: None,
        hits: Some(4),
        reader_time: WireReaderTime::Utc(1_723_329_667_250_000 + seq as i64 * 1000),
        received_at_us: 1_723_329_667_400_000 + seq as i64 * 1000,
    }
}

fn gun(seq: u64) -> Signal {
    gun_for_wave(seq, "sas1")
}

fn gun_for_wave(seq: u64, wave: &str) -> Signal {
    Signal::GunTime {
        seq,
        race: "marathon".into(),
        wave: wave.into(),
        at_us: 1_723_320_000_000_000,
        source: "modbus:start-gun:0".into(),
        jitter_us: 5_000,
    }
}

fn batch(edge: &str, point: &str, seqs: std::ops::RangeInclusive<u64>) -> Batch {
    Batch { v: UPLINK_VERSION, edge: edge.into(), reads: seqs.map(|s| read(s, point)).collect(), signals: vec![] }
}

fn post(token: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut r = Request::post("/api/v1/ingest").header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        r = r.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    r.body(body.into()).unwrap()
}

fn post_batch(token: &str, batch: &Batch) -> Request<Body> {
    post(Some(token), serde_json::to_vec(batch).unwrap())
}

fn get_cursor(token: Option<&str>, edge: &str) -> Request<Body> {
    let mut r = Request::get(format!("/api/v1/edges/{edge}/cursor"));
    if let Some(t) = token {
        r = r.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    r.body(Body::empty()).unwrap()
}

async fn call(app: &Router, request: Request<Body>) -> (StatusCode, Vec<u8>) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    (status, axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec())
}

async fn ack(app: &Router, request: Request<Body>) -> Ack {
    let (status, body) = call(app, request).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

fn acked(acked_seq: u64, acked_signal_seq: u64) -> Ack {
    Ack { v: UPLINK_VERSION, acked_seq, acked_signal_seq }
}

async fn n_reads(state: &AppState) -> u64 {
    state.with_store(|s| s.counts().unwrap().n_reads).await.unwrap()
}

#[tokio::test]
async fn an_upload_is_stored_acked_and_published_once() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir);
    let published = state.follow();
    let app = aggregator::app(state.clone());
    let mut b = batch("finish", "finish", 1..=3);
    b.signals.push(gun(1));
    assert_eq!(ack(&app, post_batch(FINISH, &b)).await, acked(3, 1));
    let got = published.try_next().unwrap();
    let want = StoredBatch { no: 1, edge: "finish".into(), reads: b.reads.clone(), signals: b.signals.clone() };
    assert_eq!(got, FeedItem::Batch(want));
    assert_eq!(state.batches_published(), 1);

    // The same batch again: the same ack, stored once, nothing published.
    assert_eq!(ack(&app, post_batch(FINISH, &b)).await, acked(3, 1));
    assert_eq!(published.try_next(), None);
    assert_eq!(n_reads(&state).await, 3);
    let counts = state.edge_counts("finish").unwrap();
    assert_eq!(counts, EdgeCounts { n_batches: 2, n_reads: 3, n_signals: 1, n_duplicates: 4, ..EdgeCounts::default() });
}

#[tokio::test]
async fn batches_out_of_order_are_acked_up_to_the_contiguous_run() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir);
    let app = aggregator::app(state.clone());
    assert_eq!(ack(&app, post_batch(FINISH, &batch("finish", "finish", 1..=100))).await, acked(100, 0));
    assert_eq!(ack(&app, post_batch(FINISH, &batch("finish", "finish", 201..=300))).await, acked(100, 0));
    assert_eq!(ack(&app, post_batch(FINISH, &batch("finish", "finish", 101..=200))).await, acked(300, 0));
    // Another edge has its own series.
    assert_eq!(ack(&app, post_batch(KM7, &batch("km7", "km7", 1..=2))).await, acked(2, 0));
    assert_eq!(n_reads(&state).await, 302);
}

#[tokio::test]
async fn every_refusal_has_its_status_and_an_error_body_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = IngestConfig { body_max_bytes: 64 << 10, ..IngestConfig::default() };
    let state = state_with(&dir.path().join("aggregator.sqlite"), config);
    let published = state.follow();
    let app = aggregator::app(state.clone());
    let good = batch("finish", "finish", 1..=2);
    let json = |b: &Batch| serde_json::to_vec(b).unwrap();
    let with = |f: &dyn Fn(&mut Batch)| {
        let mut b = good.clone();
        f(&mut b);
        b
    };

    let basic = Request::post("/api/v1/ingest")
        .header(header::AUTHORIZATION, "Basic Zm9vOmJhcg==")
        .body(Body::from(json(&good)))
        .unwrap();
    let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (
            post(None, json(&good)),
            StatusCode::UNAUTHORIZED,
            "missing bearer token (send Authorization: Bearer <token>)",
        ),
        (basic, StatusCode::UNAUTHORIZED, "missing bearer token (send Authorization: Bearer <token>)"),
        (post(Some("finish-token-0123456789abcdeX"), json(&good)), StatusCode::UNAUTHORIZED, "unknown token"),
        (post_batch(KM7, &good), StatusCode::FORBIDDEN, "the token is edge \"km7\"'s, not edge \"finish\"'s"),
        (
            post_batch(FINISH, &with(&|b| b.edge = "km99".into())),
            StatusCode::FORBIDDEN,
            "edge \"km99\" is not in the event",
        ),
        (
            post_batch(FINISH, &with(&|b| b.v = 2)),
            StatusCode::BAD_REQUEST,
            "uplink version 2 is not supported (this aggregator speaks 1)",
        ),
        (
            // A future version's batch need not parse as this one's: the version is still named.
            post(Some(FINISH), r#"{"v":3,"edge":"finish","frames":[]}"#),
            StatusCode::BAD_REQUEST,
            "uplink version 3 is not supported (this aggregator speaks 1)",
        ),
        (
            post(Some(FINISH), "{\"v\":1,\n\"edge\":\"finish\",\n\"reads\":[{\"seq\":1,"),
            StatusCode::BAD_REQUEST,
            "malformed batch: EOF while parsing a value at line 3 column 18",
        ),
        (
            post(Some(FINISH), r#"{"v":1,"edge":"finish","reads":[{"seq":"one"}]}"#),
            StatusCode::BAD_REQUEST,
            "malformed batch: invalid type: string \"one\", expected u64 at line 1 column 44",
        ),
        (
            post_batch(FINISH, &with(&|b| b.reads[1].point = "km7".into())),
            StatusCode::BAD_REQUEST,
            "read seq 2 names point \"km7\", but edge \"finish\" is at point \"finish\"",
        ),
        (
            post_batch(FINISH, &with(&|b| b.reads[1].seq = 0)),
            StatusCode::BAD_REQUEST,
            "read seq 0 is out of range (1..=9223372036854775807)",
        ),
        (
            post_batch(FINISH, &with(&|b| b.signals.push(gun_for_wave(1, "nope")))),
            StatusCode::BAD_REQUEST,
            "signal seq 1 is a gun time for wave marathon/nope, which is not in the event",
        ),
        (
            post_batch(FINISH, &batch("finish", "finish", 1..=1000)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body is over the limit of 65536 bytes",
        ),
        (
            Request::get("/api/v1/ingest").body(Body::empty()).unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "no route for GET /api/v1/ingest",
        ),
        (
            Request::get("/api/v2/nope").body(Body::empty()).unwrap(),
            StatusCode::NOT_FOUND,
            "no route for GET /api/v2/nope",
        ),
    ];
    for (request, status, error) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), status, "{what}: {error}");
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer realm=\"racetime\"");
        }
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let body: ErrorBody = serde_json::from_slice(&body).unwrap();
        assert_eq!(body.error, error, "{what}");
    }
    assert_eq!(state.with_store(|s| s.counts().unwrap()).await.unwrap(), Default::default());
    assert_eq!(published.try_next(), None);
    assert_eq!(state.n_unauthenticated(), 3);
    assert_eq!(state.edge_counts("finish").unwrap(), EdgeCounts { n_refusals: 9, ..EdgeCounts::default() });
    assert_eq!(state.edge_counts("km7").unwrap().n_refusals, 1);
    // The refusals left the edge free to upload.
    assert_eq!(ack(&app, post_batch(FINISH, &good)).await, acked(2, 0));
}

#[tokio::test]
async fn an_edge_reads_its_cursor_without_sending_anything() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir);
    let app = aggregator::app(state.clone());
    assert_eq!(ack(&app, get_cursor(Some(FINISH), "finish")).await, acked(0, 0));
    let mut b = batch("finish", "finish", 1..=5);
    b.reads.remove(2);
    b.signals = vec![gun(1), gun(2)];
    ack(&app, post_batch(FINISH, &b)).await;
    assert_eq!(ack(&app, get_cursor(Some(FINISH), "finish")).await, acked(2, 2));

    let refused = [
        (
            get_cursor(None, "finish"),
            StatusCode::UNAUTHORIZED,
            "missing bearer token (send Authorization: Bearer <token>)",
        ),
        (get_cursor(Some("not-a-token-of-any-edge"), "finish"), StatusCode::UNAUTHORIZED, "unknown token"),
        (get_cursor(Some(KM7), "finish"), StatusCode::FORBIDDEN, "the token is edge \"km7\"'s, not edge \"finish\"'s"),
        (get_cursor(Some(FINISH), "km99"), StatusCode::FORBIDDEN, "edge \"km99\" is not in the event"),
    ];
    for (request, status, error) in refused {
        let (got, body) = call(&app, request).await;
        assert_eq!(got, status);
        assert_eq!(serde_json::from_slice::<ErrorBody>(&body).unwrap().error, error);
    }
}

#[tokio::test]
async fn cursors_and_reads_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aggregator.sqlite");
    {
        let state = state_with(&path, IngestConfig::default());
        let app = aggregator::app(state.clone());
        let mut b = batch("finish", "finish", 1..=10);
        b.signals.push(gun(1));
        assert_eq!(ack(&app, post_batch(FINISH, &b)).await, acked(10, 1));
        assert_eq!(ack(&app, post_batch(FINISH, &batch("finish", "finish", 12..=20))).await, acked(10, 1));
        assert_eq!(ack(&app, post_batch(KM7, &batch("km7", "km7", 1..=3))).await, acked(3, 0));
    }
    // Every handle on the store is gone (the state and the router): it is closed.
    let state = state_with(&path, IngestConfig::default());
    let app = aggregator::app(state.clone());
    assert_eq!(ack(&app, get_cursor(Some(FINISH), "finish")).await, acked(10, 1));
    assert_eq!(ack(&app, get_cursor(Some(KM7), "km7")).await, acked(3, 0));
    let replayed = state
        .with_store(|s| {
            let mut seen = Vec::new();
            s.for_each_read(|edge, r| seen.push((edge.to_string(), r.seq))).unwrap();
            seen
        })
        .await
        .unwrap();
    let want: Vec<(String, u64)> = (1..=10)
        .chain(12..=20)
        .map(|s| ("finish".to_string(), s))
        .chain((1..=3).map(|s| ("km7".to_string(), s)))
        .collect();
    assert_eq!(replayed, want, "the replay is in ingest order");
    // The edge resumes after its cursor: the gap is filled, the run stored before it counts.
    assert_eq!(ack(&app, post_batch(FINISH, &batch("finish", "finish", 11..=11))).await, acked(20, 1));
}

#[tokio::test]
async fn serve_answers_a_real_client_and_stops_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(aggregator::serve(listener, state.clone(), async move {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::new();
    let mut b = batch("finish", "finish", 1..=2000);
    b.signals.push(gun(1));
    let response = client.post(format!("{url}/api/v1/ingest")).bearer_auth(FINISH).json(&b).send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(response.json::<Ack>().await.unwrap(), acked(2000, 1));

    let response = client.get(format!("{url}/api/v1/edges/finish/cursor")).bearer_auth(FINISH).send().await.unwrap();
    assert_eq!(response.json::<Ack>().await.unwrap(), acked(2000, 1));

    let response = client.post(format!("{url}/api/v1/ingest")).bearer_auth("wrong").json(&b).send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);
    assert_eq!(response.json::<ErrorBody>().await.unwrap().error, "unknown token");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(client.get(format!("{url}/api/v1/edges/finish/cursor")).send().await.is_err(), "the listener is closed");
    assert_eq!(n_reads(&state).await, 2000);
}
