//! The central aggregator: where every edge box uploads its reads.
//!
//! Today it is the uplink's server side (see `timing_wire` for the protocol): an authenticated,
//! idempotent ingest endpoint over a durable SQLite store, which answers each edge the highest
//! contiguous `seq` it holds, and publishes what it newly stored for the race engine.
//! Deliberately not here (yet): the race-state task that owns `timing_core::Engine`, WebSocket
//! live splits, web pages, TLS (a reverse proxy's job).
//!
//! Layout:
//! - [`store`]: [`AggregatorStore`], blocking, the only owner of its SQLite connection.
//! - [`auth`]: per-edge bearer [`Tokens`] from environment variables or a tokens file.
//! - [`scope`]: [`UploadScope`], the event's edges (each at its point) and waves.
//! - `ingest`: the axum handlers and `ApiError`.
//! - [`pages`]: the web pages (`/`, `/desk`, `/fleet`) and their assets, embedded in the binary.
//! - here: [`AppState`], [`app`], [`serve`].
//!
//! Routes (every 4xx/5xx carries a `timing_wire::ErrorBody`):
//! - `POST /api/v1/ingest` with `Authorization: Bearer <token>` and a JSON `timing_wire::Batch`
//!   → 200 `timing_wire::Ack`;
//! - `GET /api/v1/edges/{id}/cursor` with the same token → 200 `timing_wire::Ack`.

pub mod api;
pub mod auth;
pub mod feed;
pub mod guns;
mod ingest;
pub mod live;
pub mod metrics;
pub mod pages;
pub mod race;
pub mod scope;
pub mod store;
pub mod tls;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use timing_core::Timestamp;
use timing_core::time::Clock;
use timing_wire::{Signal, WireRead};

pub use auth::{Tokens, TokensFile};
pub use scope::UploadScope;
pub use store::{AggregatorStore, Cursor, Ingested, StoreError};

/// Limits of the ingest endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IngestConfig {
    /// The largest request body accepted (413 above): 32 MiB holds about 100,000 reads.
    pub body_max_bytes: usize,
    /// How many reads the race task may fall behind ingest before the feed drops them and the
    /// race task rebuilds from the store (about 300 bytes each while held).
    pub feed_max_reads: usize,
}

impl Default for IngestConfig {
    fn default() -> IngestConfig {
        IngestConfig { body_max_bytes: 32 << 20, feed_max_reads: 4_000_000 }
    }
}

/// What one upload newly stored, as fed to the race task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBatch {
    /// Its place in the series of published batches (1, 2, …, since the process started): a
    /// scan of the store made under the store lock holds exactly the batches up to
    /// [`AppState::batches_published`] read under that same lock.
    pub no: u64,
    pub edge: String,
    /// In batch order; none was published before.
    pub reads: Vec<WireRead>,
    pub signals: Vec<Signal>,
}

/// Per-edge counters since start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct EdgeCounts {
    /// Uploads stored (including all-duplicate ones).
    pub n_batches: u64,
    /// Reads newly stored.
    pub n_reads: u64,
    pub n_signals: u64,
    /// Reads and signals already stored, ignored.
    pub n_duplicates: u64,
    /// Of those, ones whose contents differed from the stored ones.
    pub n_conflicts: u64,
    /// Authenticated requests refused (400, 403, 413, 5xx); nothing was stored.
    pub n_refusals: u64,
}

#[derive(Debug, Default)]
struct EdgeCounters {
    n_batches: AtomicU64,
    n_reads: AtomicU64,
    n_signals: AtomicU64,
    n_duplicates: AtomicU64,
    n_conflicts: AtomicU64,
    n_refusals: AtomicU64,
    /// When the last upload was stored (aggregator clock, µs; 0 = never).
    last_batch_us: std::sync::atomic::AtomicI64,
}

/// The wall clock, for binaries.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp::from_micros(since_epoch.as_micros() as i64)
    }
}

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    shared: Arc<Shared>,
}

struct Shared {
    store: Mutex<AggregatorStore>,
    scope: UploadScope,
    tokens: Tokens,
    config: IngestConfig,
    /// The race clock (the wall clock, or a simulation's): predictions, "overdue", ticks, guns.
    clock: Arc<dyn Clock + Send + Sync>,
    /// The operations clock (always the wall clock in the binary): when uploads and telemetry
    /// arrived, how long an edge has been silent.
    wall: Arc<dyn Clock + Send + Sync>,
    feed: feed::Feed,
    /// Batches published so far; incremented under the store lock.
    n_published: AtomicU64,
    /// One per edge of the event (a fixed set, so no lock).
    counters: BTreeMap<String, EdgeCounters>,
    n_unauthenticated: AtomicU64,
    /// The latest telemetry of each edge, and when it arrived (by `clock`).
    telemetry: Mutex<BTreeMap<String, (timing_wire::Telemetry, Timestamp)>>,
    /// The race task's apply latency.
    apply: metrics::Histogram,
    n_applied_reads: AtomicU64,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("scope", &self.shared.scope)
            .field("tokens", &self.shared.tokens)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(
        store: AggregatorStore,
        scope: UploadScope,
        tokens: Tokens,
        config: IngestConfig,
        clock: impl Clock + Send + Sync + 'static,
    ) -> AppState {
        let clock: Arc<dyn Clock + Send + Sync> = Arc::new(clock);
        AppState::with_clocks(store, scope, tokens, config, clock.clone(), clock)
    }

