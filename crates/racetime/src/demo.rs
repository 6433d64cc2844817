//! `racetime demo`: a whole simulated race through every real part, on this machine.
//!
//! Emulated decoders of all seven protocols (LLRP, RACE RESULT over TCP and a serial pty, Ultra,
//! IPICO over a serial pty, JChip, ChronoTrack, MYLAPS) and the Modbus start-gun and battery
//! devices feed one `racetime edge` process per timing point, which sync to a `racetime
//! aggregator` on an embedded SQLite store; the race plays at `--speed` × real time; at the end
//! the aggregator's final standings are written to a file and checked against the generator's
//! truth. No external service is needed.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use firmware_sim::player::Progress;
use race_sim::{Scenario, generate};

use crate::chain::{Chain, ChainOptions, standings_mismatch};
use crate::cli::DemoArgs;
use crate::{load, write_atomically};

const MARKER: &str = ".racetime-demo";

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    rt.block_on(run_async(args))
}

async fn run_async(args: &DemoArgs) -> anyhow::Result<()> {
    let event = load::event(&args.event)?;
    // The output folder is the demo's own: cleared between runs, never someone else's folder.
    if args.out.exists() {
        if !args.out.join(MARKER).exists() && std::fs::read_dir(&args.out)?.next().is_some() {
            bail!("{} is not empty and not a racetime demo folder; choose another --out", args.out.display());
        }
        std::fs::remove_dir_all(&args.out).with_context(|| format!("clearing {}", args.out.display()))?;
    }
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join(MARKER), b"racetime demo output; cleared on the next run\n")?;

    eprintln!("racetime demo: {} ({}), seed {}", event.name, args.event.display(), args.seed);
    let race = generate(&event, &Scenario::troubled(args.seed, args.runners.clone()));
    let n_reads: u64 = race.crossings.iter().map(|c| c.hits as u64).sum();
    eprintln!(
        "[1/4] generated {} runners in {} waves: {} mat crossings, {} raw reads (DNS, DNF, strays, missed mats and re-crossings included)",
        race.course.participants.len(),
        race.course.waves.len(),
        race.crossings.len(),
        n_reads
    );
    let event_dir = args.event.canonicalize().with_context(|| format!("{}", args.event.display()))?;
    let repo = event_dir
        .parent()
        .and_then(|p| p.parent())
        .filter(|r| r.join("hardware/modbus").exists())
        .map(|r| r.to_path_buf())
        .unwrap_or(std::env::current_dir()?);
    let options = ChainOptions {
        event_dir: event_dir.clone(),
        work_dir: args.out.clone(),
        exe: std::env::current_exe().context("finding the racetime binary")?,
        repo,
        listen: args.listen.clone(),
        desk_guns: Vec::new(),
    };
    let chain = Chain::start(&options, race).await?;
    eprintln!(
        "[2/4] started the aggregator, {} edge daemons and {} emulated decoders ({} with a start-gun input)",
        chain.edges.len(),
        chain.routes.readers.len(),
        if chain.routes.guns.is_empty() { "none" } else { "one" }
    );
    println!("spectators:      {}/", chain.agg_url);
    println!("results desk:    {}/desk   (desk token: {})", chain.agg_url, chain.desk_token);
    println!("timing crews:    {}/fleet", chain.agg_url);
    println!("results (live):  {}/api/v1/standings.csv", chain.agg_url);
    println!("API:             {}/api/v1/openapi.json   live feed: docs/live-api.md", chain.agg_url);

    let speed =
        if args.speed == "max" { None } else { Some(args.speed.parse::<f64>().context("--speed: a number or max")?) };
    eprintln!("[3/4] playing the race at {}", speed.map_or("full speed".to_string(), |s| format!("{s}× real time")));
    let progress = Arc::new(Progress::default());
    let bar = indicatif::ProgressBar::new(n_reads);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} reads  race time {msg}  ({elapsed})")
            .expect("a valid template"),
    );
    let watcher = {
        let (progress, bar, zone) = (progress.clone(), bar.clone(), event.time_zone);
        tokio::spawn(async move {
            loop {
                bar.set_position(progress.reads_sent.load(Ordering::Relaxed));
                let now = timing_core::Timestamp::from_micros(progress.sim_now_us.load(Ordering::Relaxed) as i64);
                bar.set_message(event_config::units::format_local_time(now, zone));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    chain.play(speed, &progress).await?;
    watcher.abort();
    bar.finish();

    eprintln!("[4/4] waiting for every read to reach the aggregator, then checking the standings");
    let held = chain.settle(Duration::from_secs(300)).await?;
    let got = chain.standings().await?;
    let standings_path = args.out.join("standings.csv");
    write_atomically(&standings_path, got.as_bytes())?;
    let want = chain.truth()?;
    if let Some(mismatch) = standings_mismatch(&got, &want) {
        bail!("seed {}: {mismatch}", args.seed);
    }
    eprintln!(
        "the aggregator holds {held} reads; its standings match the truth for all {} participants",
        chain.race.course.participants.len()
    );
    println!("final standings: {}", standings_path.display());
    if args.stay {
        eprintln!("the pages stay up at {}/ until Ctrl-C", chain.agg_url);
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    } else {
        eprintln!("(--stay keeps the pages up after the finish)");
    }
    Ok(())
}
