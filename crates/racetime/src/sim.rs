//! `racetime sim`: start the emulated decoders and Modbus devices an event's edge files name,
//! and play a seeded race into them in accelerated real time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use event_config::edge::{DeviceKind, EdgeConfig, Transport};
use firmware_sim::clock::{AcceleratedClock, ReaderClock, SharedClock};
use firmware_sim::modbus::{DeviceSpec, ModbusEndpoint, spawn_device};
use firmware_sim::player::{Progress, Routes, play};
use firmware_sim::readers::{Endpoint, ReaderSpec, spawn};
use race_sim::{Scenario, simulate};
use timing_core::{Elapsed, Timestamp};

use crate::cli::SimArgs;
use crate::{InputError, generate, load};

pub fn run(args: &SimArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    rt.block_on(run_async(args))
}

async fn run_async(args: &SimArgs) -> anyhow::Result<()> {
    let event = load::event(&args.event)?;
    let course = load::course(&event, &args.participants)?;
    let csv = std::fs::read_to_string(&args.participants)
        .with_context(|| format!("reading {}", args.participants.display()))?;
    let mut scenario = Scenario::troubled(args.seed, Vec::new());
    if let Some(hits) = args.hits {
        scenario.hits = hits;
    }
    let race = simulate(&event, csv, course.participants, &scenario);
    let edges = load::edges(&args.event, &event)?;
    if edges.is_empty() {
        return Err(
            InputError(format!("{}: no edge-*.toml files name any readers to emulate", args.event.display())).into()
        );
    }

    let first_gun = race.guns.iter().map(|g| g.1).min().context("the event has no waves")?;
    let clock = Arc::new(match &args.sim_clock {
        Some(spec) => AcceleratedClock::parse(spec).map_err(InputError)?,
        None => AcceleratedClock::new(first_gun - Elapsed::from_secs(args.lead_s), args.speed),
    });
    eprintln!("race clock for the edges of this simulation: --sim-clock {}", clock.spec());
    let shared: SharedClock = clock.clone();
    let routes = start_hardware(&edges, &event, &race, shared, &args.repo).await?;

    if let Some(out) = &args.out {
        generate::write_race(&race, out)?;
        eprintln!("truth and inputs written to {}", out.display());
    }
    let n_reads: usize = race.crossings.iter().map(|c| c.hits as usize).sum();
    eprintln!(
        "playing {} runners, {} reads at {}× from {} (seed {})",
        race.course.participants.len(),
        n_reads,
        args.speed,
        event_config::units::format_local_time(timing_core::time::Clock::now(&*clock), event.time_zone),
        args.seed
    );

    let mut fault_tasks = Vec::new();
    for f in &args.faults {
        let reader = edges
            .iter()
            .flat_map(|e| e.readers.iter().map(move |r| (e.point, r)))
            .find(|(_, r)| r.id == f.reader)
            .and_then(|(point, r)| routes.readers.get(&(point, r.line)).cloned())
            .ok_or_else(|| InputError(format!("--fault names reader {:?}, which no edge file has", f.reader)))?;
        let (clock, fault, at, id) = (clock.clone(), f.fault.clone(), first_gun + f.at, f.reader.clone());
        fault_tasks.push(tokio::spawn(async move {
            tokio::time::sleep(clock.wall_until(at)).await;
            tracing::warn!(reader_id = %id, ?fault, "injecting a fault");
            reader.fault(fault);
        }));
    }
    let progress = Arc::new(Progress::default());
    let bar = indicatif::ProgressBar::new(n_reads as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} reads  race time {msg}  ({elapsed})")
            .expect("a valid template"),
    );
    let watcher = {
        let progress = progress.clone();
        let bar = bar.clone();
        let zone = event.time_zone;
        tokio::spawn(async move {
            loop {
                bar.set_position(progress.reads_sent.load(Ordering::Relaxed));
                let now = Timestamp::from_micros(progress.sim_now_us.load(Ordering::Relaxed) as i64);
                bar.set_message(event_config::units::format_local_time(now, zone));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    play(&race, &routes, &*clock, &progress).await;
    watcher.abort();
    for t in fault_tasks {
        t.abort();
    }
    bar.finish();
    eprintln!(
        "done: {} reads sent, {} without a reader in the edge files, {} guns fired",
        progress.reads_sent.load(Ordering::Relaxed),
        progress.reads_unrouted.load(Ordering::Relaxed),
        progress.guns_fired.load(Ordering::Relaxed)
    );
    if args.linger_s > 0 {
        eprintln!("keeping the emulators up for {} s so clients can catch up", args.linger_s);
        tokio::time::sleep(Duration::from_secs(args.linger_s)).await;
    }
    Ok(())
}

/// Starts one emulator per reader and device of every edge file, where the edge expects it.
pub async fn start_hardware(
    edges: &[EdgeConfig],
    event: &event_config::EventConfig,
    race: &race_sim::SimRace,
    clock: SharedClock,
    repo: &Path,
) -> anyhow::Result<Routes> {
    let mut routes = Routes::default();
    let first_gun = race.guns.iter().map(|g| g.1).min().unwrap_or_default();
    for edge in edges {
        for r in &edge.readers {
            let endpoint = match r.transport {
                Transport::Tcp => Endpoint::Listen(
                    r.address
                        .as_deref()
                        .unwrap_or_default()
                        .parse()
                        .with_context(|| format!("reader {}: address", r.id))?,
                ),
                Transport::Listen => Endpoint::Connect(r.address.clone().unwrap_or_default()),
                Transport::Serial => {
                    Endpoint::Serial { link: r.serial.as_ref().map(|s| s.device.clone()).unwrap_or_default() }
                }
            };
            let spec = ReaderSpec {
                id: r.id.clone(),
                protocol: r.protocol,
                endpoint,
                clock: ReaderClock { offset: r.sim.clock_offset, drift_ppm: r.sim.drift_ppm, epoch: first_gun },
                time_zone: r.time_zone.unwrap_or(event.time_zone),
                store: None,
            };
            let handle = spawn(spec, clock.clone())
                .await
                .with_context(|| format!("starting the emulator for reader {}", r.id))?;
            eprintln!(
                "reader {:<16} {:<12} {}",
                r.id,
                r.protocol.as_str(),
                handle
                    .local_addr()
                    .map(|a| format!("listening on {a}"))
                    .or_else(|| handle.tty_path().map(|p| format!("serial at {}", p.display())))
                    .unwrap_or_else(|| format!("connecting to {}", r.address.as_deref().unwrap_or("?")))
            );
            routes.readers.insert((edge.point, r.line), Arc::new(handle));
        }
        for d in &edge.devices {
            let map_path: PathBuf = repo.join(&d.register_map);
            let map_text =
                std::fs::read_to_string(&map_path).with_context(|| format!("reading {}", map_path.display()))?;
            let map = event_config::modbus_map::parse_register_map(&map_path.display().to_string(), &map_text)
                .map_err(|e| InputError(e.to_string()))?;
            let endpoint = match (&d.address, &d.serial) {
                (Some(a), _) => ModbusEndpoint::Tcp(a.parse().with_context(|| format!("device {}: address", d.id))?),
                (None, Some(s)) => ModbusEndpoint::Rtu { link: s.device.clone(), baud: s.baud },
                (None, None) => anyhow::bail!("device {} has no endpoint", d.id),
            };
            let handle = Arc::new(
                spawn_device(DeviceSpec { id: d.id.clone(), kind: d.kind, unit: d.unit, map, endpoint }, clock.clone())
                    .await
                    .with_context(|| format!("starting the emulator for device {}", d.id))?,
            );
            if d.kind == DeviceKind::ChargeController {
                handle.set_battery(12_800, 87, 1_500);
            }
            for g in &d.start_guns {
                for (race_id, wave_id) in &g.waves {
                    let w = race.course.race_by_id(race_id).and_then(|r| race.course.wave_by_id(r, wave_id));
                    if let Some(w) = w {
                        routes.guns.insert(w, (handle.clone(), g.channel));
                    }
                }
            }
            eprintln!("device {:<16} {:?}", d.id, d.kind);
        }
    }
    Ok(routes)
}
