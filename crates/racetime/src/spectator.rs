//! A spectator's live-feed client, for the system tests and the load tool: connects to
//! `/api/v1/live`, subscribes, and keeps a [`Screen`] up to date until told to stop.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use timing_wire::live::client::Screen;
use timing_wire::live::{ClientMessage, LIVE_VERSION, ServerMessage, Topic};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

/// A spectator following some topics.
#[derive(Debug)]
pub struct Follower {
    screen: Arc<Mutex<Screen>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

fn lock(s: &Mutex<Screen>) -> std::sync::MutexGuard<'_, Screen> {
    s.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Follower {
    /// Connects to the aggregator at `http_url` and subscribes; returns once every snapshot
    /// (or refusal) has arrived.
    pub async fn start(http_url: &str, topics: Vec<Topic>) -> anyhow::Result<Follower> {
        let url = format!("{}/api/v1/live", http_url.replacen("http", "ws", 1));
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await?;
        for topic in &topics {
            let m = ClientMessage::Subscribe { v: LIVE_VERSION, topic: topic.clone() };
            ws.send(Message::text(serde_json::to_string(&m)?)).await?;
        }
        let mut first = Screen::default();
        while first.n_snapshots + first.errors.len() < topics.len() {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => first.apply(serde_json::from_str::<ServerMessage>(t.as_str())?),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => anyhow::bail!("the live feed closed before the snapshots"),
            }
        }
        let screen = Arc::new(Mutex::new(first));
        let (stop, mut stopped) = watch::channel(false);
        let shared = screen.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    msg = ws.next() => match msg {
                        Some(Ok(Message::Text(t))) => lock(&shared).apply(serde_json::from_str::<ServerMessage>(t.as_str())?),
                        Some(Ok(Message::Close(frame))) => anyhow::bail!("the live feed closed: {frame:?}"),
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(e.into()),
                        None => anyhow::bail!("the live feed closed"),
                    },
                    _ = stopped.changed() => return Ok(()),
                }
            }
        });
        Ok(Follower { screen, stop, task })
    }

    /// What the screen shows now.
    pub fn screen(&self) -> Screen {
        lock(&self.screen).clone()
    }

    /// Polls the screen until `done` holds; fails after `within` or if the feed broke.
    pub async fn wait_for(&self, within: Duration, done: impl Fn(&Screen) -> bool) -> anyhow::Result<Screen> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if done(&lock(&self.screen)) {
                return Ok(self.screen());
            }
            if self.task.is_finished() {
                anyhow::bail!("the live feed stopped early");
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("the screen never got there in {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops following; the feed must not have broken on the way.
    pub async fn finish(self) -> anyhow::Result<Screen> {
        let _ = self.stop.send(true);
        self.task.await??;
        Ok(lock(&self.screen).clone())
    }
}
