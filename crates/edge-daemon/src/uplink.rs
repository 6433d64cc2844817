//! The uplink: every durable read, in `seq` order, to the aggregator, until it says it has it.
//!
//! Design note.
//! The cursor is the aggregator's: on start and after every failure the uplink asks the
//! aggregator for its cursor for this edge (`GET /api/v1/edges/{id}/cursor`) and sends from
//! there, so an aggregator restored from an older state gets the difference again and nothing
//! is skipped; duplicates are harmless (ingest is idempotent on `(edge, seq)`).
//! Each answer's `acked_seq` (the highest contiguous seq stored upstream) moves the local
//! cursor in the outbox, which is where the backlog is measured from.
//! Catch-up after an outage sends full batches back to back with one more in flight while the
//! previous is acknowledged, so a long backlog drains at the speed of the aggregator's disk,
//! not at one round trip per read.
//! Anything else than an `Ack` (a 4xx, a 5xx, a body that is not JSON) is logged with the
//! status and body and retried with capped backoff: a wrong token is an alarm, not a crash.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use edge_store::{Outbox, StoredRead, StoredSignal};
use timing_wire::{Ack, Batch, ErrorBody, Signal, UPLINK_VERSION, WireRead};
use tokio::sync::watch;

use crate::link::{Backoff, EdgeClock};

#[derive(Clone, Debug)]
pub struct UplinkConfig {
    /// The aggregator's base URL (`http://host:port` or `https://…`).
    pub url: String,
    pub edge: String,
    pub token: String,
    /// Most reads per request.
    pub batch_max: usize,
    pub request_timeout: Duration,
}

/// What the uplink publishes for status and telemetry.
#[derive(Debug, Default)]
pub struct UplinkStats {
    pub acked_seq: AtomicU64,
    pub n_requests: AtomicU64,
    pub n_failures: AtomicU64,
    pub n_reads_sent: AtomicU64,
    /// Edge-clock microseconds of the last acknowledged request.
    pub last_ok_us: AtomicU64,
    pub last_error: std::sync::Mutex<Option<String>>,
}

impl UplinkStats {
    fn fail(&self, error: &str) {
        self.n_failures.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error.to_string());
    }
}

