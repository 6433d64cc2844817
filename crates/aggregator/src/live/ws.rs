//! `GET /api/v1/live`: one WebSocket per spectator.
//!
//! Each connection is a task that selects over its client's messages, its subscriptions'
//! broadcast receivers and a tick. Nothing here can hold the engine up: publishing is a
//! non-blocking broadcast send, and a connection that cannot keep up (its client reads slowly)
//! finds its receivers `Lagged` and is resent a snapshot, or is dropped if that keeps happening.
//! Buffers are small (tungstenite allocates 128 KiB per connection by default): a 4 KiB read
//! buffer, eager writes, small client messages.
//! Clients that send garbage (binary frames, text that is not a `ClientMessage`) or flood (more
//! than the token bucket allows) are closed with a reason; connections per IP and in total are
//! capped (answered 429/503 before the upgrade).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use rustc_hash::FxHashMap;
use timing_wire::live::{ClientMessage, LIVE_VERSION, ServerMessage, Topic};
use tokio_stream::StreamMap;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::{Frame, Hub, Key};
use crate::race::RaceHandle;

/// Limits of the live feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveConfig {
    /// Open connections in total (this machine allows 20,000 open files per process).
    pub max_clients: u64,
    /// Open connections from one address (phones behind one carrier NAT share an address).
    pub max_per_ip: u32,
    /// Topics one connection may follow.
    pub max_subscriptions: usize,
    /// Client messages: a burst of this many…
    pub message_burst: u32,
    /// …refilled at this many per second; beyond that the client is closed.
    pub messages_per_sec: u32,
    /// The largest client message (bytes).
    pub max_message_bytes: usize,
    /// Times a connection may fall behind (resynced from a snapshot) within a minute before it is dropped.
    pub max_resyncs_per_minute: u32,
    /// A send that takes longer than this drops the connection.
    pub send_timeout: Duration,
    /// How often the server's clock goes out (`tick`).
    pub tick: Duration,
    /// Messages a topic holds for its slowest subscriber.
    pub topic_capacity: usize,
    /// How often followed runners' places (moved by others finishing) and overdue flags are refreshed.
    pub refresh: Duration,
    /// A leaderboard goes out at most this often; changes in between are merged into its next
    /// delta (a change after a quiet spell goes out at once).
    pub board_every: Duration,
}

impl Default for LiveConfig {
    fn default() -> LiveConfig {
        LiveConfig {
            max_clients: 18_000,
            max_per_ip: 1_000,
            max_subscriptions: 64,
            message_burst: 128,
            messages_per_sec: 5,
            max_message_bytes: 4096,
            max_resyncs_per_minute: 6,
            send_timeout: Duration::from_secs(20),
            tick: Duration::from_secs(5),
            topic_capacity: 64,
            refresh: Duration::from_secs(5),
            board_every: Duration::from_secs(1),
        }
    }
}

/// Connection accounting shared by all connections.
#[derive(Debug)]
pub struct Admissions {
    per_ip: Mutex<HashMap<IpAddr, u32>>,
}

impl Admissions {
    pub fn new() -> Admissions {
        Admissions { per_ip: Mutex::new(HashMap::new()) }
    }
}

impl Default for Admissions {
    fn default() -> Admissions {
        Admissions::new()
    }
}

/// A held connection slot; released on drop.
struct Admission {
    hub: Arc<Hub>,
    admissions: Arc<Admissions>,
    ip: Option<IpAddr>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.hub.stats.clients.fetch_sub(1, Ordering::Relaxed);
        if let Some(ip) = self.ip {
            let mut m = self.admissions.per_ip.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(n) = m.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&ip);
                }
            }
        }
    }
}

