//! The race task: the one owner of the race state (`timing_core::Engine`).
//!
//! Design note (rust-analyzer's main loop, STYLE 4.5): handlers never touch the engine; they
//! send a [`Query`] over a bounded channel and await the answer. The task follows the
//! ingest's feed of stored batches (`feed`) *before* replaying the store, so nothing falls
//! between the rebuild and the feed; a batch that arrives twice that way (in the scan and on
//! the feed) is recognised by its number and applied once. Each read in the store is a distinct read
//! (`(edge, seq)` is unique, and the edge's outbox drops a decoder's replays, numbered or not),
//! so the engine runs without its exact-duplicate filter (16 bytes per read). When the
//! task falls further behind than the feed holds, it rebuilds from the store the same way.
//! Gun times come from the event file, from edges' gun signals (a Modbus start-gun input), and
//! from desk corrections, applied in that order so the desk has the last word.
//! Deliberately not here yet: WebSocket fan-out, the desk API, predicted times.

use std::sync::Arc;

use axum::extract::{Query as QueryParams, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use timing_core::{
    Bib, ChipId, Correction, Course, Elapsed, Engine, EngineOptions, ParticipantIdx, PointId, Precision, Read, Status,
    StatusOverride, Timestamp,
};
use timing_wire::Signal;
use timing_wire::desk::{AuditEntry, DeskCorrection, DeskRequest};
use tokio::sync::{mpsc, oneshot};

use crate::AppState;
use crate::feed::FeedItem;
use crate::guns::{GunBook, Source};
use crate::live::ws::{Admissions, LiveConfig};
use crate::live::{Frame, Hub, Key, Publisher};

/// Counts a results desk watches.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub n_reads: u64,
    /// Reads the engine dropped as exact copies: 0 here, where every stored read is distinct.
    /// Uploads of reads already stored are counted per edge (fleet, `/metrics`).
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

/// A standings file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    Xlsx,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }
}

/// What handlers can ask the race task.
#[derive(Debug)]
enum Query {
    Standings {
        final_standings: bool,
        precision: Precision,
        format: Format,
        filter: results_export::Filter,
        reply: oneshot::Sender<Vec<u8>>,
    },
    Summary {
        reply: oneshot::Sender<Summary>,
    },
    Desk {
        request: DeskRequest,
        undoes: Option<u64>,
        reply: oneshot::Sender<Result<AuditEntry, String>>,
    },
    /// A live-feed snapshot for one subscriber.
    Snapshot {
        key: Key,
        reply: oneshot::Sender<Frame>,
    },
    /// A read-only look at the state (REST views); the closure answers through its own channel.
    Read(ReadFn),
}

/// What a [`Query::Read`] sees.
#[derive(Debug)]
pub struct View<'a> {
    pub engine: &'a Engine,
    pub guns: &'a GunBook,
    pub now: Timestamp,
    extra: &'a Summary,
}

impl View<'_> {
    pub fn summary(&self) -> Summary {
        current_summary(self.engine, self.extra)
    }
}

pub struct ReadFn(Box<dyn FnOnce(&View<'_>) + Send>);

impl std::fmt::Debug for ReadFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadFn")
    }
}

/// A handle to the running race task. Cheap to clone.
#[derive(Clone)]
pub struct RaceHandle {
    tx: mpsc::Sender<Query>,
    event_name: Arc<str>,
    state: AppState,
    desk_token: Arc<Option<String>>,
    live: Arc<LiveShared>,
}

/// What WebSocket connections share.
#[derive(Debug)]
struct LiveShared {
    hub: Arc<Hub>,
    admissions: Arc<Admissions>,
    config: LiveConfig,
    course: Arc<Course>,
    zone: chrono_tz::Tz,
    /// Per participant, folded "first last club" for search.
    names: Vec<String>,
    /// Participants by bib (the course's own lookup is a scan; this one runs per subscription).
    bibs: rustc_hash::FxHashMap<Box<str>, ParticipantIdx>,
}

impl std::fmt::Debug for RaceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaceHandle").field("event_name", &self.event_name).finish_non_exhaustive()
    }
}