/// Why one exchange with the aggregator failed.
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error("aggregator unreachable: {0}")]
    Http(#[from] reqwest::Error),
    #[error("aggregator answered {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("outbox: {0}")]
    Store(#[from] edge_store::StoreError),
}

/// Runs the uplink until shutdown. `durable` wakes it when new reads are committed.
pub async fn run_uplink(
    config: UplinkConfig,
    outbox_path: PathBuf,
    mut durable: watch::Receiver<u64>,
    stats: Arc<UplinkStats>,
    clock: EdgeClock,
    mut shutdown: watch::Receiver<bool>,
) {
    let client = match reqwest::Client::builder().timeout(config.request_timeout).build() {
        Ok(c) => c,
        Err(error) => {
            tracing::error!(%error, "cannot build the uplink's HTTP client");
            return;
        }
    };
    let outbox = match Outbox::open(&outbox_path) {
        Ok(o) => Arc::new(std::sync::Mutex::new(o)),
        Err(error) => {
            tracing::error!(%error, "uplink cannot open the outbox");
            return;
        }
    };
    let mut backoff = Backoff::default();
    loop {
        let started = std::time::Instant::now();
        let result = tokio::select! {
            r = exchange_until_failure(&client, &config, &outbox, &mut durable, &stats, &clock) => r,
            _ = shutdown.wait_for(|d| *d) => return,
        };
        if let Err(error) = result {
            stats.fail(&error.to_string());
            if started.elapsed() > Duration::from_secs(30) {
                backoff.reset();
            }
            let delay = backoff.next_delay();
            match &error {
                UplinkError::Refused { status: 401 | 403, .. } => {
                    tracing::error!(%error, "ALARM: the aggregator refuses this edge's token; retrying")
                }
                _ => tracing::warn!(%error, retry_in = ?delay, "uplink failed; retrying from the aggregator's cursor"),
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = shutdown.wait_for(|d| *d) => return,
            }
        }
    }
}

/// Resumes from the aggregator's cursor and streams until something fails.
async fn exchange_until_failure(
    client: &reqwest::Client,
    config: &UplinkConfig,
    outbox: &Arc<std::sync::Mutex<Outbox>>,
    durable: &mut watch::Receiver<u64>,
    stats: &UplinkStats,
    clock: &EdgeClock,
) -> Result<(), UplinkError> {
    // The uplink speaks HTTP(S); `ws://`/`wss://` URLs name the same aggregator.
    let base = http_base(&config.url);
    let cursor_url = format!("{base}/api/v1/edges/{}/cursor", config.edge);
    let ack: Ack = answer(client.get(&cursor_url).bearer_auth(&config.token).send().await?).await?;
    let mut cursor = ack.acked_seq;
    let mut signal_cursor = ack.acked_signal_seq;
    note_ack(outbox, stats, clock, ack).await?;
    let ingest_url = format!("{base}/api/v1/ingest");
    // One request in flight while the next batch is read and encoded.
    let mut in_flight: Option<(u64, tokio::task::JoinHandle<Result<Ack, UplinkError>>)> = None;
    loop {
        let rows = read_after(outbox, cursor, config.batch_max).await?;
        // Signals (gun times) ride along until acknowledged; repeats are harmless upstream.
        let signals = signals_after(outbox, signal_cursor).await?;
        if rows.is_empty() && !signals.is_empty() && in_flight.is_none() {
            let batch = Batch { v: UPLINK_VERSION, edge: config.edge.clone(), reads: Vec::new(), signals };
            stats.n_requests.fetch_add(1, Ordering::Relaxed);
            let ack: Ack =
                answer(client.post(&ingest_url).bearer_auth(&config.token).json(&batch).send().await?).await?;
            signal_cursor = signal_cursor.max(ack.acked_signal_seq);
            note_ack(outbox, stats, clock, ack).await?;
            continue;
        }
        if rows.is_empty() {
            if let Some((end, req)) = in_flight.take() {
                let ack = req.await.map_err(|e| UplinkError::Refused { status: 0, body: e.to_string() })??;
                cursor = settle(ack, end, cursor);
                signal_cursor = signal_cursor.max(ack.acked_signal_seq);
                note_ack(outbox, stats, clock, ack).await?;
                continue;
            }
            // Nothing to send: wait for the writer, with a heartbeat so an idle edge still
            // notices an aggregator that went away.
            let _ = tokio::time::timeout(Duration::from_secs(5), durable.changed()).await;
            continue;
        }
        let end = rows.last().expect("not empty").seq;
        let batch =
            Batch { v: UPLINK_VERSION, edge: config.edge.clone(), reads: rows.iter().map(wire).collect(), signals };
        let n = batch.reads.len() as u64;
        let req = client.post(&ingest_url).bearer_auth(&config.token).json(&batch);
        stats.n_requests.fetch_add(1, Ordering::Relaxed);
        stats.n_reads_sent.fetch_add(n, Ordering::Relaxed);
        let handle = tokio::spawn(async move { answer::<Ack>(req.send().await?).await });
        cursor = end;
        if let Some((prev_end, prev)) = in_flight.replace((end, handle)) {
            let ack = prev.await.map_err(|e| UplinkError::Refused { status: 0, body: e.to_string() })??;
            let settled = settle(ack, prev_end, cursor);
            signal_cursor = signal_cursor.max(ack.acked_signal_seq);
            note_ack(outbox, stats, clock, ack).await?;
            if settled < prev_end {
                // The aggregator is missing something before this batch: resend from its cursor.
                let _ = in_flight.take();
                cursor = settled;
            }
        }
    }
}

/// The aggregator's HTTP base URL (TLS with rustls for `https`/`wss`).
pub fn http_base(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if let Some(rest) = url.strip_prefix("wss://") {
        format!("https://{rest}")
    } else if let Some(rest) = url.strip_prefix("ws://") {
        format!("http://{rest}")
    } else {
        url.to_string()
    }
}

/// The cursor after an ack of a batch ending at `end`: unchanged if the ack covers it, else the
/// aggregator's cursor (resend from there).
fn settle(ack: Ack, end: u64, cursor: u64) -> u64 {
    if ack.acked_seq >= end { cursor } else { ack.acked_seq }
}

async fn note_ack(
    outbox: &Arc<std::sync::Mutex<Outbox>>,
    stats: &UplinkStats,
    clock: &EdgeClock,
    ack: Ack,
) -> Result<(), UplinkError> {
    stats.acked_seq.store(ack.acked_seq, Ordering::Relaxed);
    stats.last_ok_us.store(clock.now().as_micros().max(0) as u64, Ordering::Relaxed);
    let outbox = outbox.clone();
    tokio::task::spawn_blocking(move || {
        let mut o = outbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        o.refresh()?;
        // An aggregator behind our own cursor (restored from an older state) never moves it back;
        // the resend happens from its cursor all the same.
        let upto = ack.acked_seq.min(o.last_seq());
        o.set_acked(upto)?;
        o.set_acked_signals(ack.acked_signal_seq)
    })
    .await
    .map_err(|e| UplinkError::Refused { status: 0, body: e.to_string() })??;
    Ok(())
}

async fn read_after(
    outbox: &Arc<std::sync::Mutex<Outbox>>,
    after: u64,
    limit: usize,
) -> Result<Vec<StoredRead>, UplinkError> {
    let outbox = outbox.clone();
    let rows = tokio::task::spawn_blocking(move || {
        outbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner).read_after(after, limit)
    })
    .await
    .map_err(|e| UplinkError::Refused { status: 0, body: e.to_string() })??;
    Ok(rows)
}