fn admit(
    hub: &Arc<Hub>,
    admissions: &Arc<Admissions>,
    config: &LiveConfig,
    ip: Option<IpAddr>,
) -> Result<Admission, (StatusCode, String)> {
    let refuse = |status: StatusCode, msg: String| {
        hub.stats.refused_limit.fetch_add(1, Ordering::Relaxed);
        Err((status, msg))
    };
    if hub.stats.clients.fetch_add(1, Ordering::Relaxed) >= config.max_clients {
        hub.stats.clients.fetch_sub(1, Ordering::Relaxed);
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the live feed is full ({} connections)", config.max_clients),
        );
    }
    if let Some(ip) = ip {
        let mut m = admissions.per_ip.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = m.entry(ip).or_insert(0);
        if *n >= config.max_per_ip {
            drop(m);
            hub.stats.clients.fetch_sub(1, Ordering::Relaxed);
            return refuse(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many live connections from {ip} (at most {})", config.max_per_ip),
            );
        }
        *n += 1;
    }
    Ok(Admission { hub: hub.clone(), admissions: admissions.clone(), ip })
}

/// The peer's address when the server was started with connect info (not in router tests).
#[derive(Debug)]
pub struct PeerIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<PeerIp, Self::Rejection> {
        let plain = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let tls = || parts.extensions.get::<ConnectInfo<crate::tls::TlsPeer>>().map(|c| c.0.0.ip());
        Ok(PeerIp(plain.or_else(tls)))
    }
}

/// `GET /api/v1/live`.
pub async fn upgrade(State(race): State<RaceHandle>, PeerIp(ip): PeerIp, ws: WebSocketUpgrade) -> Response {
    let (hub, admissions, config) = race.live_parts();
    let admission = match admit(&hub, &admissions, &config, ip) {
        Ok(a) => a,
        Err((status, error)) => return (status, axum::Json(timing_wire::ErrorBody { error })).into_response(),
    };
    ws.read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20)
        .max_message_size(config.max_message_bytes)
        .max_frame_size(config.max_message_bytes)
        .on_upgrade(move |socket| async move {
            hub.stats.connections_total.fetch_add(1, Ordering::Relaxed);
            Connection { socket, race, hub, config, versions: FxHashMap::default(), _admission: admission }.run().await;
        })
}

struct Connection {
    socket: WebSocket,
    race: RaceHandle,
    hub: Arc<Hub>,
    config: LiveConfig,
    /// Per followed topic, the version its last snapshot brought the client to.
    versions: FxHashMap<Key, u64>,
    _admission: Admission,
}

/// Why a connection ends.
enum End {
    /// The client left or the socket failed.
    Gone,
    Close(u16, String),
}

