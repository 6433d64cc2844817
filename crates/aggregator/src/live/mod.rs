//! Live splits for spectators: topics, the fan-out hub, and the race task's publisher.
//!
//! Design note. The race task owns the engine and is the only publisher: after each applied
//! batch it turns the engine's events into messages, serialised once, and sends each to its
//! topic's `tokio::sync::broadcast` channel. Sending never waits: a broadcast channel is a ring
//! shared by all of a topic's subscribers, so a slow WebSocket client cannot slow the engine or
//! any other client; it finds out it fell behind (`Lagged`) and is resynced from a fresh snapshot
//! (see `ws`). Only topics someone subscribes to exist (a runner nobody follows costs nothing),
//! and the publisher keeps per-topic state (a leaderboard's last published head, the arrivals
//! ring of each point) to send deltas. Leaderboards, which go to every spectator of a race, are
//! paced: at most one delta per `LiveConfig::board_every`, later changes merged into the next.
//! Ordering: a subscriber takes its receiver first and then asks the race task for a snapshot
//! at version V; every later delta carries a version > V, earlier ones are skipped.
//! This is the seam where a fan-out engine (NATS JetStream across gateway nodes) slots in: the
//! hub's `publish` and `subscribe` are all the rest of the aggregator uses.

pub mod view;
pub mod ws;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use rustc_hash::{FxHashMap, FxHashSet};
use timing_core::{Board, Engine, Gender, ParticipantIdx, PointIdx, RaceEvent, Timestamp};
use timing_wire::live::{Arrival, BOARD_DEPTHS, LIVE_VERSION, ServerMessage, Topic};
use tokio::sync::broadcast;

/// How many arrivals a point's feed keeps for a new subscriber's snapshot.
pub const ARRIVALS_KEPT: usize = 50;

/// A topic resolved against the course.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    Runner(ParticipantIdx),
    /// A ranking list and how deep its head is published.
    Board(Board, u16),
    Arrivals(PointIdx),
}

/// Resolves a client's topic against the race, or says what is wrong with it.
pub fn resolve(race: &crate::race::RaceHandle, topic: &Topic) -> Result<Key, String> {
    let course = race.course();
    match topic {
        Topic::Runner { bib } => {
            race.participant_by_bib(bib.trim()).map(Key::Runner).ok_or_else(|| format!("no runner with bib {bib:?}"))
        }
        Topic::Arrivals { point } => {
            course.point_by_id(point).map(Key::Arrivals).ok_or_else(|| format!("no timing point {point:?}"))
        }
        Topic::Leaderboard { race, gender, category, division, top } => {
            let r = course.race_by_id(race).ok_or_else(|| format!("no race {race:?}"))?;
            let depth = BOARD_DEPTHS
                .iter()
                .copied()
                .find(|&d| d >= (*top).max(1))
                .ok_or_else(|| format!("top {top} is deeper than {}", BOARD_DEPTHS[BOARD_DEPTHS.len() - 1]))?;
            let division = timing_core::Division(
                division.as_deref().unwrap_or(timing_core::Division::RUNNING).to_ascii_lowercase().into(),
            );
            let board = match (gender, category) {
                (_, Some(code)) => {
                    let c = course
                        .categories
                        .iter()
                        .position(|c| c.race == r && c.code.eq_ignore_ascii_case(code))
                        .ok_or_else(|| format!("no category {code:?} in race {race:?}"))?;
                    Board::Category(timing_core::CategoryIdx(c as u16))
                }
                (Some(g), None) => Board::Gender {
                    race: r,
                    division,
                    gender: Gender::parse(g).ok_or_else(|| format!("unknown gender {g:?}: expected M, F or X"))?,
                },
                (None, None) => Board::Overall { race: r, division },
            };
            Ok(Key::Board(board, depth))
        }
    }
}

