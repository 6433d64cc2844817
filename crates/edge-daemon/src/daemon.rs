//! One edge box: every reader link, the store writer, the uplink and the status endpoint,
//! started from an edge file and stopped together.
//!
//! Reads flow `link → (time base → UTC, clock offset) → store writer → outbox → uplink`.
//! A link's [`LinkEvent::Reads`] becomes durable before anything acknowledges it; the daemon
//! never holds a read anywhere but the bounded channels and the writer's batch.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edge_store::NewRead;
use event_config::EventConfig;
use event_config::edge::EdgeConfig;
use reader_protocol::time::resolve;
use serde::{Deserialize, Serialize};
use timing_core::{ChipId, PointId, Read, ReaderId, Timestamp};
use tokio::sync::{mpsc, watch};

use crate::clock_sync::ClockEstimator;
use crate::link::{EdgeClock, LinkCtx, LinkEvent, ResumeTable, run_link};
use crate::store_writer::{Batch, StoreWriter, WriterConfig, open_outbox};
use crate::uplink::{UplinkConfig, UplinkStats, run_uplink};

/// Knobs that are not in the edge file.
#[derive(Clone)]
pub struct Options {
    pub clock: EdgeClock,
    pub clock_interval: Duration,
    pub writer: WriterConfig,
    pub uplink_batch: usize,
    /// Where relative paths in the edge file (the store) are resolved.
    pub base_dir: PathBuf,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options").field("base_dir", &self.base_dir).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("opening the outbox at {path}: {source}")]
    Store { path: String, source: edge_store::StoreError },
    #[error("register map {path}: {message}")]
    RegisterMap { path: String, message: String },
}

/// The status of one reader, as crews see it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ReaderStatus {
    pub id: String,
    pub protocol: String,
    pub line: String,
    pub connected: bool,
    pub peer: Option<String>,
    pub last_error: Option<String>,
    pub n_reads: u64,
    /// Reads in the last completed second, smoothed.
    pub reads_per_s: f64,
    pub per_antenna: BTreeMap<u16, u64>,
    pub last_read_us: Option<i64>,
    pub clock_offset_ms: Option<f64>,
    pub clock_drift_ppm: Option<f64>,
    pub n_malformed: u64,
    pub line_health: Option<String>,
    pub alarms: Vec<String>,
}

/// Everything the status endpoint and telemetry report.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct EdgeStatus {
    pub edge: String,
    pub point: String,
    pub readers: Vec<ReaderStatus>,
    pub stored: u64,
    pub duplicates: u64,
    pub store_failing: bool,
    pub store_error: Option<String>,
    pub uplink_acked_seq: u64,
    pub backlog: u64,
    pub oldest_unsynced_us: Option<i64>,
    pub uplink_error: Option<String>,
    pub last_sync_us: Option<i64>,
    pub disk_free_bytes: Option<u64>,
    pub devices: Vec<crate::modbus::DeviceStatus>,
    pub alarms: Vec<String>,
}

/// A running edge.
#[derive(Debug)]
pub struct Edge {
    pub status: Arc<Mutex<EdgeStatus>>,
    pub durable: watch::Receiver<u64>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    writer: Option<StoreWriter>,
    pub outbox_path: PathBuf,
}

