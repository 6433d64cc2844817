//! The live feed: what spectators' browsers and the REST API receive (`/api/v1/live`, `/api/v1/...`).
//!
//! Documented for client authors in `docs/live-api.md`. Every message carries `v` ([`LIVE_VERSION`]).
//! Instants are microseconds since the Unix epoch (`*_us`, UTC); durations are milliseconds
//! (`*_ms`) beside the published text (`"2:05:31"`, rounded up to the second as World Athletics
//! rules publish them).
//!
//! A client sends [`ClientMessage`]s; for each subscription the server sends a snapshot
//! (`snapshot: true`), then deltas in `version` order. A snapshot may come again at any time
//! (after the client fell behind, or after the aggregator rebuilt its state): it replaces what
//! the client holds for that topic.

use serde::{Deserialize, Serialize};

/// The live-feed version this build speaks.
pub const LIVE_VERSION: u16 = 1;

/// The leaderboard depths a client may ask for (`top` is rounded up to one of these).
pub const BOARD_DEPTHS: [u16; 4] = [10, 20, 50, 100];

/// What a client can follow.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Topic {
    /// One runner's splits, places and predictions.
    Runner { bib: String },
    /// The head of a ranking list: a race overall, by gender, or one category; `division`
    /// defaults to `running` (para divisions are ranked apart).
    Leaderboard {
        race: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gender: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        category: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        division: Option<String>,
        #[serde(default = "default_top")]
        top: u16,
    },
    /// Arrivals at a timing point, newest first.
    Arrivals { point: String },
}

fn default_top() -> u16 {
    10
}

/// Client → server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    Subscribe { v: u16, topic: Topic },
    Unsubscribe { v: u16, topic: Topic },
}

/// Server → client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Runner {
        v: u16,
        topic: Topic,
        version: u64,
        snapshot: bool,
        runner: Box<RunnerView>,
    },
    Leaderboard {
        v: u16,
        topic: Topic,
        version: u64,
        snapshot: bool,
        /// Entries on the whole list (not only the head).
        size: u32,
        /// Entries shown now (`rows` beyond it are gone).
        length: u32,
        /// In a snapshot every row; in a delta only rows whose position changed hands or whose time or place changed.
        rows: Vec<BoardRow>,
    },
    Arrivals {
        v: u16,
        topic: Topic,
        version: u64,
        snapshot: bool,
        /// Newest first. An item for a bib already shown replaces it (its passing moved, or its
        /// times or place changed).
        items: Vec<Arrival>,
        /// Bibs whose passing here was withdrawn (by a correction): take them off.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        removed: Vec<String>,
    },
    /// The server's (race) clock, every few seconds: for "overdue" and "n s ago".
    Tick {
        v: u16,
        now_us: i64,
    },
    /// A subscription was refused (the connection stays open).
    Error {
        v: u16,
        error: String,
        topic: Option<Topic>,
    },
}

/// A duration as published, with its full resolution beside it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Time {
    pub ms: i64,
    /// `H:MM:SS`, rounded up to the whole second.
    pub text: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Places {
    pub overall: Option<u32>,
    pub gender: Option<u32>,
    pub category: Option<u32>,
}

/// One split of a runner's race.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitView {
    pub point: String,
    pub name: String,
    pub distance_m: u32,
    pub at_us: Option<i64>,
    /// Chip (net) time at this split.
    pub chip: Option<Time>,
    /// Gun time at this split.
    pub gun: Option<Time>,
    /// Pace per km over the segment from the previous passing.
    pub segment_pace: Option<Time>,
    /// `main`, `backup`, `manual`, `gun`.
    pub provenance: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PredictionView {
    pub next_point: String,
    pub next_name: String,
    pub next_distance_m: u32,
    pub next_at_us: i64,
    pub finish_at_us: i64,
    /// Predicted chip time at the finish.
    pub finish_chip: Time,
    pub pace: Time,
    /// `declared` (the runner's declared finish time) or `last_segment`.
    pub basis: String,
    /// The next point's predicted time has passed (by a tenth of the segment, at least a minute).
    pub overdue: bool,
}

/// A runner as the public sees them: no birth date, no contact data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerView {
    pub bib: String,
    pub first_name: String,
    pub last_name: String,
    pub race: String,
    pub race_name: String,
    pub race_distance_m: u32,
    pub wave: String,
    pub gender: String,
    pub category: Option<String>,
    pub division: String,
    pub nation: String,
    pub club: String,
    /// `not_started`, `running`, `finished`, `review`, `dns`, `dnf`, `dsq`.
    pub status: String,
    /// Result flags, e.g. `start_from_gun`, `missing_split`.
    pub flags: Vec<String>,
    pub gun_at_us: Option<i64>,
    pub start_at_us: Option<i64>,
    pub gun_time: Option<Time>,
    pub chip_time: Option<Time>,
    pub places: Places,
    /// Whether the race publishes places (the Paris mass races did not).
    pub ranked: bool,
    pub splits: Vec<SplitView>,
    pub prediction: Option<PredictionView>,
    /// The furthest distance with a passing, for the course profile.
    pub distance_m: u32,
}

/// One entry of a leaderboard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardRow {
    /// 1-based position on the list (ties share a place, never a position).
    pub position: u32,
    pub place: u32,
    pub bib: String,
    pub name: String,
    pub nation: String,
    pub club: String,
    pub gender: String,
    pub category: Option<String>,
    /// The time the race ranks on (gun, or chip where the race ranks by chip).
    pub time: Time,
    /// Where this runner was on the list before this change (`None`: new on the list, or a snapshot).
    pub prev_place: Option<u32>,
}

