//! The ingest endpoints: `POST /api/v1/ingest` (an edge's [`Batch`]) and
//! `GET /api/v1/edges/{id}/cursor` (its [`Ack`] without sending anything), and [`ApiError`],
//! which turns every refusal into a status code and an [`ErrorBody`].
//!
//! Order of checks on an upload, cheapest first, nothing stored on any refusal:
//! token (401, before the body is read) → body size (413) → JSON (400, serde's message with line
//! and column) → version (400) → edge in the event and the token's own (403) → every read at the
//! edge's point, every seq in range, every gun time for a wave of the event (400) → store (500,
//! or 503 when the disk is full).
//! Parsing and storing run on a blocking thread; the store's lock is held only to store and
//! publish, so the publication order is the ingest order.
//!
//! Deliberately not here: the race engine (it subscribes to what is published), rate limiting,
//! compression.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use timing_wire::{Ack, Batch, ErrorBody, Signal, UPLINK_VERSION, check_version};
use tracing::{debug, warn};

use crate::scope::UploadScope;
use crate::store::StoreError;
use crate::{AppState, StoredBatch};

/// Why a request was refused; each kind has its status code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// 401: no token, or one no edge has.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// 403: an edge not in the event, or another edge's token.
    #[error("{0}")]
    Forbidden(String),
    /// 400: malformed JSON, an unknown version, a read or signal the edge may not send.
    #[error("{0}")]
    BadRequest(String),
    /// 413.
    #[error("request body is over the limit of {limit_bytes} bytes")]
    TooLarge { limit_bytes: usize },
    /// The body could not be read (the client went away, bad chunking): its own status.
    #[error("{message}")]
    Body { status: StatusCode, message: String },
    /// 500, or 503 when the disk is full (the edge keeps the batch and retries).
    #[error("storing the batch: {0}")]
    Store(#[from] StoreError),
    /// 500: a bug (a panicked task).
    #[error("{0}")]
    Internal(String),
    /// 404 and 405.
    #[error("no route for {method} {path}")]
    NoRoute { status: StatusCode, method: Method, path: String },
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Body { status, .. } | ApiError::NoRoute { status, .. } => *status,
            ApiError::Store(e) if e.is_disk_full() => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(StoreError::InvalidSeq { .. }) => StatusCode::BAD_REQUEST,
            ApiError::Store(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn body(rejection: BytesRejection, limit_bytes: usize) -> ApiError {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge { limit_bytes },
            status => ApiError::Body { status, message: rejection.body_text() },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let unauthenticated = matches!(self, ApiError::Unauthenticated(_));
        let mut response = (status, Json(ErrorBody { error: self.to_string() })).into_response();
        if unauthenticated {
            response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"racetime\""));
        }
        response
    }
}

/// `POST /api/v1/ingest`.
pub(crate) async fn post_batch(State(state): State<AppState>, request: Request) -> Result<Json<Ack>, ApiError> {
    let edge = authenticate(&state, request.headers())?;
    let limit_bytes = state.shared.config.body_max_bytes;
    let result = async {
        let body = Bytes::from_request(request, &state).await.map_err(|r| ApiError::body(r, limit_bytes))?;
        let state = state.clone();
        let edge = edge.clone();
        tokio::task::spawn_blocking(move || store_batch(&state, &edge, &body))
            .await
            .map_err(|e| ApiError::Internal(format!("ingest task failed: {e}")))?
    }
    .await;
    if let Err(error) = &result {
        state.count_refusal(&edge);
        warn!(edge_id = %edge, status = error.status().as_u16(), %error, "upload refused");
    }
    result.map(Json)
}