    /// With a race clock for race things and a wall clock for operations (upload and telemetry
    /// ages), which differ in a simulation.
    pub fn with_clocks(
        store: AggregatorStore,
        scope: UploadScope,
        tokens: Tokens,
        config: IngestConfig,
        clock: Arc<dyn Clock + Send + Sync>,
        wall: Arc<dyn Clock + Send + Sync>,
    ) -> AppState {
        let counters = scope.edges().map(|(id, _)| (id.to_string(), EdgeCounters::default())).collect();
        AppState {
            shared: Arc::new(Shared {
                store: Mutex::new(store),
                scope,
                tokens,
                config,
                wall,
                clock,
                feed: feed::Feed::new(config.feed_max_reads),
                n_published: AtomicU64::new(0),
                counters,
                n_unauthenticated: AtomicU64::new(0),
                telemetry: Mutex::new(BTreeMap::new()),
                apply: metrics::Histogram::default(),
                n_applied_reads: AtomicU64::new(0),
            }),
        }
    }

    /// How many batches have been published; read it under the store lock (in
    /// [`AppState::with_store`]) to know which published batches a scan of the store holds.
    ///
    /// To rebuild and then follow: [`AppState::follow`] first, then replay the store
    /// ([`AppState::with_store`] + [`AggregatorStore::for_each_read`]) and note this number in
    /// the same `with_store` call, then apply what the feed brings with a higher
    /// [`StoredBatch::no`]: batches stored in between come twice, and the numbers say which
    /// copy to skip, so every read is applied once. After [`feed::FeedItem::Lagged`], rebuild
    /// the same way: nothing is lost.
    pub fn batches_published(&self) -> u64 {
        self.shared.n_published.load(Ordering::SeqCst)
    }

    /// Batches stored from now on, in ingest order, for the one consumer (the race task).
    pub fn follow(&self) -> &feed::Feed {
        self.shared.feed.follow();
        &self.shared.feed
    }

    /// The feed, to take batches from after [`AppState::follow`].
    pub fn feed(&self) -> &feed::Feed {
        &self.shared.feed
    }