/// A serialised message and the state version it brings a subscriber to.
#[derive(Clone, Debug)]
pub struct Frame {
    pub version: u64,
    pub text: Utf8Bytes,
    /// When the race task made it (delivery latency is measured from here).
    pub made: std::time::Instant,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct LiveStats {
    pub clients: AtomicU64,
    pub connections_total: AtomicU64,
    pub messages_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub resyncs: AtomicU64,
    pub dropped_slow: AtomicU64,
    pub closed_flood: AtomicU64,
    pub closed_garbage: AtomicU64,
    pub refused_limit: AtomicU64,
    pub published: AtomicU64,
    /// From a published message's making to its write to each subscriber's socket.
    pub delivery: crate::metrics::Histogram,
}

/// Topics with subscribers, each a broadcast channel.
///
/// Runners' topics (tens of thousands at a big race) are kept apart from the few shared ones
/// (leaderboards, arrivals), so that publishing one batch looks up only the runners it changed.
#[derive(Debug)]
pub struct Hub {
    runners: Mutex<FxHashMap<ParticipantIdx, broadcast::Sender<Frame>>>,
    shared: Mutex<FxHashMap<Key, broadcast::Sender<Frame>>>,
    /// Messages a topic holds for its slowest subscriber before that one must resync.
    capacity: usize,
    pub stats: LiveStats,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn join<K: std::hash::Hash + Eq + Clone>(
    map: &mut FxHashMap<K, broadcast::Sender<Frame>>,
    key: &K,
    capacity: usize,
) -> broadcast::Receiver<Frame> {
    match map.get(key) {
        Some(tx) => tx.subscribe(),
        None => {
            let (tx, rx) = broadcast::channel(capacity);
            map.insert(key.clone(), tx);
            rx
        }
    }
}

impl Hub {
    pub fn new(capacity: usize) -> Hub {
        Hub {
            runners: Mutex::new(FxHashMap::default()),
            shared: Mutex::new(FxHashMap::default()),
            capacity: capacity.max(2),
            stats: LiveStats::default(),
        }
    }

    pub fn subscribe(&self, key: &Key) -> broadcast::Receiver<Frame> {
        match key {
            Key::Runner(p) => join(&mut locked(&self.runners), p, self.capacity),
            _ => join(&mut locked(&self.shared), key, self.capacity),
        }
    }

    /// A topic's channel, if someone listens.
    fn sender(&self, key: &Key) -> Option<broadcast::Sender<Frame>> {
        let live = |tx: &&broadcast::Sender<Frame>| tx.receiver_count() > 0;
        match key {
            Key::Runner(p) => locked(&self.runners).get(p).filter(live).cloned(),
            _ => locked(&self.shared).get(key).filter(live).cloned(),
        }
    }

    /// The leaderboards and arrivals feeds someone listens to (a handful).
    fn watched_shared(&self) -> Vec<(Key, broadcast::Sender<Frame>)> {
        locked(&self.shared)
            .iter()
            .filter(|(_, tx)| tx.receiver_count() > 0)
            .map(|(k, tx)| (k.clone(), tx.clone()))
            .collect()
    }

    /// The runners someone follows.
    fn watched_runners(&self) -> Vec<(ParticipantIdx, broadcast::Sender<Frame>)> {
        locked(&self.runners).iter().filter(|(_, tx)| tx.receiver_count() > 0).map(|(p, tx)| (*p, tx.clone())).collect()
    }

    /// Forgets topics nobody listens to any more.
    fn prune(&self) {
        locked(&self.runners).retain(|_, tx| tx.receiver_count() > 0);
        locked(&self.shared).retain(|_, tx| tx.receiver_count() > 0);
    }