/// What the race task starts from.
#[derive(Debug, Clone)]
pub struct RaceSetup {
    pub course: Course,
    /// Corrections from the event folder (a desk file), applied before the desk's audit log.
    pub corrections: Vec<Correction>,
    pub event_name: String,
    /// The event's zone, for desk times written without an offset.
    pub zone: chrono_tz::Tz,
    /// The results desk's bearer token; `None` disables the desk API.
    pub desk_token: Option<String>,
    /// Limits of the live feed.
    pub live: LiveConfig,
}

/// A desk correction in core terms. Instants are RFC 3339, or local to the event's zone.
pub fn to_core(c: &DeskCorrection, why: &str, zone: chrono_tz::Tz) -> Result<Correction, String> {
    let at = |s: &Option<String>| s.as_deref().map(|s| event_config::units::parse_instant(s, zone)).transpose();
    Ok(match c {
        DeskCorrection::GunTime { race, wave, at: t } => {
            Correction::GunTime { race: race.clone(), wave: wave.clone(), at: at(t)? }
        }
        DeskCorrection::ManualPassing { bib, point, at: t } => {
            Correction::ManualPassing { bib: Bib::new(bib), point: PointId::new(point), at: at(t)? }
        }
        DeskCorrection::Status { bib, status } => Correction::Status {
            bib: Bib::new(bib),
            status: match status {
                None => None,
                Some(s) => Some(
                    StatusOverride::parse(s)
                        .ok_or_else(|| format!("unknown status {s:?}: expected DNS, DNF, DSQ or accept"))?,
                ),
            },
            reason: why.to_string(),
        },
        DeskCorrection::AssignChip { chip, bib } => {
            Correction::AssignChip { chip: ChipId::new(&chip.to_ascii_uppercase()), bib: bib.as_deref().map(Bib::new) }
        }
        DeskCorrection::ClockOffset { point, offset_ms } => {
            Correction::PointClockOffset { point: PointId::new(point), offset: Elapsed::from_millis(*offset_ms) }
        }
    })
}

impl RaceHandle {
    pub async fn summary(&self) -> Option<Summary> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Query::Summary { reply }).await.ok()?;
        rx.await.ok()
    }

    /// A live-feed snapshot of `key` (None if the race task is gone).
    pub async fn snapshot(&self, key: Key) -> Option<Frame> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Query::Snapshot { key, reply }).await.ok()?;
        rx.await.ok()
    }

    /// Runs `f` on the race state between batches (None if the race task is gone).
    pub async fn read<T: Send + 'static>(&self, f: impl FnOnce(&View<'_>) -> T + Send + 'static) -> Option<T> {
        let (reply, rx) = oneshot::channel();
        let job = ReadFn(Box::new(move |v| {
            let _ = reply.send(f(v));
        }));
        self.tx.send(Query::Read(job)).await.ok()?;
        rx.await.ok()
    }

    /// The event's course (immutable).
    pub fn course(&self) -> &Course {
        &self.live.course
    }

    /// The participant wearing `bib` (exactly as given).
    pub fn participant_by_bib(&self, bib: &str) -> Option<ParticipantIdx> {
        self.live.bibs.get(bib).copied()
    }

    /// The event's time zone (for display).
    pub fn zone(&self) -> chrono_tz::Tz {
        self.live.zone
    }

    pub fn event_name(&self) -> &str {
        &self.event_name
    }

    /// The aggregator's clock (the race clock in a simulation).
    pub fn now(&self) -> Timestamp {
        self.state.now()
    }

    pub(crate) fn search_names(&self) -> &[String] {
        &self.live.names
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.live.hub
    }

    pub(crate) fn live_parts(&self) -> (Arc<Hub>, Arc<Admissions>, LiveConfig) {
        (self.live.hub.clone(), self.live.admissions.clone(), self.live.config)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub(crate) fn desk_check(&self, headers: &axum::http::HeaderMap) -> Result<(), Box<Response>> {
        desk_auth(self, headers)
    }
}