    /// Runs `f` with the store on a blocking thread, between uploads.
    ///
    /// Errors only if `f` panicked.
    pub async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut AggregatorStore) -> T + Send + 'static,
    ) -> Result<T, String> {
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = state.shared.store.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut store)
        })
        .await
        .map_err(|e| format!("store task failed: {e}"))
    }

    /// An edge's counters (None for an edge not in the event).
    pub fn edge_counts(&self, edge: &str) -> Option<EdgeCounts> {
        let c = self.shared.counters.get(edge)?;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Some(EdgeCounts {
            n_batches: get(&c.n_batches),
            n_reads: get(&c.n_reads),
            n_signals: get(&c.n_signals),
            n_duplicates: get(&c.n_duplicates),
            n_conflicts: get(&c.n_conflicts),
            n_refusals: get(&c.n_refusals),
        })
    }

    /// The aggregator's clock (the shared race clock in a simulation).
    pub fn now(&self) -> Timestamp {
        self.shared.clock.now()
    }

    /// The operations clock (wall time).
    pub fn wall_now(&self) -> Timestamp {
        self.shared.wall.now()
    }

    /// The race task applied a batch of `n_reads` in `took`.
    pub fn record_apply(&self, n_reads: usize, took: std::time::Duration) {
        self.shared.apply.observe(took);
        self.shared.n_applied_reads.fetch_add(n_reads as u64, Ordering::Relaxed);
    }

    /// When an edge's last upload was stored (µs, aggregator clock).
    pub fn last_batch_us(&self, edge: &str) -> Option<i64> {
        let us = self.shared.counters.get(edge)?.last_batch_us.load(Ordering::Relaxed);
        (us != 0).then_some(us)
    }

    /// The event's edges.
    pub fn edge_ids(&self) -> impl Iterator<Item = &str> {
        self.shared.counters.keys().map(String::as_str)
    }

    pub fn n_applied_reads(&self) -> u64 {
        self.shared.n_applied_reads.load(Ordering::Relaxed)
    }

    pub fn apply_histogram(&self) -> &metrics::Histogram {
        &self.shared.apply
    }

    /// Requests refused with 401 (no edge to count them against).
    pub fn n_unauthenticated(&self) -> u64 {
        self.shared.n_unauthenticated.load(Ordering::Relaxed)
    }

    fn set_telemetry(&self, edge: &str, t: timing_wire::Telemetry) {
        let received = self.shared.wall.now();
        self.shared.telemetry.lock().unwrap_or_else(|p| p.into_inner()).insert(edge.to_string(), (t, received));
    }

    /// The latest telemetry an edge sent, if any.
    pub fn telemetry(&self, edge: &str) -> Option<timing_wire::Telemetry> {
        self.shared.telemetry.lock().unwrap_or_else(|p| p.into_inner()).get(edge).map(|(t, _)| t.clone())
    }

    /// How long ago the latest telemetry of an edge arrived, by the aggregator's wall clock (an
    /// edge's `at_us` is on the edge's clock, which may be far off or simulated).
    pub fn telemetry_age(&self, edge: &str) -> Option<timing_core::Elapsed> {
        let received = self.shared.telemetry.lock().unwrap_or_else(|p| p.into_inner()).get(edge).map(|(_, at)| *at)?;
        Some(self.shared.wall.now().since(received))
    }

    fn count_refusal(&self, edge: &str) {
        if let Some(c) = self.shared.counters.get(edge) {
            c.n_refusals.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn count_ingested(&self, edge: &str, ingested: &Ingested) {
        if let Some(c) = self.shared.counters.get(edge) {
            c.n_batches.fetch_add(1, Ordering::Relaxed);
            c.n_reads.fetch_add(ingested.new_reads.len() as u64, Ordering::Relaxed);
            c.n_signals.fetch_add(ingested.new_signals.len() as u64, Ordering::Relaxed);
            c.n_duplicates.fetch_add(ingested.n_duplicates as u64, Ordering::Relaxed);
            c.n_conflicts.fetch_add(ingested.n_conflicts as u64, Ordering::Relaxed);
            c.last_batch_us.store(self.shared.wall.now().as_micros(), Ordering::Relaxed);
        }
    }
}

/// The aggregator's routes.
pub fn app(state: AppState) -> Router {
    let limit = state.shared.config.body_max_bytes;
    Router::new()
        .route("/api/v1/ingest", post(ingest::post_batch))
        .route("/api/v1/edges/{id}/cursor", get(ingest::get_cursor))
        .route("/api/v1/fleet", get(fleet))
        .route("/api/v1/telemetry", post(ingest::post_telemetry))
        .fallback(ingest::no_route)
        .method_not_allowed_fallback(ingest::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Every route: ingest and fleet ([`app`]), results and desk ([`race::routes`]), the public
/// REST API, the live feed and metrics ([`api::routes`]), the pages ([`pages::routes`]).
pub fn router(state: AppState, race: race::RaceHandle) -> Router {
    // The pages have no fallback of their own: unknown paths get the API's JSON 404.
    app(state).merge(race::routes(race.clone())).merge(api::routes(race)).merge(pages::routes())
}

/// One edge as the fleet page shows it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FleetEdge {
    pub edge: String,
    pub acked_seq: u64,
    pub acked_signal_seq: u64,
    pub counts: EdgeCounts,
    /// The edge's own status as it last reported it (readers, backlog, battery, alarms).
    pub telemetry: Option<timing_wire::Telemetry>,
    /// How long ago that telemetry arrived, by the aggregator's clock (silent edges show here).
    #[serde(default)]
    pub telemetry_age_ms: Option<i64>,
}

/// `GET /api/v1/fleet`: every edge of the event with its cursor and counters (read-only).
async fn fleet(axum::extract::State(state): axum::extract::State<AppState>) -> axum::Json<Vec<FleetEdge>> {
    let cursors = state.with_store(|s| s.cursors()).await.unwrap_or_default();
    let edges: Vec<FleetEdge> = state
        .shared
        .counters
        .keys()
        .map(|edge| {
            let c = cursors.iter().find(|(e, _)| e == edge).map(|(_, c)| *c).unwrap_or_default();
            FleetEdge {
                edge: edge.clone(),
                acked_seq: c.acked_seq,
                acked_signal_seq: c.acked_signal_seq,
                counts: state.edge_counts(edge).unwrap_or_default(),
                telemetry: state.telemetry(edge),
                telemetry_age_ms: state.telemetry_age(edge).map(|a| a.as_micros() / 1000),
            }
        })
        .collect();
    axum::Json(edges)
}

/// Serves [`app`] on `listener` until `shutdown` completes, then lets requests in flight finish.
pub async fn serve<L>(
    listener: L,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await
}