/// A passing at a timing point, as the arrivals feed shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arrival {
    pub bib: String,
    pub name: String,
    pub race: String,
    pub at_us: i64,
    pub chip: Option<Time>,
    pub gun: Option<Time>,
    /// Place in the race at the finish (ranked races only).
    pub place: Option<u32>,
}

/// `GET /api/v1/event`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    pub v: u16,
    pub name: String,
    /// IANA zone, for showing instants in local time.
    pub time_zone: String,
    /// The server's (race) clock.
    pub now_us: i64,
    pub races: Vec<RaceInfo>,
    pub points: Vec<PointInfo>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaceInfo {
    pub id: String,
    pub name: String,
    pub distance_m: u32,
    pub ranked: bool,
    /// `gun` or `chip`.
    pub rank_by: String,
    pub time_limit_ms: i64,
    pub n_participants: u32,
    pub splits: Vec<SplitInfo>,
    pub waves: Vec<WaveInfo>,
    pub categories: Vec<CategoryInfo>,
    /// Divisions ranked apart (`running`, `wheelchair`, …).
    pub divisions: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitInfo {
    pub point: String,
    pub name: String,
    pub distance_m: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveInfo {
    pub id: String,
    pub scheduled_us: i64,
    /// The gun in effect (the scheduled start while no gun is known).
    pub gun_us: i64,
    pub gun_known: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryInfo {
    pub code: String,
    pub gender: Option<String>,
    pub division: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointInfo {
    pub id: String,
    pub name: String,
}

/// One hit of `GET /api/v1/participants?q=`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantHit {
    pub bib: String,
    pub name: String,
    pub race: String,
    pub wave: String,
    pub gender: String,
    pub category: Option<String>,
    pub nation: String,
    pub club: String,
}

/// `GET /api/v1/leaderboards/{race}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardView {
    pub v: u16,
    pub topic: Topic,
    pub size: u32,
    pub rows: Vec<BoardRow>,
}

/// `GET /api/v1/stats/{race}`: what the charts draw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaceStats {
    pub v: u16,
    pub race: String,
    pub n_finished: u32,
    pub n_running: u32,
    pub n_not_started: u32,
    /// Finish (chip) times in bins of `bin_s` seconds from `first_bin_s`.
    pub bin_s: u32,
    pub first_bin_s: u32,
    pub histogram: Vec<u32>,
    /// Finishers crossing the line per minute (UTC minute starts, µs), this race only.
    pub per_minute: Vec<(i64, u32)>,
}

/// A reference client: what a spectator's page holds, built only from server messages.
/// Tests, the load tool and anyone writing a client use it to apply snapshots and deltas.
pub mod client {
    use std::collections::BTreeMap;

    use super::{Arrival, BoardRow, RunnerView, ServerMessage, Topic};

    #[derive(Clone, Debug, Default)]
    pub struct Screen {
        pub runners: BTreeMap<String, RunnerView>,
        /// By topic (its JSON), the rows shown.
        pub boards: BTreeMap<String, Vec<BoardRow>>,
        /// By point, every arrival seen (a delta's items, a snapshot's new ones), oldest first, one per bib.
        pub arrivals: BTreeMap<String, Vec<Arrival>>,
        pub n_snapshots: usize,
        pub n_deltas: usize,
        pub errors: Vec<String>,
        pub now_us: i64,
    }

    /// The key a leaderboard is kept under in [`Screen::boards`].
    pub fn board_key(t: &Topic) -> String {
        serde_json::to_string(t).expect("topics serialise")
    }

    impl Screen {
        pub fn apply(&mut self, m: ServerMessage) {
            match m {
                ServerMessage::Runner { runner, snapshot, .. } => {
                    self.count(snapshot);
                    self.runners.insert(runner.bib.clone(), *runner);
                }
                ServerMessage::Leaderboard { topic, snapshot, length, rows, .. } => {
                    self.count(snapshot);
                    let board = self.boards.entry(board_key(&topic)).or_default();
                    if snapshot {
                        board.clear();
                    }
                    for row in rows {
                        let i = row.position as usize - 1;
                        if board.len() <= i {
                            board.resize(i + 1, row.clone());
                        }
                        board[i] = row;
                    }
                    board.truncate(length as usize);
                }
                ServerMessage::Arrivals { topic, snapshot, items, removed, .. } => {
                    self.count(snapshot);
                    let Topic::Arrivals { point } = topic else { return };
                    let seen = self.arrivals.entry(point).or_default();
                    seen.retain(|a| !removed.contains(&a.bib));
                    for a in items.into_iter().rev() {
                        match seen.iter().position(|s| s.bib == a.bib) {
                            // A snapshot repeats what was seen; a moved passing replaces it.
                            Some(i) => seen[i] = a,
                            None => seen.push(a),
                        }
                    }
                }
                ServerMessage::Tick { now_us, .. } => self.now_us = now_us,
                ServerMessage::Error { error, .. } => self.errors.push(error),
            }
        }

        fn count(&mut self, snapshot: bool) {
            if snapshot {
                self.n_snapshots += 1;
            } else {
                self.n_deltas += 1;
            }
        }

        /// Bibs seen arriving at `point`.
        pub fn arrived(&self, point: &str) -> usize {
            self.arrivals.get(point).map_or(0, Vec::len)
        }
    }
}