/// Starts the race task on `state`'s store and feed.
pub fn start(state: AppState, setup: RaceSetup) -> RaceHandle {
    let (tx, rx) = mpsc::channel(64);
    state.follow();
    let hub = Arc::new(Hub::new(setup.live.topic_capacity));
    let handle = RaceHandle {
        tx,
        event_name: Arc::from(setup.event_name.as_str()),
        state: state.clone(),
        desk_token: Arc::new(setup.desk_token.clone()),
        live: Arc::new(LiveShared {
            hub: hub.clone(),
            admissions: Arc::new(Admissions::new()),
            config: setup.live,
            course: Arc::new(setup.course.clone()),
            zone: setup.zone,
            names: setup
                .course
                .participants
                .iter()
                .map(|p| crate::api::fold(&format!("{} {} {}", p.first_name, p.last_name, p.club)))
                .collect(),
            bibs: (setup.course.participants.iter().enumerate())
                .map(|(i, p)| (Box::from(p.bib.as_str()), ParticipantIdx(i as u32)))
                .collect(),
        }),
    };
    let name = handle.event_name.clone();
    tokio::spawn(run(state, setup, rx, name, hub));
    handle
}

fn gun_correction(signal: &Signal) -> Correction {
    match signal {
        Signal::GunTime { race, wave, at_us, .. } => {
            Correction::GunTime { race: race.clone(), wave: wave.clone(), at: Some(Timestamp::from_micros(*at_us)) }
        }
    }
}

/// The desk's audit log as core corrections, in order.
async fn desk_log(state: &AppState, zone: chrono_tz::Tz) -> Vec<Correction> {
    let entries = state.with_store(|s| s.audit()).await.ok().and_then(Result::ok).unwrap_or_default();
    entries
        .into_iter()
        .filter_map(|(id, _, _, why, json, _)| {
            let c: DeskCorrection = serde_json::from_str(&json)
                .map_err(|e| tracing::error!(id, error = %e, "unreadable audit entry"))
                .ok()?;
            to_core(&c, &why, zone).map_err(|e| tracing::error!(id, error = %e, "audit entry no longer applies")).ok()
        })
        .collect()
}

/// A gun signal's claim in the gun book.
fn claim_signal(guns: &mut GunBook, course: &Course, edge: &str, signal: &Signal) {
    match signal {
        Signal::GunTime { race, wave, at_us, source, jitter_us, .. } => guns.claim(
            course,
            (race, wave),
            Some(Timestamp::from_micros(*at_us)),
            Source { label: format!("{edge}: {source}"), jitter_us: *jitter_us, from_desk: false },
        ),
    }
}

/// A desk correction as the engine gets it. The engine holds one gun per wave, which a plain
/// clear would drop: clearing the desk's gun gives back the one the other sources set.
fn for_engine(c: &Correction, guns: &GunBook, course: &Course) -> Correction {
    match c {
        Correction::GunTime { race, wave, at: None } => {
            Correction::GunTime { race: race.clone(), wave: wave.clone(), at: guns.without_desk(course, race, wave) }
        }
        _ => c.clone(),
    }
}

/// Gun corrections in the gun book (`None` for other corrections).
fn claim_correction(guns: &mut GunBook, course: &Course, c: &Correction, source: &str, from_desk: bool) {
    if let Correction::GunTime { race, wave, at } = c {
        guns.claim(course, (race, wave), *at, Source { label: source.to_string(), jitter_us: 0, from_desk });
    }
}

/// Replays the store into a fresh engine: reads, then gun signals, the event's corrections, and
/// the desk's audit log, in that order. The gun book records every gun claim on the way.
/// Also returns how many published batches the replay holds (see [`AppState::batches_published`]).
async fn rebuild(
    state: &AppState,
    course: &Course,
    corrections: &[Correction],
    desk: &[Correction],
) -> (Engine, GunBook, u64) {
    let st = state.clone();
    let (reads, signals, covered) = state
        .with_store(move |s| {
            let mut reads: Vec<Read> = Vec::new();
            let mut signals: Vec<(String, Signal)> = Vec::new();
            let r = s.for_each_read(|_, w| reads.push(w.to_read()));
            let g = s.for_each_signal(|edge, sig| signals.push((edge.to_string(), sig)));
            if let Err(error) = r.and(g) {
                tracing::error!(%error, "reading the store to rebuild the race; starting from what was read");
            }
            (reads, signals, st.batches_published())
        })
        .await
        .unwrap_or_default();
    let mut guns = GunBook::new(course);
    for (edge, sig) in &signals {
        claim_signal(&mut guns, course, edge, sig);
    }
    for c in corrections {
        claim_correction(&mut guns, course, c, crate::guns::CORRECTIONS_FILE, false);
    }
    for c in desk {
        claim_correction(&mut guns, course, c, "desk", true);
    }
    let all_corrections: Vec<Correction> = signals
        .iter()
        .map(|(_, sig)| gun_correction(sig))
        .chain(corrections.iter().cloned())
        .chain(desk.iter().map(|c| for_engine(c, &guns, course)))
        .collect();
    let n = reads.len();
    let t0 = std::time::Instant::now();
    let options = EngineOptions { dedup_reads: false, events: true };
    let (engine, refused) = Engine::replay(course.clone(), options, reads, all_corrections);
    for (i, e) in refused {
        tracing::warn!(correction = i, error = %e, "a correction could not be applied");
    }
    tracing::info!(reads = n, elapsed = ?t0.elapsed(), "race state rebuilt from the store");
    (engine, guns, covered)
}