impl Edge {
    /// Stops links and the uplink, then commits whatever the writer still holds.
    pub async fn stop(mut self) {
        self.shutdown.send_replace(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        if let Some(w) = self.writer.take() {
            let _ = tokio::task::spawn_blocking(move || w.finish()).await;
        }
    }
}

/// Starts an edge. `token` is the uplink token (from the environment or a file, never config).
pub async fn start(
    edge: &EdgeConfig,
    event: &EventConfig,
    token: String,
    options: Options,
) -> Result<Edge, DaemonError> {
    let token_for_telemetry = token.clone();
    let outbox_path =
        if edge.store_path.is_absolute() { edge.store_path.clone() } else { options.base_dir.join(&edge.store_path) };
    let outbox = open_outbox(&outbox_path)
        .map_err(|source| DaemonError::Store { path: outbox_path.display().to_string(), source })?;
    let resume = ResumeTable::default();
    for r in &edge.readers {
        let session = outbox.last_session(&r.id).ok().flatten();
        if let Ok(Some(p)) = outbox.last_passing(&r.id, session) {
            resume.advance(&r.id, session, p);
        }
    }
    // Start triggers decoders reported before a restart: the next one starts the next wave.
    let mut decoder_guns: HashMap<String, Vec<Timestamp>> = HashMap::new();
    for s in outbox.signals_after(0, usize::MAX).unwrap_or_default() {
        if let Some(reader) = s.signal.source.strip_prefix("decoder:") {
            decoder_guns.entry(reader.to_string()).or_default().push(s.signal.at);
        }
    }
    let writer = StoreWriter::spawn(outbox, resume.clone(), options.writer);
    let (shutdown_tx, shutdown) = watch::channel(false);
    let point_id = event.course.point(edge.point).id.clone();
    let status = Arc::new(Mutex::new(EdgeStatus {
        edge: edge.id.clone(),
        point: point_id.to_string(),
        readers: edge
            .readers
            .iter()
            .map(|r| ReaderStatus {
                id: r.id.clone(),
                protocol: r.protocol.as_str().into(),
                line: r.line.as_str().into(),
                ..Default::default()
            })
            .collect(),
        devices: edge
            .devices
            .iter()
            .map(|d| crate::modbus::DeviceStatus {
                id: d.id.clone(),
                kind: format!("{:?}", d.kind),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }));

    let (events_tx, events_rx) = mpsc::channel::<LinkEvent>(1024);
    let mut tasks = Vec::new();
    for r in &edge.readers {
        let ctx = LinkCtx {
            reader: r.clone(),
            time_zone: event.time_zone,
            events: events_tx.clone(),
            resume: resume.clone(),
            clock: options.clock.clone(),
            clock_interval: options.clock_interval,
            shutdown: shutdown.clone(),
        };
        tasks.push(tokio::spawn(run_link(ctx)));
    }
    drop(events_tx);

    let readers: HashMap<String, (event_config::edge::ReaderConfig, ClockEstimator)> = edge
        .readers
        .iter()
        .map(|r| {
            // Local times are read in the reader's own zone, or else the event's.
            let mut r = r.clone();
            r.time_zone = Some(r.time_zone.unwrap_or(event.time_zone));
            let est = ClockEstimator::new(r.time_zone.expect("set"), r.clock_alarm, 50.0);
            (r.id.clone(), (r, est))
        })
        .collect();
    tasks.push(tokio::spawn(process_events(
        events_rx,
        readers,
        decoder_guns,
        point_id,
        writer.tx.clone(),
        status.clone(),
        options.clock.clone(),
    )));

    // Modbus devices: maps are read (and checked against the device's kind) before anything runs.
    let leading_gun: crate::modbus::LeadingGun = Arc::default();
    for d in &edge.devices {
        let path =
            if d.register_map.is_absolute() { d.register_map.clone() } else { options.base_dir.join(&d.register_map) };
        let fail = |message: String| DaemonError::RegisterMap { path: path.display().to_string(), message };
        let text = std::fs::read_to_string(&path).map_err(|e| fail(e.to_string()))?;
        let name = path.display().to_string();
        let map = event_config::modbus_map::parse_register_map(&name, &text).map_err(|e| fail(e.to_string()))?;
        event_config::modbus_map::check_device_map(d, &name, &map).map_err(|e| fail(e.to_string()))?;
        tasks.push(tokio::spawn(crate::modbus::run_device(
            d.clone(),
            map,
            options.clock.clone(),
            writer.tx.clone(),
            status.clone(),
            leading_gun.clone(),
            shutdown.clone(),
        )));
    }

    let uplink_stats = Arc::new(UplinkStats::default());
    tasks.push(tokio::spawn(run_uplink(
        UplinkConfig {
            url: edge.uplink_url.clone(),
            edge: edge.id.clone(),
            token,
            batch_max: options.uplink_batch,
            request_timeout: Duration::from_secs(30),
        },
        outbox_path.clone(),
        writer.durable.clone(),
        uplink_stats.clone(),
        options.clock.clone(),
        shutdown.clone(),
    )));
    tasks.push(tokio::spawn(push_telemetry(
        edge.uplink_url.clone(),
        edge.id.clone(),
        token_for_telemetry,
        status.clone(),
        options.clock.clone(),
        shutdown.clone(),
    )));
    tasks.push(tokio::spawn(refresh_status(
        status.clone(),
        writer.stats.clone(),
        uplink_stats,
        outbox_path.clone(),
        shutdown.clone(),
    )));
    Ok(Edge {
        status,
        durable: writer.durable.clone(),
        shutdown: shutdown_tx,
        tasks,
        writer: Some(writer),
        outbox_path,
    })
}

/// Turns link events into durable reads and status.
async fn process_events(
    mut events: mpsc::Receiver<LinkEvent>,
    mut readers: HashMap<String, (event_config::edge::ReaderConfig, ClockEstimator)>,
    mut decoder_guns: HashMap<String, Vec<Timestamp>>,
    point: PointId,
    writer: mpsc::Sender<Batch>,
    status: Arc<Mutex<EdgeStatus>>,
    clock: EdgeClock,
) {
    let mut rate: HashMap<String, (i64, u64)> = HashMap::new();
    while let Some(event) = events.recv().await {
        let now = clock.now();
        match event {
            LinkEvent::Reads { reader, reads, ack } => {
                let Some((cfg, est)) = readers.get(&reader) else { continue };
                let zone = cfg.time_zone.expect("filled at start");
                let reader_id = ReaderId::new(&cfg.id);
                let mut batch = Vec::with_capacity(reads.len());
                let mut n_unresolved = 0;
                for tag in &reads {
                    // A time that cannot be read in the reader's zone is stored at its arrival, counted and logged: never dropped.
                    let at = match resolve(tag.time, zone, now) {
                        Ok(t) => est.correct(t),
                        Err(error) => {
                            n_unresolved += 1;
                            tracing::error!(reader_id = %cfg.id, %error, chip = %tag.chip, "reader time has no UTC instant; stored at arrival");
                            now
                        }
                    };
                    batch.push(NewRead {
                        read: Read {
                            // Chip codes are compared as upper-case everywhere (IPICO sends lower-case hex).
                            chip: ChipId::new(&tag.chip.to_ascii_uppercase()),
                            at,
                            point: point.clone(),
                            line: cfg.line,
                            reader: reader_id.clone(),
                            antenna: tag.antenna.unwrap_or(0),
                            rssi: tag.rssi,
                            reader_seq: tag.passing_no,
                        },
                        reader_time: tag.time,
                        session: tag.session,
                        hits: tag.hits,
                        received_at: now,
                    });
                }
                {
                    let mut st = status.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if let Some(rs) = st.readers.iter_mut().find(|r| r.id == reader) {
                        rs.n_reads += batch.len() as u64;
                        rs.n_malformed += n_unresolved;
                        for b in &batch {
                            *rs.per_antenna.entry(b.read.antenna).or_default() += 1;
                        }
                        rs.last_read_us = batch.last().map(|b| b.read.at.as_micros());
                        let second = now.as_micros() / 1_000_000;
                        let e = rate.entry(reader.clone()).or_insert((second, 0));
                        if e.0 != second {
                            rs.reads_per_s = 0.5 * rs.reads_per_s + 0.5 * e.1 as f64 / (second - e.0).max(1) as f64;
                            *e = (second, 0);
                        }
                        e.1 += batch.len() as u64;
                    }
                }
                // Backpressure: a full writer channel blocks here, then the link, then the reader.
                if writer.send(Batch { reads: batch, ack, signals: Vec::new() }).await.is_err() {
                    return;
                }
            }
            LinkEvent::Clock { reader, sample } => {
                if let Some((_, est)) = readers.get_mut(&reader) {
                    est.add(sample);
                    let (offset, drift, alarms) = (est.offset(), est.drift_ppm(), est.alarms());
                    let mut st = status.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if let Some(rs) = st.readers.iter_mut().find(|r| r.id == reader) {
                        rs.clock_offset_ms = offset.map(|o| o.as_micros() as f64 / 1000.0);
                        rs.clock_drift_ppm = drift;
                        rs.alarms = alarms;
                    }
                }
            }
            LinkEvent::Up { reader, peer } => with_reader(&status, &reader, |rs| {
                rs.connected = true;
                rs.peer = Some(peer);
            }),
            LinkEvent::Down { reader, error } => with_reader(&status, &reader, |rs| {
                rs.connected = false;
                rs.last_error = Some(error);
            }),
            LinkEvent::Malformed { reader, error } => {
                tracing::warn!(reader_id = %reader, %error, "malformed frame from the reader");
                with_reader(&status, &reader, |rs| rs.n_malformed += 1);
            }
            LinkEvent::Health { reader, diagnosis } => {
                if let Some(d) = &diagnosis {
                    tracing::error!(reader_id = %reader, diagnosis = %d, "ALARM: reader line");
                }
                with_reader(&status, &reader, |rs| rs.line_health = diagnosis);
            }
            LinkEvent::Gun { reader, at } => {
                let Some((cfg, est)) = readers.get(&reader) else { continue };
                let zone = cfg.time_zone.expect("filled at start");
                let at = match resolve(at, zone, now) {
                    Ok(t) => est.correct(t),
                    Err(error) => {
                        tracing::error!(reader_id = %reader, %error, "start trigger time has no UTC instant; ignored");
                        continue;
                    }
                };
                let seen = decoder_guns.entry(reader.clone()).or_default();
                let (race, wave) = match assign_gun(seen, at, &cfg.gun_waves) {
                    GunAssignment::Replay => {
                        tracing::debug!(reader_id = %reader, ?at, "start trigger seen before");
                        continue;
                    }
                    GunAssignment::NoWaveLeft(n) => {
                        tracing::warn!(reader_id = %reader, ?at, trigger = n, waves = cfg.gun_waves.len(), "start trigger reported by the decoder with no wave left in gun_waves; not sent as a gun time");
                        continue;
                    }
                    GunAssignment::Wave(race, wave) => (race, wave),
                };
                tracing::info!(reader_id = %reader, ?at, %race, %wave, "start trigger reported by the decoder: gun time");
                let signal = edge_store::NewSignal {
                    race: race.clone(),
                    wave: wave.clone(),
                    at,
                    source: format!("decoder:{reader}"),
                    // Decoders time their trigger input to the millisecond.
                    jitter_us: 1_000,
                    received_at: now,
                };
                if writer.send(Batch { reads: Vec::new(), ack: None, signals: vec![signal] }).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// What a decoder's start trigger means.
#[derive(Debug, PartialEq, Eq)]
enum GunAssignment {
    /// The same instant as a trigger already taken (a link rewound and replayed it).
    Replay,
    /// The n-th trigger starts the n-th wave of `gun_waves`.
    Wave(String, String),
    /// More triggers than waves (the 1-based trigger number).
    NoWaveLeft(usize),
}

/// Takes a trigger at `at` given the ones `seen` before (kept across restarts from the outbox).
fn assign_gun(seen: &mut Vec<Timestamp>, at: Timestamp, gun_waves: &[(String, String)]) -> GunAssignment {
    if seen.iter().any(|s| (s.as_micros() - at.as_micros()).abs() <= 1_000) {
        return GunAssignment::Replay;
    }
    seen.push(at);
    match gun_waves.get(seen.len() - 1) {
        Some((race, wave)) => GunAssignment::Wave(race.clone(), wave.clone()),
        None => GunAssignment::NoWaveLeft(seen.len()),
    }
}

fn with_reader(status: &Arc<Mutex<EdgeStatus>>, reader: &str, f: impl FnOnce(&mut ReaderStatus)) {
    let mut st = status.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(rs) = st.readers.iter_mut().find(|r| r.id == reader) {
        f(rs);
    }
}

/// Once a second: store, uplink and disk figures, and the alarm list.
async fn refresh_status(
    status: Arc<Mutex<EdgeStatus>>,
    writer: Arc<crate::store_writer::WriterStats>,
    uplink: Arc<UplinkStats>,
    outbox_path: PathBuf,
    mut shutdown: watch::Receiver<bool>,
) {
    use std::sync::atomic::Ordering;
    let reader = edge_store::Outbox::open(&outbox_path).ok().map(|o| Arc::new(Mutex::new(o)));
    loop {
        let backlog = match &reader {
            Some(o) => {
                let o = o.clone();
                tokio::task::spawn_blocking(move || {
                    let mut o = o.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    o.refresh().and_then(|()| o.backlog()).ok()
                })
                .await
                .ok()
                .flatten()
            }
            None => None,
        };
        let disk_free = fs2::available_space(outbox_path.parent().unwrap_or(std::path::Path::new("."))).ok();
        {
            let mut st = status.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            st.stored = writer.n_stored.load(Ordering::Relaxed);
            st.duplicates = writer.n_duplicates.load(Ordering::Relaxed);
            st.store_failing = writer.failing.load(Ordering::Relaxed);
            st.store_error = writer.last_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            st.uplink_acked_seq = uplink.acked_seq.load(Ordering::Relaxed);
            st.uplink_error = uplink.last_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            let last_ok = uplink.last_ok_us.load(Ordering::Relaxed);
            st.last_sync_us = (last_ok > 0).then_some(last_ok as i64);
            if let Some(b) = backlog {
                st.backlog = b.n_reads;
                st.oldest_unsynced_us = b.oldest_received_at.map(Timestamp::as_micros);
            }
            st.disk_free_bytes = disk_free;
            let mut alarms = Vec::new();
            if st.store_failing {
                alarms.push(format!("cannot write the outbox: {}", st.store_error.clone().unwrap_or_default()));
            }
            if disk_free.is_some_and(|d| d < 200 * 1024 * 1024) {
                alarms.push(format!("disk almost full: {} MiB free", disk_free.unwrap_or(0) / (1024 * 1024)));
            }
            for d in &st.devices {
                if !d.connected {
                    alarms.push(format!(
                        "device {} not connected{}",
                        d.id,
                        d.last_error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
                    ));
                }
                if d.battery_soc.is_some_and(|soc| soc < 20) {
                    alarms.push(format!("battery of {} at {}%", d.id, d.battery_soc.unwrap_or(0)));
                }
            }
            for r in &st.readers {
                if !r.connected {
                    alarms.push(format!(
                        "reader {} not connected{}",
                        r.id,
                        r.last_error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
                    ));
                }
                if let Some(h) = &r.line_health {
                    alarms.push(format!("reader {}: {h}", r.id));
                }
                alarms.extend(r.alarms.iter().map(|a| format!("reader {}: {a}", r.id)));
            }
            st.alarms = alarms;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.wait_for(|d| *d) => return,
        }
    }
}

/// The local status endpoint: `GET /status` (JSON). Read-only; nothing here changes state.
pub fn status_app(status: Arc<Mutex<EdgeStatus>>) -> axum::Router {
    use axum::routing::get;
    axum::Router::new().route(
        "/status",
        get(move || {
            let status = status.clone();
            async move { axum::Json(status.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()) }
        }),
    )
}

/// Every few seconds, the status to the aggregator (best effort: the reads never depend on it).
async fn push_telemetry(
    url: String,
    edge: String,
    token: String,
    status: Arc<Mutex<EdgeStatus>>,
    clock: EdgeClock,
    mut shutdown: watch::Receiver<bool>,
) {
    let Ok(client) = reqwest::Client::builder().timeout(Duration::from_secs(5)).build() else { return };
    let endpoint = format!("{}/api/v1/telemetry", crate::uplink::http_base(&url));
    loop {
        let body = {
            let st = status.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            timing_wire::Telemetry {
                v: timing_wire::UPLINK_VERSION,
                edge: edge.clone(),
                at_us: clock.now().as_micros(),
                status: serde_json::to_value(st).unwrap_or_default(),
            }
        };
        match client.post(&endpoint).bearer_auth(&token).json(&body).send().await {
            Ok(r) if !r.status().is_success() => tracing::debug!(status = %r.status(), "telemetry refused"),
            Err(error) => tracing::debug!(%error, "telemetry not sent"),
            Ok(_) => {}
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(3)) => {}
            _ = shutdown.wait_for(|d| *d) => return,
        }
    }
}

#[cfg(test)]
mod gun_tests {
    use super::*;
    use timing_core::Elapsed;

    #[test]
    fn decoder_triggers_start_the_listed_waves_in_order_and_replays_are_ignored() {
        let waves = vec![("marathon".to_string(), "sas1".to_string()), ("marathon".to_string(), "sas2".to_string())];
        let t = |s: i64| Timestamp::from_micros(1_723_316_400_000_000 + s * 1_000_000);
        let mut seen = Vec::new();
        assert_eq!(assign_gun(&mut seen, t(0), &waves), GunAssignment::Wave("marathon".into(), "sas1".into()));
        // A rewound link replays the first trigger (to the millisecond): not a second gun.
        assert_eq!(assign_gun(&mut seen, t(0) + Elapsed::from_micros(400), &waves), GunAssignment::Replay);
        assert_eq!(assign_gun(&mut seen, t(600), &waves), GunAssignment::Wave("marathon".into(), "sas2".into()));
        assert_eq!(assign_gun(&mut seen, t(1200), &waves), GunAssignment::NoWaveLeft(3));
        // After a restart the outbox gives back what was taken: the next trigger is the next wave.
        let mut restarted = vec![t(0)];
        assert_eq!(assign_gun(&mut restarted, t(600), &waves), GunAssignment::Wave("marathon".into(), "sas2".into()));
    }
}
