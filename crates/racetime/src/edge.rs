//! `racetime edge`: one edge box's daemon, and `racetime edge status`.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use edge_daemon::daemon::{EdgeStatus, Options, start, status_app};
use edge_daemon::store_writer::WriterConfig;
use event_config::edge::TokenSource;

use crate::cli::{EdgeAction, EdgeArgs};
use crate::{InputError, load};

pub fn run(args: &EdgeArgs) -> anyhow::Result<()> {
    let config = args.config.as_ref().ok_or_else(|| InputError("--config <edge file> is required".into()))?;
    let dir = config.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let event = load::event(dir)?;
    let edge = load::edge(config, &event)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    match args.action {
        Some(EdgeAction::Status) => rt.block_on(print_status(&edge.status_listen)),
        None => {
            let clock = crate::race_clock(args.sim_clock.as_deref())?;
            rt.block_on(run_edge(edge, event, clock))
        }
    }
}

fn token(source: &TokenSource) -> Result<String, InputError> {
    match source {
        TokenSource::Env(var) => std::env::var(var)
            .map_err(|_| InputError(format!("the uplink token is read from ${var}, which is not set"))),
        TokenSource::File(path) => std::fs::read_to_string(path)
            .map(|t| t.trim().to_string())
            .map_err(|e| InputError(format!("reading the uplink token from {}: {e}", path.display()))),
    }
}

async fn run_edge(
    edge: event_config::EdgeConfig,
    event: event_config::EventConfig,
    clock: edge_daemon::link::EdgeClock,
) -> anyhow::Result<()> {
    let token = token(&edge.token)?;
    let listener = tokio::net::TcpListener::bind(&edge.status_listen)
        .await
        .with_context(|| format!("binding the status endpoint on {}", edge.status_listen))?;
    let options = Options {
        clock,
        clock_interval: Duration::from_secs(10),
        writer: WriterConfig::default(),
        uplink_batch: 10_000,
        base_dir: std::env::current_dir().context("current directory")?,
    };
    let running = start(&edge, &event, token, options).await?;
    tracing::info!(edge = %edge.id, status = %listener.local_addr()?, outbox = %running.outbox_path.display(), "edge running");
    let app = status_app(running.status.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping: committing what is held, then closing");
    server.abort();
    running.stop().await;
    Ok(())
}

async fn print_status(listen: &str) -> anyhow::Result<()> {
    let url = format!("http://{listen}/status");
    let status: EdgeStatus = reqwest::get(&url)
        .await
        .with_context(|| format!("no edge answers at {url} (is `racetime edge` running?)"))?
        .json()
        .await
        .context("the status endpoint's answer")?;
    println!(
        "edge {} at {}: {} reads stored ({} duplicates dropped), backlog {}",
        status.edge, status.point, status.stored, status.duplicates, status.backlog
    );
    for r in &status.readers {
        println!(
            "  {:<16} {:<12} {:<6} {:<13} {:>8} reads {:>7.1}/s  offset {}  {}",
            r.id,
            r.protocol,
            r.line,
            if r.connected { "connected" } else { "DISCONNECTED" },
            r.n_reads,
            r.reads_per_s,
            r.clock_offset_ms.map(|o| format!("{o:+.1} ms")).unwrap_or_else(|| "?".into()),
            r.line_health.clone().unwrap_or_default()
        );
    }
    for a in &status.alarms {
        println!("ALARM {a}");
    }
    Ok(())
}