/// Sleeps until `due`, or forever when nothing is waiting.
async fn board_due(due: Option<std::time::Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

fn drain_events(engine: &mut Engine) -> Vec<timing_core::RaceEvent> {
    std::iter::from_fn(|| engine.poll_event()).collect()
}

async fn run(
    state: AppState,
    setup: RaceSetup,
    mut queries: mpsc::Receiver<Query>,
    event_name: Arc<str>,
    hub: Arc<Hub>,
) {
    let RaceSetup { course, corrections, zone, live, .. } = setup;
    let mut desk = desk_log(&state, zone).await;
    let (mut engine, mut guns, mut covered) = rebuild(&state, &course, &corrections, &desk).await;
    let mut publisher = Publisher::new(hub, &engine, live.board_every);
    let mut summary = Summary::default();
    let mut refresh = tokio::time::interval(live.refresh);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            item = state.feed().next() => match item {
                FeedItem::Batch(batch) if batch.no <= covered => {} // already in the replay
                FeedItem::Batch(batch) => {
                    let t0 = std::time::Instant::now();
                    for sig in &batch.signals {
                        claim_signal(&mut guns, &course, &batch.edge, sig);
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
                        for c in desk.iter().filter(|c| matches!(c, Correction::GunTime { .. })) {
                            let _ = engine.handle_correction(for_engine(c, &guns, &course));
                        }
                    }
                    let events = drain_events(&mut engine);
                    publisher.publish(&engine, &events, state.now(), std::time::Instant::now());
                    summary.n_batches_applied += 1;
                    state.record_apply(batch.reads.len(), t0.elapsed());
                }
                FeedItem::Lagged => {
                    tracing::warn!("the race task fell behind ingest by more than the feed holds; rebuilding from the store");
                    (engine, guns, covered) = rebuild(&state, &course, &corrections, &desk).await;
                    publisher.resync_all(&engine, state.now());
                    summary.n_resyncs += 1;
                }
            },
            _ = refresh.tick() => publisher.refresh(&engine, state.now()),
            () = board_due(publisher.next_board_due()) => publisher.flush_boards(&engine, std::time::Instant::now()),
            query = queries.recv() => match query {
                Some(Query::Standings { final_standings, precision, format, filter, reply }) => {
                    let rows: Vec<_> = results_export::rows_from_engine(&engine, precision, final_standings)
                        .into_iter()
                        .filter(|r| filter.keeps(r))
                        .collect();
                    let mut buf = Vec::new();
                    let written = match format {
                        Format::Csv => results_export::write_csv(&rows, engine.course(), &mut buf),
                        Format::Json => results_export::write_json(&rows, &event_name, engine.course(), precision, &mut buf),
                        Format::Xlsx => results_export::write_xlsx(&rows, engine.course(), precision)
                            .map(|b| buf = b)
                            .map_err(std::io::Error::other),
                    };
                    if let Err(error) = written {
                        tracing::error!(%error, "writing standings");
                    }
                    let _ = reply.send(buf);
                }
                Some(Query::Summary { reply }) => {
                    let _ = reply.send(current_summary(&engine, &summary));
                }
                Some(Query::Snapshot { key, reply }) => {
                    let _ = reply.send(publisher.snapshot(&engine, &key, state.now()));
                }
                Some(Query::Read(job)) => {
                    (job.0)(&View { engine: &engine, guns: &guns, now: state.now(), extra: &summary });
                }
                Some(Query::Desk { request, undoes, reply }) => {
                    let answer = async {
                        let core = to_core(&request.correction, &request.why, zone)?;
                        // Validate by applying: a refused correction changes nothing.
                        engine.handle_correction(for_engine(&core, &guns, &course)).map_err(|e| e.to_string())?;
                        let json = serde_json::to_string(&request.correction).map_err(|e| e.to_string())?;
                        let (who, why) = (request.who.clone(), request.why.clone());
                        let now = timing_core::time::Clock::now(&crate::SystemClock);
                        let stored = state.with_store(move |s| s.append_audit(now, &who, &why, &json, undoes)).await?;
                        match stored {
                            Ok(id) => {
                                claim_correction(&mut guns, &course, &core, "desk", true);
                                desk.push(core);
                                Ok(AuditEntry { id, at_us: now.as_micros(), who: request.who, why: request.why, correction: request.correction, undoes })
                            }
                            Err(e) => Err(format!("the correction could not be recorded ({e}); nothing changed")),
                        }
                    }
                    .await;
                    if answer.is_ok() {
                        let events = drain_events(&mut engine);
                        publisher.publish(&engine, &events, state.now(), std::time::Instant::now());
                    } else {
                        // Whatever was applied but not recorded must not stay: rebuild from what is recorded.
                        (engine, guns, covered) = rebuild(&state, &course, &corrections, &desk).await;
                        publisher.resync_all(&engine, state.now());
                    }
                    let _ = reply.send(answer);
                }
                None => return,
            },
        }
    }
}

