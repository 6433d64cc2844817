//! The race task: the one owner of the race state (`timing_core::Engine`).
//!
//! Design note (rust-analyzer's main loop, STYLE 4.5): handlers never touch the engine; they
//! send a [`Query`] over a bounded channel and await the answer. The task subscribes to the
//! ingest's published batches *before* replaying the store, so nothing falls between the
//! rebuild and the live feed; reads that arrive twice that way (and replays from decoders that
//! have no passing numbers) are dropped by the engine's exact-duplicate filter. A subscriber
//! that lags resyncs from the store the same way.
//! Gun times come from the event file, from edges' gun signals (a Modbus start-gun input), and
//! from desk corrections, applied in that order so the desk has the last word.
//! Deliberately not here yet: WebSocket fan-out, the desk API, predicted times.

use std::sync::Arc;

use axum::extract::{Query as QueryParams, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use timing_core::{Correction, Course, Engine, EngineOptions, Precision, Read, Status, Timestamp};
use timing_wire::Signal;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::AppState;

/// Counts a results desk watches.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub n_reads: u64,
    pub n_duplicates: u64,
    pub n_crossings: usize,
    pub n_unknown_chips: usize,
    pub n_strays: usize,
    pub n_wrong_race: usize,
    pub n_reviews: usize,
    pub n_finished: usize,
    pub n_participants: usize,
    /// Batches applied from the live feed since start.
    pub n_batches_applied: u64,
    pub n_resyncs: u64,
}

/// What handlers can ask the race task.
#[derive(Debug)]
enum Query {
    Standings { final_standings: bool, precision: Precision, csv: bool, reply: oneshot::Sender<Vec<u8>> },
    Summary { reply: oneshot::Sender<Summary> },
}

/// A handle to the running race task. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RaceHandle {
    tx: mpsc::Sender<Query>,
    event_name: Arc<str>,
}

impl RaceHandle {
    pub async fn summary(&self) -> Option<Summary> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Query::Summary { reply }).await.ok()?;
        rx.await.ok()
    }
}

/// Starts the race task on `state`'s store and feed.
pub fn start(state: AppState, course: Course, corrections: Vec<Correction>, event_name: &str) -> RaceHandle {
    let (tx, rx) = mpsc::channel(64);
    let feed = state.subscribe();
    let handle = RaceHandle { tx, event_name: Arc::from(event_name) };
    let name = handle.event_name.clone();
    tokio::spawn(run(state, course, corrections, feed, rx, name));
    handle
}

fn gun_correction(signal: &Signal) -> Correction {
    match signal {
        Signal::GunTime { race, wave, at_us, .. } => {
            Correction::GunTime { race: race.clone(), wave: wave.clone(), at: Some(Timestamp::from_micros(*at_us)) }
        }
    }
}

/// Replays the store into a fresh engine.
async fn rebuild(state: &AppState, course: &Course, corrections: &[Correction]) -> Engine {
    let (reads, signals) = state
        .with_store(|s| {
            let mut reads: Vec<Read> = Vec::new();
            let mut signals: Vec<Signal> = Vec::new();
            let r = s.for_each_read(|_, w| reads.push(w.to_read()));
            let g = s.for_each_signal(|_, sig| signals.push(sig));
            if let Err(error) = r.and(g) {
                tracing::error!(%error, "reading the store to rebuild the race; starting from what was read");
            }
            (reads, signals)
        })
        .await
        .unwrap_or_default();
    let all_corrections: Vec<Correction> =
        signals.iter().map(gun_correction).chain(corrections.iter().cloned()).collect();
    let n = reads.len();
    let t0 = std::time::Instant::now();
    let (engine, refused) = Engine::replay(course.clone(), EngineOptions::default(), reads, all_corrections);
    for (i, e) in refused {
        tracing::warn!(correction = i, error = %e, "a correction could not be applied");
    }
    tracing::info!(reads = n, elapsed = ?t0.elapsed(), "race state rebuilt from the store");
    engine
}