    pub fn n_topics(&self) -> usize {
        locked(&self.runners).len() + locked(&self.shared).len()
    }
}

fn frame(version: u64, msg: &ServerMessage) -> Frame {
    let text = serde_json::to_string(msg).expect("live messages serialise");
    Frame { version, text: Utf8Bytes::from(text), made: std::time::Instant::now() }
}

/// The race task's side of the live feed.
#[derive(Debug)]
pub struct Publisher {
    hub: Arc<Hub>,
    version: u64,
    /// The head of each watched leaderboard as last published.
    boards: FxHashMap<Key, Vec<view::Entry>>,
    /// Each point's latest arrivals, newest first.
    arrivals: Vec<VecDeque<Arrival>>,
    /// Places and overdue flags of watched runners as last published (refreshed periodically).
    runners: FxHashMap<ParticipantIdx, (timing_core::Places, bool)>,
    /// A leaderboard goes out at most this often (see [`Publisher::flush_boards`]).
    board_every: Duration,
    /// When each watched leaderboard last went out.
    board_sent: FxHashMap<Key, Instant>,
    /// Leaderboards changed since they last went out, waiting for their interval to pass.
    board_pending: FxHashSet<Key>,
}

impl Publisher {
    /// `board_every`: how often a leaderboard may go out at most.
    pub fn new(hub: Arc<Hub>, engine: &Engine, board_every: Duration) -> Publisher {
        let mut p = Publisher {
            hub,
            version: 0,
            boards: FxHashMap::default(),
            arrivals: Vec::new(),
            runners: FxHashMap::default(),
            board_every,
            board_sent: FxHashMap::default(),
            board_pending: FxHashSet::default(),
        };
        p.reload_arrivals(engine);
        p
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    fn reload_arrivals(&mut self, engine: &Engine) {
        self.arrivals = (0..engine.course().points.len())
            .map(|i| view::latest_arrivals(engine, PointIdx(i as u16), ARRIVALS_KEPT).into())
            .collect();
    }

    fn send(&self, tx: &broadcast::Sender<Frame>, f: Frame) {
        // No receiver left is not an error: the topic is pruned at the next round.
        let _ = tx.send(f);
        self.hub.stats.published.fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot for one subscriber (also makes the publisher track the topic).
    pub fn snapshot(&mut self, engine: &Engine, key: &Key, now: Timestamp) -> Frame {
        // A snapshot becomes the leaderboard's new base for deltas: a change still waiting for
        // its interval goes to the existing subscribers first, or they would never get it.
        if self.board_pending.remove(key) {
            self.version += 1;
            self.publish_board(engine, key, Instant::now());
        }
        let course = engine.course();
        let topic = view::topic(course, key);
        let msg = match key {
            Key::Runner(p) => {
                let runner = view::runner(engine, *p, now);
                self.runners.insert(*p, (engine.places(*p), runner.prediction.as_ref().is_some_and(|p| p.overdue)));
                ServerMessage::Runner {
                    v: LIVE_VERSION,
                    topic,
                    version: self.version,
                    snapshot: true,
                    runner: Box::new(runner),
                }
            }
            Key::Board(board, depth) => {
                let entries = view::board_entries(engine, board, usize::from(*depth));
                let rows = entries.iter().enumerate().map(|(i, e)| view::board_row(course, i, e, None)).collect();
                let msg = ServerMessage::Leaderboard {
                    v: LIVE_VERSION,
                    topic,
                    version: self.version,
                    snapshot: true,
                    size: engine.board_len(board) as u32,
                    length: entries.len() as u32,
                    rows,
                };
                self.boards.insert(key.clone(), entries);
                msg
            }
            Key::Arrivals(point) => ServerMessage::Arrivals {
                v: LIVE_VERSION,
                topic,
                version: self.version,
                snapshot: true,
                items: self.arrivals[point.idx()].iter().cloned().collect(),
                removed: Vec::new(),
            },
        };
        frame(self.version, &msg)
    }

    /// Publishes what the events of one applied batch changed. `wall`: this machine's clock
    /// now (it paces the leaderboards; `now` is the race clock).
    pub fn publish(&mut self, engine: &Engine, events: &[RaceEvent], now: Timestamp, wall: Instant) {
        if events.is_empty() {
            return;
        }
        self.version += 1;
        let course = engine.course();
        let mut changed: FxHashSet<ParticipantIdx> = FxHashSet::default();
        // Per point: arrivals new or moved in this batch (one per bib), and withdrawn bibs.
        let mut new_arrivals: FxHashMap<PointIdx, Vec<Arrival>> = FxHashMap::default();
        let mut removed: FxHashMap<PointIdx, Vec<String>> = FxHashMap::default();
        for e in events {
            match e {
                RaceEvent::Passing { participant, split, passing } => {
                    changed.insert(*participant);
                    let race = course.race(course.participant(*participant).race);
                    let point = race.splits[*split].point;
                    let ring = &mut self.arrivals[point.idx()];
                    let bib = course.participant(*participant).bib.as_str();
                    ring.retain(|a| a.bib != bib);
                    let fresh = new_arrivals.entry(point).or_default();
                    fresh.retain(|a| a.bib != bib);
                    match passing.and_then(|_| view::arrival(engine, *participant, *split)) {
                        Some(a) => {
                            ring.push_front(a.clone());
                            ring.truncate(ARRIVALS_KEPT);
                            fresh.push(a);
                        }
                        None => removed.entry(point).or_default().push(bib.to_string()),
                    }
                }
                RaceEvent::Finished { participant, .. } | RaceEvent::StatusChanged { participant, .. } => {
                    changed.insert(*participant);
                }
                RaceEvent::GunTime { .. } | RaceEvent::UnknownChip { .. } => {}
            }
        }
        // An arrival already shown whose runner changed otherwise is made again: a finish shown
        // before the start edge's upload came in has its chip time from the gun until then, and
        // a status can take its place away. Clients replace an item by bib.
        for &p in &changed {
            let part = course.participant(p);
            let bib = part.bib.as_str();
            for (split, s) in course.race(part.race).splits.iter().enumerate() {
                let Some(shown) = self.arrivals[s.point.idx()].iter_mut().find(|a| a.bib == bib) else { continue };
                let Some(now) = view::arrival(engine, p, split) else { continue };
                if *shown != now {
                    *shown = now.clone();
                    let fresh = new_arrivals.entry(s.point).or_default();
                    fresh.retain(|a| a.bib != bib);
                    // Older than this batch's new passings: last once the list is turned newest first.
                    fresh.insert(0, now);
                }
            }
        }
        for p in &changed {
            let key = Key::Runner(*p);
            let Some(tx) = self.hub.sender(&key) else { continue };
            let runner = view::runner(engine, *p, now);
            self.runners.insert(*p, (engine.places(*p), runner.prediction.as_ref().is_some_and(|p| p.overdue)));
            let msg = ServerMessage::Runner {
                v: LIVE_VERSION,
                topic: view::topic(course, &key),
                version: self.version,
                snapshot: false,
                runner: Box::new(runner),
            };
            self.send(&tx, frame(self.version, &msg));
        }
        for (key, tx) in self.hub.watched_shared() {
            match &key {
                Key::Board(board, _) => {
                    let touched = changed.iter().any(|&p| Board::of(course, p).iter().flatten().any(|b| b == board));
                    if !touched {
                        continue;
                    }
                    if self.board_due(&key, wall) {
                        self.board_pending.remove(&key);
                        self.publish_board(engine, &key, wall);
                    } else {
                        self.board_pending.insert(key);
                    }
                }
                Key::Arrivals(point) => {
                    let items = new_arrivals.remove(point).unwrap_or_default();
                    let gone = removed.remove(point).unwrap_or_default();
                    if items.is_empty() && gone.is_empty() {
                        continue;
                    }
                    let msg = ServerMessage::Arrivals {
                        v: LIVE_VERSION,
                        topic: view::topic(course, &key),
                        version: self.version,
                        snapshot: false,
                        items: items.into_iter().rev().collect(), // newest first
                        removed: gone,
                    };
                    self.send(&tx, frame(self.version, &msg));
                }
                Key::Runner(_) => {}
            }
        }
    }

    /// Whether a leaderboard's interval has passed since it last went out (or it never did).
    fn board_due(&self, key: &Key, wall: Instant) -> bool {
        self.board_sent.get(key).is_none_or(|&sent| wall >= sent + self.board_every)
    }

    /// When the next leaderboard waiting for its interval is due, if any.
    pub fn next_board_due(&self) -> Option<Instant> {
        self.board_pending.iter().filter_map(|k| self.board_sent.get(k)).min().map(|&sent| sent + self.board_every)
    }

    /// Sends the leaderboards whose interval has passed since they last went out, with every
    /// change made meanwhile merged into one delta.
    ///
    /// A leaderboard changes with each finisher who enters its head, several times a second at
    /// a busy finish, and each change goes to every subscriber (all the spectators of a race).
    /// Pacing it keeps that fan-out from crowding out runners' own messages; a change that
    /// comes after a quiet spell still goes out at once.
    pub fn flush_boards(&mut self, engine: &Engine, wall: Instant) {
        let due: Vec<Key> = self.board_pending.iter().filter(|k| self.board_due(k, wall)).cloned().collect();
        if due.is_empty() {
            return;
        }
        self.version += 1;
        for key in due {
            self.board_pending.remove(&key);
            self.publish_board(engine, &key, wall);
        }
    }

    fn publish_board(&mut self, engine: &Engine, key: &Key, wall: Instant) {
        let Key::Board(board, depth) = key else { return };
        let Some(tx) = self.hub.sender(key) else { return };
        let course = engine.course();
        let new = view::board_entries(engine, board, usize::from(*depth));
        let old = self.boards.get(key).cloned().unwrap_or_default();
        let prev_place = |p: ParticipantIdx| old.iter().find(|e| e.participant == p).map(|e| e.place);
        let rows: Vec<_> = new
            .iter()
            .enumerate()
            .filter(|(i, e)| old.get(*i) != Some(e))
            .map(|(i, e)| view::board_row(course, i, e, prev_place(e.participant)))
            .collect();
        if rows.is_empty() && new.len() == old.len() {
            return;
        }
        let msg = ServerMessage::Leaderboard {
            v: LIVE_VERSION,
            topic: view::topic(course, key),
            version: self.version,
            snapshot: false,
            size: engine.board_len(board) as u32,
            length: new.len() as u32,
            rows,
        };
        self.boards.insert(key.clone(), new);
        self.board_sent.insert(key.clone(), wall);
        self.send(&tx, frame(self.version, &msg));
    }

    /// Periodic: watched runners whose places moved (others finished ahead of them) or who
    /// became overdue get a fresh view; topics nobody follows any more are forgotten.
    pub fn refresh(&mut self, engine: &Engine, now: Timestamp) {
        self.hub.prune();
        let runners = self.hub.watched_runners();
        let followed: FxHashSet<ParticipantIdx> = runners.iter().map(|(p, _)| *p).collect();
        self.runners.retain(|p, _| followed.contains(p));
        let shared: Vec<Key> = self.hub.watched_shared().into_iter().map(|(k, _)| k).collect();
        self.boards.retain(|k, _| shared.contains(k));
        self.board_sent.retain(|k, _| shared.contains(k));
        self.board_pending.retain(|k| shared.contains(k));
        let mut bumped = false;
        for (p, tx) in runners {
            let places = engine.places(p);
            let overdue = timing_core::predict::predict(engine.course(), p, engine.result(p))
                .is_some_and(|pr| pr.next.overdue(now));
            if self.runners.get(&p) == Some(&(places, overdue)) {
                continue;
            }
            let runner = view::runner(engine, p, now);
            if !bumped {
                self.version += 1;
                bumped = true;
            }
            self.runners.insert(p, (places, overdue));
            let key = Key::Runner(p);
            let msg = ServerMessage::Runner {
                v: LIVE_VERSION,
                topic: view::topic(engine.course(), &key),
                version: self.version,
                snapshot: false,
                runner: Box::new(runner),
            };
            self.send(&tx, frame(self.version, &msg));
        }
    }

    /// After the engine was rebuilt (no events): every watched topic gets a fresh snapshot.
    pub fn resync_all(&mut self, engine: &Engine, now: Timestamp) {
        // Every topic gets a snapshot of the current state: nothing is left waiting.
        self.board_pending.clear();
        self.version += 1;
        self.reload_arrivals(engine);
        let runners = self.hub.watched_runners().into_iter().map(|(p, tx)| (Key::Runner(p), tx));
        for (key, tx) in runners.chain(self.hub.watched_shared()) {
            let f = self.snapshot(engine, &key, now);
            self.send(&tx, f);
        }
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Whether a topic is on the hub (for tests).
    pub fn is_watched(&self, key: &Key) -> bool {
        self.hub.sender(key).is_some()
    }
}