fn current_summary(engine: &Engine, extra: &Summary) -> Summary {
    let c = engine.counters();
    let results = engine.results();
    let count = |s: Status| results.iter().filter(|r| r.status() == s).count();
    Summary {
        n_reads: c.n_reads,
        n_duplicates: c.n_duplicates,
        n_crossings: engine.n_crossings(),
        n_unknown_chips: engine.unknown_chips().len(),
        n_strays: engine.strays().len(),
        n_wrong_race: engine.wrong_race().len(),
        n_reviews: count(Status::Review),
        n_finished: count(Status::Finished),
        n_participants: results.len(),
        n_batches_applied: extra.n_batches_applied,
        n_resyncs: extra.n_resyncs,
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
    format: Format,
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
    if race
        .tx
        .send(Query::Standings {
            final_standings: p.r#final,
            precision,
            format,
            filter: results_export::Filter::default(),
            reply,
        })
        .await
        .is_err()
    {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match rx.await {
        Ok(body) => ([(header::CONTENT_TYPE, format.content_type())], body).into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(timing_wire::ErrorBody { error: message.into() })).into_response()
}

/// The desk's bearer token, compared in constant time.
fn desk_auth(race: &RaceHandle, headers: &axum::http::HeaderMap) -> Result<(), Box<Response>> {
    use subtle::ConstantTimeEq;
    let Some(expected) = race.desk_token.as_ref() else {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "the results desk is disabled on this aggregator (no desk token configured)",
        )));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    match presented {
        None => Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "missing bearer token (send Authorization: Bearer <desk token>)",
        ))),
        Some(t) if bool::from(t.as_bytes().ct_eq(expected.as_bytes())) => Ok(()),
        Some(_) => Err(Box::new(error(StatusCode::FORBIDDEN, "not the desk token"))),
    }
}