impl Connection {
    async fn run(mut self) {
        let mut subs: StreamMap<Key, BroadcastStream<Frame>> = StreamMap::new();
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + self.config.tick, self.config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut tokens = self.config.message_burst as f64;
        let mut refilled = Instant::now();
        let mut resyncs: Vec<Instant> = Vec::new();
        let end = loop {
            tokio::select! {
                incoming = self.socket.recv() => {
                    let msg = match incoming {
                        Some(Ok(m)) => m,
                        Some(Err(_)) | None => break End::Gone,
                    };
                    let now = Instant::now();
                    tokens = (tokens + now.duration_since(refilled).as_secs_f64() * f64::from(self.config.messages_per_sec))
                        .min(f64::from(self.config.message_burst));
                    refilled = now;
                    if tokens < 1.0 {
                        self.hub.stats.closed_flood.fetch_add(1, Ordering::Relaxed);
                        break End::Close(1008, format!("too many messages (at most {} a second)", self.config.messages_per_sec));
                    }
                    tokens -= 1.0;
                    match msg {
                        Message::Text(text) => match serde_json::from_str::<ClientMessage>(text.as_str()) {
                            Ok(m) => {
                                if let Err(end) = self.handle(m, &mut subs).await {
                                    break end;
                                }
                            }
                            Err(e) => {
                                self.hub.stats.closed_garbage.fetch_add(1, Ordering::Relaxed);
                                break End::Close(1003, format!("not a live-feed message: {e}"));
                            }
                        },
                        Message::Binary(_) => {
                            self.hub.stats.closed_garbage.fetch_add(1, Ordering::Relaxed);
                            break End::Close(1003, "binary messages are not part of the live feed".into());
                        }
                        Message::Close(_) => break End::Gone,
                        Message::Ping(_) | Message::Pong(_) => {}
                    }
                }
                Some((key, item)) = subs.next() => {
                    match item {
                        Ok(frame) => {
                            if frame.version > self.versions.get(&key).copied().unwrap_or(0) {
                                if let Err(end) = self.send(frame.text).await {
                                    break end;
                                }
                                self.hub.stats.delivery.observe(frame.made.elapsed());
                            }
                        }
                        Err(BroadcastStreamRecvError::Lagged(_)) => {
                            self.hub.stats.resyncs.fetch_add(1, Ordering::Relaxed);
                            let now = Instant::now();
                            resyncs.retain(|t| now.duration_since(*t) < Duration::from_secs(60));
                            resyncs.push(now);
                            if resyncs.len() > self.config.max_resyncs_per_minute as usize {
                                self.hub.stats.dropped_slow.fetch_add(1, Ordering::Relaxed);
                                break End::Close(1008, "too slow to follow the live feed".into());
                            }
                            if let Err(end) = self.send_snapshot(&key).await {
                                break end;
                            }
                        }
                    }
                }
                _ = tick.tick() => {
                    let msg = ServerMessage::Tick { v: LIVE_VERSION, now_us: self.race.now().as_micros() };
                    if let Err(end) = self.send(serde_json::to_string(&msg).expect("serialises").into()).await {
                        break end;
                    }
                }
            }
        };
        if let End::Close(code, reason) = end {
            // A close reason is at most 123 bytes.
            let mut reason = reason;
            while reason.len() > 120 {
                reason.pop();
            }
            let _ = self.socket.send(Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from(reason) }))).await;
        }
    }

    async fn handle(&mut self, m: ClientMessage, subs: &mut StreamMap<Key, BroadcastStream<Frame>>) -> Result<(), End> {
        let (v, topic, subscribe) = match m {
            ClientMessage::Subscribe { v, topic } => (v, topic, true),
            ClientMessage::Unsubscribe { v, topic } => (v, topic, false),
        };
        if v != LIVE_VERSION {
            self.hub.stats.closed_garbage.fetch_add(1, Ordering::Relaxed);
            return Err(End::Close(
                1003,
                format!("live-feed version {v} is not supported (this server speaks {LIVE_VERSION})"),
            ));
        }
        let key = match super::resolve(&self.race, &topic) {
            Ok(k) => k,
            Err(error) => return self.send_error(error, Some(topic)).await,
        };
        if !subscribe {
            subs.remove(&key);
            self.versions.remove(&key);
            return Ok(());
        }
        if !subs.contains_key(&key) {
            if subs.len() >= self.config.max_subscriptions {
                let error = format!("at most {} subscriptions per connection", self.config.max_subscriptions);
                return self.send_error(error, Some(topic)).await;
            }
            // The receiver first, then the snapshot: nothing published in between is missed.
            subs.insert(key.clone(), BroadcastStream::new(self.hub.subscribe(&key)));
        }
        self.send_snapshot(&key).await
    }

    async fn send_snapshot(&mut self, key: &Key) -> Result<(), End> {
        match self.race.snapshot(key.clone()).await {
            Some(frame) => {
                self.versions.insert(key.clone(), frame.version);
                self.send(frame.text).await
            }
            None => Err(End::Close(1011, "the race state is not available".into())),
        }
    }

    async fn send_error(&mut self, error: String, topic: Option<Topic>) -> Result<(), End> {
        let msg = ServerMessage::Error { v: LIVE_VERSION, error, topic };
        self.send(serde_json::to_string(&msg).expect("serialises").into()).await
    }

    async fn send(&mut self, text: Utf8Bytes) -> Result<(), End> {
        let n = text.len() as u64;
        match tokio::time::timeout(self.config.send_timeout, self.socket.send(Message::Text(text))).await {
            Ok(Ok(())) => {
                self.hub.stats.messages_sent.fetch_add(1, Ordering::Relaxed);
                self.hub.stats.bytes_sent.fetch_add(n, Ordering::Relaxed);
                Ok(())
            }
            Ok(Err(_)) => Err(End::Gone),
            Err(_) => {
                self.hub.stats.dropped_slow.fetch_add(1, Ordering::Relaxed);
                Err(End::Gone)
            }
        }
    }
}
