//! The public, read-only REST API, the live feed's route, the desk's review and gun views,
//! `/metrics`, and the OpenAPI document.
//!
//! Public views never carry birth dates or contact data (`timing_wire::live::RunnerView` has no
//! such field). Handlers ask the race task ([`RaceHandle::read`]); participant search runs on
//! the immutable course, off the race task.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use timing_core::{Course, ParticipantIdx, RankBy, Status};
use timing_wire::desk::ReviewItem;
use timing_wire::live::{
    BoardView, CategoryInfo, EventView, LIVE_VERSION, ParticipantHit, PointInfo, RaceInfo, RaceStats, SplitInfo, Topic,
    WaveInfo,
};

use crate::live::{Key, view};
use crate::race::RaceHandle;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(timing_wire::ErrorBody { error: message.into() })).into_response()
}

fn unavailable() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "the race state is not available")
}

/// The routes of this module.
pub fn routes(race: RaceHandle) -> Router {
    Router::new()
        .route("/api/v1/event", get(event))
        .route("/api/v1/participants", get(search))
        .route("/api/v1/runners/{bib}", get(runner))
        .route("/api/v1/leaderboards/{race}", get(leaderboard))
        .route("/api/v1/arrivals/{point}", get(arrivals))
        .route("/api/v1/stats/{race}", get(stats))
        .route("/api/v1/live", get(crate::live::ws::upgrade))
        .route("/api/v1/desk/review", get(review))
        .route("/api/v1/desk/guns", get(guns))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .with_state(race)
}

async fn event(State(race): State<RaceHandle>) -> Response {
    let name = race.event_name().to_string();
    let zone = race.zone().name().to_string();
    let answer = race
        .read(move |v| {
            let course = v.engine.course();
            let races = course
                .races
                .iter()
                .enumerate()
                .map(|(ri, r)| {
                    let mut divisions: Vec<String> = course
                        .categories
                        .iter()
                        .filter(|c| c.race.idx() == ri)
                        .map(|c| c.division.as_str().to_string())
                        .chain(std::iter::once(timing_core::Division::RUNNING.to_string()))
                        .collect();
                    divisions.sort();
                    divisions.dedup();
                    RaceInfo {
                        id: r.id.clone(),
                        name: r.name.clone(),
                        distance_m: r.distance_m,
                        ranked: r.ranked,
                        rank_by: match r.rank_by {
                            RankBy::Gun => "gun".into(),
                            RankBy::Chip => "chip".into(),
                        },
                        time_limit_ms: r.time_limit.as_micros() / 1000,
                        n_participants: course.participants.iter().filter(|p| p.race.idx() == ri).count() as u32,
                        splits: r
                            .splits
                            .iter()
                            .map(|s| SplitInfo {
                                point: course.point(s.point).id.as_str().to_string(),
                                name: course.point(s.point).name.clone(),
                                distance_m: s.distance_m,
                            })
                            .collect(),
                        waves: course
                            .waves
                            .iter()
                            .enumerate()
                            .filter(|(_, w)| w.race.idx() == ri)
                            .map(|(wi, w)| {
                                let (gun, scheduled_only) = v.engine.gun(timing_core::WaveIdx(wi as u16));
                                WaveInfo {
                                    id: w.id.clone(),
                                    scheduled_us: w.scheduled_start.as_micros(),
                                    gun_us: gun.as_micros(),
                                    gun_known: !scheduled_only,
                                }
                            })
                            .collect(),
                        categories: course
                            .categories
                            .iter()
                            .filter(|c| c.race.idx() == ri)
                            .map(|c| CategoryInfo {
                                code: c.code.clone(),
                                gender: c.gender.map(|g| g.code().to_string()),
                                division: c.division.as_str().to_string(),
                            })
                            .collect(),
                        divisions,
                    }
                })
                .collect();
            let points = course
                .points
                .iter()
                .map(|p| PointInfo { id: p.id.as_str().to_string(), name: p.name.clone() })
                .collect();
            EventView { v: LIVE_VERSION, name, time_zone: zone, now_us: v.now.as_micros(), races, points }
        })
        .await;
    match answer {
        Some(e) => axum::Json(e).into_response(),
        None => unavailable(),
    }
}