async fn run(
    state: AppState,
    course: Course,
    corrections: Vec<Correction>,
    mut feed: broadcast::Receiver<Arc<crate::StoredBatch>>,
    mut queries: mpsc::Receiver<Query>,
    event_name: Arc<str>,
) {
    let mut engine = rebuild(&state, &course, &corrections).await;
    let mut summary_extra = (0u64, 0u64);
    loop {
        tokio::select! {
            batch = feed.recv() => match batch {
                Ok(batch) => {
                    for sig in &batch.signals {
                        if let Err(error) = engine.handle_correction(gun_correction(sig)) {
                            tracing::warn!(%error, edge = %batch.edge, "a gun signal could not be applied");
                        }
                    }
                    for w in &batch.reads {
                        engine.handle_read(&w.to_read());
                    }
                    // Re-apply desk corrections that touch guns, so a device's gun never overrides the desk.
                    if !batch.signals.is_empty() {
                        for c in corrections.iter().filter(|c| matches!(c, Correction::GunTime { .. })) {
                            let _ = engine.handle_correction(c.clone());
                        }
                    }
                    while engine.poll_event().is_some() {}
                    summary_extra.0 += 1;
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(skipped = n, "race task lagged behind ingest; rebuilding from the store");
                    feed = feed.resubscribe();
                    engine = rebuild(&state, &course, &corrections).await;
                    summary_extra.1 += 1;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            query = queries.recv() => match query {
                Some(Query::Standings { final_standings, precision, csv, reply }) => {
                    let rows = results_export::rows_from_engine(&engine, precision, final_standings);
                    let mut buf = Vec::new();
                    let written = if csv {
                        results_export::write_csv(&rows, engine.course(), &mut buf)
                    } else {
                        results_export::write_json(&rows, &event_name, engine.course(), precision, &mut buf)
                    };
                    if let Err(error) = written {
                        tracing::error!(%error, "writing standings");
                    }
                    let _ = reply.send(buf);
                }
                Some(Query::Summary { reply }) => {
                    let c = engine.counters();
                    let results = engine.results();
                    let count = |s: Status| results.iter().filter(|r| r.status() == s).count();
                    let _ = reply.send(Summary {
                        n_reads: c.n_reads,
                        n_duplicates: c.n_duplicates,
                        n_crossings: engine.n_crossings(),
                        n_unknown_chips: engine.unknown_chips().len(),
                        n_strays: engine.strays().len(),
                        n_wrong_race: engine.wrong_race().len(),
                        n_reviews: count(Status::Review),
                        n_finished: count(Status::Finished),
                        n_participants: results.len(),
                        n_batches_applied: summary_extra.0,
                        n_resyncs: summary_extra.1,
                    });
                }
                None => return,
            },
        }
    }
}

#[derive(Debug, Deserialize)]
struct StandingsParams {
    /// `true`: not started → DNS, running → DNF (the published final standings).
    #[serde(default)]
    r#final: bool,
    /// `s` (default) or `ms`.
    #[serde(default)]
    precision: Option<String>,
}

async fn standings(
    State(race): State<RaceHandle>,
    QueryParams(p): QueryParams<StandingsParams>,
    csv: bool,
) -> Response {
    let precision = match p.precision.as_deref() {
        None | Some("s") => Precision::Seconds,
        Some("ms") => Precision::Millis,
        Some(other) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(timing_wire::ErrorBody { error: format!("precision {other:?} is not s or ms") }),
            )
                .into_response();
        }
    };
    let (reply, rx) = oneshot::channel();
    if race.tx.send(Query::Standings { final_standings: p.r#final, precision, csv, reply }).await.is_err() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match rx.await {
        Ok(body) => ([(header::CONTENT_TYPE, if csv { "text/csv; charset=utf-8" } else { "application/json" })], body)
            .into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// Public, read-only results routes.
pub fn routes(race: RaceHandle) -> axum::Router {
    axum::Router::new()
        .route("/api/v1/standings.csv", get(|s, q| standings(s, q, true)))
        .route("/api/v1/standings.json", get(|s, q| standings(s, q, false)))
        .route(
            "/api/v1/summary",
            get(|State(race): State<RaceHandle>| async move {
                match race.summary().await {
                    Some(s) => axum::Json(s).into_response(),
                    None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
                }
            }),
        )
        .with_state(race)
}