/// `POST /api/v1/telemetry`: an edge's status, kept (latest only) for the fleet page.
pub(crate) async fn post_telemetry(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<serde_json::Value>, ApiError> {
    let edge = authenticate(&state, request.headers())?;
    let body = Bytes::from_request(request, &state).await.map_err(|r| ApiError::body(r, 1 << 20))?;
    let t: timing_wire::Telemetry =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("malformed telemetry: {e}")))?;
    timing_wire::check_version(t.v).map_err(ApiError::BadRequest)?;
    if let Err(error) = check_edge(&state.shared.scope, &edge, &t.edge) {
        state.count_refusal(&edge);
        return Err(error);
    }
    state.set_telemetry(&edge, t);
    Ok(Json(serde_json::json!({ "v": UPLINK_VERSION })))
}

/// `GET /api/v1/edges/{id}/cursor`.
pub(crate) async fn get_cursor(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Ack>, ApiError> {
    let edge = authenticate(&state, &headers)?;
    if let Err(error) = check_edge(&state.shared.scope, &edge, &id) {
        state.count_refusal(&edge);
        warn!(edge_id = %edge, %error, "cursor request refused");
        return Err(error);
    }
    let cursor = state.with_store(move |store| store.cursor(&id)).await.map_err(ApiError::Internal)?;
    Ok(Json(Ack { v: UPLINK_VERSION, acked_seq: cursor.acked_seq, acked_signal_seq: cursor.acked_signal_seq }))
}

pub(crate) async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NoRoute { status: StatusCode::NOT_FOUND, method, path: uri.path().to_string() }
}

pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::NoRoute { status: StatusCode::METHOD_NOT_ALLOWED, method, path: uri.path().to_string() }
}

/// The edge whose token the request carries.
fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    let edge = match bearer(headers) {
        None => Err(ApiError::Unauthenticated("missing bearer token (send Authorization: Bearer <token>)")),
        Some(token) => state
            .shared
            .tokens
            .authenticate(token)
            .map(str::to_string)
            .ok_or(ApiError::Unauthenticated("unknown token")),
    };
    if let Err(error) = &edge {
        state.shared.n_unauthenticated.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        warn!(%error, "request refused");
    }
    edge
}

/// The token of an `Authorization: Bearer <token>` header (the scheme is case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(AUTHORIZATION)?.as_bytes();
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, token) = value.split_at(space);
    let token = token.trim_ascii();
    (scheme.eq_ignore_ascii_case(b"bearer") && !token.is_empty()).then_some(token)
}

/// Parses, checks, stores and publishes one batch (on a blocking thread).
fn store_batch(state: &AppState, edge: &str, body: &[u8]) -> Result<Ack, ApiError> {
    let batch = decode(body)?;
    check_version(batch.v).map_err(ApiError::BadRequest)?;
    check_edge(&state.shared.scope, edge, &batch.edge)?;
    check_contents(&state.shared.scope, &batch)?;
    let now = state.shared.wall.now();
    let ingested = {
        // A panic while the lock was held rolled its transaction back (and left the store's
        // mirror of the cursors untouched), so the store is consistent: keep serving.
        let mut store = state.shared.store.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let ingested = store.ingest(edge, &batch.reads, &batch.signals, now)?;
        if !ingested.new_reads.is_empty() || !ingested.new_signals.is_empty() {
            // Fed under the lock, so the race task sees batches in ingest order. Nobody
            // following (the engine not started yet) is fine: everything is in the store.
            let no = state.shared.n_published.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            state.shared.feed.push(StoredBatch {
                no,
                edge: edge.to_string(),
                reads: ingested.new_reads.clone(),
                signals: ingested.new_signals.clone(),
            });
        }
        ingested
    };
    state.count_ingested(edge, &ingested);
    if ingested.n_conflicts > 0 {
        warn!(
            edge_id = %edge,
            n_conflicts = ingested.n_conflicts,
            "reads already stored under the same seq with other contents: kept the stored ones (was the edge's outbox reset?)"
        );
    }
    debug!(
        edge_id = %edge,
        n_reads = batch.reads.len(),
        n_new = ingested.new_reads.len(),
        n_duplicates = ingested.n_duplicates,
        acked_seq = ingested.acked_seq,
        "batch stored"
    );
    Ok(Ack { v: UPLINK_VERSION, acked_seq: ingested.acked_seq, acked_signal_seq: ingested.acked_signal_seq })
}