async fn signals_after(outbox: &Arc<std::sync::Mutex<Outbox>>, after: u64) -> Result<Vec<Signal>, UplinkError> {
    let outbox = outbox.clone();
    let rows: Vec<StoredSignal> = tokio::task::spawn_blocking(move || {
        outbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner).signals_after(after, 100)
    })
    .await
    .map_err(|e| UplinkError::Refused { status: 0, body: e.to_string() })??;
    Ok(rows
        .into_iter()
        .map(|s| Signal::GunTime {
            seq: s.seq,
            race: s.signal.race,
            wave: s.signal.wave,
            at_us: s.signal.at.as_micros(),
            source: s.signal.source,
            jitter_us: s.signal.jitter_us,
        })
        .collect())
}

fn wire(r: &StoredRead) -> WireRead {
    let n = &r.read;
    WireRead::from_read(r.seq, &n.read, n.reader_time, n.session, n.hits, n.received_at)
}

/// The JSON of a 2xx answer, or the status and body of anything else.
async fn answer<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> Result<T, UplinkError> {
    let status = resp.status();
    let bytes = resp.bytes().await?;
    if status.is_success() {
        serde_json::from_slice(&bytes).map_err(|e| UplinkError::Refused {
            status: status.as_u16(),
            body: format!("not an uplink answer ({e}): {}", String::from_utf8_lossy(&bytes[..bytes.len().min(200)])),
        })
    } else {
        let body = serde_json::from_slice::<ErrorBody>(&bytes)
            .map(|e| e.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned());
        Err(UplinkError::Refused { status: status.as_u16(), body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_urls_name_the_same_aggregator() {
        assert_eq!(http_base("wss://agg.example:443/"), "https://agg.example:443");
        assert_eq!(http_base("ws://127.0.0.1:7878"), "http://127.0.0.1:7878");
        assert_eq!(http_base("https://agg.example"), "https://agg.example");
    }

    #[test]
    fn a_short_ack_rewinds_the_cursor_to_the_aggregator() {
        let ack = |s| Ack { v: 1, acked_seq: s, acked_signal_seq: 0 };
        assert_eq!(settle(ack(100), 100, 200), 200);
        assert_eq!(settle(ack(120), 100, 200), 200);
        assert_eq!(settle(ack(40), 100, 200), 40);
    }
}