/// Lower case, common Latin diacritics removed: "Élodie" matches "elodie".
pub fn fold(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ą' => 'a',
            'ç' | 'ć' | 'č' => 'c',
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' => 'e',
            'ì' | 'í' | 'î' | 'ï' | 'ī' => 'i',
            'ñ' | 'ń' | 'ň' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => 'o',
            'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => 'u',
            'ý' | 'ÿ' => 'y',
            'ś' | 'š' | 'ß' => 's',
            'ź' | 'ż' | 'ž' => 'z',
            'ł' => 'l',
            'ř' => 'r',
            'ť' => 't',
            'ď' => 'd',
            c => c,
        })
        .collect()
}

/// A participant as search shows it.
pub fn hit(course: &Course, p: ParticipantIdx) -> ParticipantHit {
    let part = course.participant(p);
    ParticipantHit {
        bib: part.bib.as_str().to_string(),
        name: format!("{} {}", part.first_name, part.last_name).trim().to_string(),
        race: course.race(part.race).id.clone(),
        wave: course.wave(part.wave).id.clone(),
        gender: part.gender.code().to_string(),
        category: part.category.map(|c| course.categories[c.idx()].code.clone()),
        nation: part.nation.clone(),
        club: part.club.clone(),
    }
}

/// Participants by bib (exact, then prefix) or by every word of the query in the name or club.
pub fn find(course: &Course, names: &[String], q: &str, limit: usize) -> Vec<ParticipantIdx> {
    let q = q.trim();
    if q.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<ParticipantIdx> = Vec::new();
    if let Some(p) = course.participant_by_bib(q) {
        out.push(p);
    }
    if q.bytes().all(|b| b.is_ascii_alphanumeric()) && q.bytes().any(|b| b.is_ascii_digit()) {
        out.extend(
            course
                .participants
                .iter()
                .enumerate()
                .filter(|(_, p)| p.bib.as_str().starts_with(q) && p.bib.as_str() != q)
                .map(|(i, _)| ParticipantIdx(i as u32))
                .take(limit),
        );
    }
    let words: Vec<String> = fold(q).split_whitespace().map(str::to_string).collect();
    if !words.is_empty() && out.len() < limit {
        for (i, name) in names.iter().enumerate() {
            if out.len() >= limit {
                break;
            }
            let p = ParticipantIdx(i as u32);
            if words.iter().all(|w| name.contains(w.as_str())) && !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out.truncate(limit);
    out
}

#[derive(Debug, Deserialize)]
struct SearchParams {
    q: Option<String>,
    limit: Option<usize>,
}

async fn search(State(race): State<RaceHandle>, Query(p): Query<SearchParams>) -> Response {
    let q = p.q.unwrap_or_default();
    if q.len() > 100 {
        return error(StatusCode::BAD_REQUEST, "the query is longer than 100 characters");
    }
    let limit = p.limit.unwrap_or(20).clamp(1, 50);
    let course = race.course();
    let found = find(course, race.search_names(), &q, limit);
    axum::Json(found.into_iter().map(|p| hit(course, p)).collect::<Vec<_>>()).into_response()
}

async fn runner(State(race): State<RaceHandle>, Path(bib): Path<String>) -> Response {
    let Some(p) = race.participant_by_bib(bib.trim()) else {
        return error(StatusCode::NOT_FOUND, format!("no runner with bib {bib:?}"));
    };
    match race.read(move |v| view::runner(v.engine, p, v.now)).await {
        Some(r) => axum::Json(r).into_response(),
        None => unavailable(),
    }
}

#[derive(Debug, Deserialize)]
struct BoardParams {
    gender: Option<String>,
    category: Option<String>,
    division: Option<String>,
    top: Option<u16>,
}

async fn leaderboard(State(race): State<RaceHandle>, Path(id): Path<String>, Query(p): Query<BoardParams>) -> Response {
    let topic = Topic::Leaderboard {
        race: id,
        gender: p.gender.filter(|g| !g.is_empty()),
        category: p.category.filter(|c| !c.is_empty()),
        division: p.division.filter(|d| !d.is_empty()),
        top: p.top.unwrap_or(10),
    };
    let key = match crate::live::resolve(&race, &topic) {
        Ok(k) => k,
        Err(e) => return error(StatusCode::NOT_FOUND, e),
    };
    let Key::Board(board, depth) = key.clone() else { unreachable!("a leaderboard topic resolves to a board") };
    let answer = race
        .read(move |v| {
            let course = v.engine.course();
            let entries = view::board_entries(v.engine, &board, usize::from(depth));
            BoardView {
                v: LIVE_VERSION,
                topic: view::topic(course, &key),
                size: v.engine.board_len(&board) as u32,
                rows: entries.iter().enumerate().map(|(i, e)| view::board_row(course, i, e, None)).collect(),
            }
        })
        .await;
    match answer {
        Some(b) => axum::Json(b).into_response(),
        None => unavailable(),
    }
}

#[derive(Debug, Deserialize)]
struct ArrivalParams {
    n: Option<usize>,
}

async fn arrivals(
    State(race): State<RaceHandle>,
    Path(point): Path<String>,
    Query(p): Query<ArrivalParams>,
) -> Response {
    let Some(idx) = race.course().point_by_id(&point) else {
        return error(StatusCode::NOT_FOUND, format!("no timing point {point:?}"));
    };
    let n = p.n.unwrap_or(20).clamp(1, crate::live::ARRIVALS_KEPT);
    match race.read(move |v| view::latest_arrivals(v.engine, idx, n)).await {
        Some(a) => axum::Json(a).into_response(),
        None => unavailable(),
    }
}

async fn stats(State(race): State<RaceHandle>, Path(id): Path<String>) -> Response {
    let Some(r) = race.course().race_by_id(&id) else {
        return error(StatusCode::NOT_FOUND, format!("no race {id:?}"));
    };
    match race.read(move |v| race_stats(v.engine, r)).await {
        Some(s) => axum::Json(s).into_response(),
        None => unavailable(),
    }
}

/// Finish-time histogram and finishers per minute of one race.
pub fn race_stats(engine: &timing_core::Engine, r: timing_core::RaceIdx) -> RaceStats {
    let course = engine.course();
    let race = course.race(r);
    let finish = race.finish_split();
    let (mut n_finished, mut n_running, mut n_not_started) = (0, 0, 0);
    let mut times: Vec<i64> = Vec::new();
    let mut minutes: std::collections::BTreeMap<i64, u32> = std::collections::BTreeMap::new();
    for (i, part) in course.participants.iter().enumerate() {
        if part.race != r {
            continue;
        }
        let res = engine.result(ParticipantIdx(i as u32));
        match res.status() {
            Status::Finished => n_finished += 1,
            Status::Running | Status::Review => n_running += 1,
            Status::NotStarted => n_not_started += 1,
            _ => {}
        }
        if let Some(t) = res.chip_time {
            times.push(t.as_micros() / 1_000_000);
        }
        if let Some(p) = res.passings.get(finish).copied().flatten() {
            *minutes.entry(p.at.as_micros().div_euclid(60_000_000) * 60_000_000).or_insert(0) += 1;
        }
    }
    // Bins: 5 minutes over a half marathon, 1 minute below.
    let bin_s: u32 = if race.distance_m > 21_000 { 300 } else { 60 };
    let (lo, hi) = (times.iter().min().copied().unwrap_or(0), times.iter().max().copied().unwrap_or(0));
    let first_bin_s = (lo.max(0) as u32 / bin_s) * bin_s;
    let n_bins = if times.is_empty() { 0 } else { (hi as u32 - first_bin_s) / bin_s + 1 };
    let mut histogram = vec![0u32; n_bins as usize];
    for t in times {
        histogram[((t as u32 - first_bin_s) / bin_s) as usize] += 1;
    }
    RaceStats {
        v: LIVE_VERSION,
        race: race.id.clone(),
        n_finished,
        n_running,
        n_not_started,
        bin_s,
        first_bin_s,
        histogram,
        per_minute: minutes.into_iter().collect(),
    }
}

/// The review queue: results in review, unknown chips, wrong-race crossings, strays, gun conflicts.
pub fn review_items(engine: &timing_core::Engine, guns: &crate::guns::GunBook) -> Vec<ReviewItem> {
    let course = engine.course();
    let name = |p: ParticipantIdx| {
        let part = course.participant(p);
        format!("{} {}", part.first_name, part.last_name).trim().to_string()
    };
    let mut out: Vec<ReviewItem> = guns
        .report(engine)
        .into_iter()
        .filter(|w| w.conflict && !w.resolved_by_desk)
        .map(|w| ReviewItem::GunConflict { race: w.race, wave: w.wave, claims: w.claims })
        .collect();
    for (i, r) in engine.results().iter().enumerate() {
        if r.status() != Status::Review {
            continue;
        }
        let p = ParticipantIdx(i as u32);
        let part = course.participant(p);
        let race = course.race(part.race);
        out.push(ReviewItem::Result {
            bib: part.bib.as_str().to_string(),
            name: name(p),
            race: race.id.clone(),
            flags: r.flags.names().map(str::to_string).collect(),
            missing: race
                .splits
                .iter()
                .enumerate()
                .filter(|(k, _)| r.passings.get(*k).copied().flatten().is_none())
                .map(|(_, s)| course.point(s.point).id.as_str().to_string())
                .collect(),
        });
    }
    for u in engine.unknown_chips() {
        out.push(ReviewItem::UnknownChip {
            chip: u.chip.as_str().to_string(),
            n_reads: u.n_reads,
            first_seen_us: u.first_seen.as_micros(),
            points: u.points.iter().map(|&p| course.point(p).id.as_str().to_string()).collect(),
        });
    }
    for w in engine.wrong_race() {
        out.push(ReviewItem::WrongRace {
            bib: course.participant(w.participant).bib.as_str().to_string(),
            name: name(w.participant),
            race: course.race(course.participant(w.participant).race).id.clone(),
            point: course.point(w.point).id.as_str().to_string(),
            n_crossings: w.n_crossings,
            first_us: w.first.as_micros(),
        });
    }
    for s in engine.strays() {
        out.push(ReviewItem::Stray {
            chip: s.chip.as_str().to_string(),
            bib: s.bib.as_ref().map(|b| b.as_str().to_string()),
            point: course.point(s.point).id.as_str().to_string(),
            line: format!("{:?}", s.line).to_ascii_lowercase(),
            first_us: s.first.as_micros(),
        });
    }
    out
}

async fn review(State(race): State<RaceHandle>, headers: HeaderMap) -> Response {
    if let Err(r) = race.desk_check(&headers) {
        return *r;
    }
    match race.read(|v| review_items(v.engine, v.guns)).await {
        Some(items) => axum::Json(items).into_response(),
        None => unavailable(),
    }
}

async fn guns(State(race): State<RaceHandle>, headers: HeaderMap) -> Response {
    if let Err(r) = race.desk_check(&headers) {
        return *r;
    }
    match race.read(|v| v.guns.report(v.engine)).await {
        Some(g) => axum::Json(g).into_response(),
        None => unavailable(),
    }
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], include_str!("../openapi.json")).into_response()
}

async fn metrics(State(race): State<RaceHandle>) -> Response {
    let text = crate::metrics::render(race.state(), race.hub());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}