async fn desk_apply(race: &RaceHandle, request: DeskRequest, undoes: Option<u64>) -> Response {
    if let Err(e) = timing_wire::check_version(request.v) {
        return error(StatusCode::BAD_REQUEST, e);
    }
    if request.who.trim().is_empty() || request.why.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "a correction needs who and why (the audit log records both)");
    }
    let (reply, rx) = oneshot::channel();
    if race.tx.send(Query::Desk { request, undoes, reply }).await.is_err() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match rx.await {
        Ok(Ok(entry)) => axum::Json(entry).into_response(),
        Ok(Err(message)) => error(StatusCode::BAD_REQUEST, message),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn post_correction(
    State(race): State<RaceHandle>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = desk_auth(&race, &headers) {
        return *r;
    }
    match serde_json::from_slice::<DeskRequest>(&body) {
        Ok(request) => desk_apply(&race, request, None).await,
        Err(e) => error(StatusCode::BAD_REQUEST, format!("malformed correction: {e}")),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UndoRequest {
    v: u16,
    who: String,
    why: String,
}

async fn audit_entries(race: &RaceHandle) -> Result<Vec<AuditEntry>, Response> {
    let rows = race.state.with_store(|s| s.audit()).await.map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let rows = rows.map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, at, who, why, json, undoes)| {
            serde_json::from_str(&json).ok().map(|correction| AuditEntry {
                id,
                at_us: at.as_micros(),
                who,
                why,
                correction,
                undoes,
            })
        })
        .collect())
}

/// Undo is a new entry: the same key back to what it was before entry `id`.
async fn post_undo(
    State(race): State<RaceHandle>,
    axum::extract::Path(id): axum::extract::Path<u64>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = desk_auth(&race, &headers) {
        return *r;
    }
    let undo: UndoRequest = match serde_json::from_slice(&body) {
        Ok(u) => u,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("malformed undo: {e}")),
    };
    let entries = match audit_entries(&race).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let Some(target) = entries.iter().find(|e| e.id == id) else {
        return error(StatusCode::NOT_FOUND, format!("no audit entry {id}"));
    };
    let key = target.correction.key();
    let before = entries.iter().rev().find(|e| e.id < id && e.correction.key() == key).map(|e| e.correction.clone());
    let correction = before.unwrap_or_else(|| target.correction.cleared());
    desk_apply(&race, DeskRequest { v: undo.v, who: undo.who, why: undo.why, correction }, Some(id)).await
}

async fn get_audit(State(race): State<RaceHandle>, headers: axum::http::HeaderMap) -> Response {
    if let Err(r) = desk_auth(&race, &headers) {
        return *r;
    }
    match audit_entries(&race).await {
        Ok(e) => axum::Json(e).into_response(),
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize)]
struct ExportParams {
    race: Option<String>,
    gender: Option<String>,
    category: Option<String>,
    #[serde(default)]
    precision: Option<String>,
}

async fn export(race: RaceHandle, headers: axum::http::HeaderMap, p: ExportParams, format: Format) -> Response {
    if let Err(r) = desk_auth(&race, &headers) {
        return *r;
    }
    let precision = match p.precision.as_deref() {
        None | Some("s") => Precision::Seconds,
        Some("ms") => Precision::Millis,
        Some(other) => return error(StatusCode::BAD_REQUEST, format!("precision {other:?} is not s or ms")),
    };
    let filter = results_export::Filter { race: p.race, gender: p.gender, category: p.category };
    let (reply, rx) = oneshot::channel();
    if race.tx.send(Query::Standings { final_standings: true, precision, format, filter, reply }).await.is_err() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match rx.await {
        Ok(body) => ([(header::CONTENT_TYPE, format.content_type())], body).into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn export_route(
    State(race): State<RaceHandle>,
    axum::extract::Path(ext): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
    QueryParams(p): QueryParams<ExportParams>,
) -> Response {
    let format = match ext.as_str() {
        "csv" => Format::Csv,
        "json" => Format::Json,
        "xlsx" => Format::Xlsx,
        other => return error(StatusCode::NOT_FOUND, format!("no export format {other:?}: csv, json or xlsx")),
    };
    export(race, headers, p, format).await
}

/// Public, read-only results routes, and the desk's routes (desk token).
pub fn routes(race: RaceHandle) -> axum::Router {
    use axum::routing::post;
    axum::Router::new()
        .route("/api/v1/desk/corrections", post(post_correction))
        .route("/api/v1/desk/undo/{id}", post(post_undo))
        .route("/api/v1/desk/audit", get(get_audit))
        .route("/api/v1/desk/export.{ext}", get(export_route))
        .route("/api/v1/standings.csv", get(|s, q| standings(s, q, Format::Csv)))
        .route("/api/v1/standings.json", get(|s, q| standings(s, q, Format::Json)))
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
