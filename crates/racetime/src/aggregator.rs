//! `racetime aggregator`: ingest, race state, results and the web pages on one listener.

use aggregator::{AggregatorStore, AppState, IngestConfig, Tokens, TokensFile, UploadScope};
use std::sync::Arc;

use axum::serve::ListenerExt as _;

use anyhow::Context;

use crate::cli::AggregatorArgs;
use crate::{InputError, load};

pub fn run(args: &AggregatorArgs) -> anyhow::Result<()> {
    let event = load::event(&args.event)?;
    let course = load::course(&event, &args.participants)?;
    let corrections = match &args.corrections {
        Some(p) => load::corrections(&event, p)?,
        None => Vec::new(),
    };
    let scope = UploadScope::load_dir(&args.event).map_err(|e| InputError(e.to_string()))?;
    let tokens_file = match &args.tokens {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).map_err(|e| InputError(format!("{}: cannot read: {e}", p.display())))?;
            Some(TokensFile::parse(&p.display().to_string(), &text).map_err(|e| InputError(e.to_string()))?)
        }
        None => None,
    };
    let tokens = Tokens::load(&scope, tokens_file.as_ref(), |var| std::env::var(var).ok())
        .map_err(|e| InputError(e.to_string()))?;
    for edge in tokens.edges_without_token() {
        tracing::warn!(%edge, "no upload token for this edge: it cannot upload");
    }
    // The results desk's token: from the environment only, and never one an edge holds.
    let desk_token = std::env::var("RACETIME_DESK_TOKEN").ok().filter(|t| !t.is_empty());
    match &desk_token {
        Some(t) if tokens.authenticate(t.as_bytes()).is_some() => {
            return Err(InputError(
                "RACETIME_DESK_TOKEN is also an edge's upload token: use a token of its own".into(),
            )
            .into());
        }
        Some(t) if t.len() < aggregator::auth::TOKEN_MIN_CHARS => {
            return Err(InputError(format!(
                "RACETIME_DESK_TOKEN is shorter than {} characters",
                aggregator::auth::TOKEN_MIN_CHARS
            ))
            .into());
        }
        None => tracing::warn!("no RACETIME_DESK_TOKEN: the results desk API is disabled"),
        Some(_) => {}
    }
    if let Some(dir) = args.db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let store = AggregatorStore::open(&args.db).with_context(|| format!("opening {}", args.db.display()))?;
    let clock = crate::race_clock(args.sim_clock.as_deref())?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some(aggregator::tls::server_config(cert, key).map_err(|e| InputError(e.to_string()))?)
        }
        (None, None) => None,
        _ => return Err(InputError("--tls-cert and --tls-key go together".into()).into()),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    rt.block_on(async move {
        // Race things on the race clock (a simulation's when given), operations on the wall clock.
        let state = AppState::with_clocks(
            store,
            scope,
            tokens,
            IngestConfig::default(),
            clock,
            Arc::new(aggregator::SystemClock),
        );
        let race = aggregator::race::start(
            state.clone(),
            aggregator::race::RaceSetup {
                course,
                corrections,
                event_name: event.name.clone(),
                zone: event.time_zone,
                desk_token,
                live: aggregator::live::ws::LiveConfig {
                    max_clients: args.live_max_clients,
                    max_per_ip: args.live_max_per_ip,
                    ..Default::default()
                },
            },
        );
        let listener =
            tokio::net::TcpListener::bind(&args.listen).await.with_context(|| format!("binding {}", args.listen))?;
        let addr = listener.local_addr()?;
        let app = aggregator::router(state, race);
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            tracing::info!("stopping the aggregator");
        };
        match tls {
            Some(config) => {
                // A line tests and the demo read to find the port.
                println!("aggregator listening on https://{addr}");
                let listener = aggregator::tls::TlsListener::new(listener, config)?;
                axum::serve(listener, app.into_make_service_with_connect_info::<aggregator::tls::TlsPeer>())
                    .with_graceful_shutdown(shutdown)
                    .await
                    .context("serving")
            }
            None => {
                println!("aggregator listening on http://{addr}");
                // Every write is a whole message (an upload's answer, a live-feed frame): send it
                // now rather than wait for the peer's ACK of the previous one (Nagle).
                let listener = listener.tap_io(|tcp| {
                    if let Err(error) = tcp.set_nodelay(true) {
                        tracing::warn!(%error, "setting TCP_NODELAY");
                    }
                });
                axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
                    .with_graceful_shutdown(shutdown)
                    .await
                    .context("serving")
            }
        }
    })
}