fn decode(body: &[u8]) -> Result<Batch, ApiError> {
    serde_json::from_slice::<Batch>(body).map_err(|error| {
        // A batch of another version may well not parse as this one: then the version is the news.
        let v = serde_json::from_slice::<serde_json::Value>(body).ok().and_then(|b| b.get("v")?.as_u64());
        match v {
            Some(v) if v != u64::from(UPLINK_VERSION) => ApiError::BadRequest(format!(
                "uplink version {v} is not supported (this aggregator speaks {UPLINK_VERSION})"
            )),
            _ => ApiError::BadRequest(format!("malformed batch: {error}")),
        }
    })
}

/// `claimed` must be an edge of the event, and the token's own.
fn check_edge(scope: &UploadScope, edge: &str, claimed: &str) -> Result<(), ApiError> {
    if scope.edge(claimed).is_none() {
        return Err(ApiError::Forbidden(format!("edge {claimed:?} is not in the event")));
    }
    if claimed != edge {
        return Err(ApiError::Forbidden(format!("the token is edge {edge:?}'s, not edge {claimed:?}'s")));
    }
    Ok(())
}

/// What an edge may send: reads at its own point, seqs the store can hold, gun times of the
/// event's waves.
fn check_contents(scope: &UploadScope, batch: &Batch) -> Result<(), ApiError> {
    let Some(edge) = scope.edge(&batch.edge) else {
        return Err(ApiError::Forbidden(format!("edge {:?} is not in the event", batch.edge)));
    };
    let seq_range = |what: &str, seq: u64| {
        if seq == 0 || seq > i64::MAX as u64 {
            Err(ApiError::BadRequest(format!("{what} seq {seq} is out of range (1..={})", i64::MAX)))
        } else {
            Ok(())
        }
    };
    for r in &batch.reads {
        seq_range("read", r.seq)?;
        if r.point != edge.point {
            return Err(ApiError::BadRequest(format!(
                "read seq {} names point {:?}, but edge {:?} is at point {:?}",
                r.seq, r.point, batch.edge, edge.point
            )));
        }
    }
    for s in &batch.signals {
        let Signal::GunTime { seq, race, wave, .. } = s;
        seq_range("signal", *seq)?;
        if !scope.has_wave(race, wave) {
            return Err(ApiError::BadRequest(format!(
                "signal seq {seq} is a gun time for wave {race}/{wave}, which is not in the event"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_token_is_taken_from_the_authorization_header() {
        let check = |value: Option<&str>, want: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(v) = value {
                headers.insert(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            }
            assert_eq!(bearer(&headers), want.map(str::as_bytes), "{value:?}");
        };
        check(Some("Bearer abc"), Some("abc"));
        check(Some("bearer  abc "), Some("abc"));
        check(Some("BEARER abc"), Some("abc"));
        check(Some("Basic abc"), None);
        check(Some("Bearer"), None);
        check(Some("Bearer "), None);
        check(Some("Bearerabc"), None);
        check(None, None);
    }

    /// The demo event's race with a race task over a fresh store, for tests on one thread:
    /// the race task runs only when the test awaits.
    struct OneThread {
        state: AppState,
        handle: crate::race::RaceHandle,
        finish: Vec<timing_core::Read>,
        _dir: tempfile::TempDir,
    }

    impl OneThread {
        fn start(config: crate::IngestConfig) -> OneThread {
            let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            let event_dir = repo.join("config/demo");
            let text = std::fs::read_to_string(event_dir.join("event.toml")).unwrap();
            let event = event_config::parse_event("demo", &text).unwrap();
            let race = race_sim::generate(&event, &race_sim::Scenario::clean(5, vec![20, 10]));
            let scope = UploadScope::load_dir(&event_dir).unwrap();
            let tokens = crate::Tokens::load(&scope, None, |var| Some(format!("{var}-token-for-this-test"))).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let store = crate::AggregatorStore::open(&dir.path().join("agg.sqlite")).unwrap();
            let state = AppState::new(store, scope, tokens, config, crate::SystemClock);
            let handle = crate::race::start(
                state.clone(),
                crate::race::RaceSetup {
                    course: race.course.clone(),
                    corrections: race.gun_corrections(),
                    event_name: event.name.clone(),
                    zone: event.time_zone,
                    desk_token: None,
                    live: Default::default(),
                },
            );
            let finish: Vec<_> = race.reads().into_iter().filter(|r| r.point.as_str() == "finish").collect();
            assert!(finish.len() > 100);
            OneThread { state, handle, finish, _dir: dir }
        }

        /// Stores `reads` as the finish edge's upload numbered from `first_seq`, without awaiting.
        fn upload(&self, reads: &[timing_core::Read], first_seq: u64) -> Ack {
            let reads = reads
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let t = reader_protocol::ReaderTime::Utc(r.at);
                    timing_wire::WireRead::from_read(first_seq + i as u64, r, t, None, None, r.at)
                })
                .collect();
            let batch = Batch { v: UPLINK_VERSION, edge: "finish".into(), reads, signals: vec![] };
            store_batch(&self.state, "finish", &serde_json::to_vec(&batch).unwrap()).unwrap()
        }

        /// The race task's summary once `done` holds (it runs while this awaits).
        async fn summary_when(&self, done: impl Fn(&crate::race::Summary) -> bool) -> crate::race::Summary {
            loop {
                let s = self.handle.summary().await.unwrap();
                if done(&s) {
                    return s;
                }
                tokio::task::yield_now().await;
            }
        }
    }

    /// A batch stored after the race task subscribed to the feed and before it replayed the
    /// store is in both; the engine has no duplicate filter, so the batch number decides: once.
    #[tokio::test(flavor = "current_thread")]
    async fn a_batch_both_replayed_and_on_the_feed_is_applied_once() {
        let t = OneThread::start(crate::IngestConfig::default());
        let (handle, finish) = (&t.handle, &t.finish);
        let (a, b) = finish.split_at(finish.len() / 2);
        let upload = |reads: &[timing_core::Read], first_seq: u64| t.upload(reads, first_seq);
        // The race task has subscribed (in `start`) but, on this one thread, not yet run.
        upload(a, 1);
        let s = handle.summary().await.unwrap();
        assert_eq!(s.n_reads as usize, a.len(), "the replay holds the first batch, the feed's copy is skipped");
        assert_eq!(s.n_batches_applied, 0);
        upload(b, a.len() as u64 + 1);
        let s = t.summary_when(|s| s.n_batches_applied == 1).await;
        assert_eq!(s.n_reads as usize, finish.len(), "the second batch comes only on the feed");
    }

    /// A race task that falls further behind than the feed holds rebuilds from the store: every
    /// read is applied, once, and what comes after is applied from the feed again.
    #[tokio::test(flavor = "current_thread")]
    async fn a_race_task_that_falls_behind_the_feed_rebuilds_and_loses_nothing() {
        let t = OneThread::start(crate::IngestConfig { feed_max_reads: 1, ..Default::default() });
        let s = t.summary_when(|_| true).await;
        assert_eq!((s.n_reads, s.n_resyncs), (0, 0));
        // Ten uploads while the race task cannot run: more than the feed holds (one batch).
        let (first, last) = t.finish.split_at(t.finish.len() - 10);
        let chunk = first.len().div_ceil(10);
        for (i, part) in first.chunks(chunk).enumerate() {
            t.upload(part, (i * chunk) as u64 + 1);
        }
        let s = t.summary_when(|s| s.n_resyncs > 0).await;
        assert_eq!((s.n_reads as usize, s.n_resyncs), (first.len(), 1), "rebuilt once, with every read once");
        t.upload(last, first.len() as u64 + 1);
        let s = t.summary_when(|s| s.n_reads as usize >= t.finish.len()).await;
        assert_eq!(s.n_reads as usize, t.finish.len());
        assert_eq!(s.n_resyncs, 1, "the next upload came over the feed");
    }
}
