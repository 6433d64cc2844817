//! `racetime loadtest`: a Paris-size race through a real `racetime aggregator` process.
//!
//! 1. Backlog: every read of a generated race except the finish's (about 3 M for 40,048
//!    runners), uploaded by all edges at once in batches of 10,000, as edges do after an outage;
//!    timed until the race state has applied every read.
//! 2. Spectators: `--spectators` WebSocket clients follow the finish arrivals and the marathon
//!    leaderboard (one in ten also a runner).
//! 3. Peak finish: `--finishers-per-s` finishers a second, `--hits` reads each, uploaded every
//!    100 ms by the finish edge. Latency is from the start of the upload carrying a runner's
//!    first finish read to a spectator receiving that arrival (sampled on one spectator in ten).
//! 4. Fan-out: more clients up to `--fanout`, all on the marathon leaderboard; the marathon
//!    winner's finish (held back until now) changes its head, and the time until each client
//!    has the change is measured.
//!
//! Besides `report.md`, the peak's runner samples go to `runner-latency.csv` (when each upload
//! started, its latency), to see when the slow ones happened.
//!
//! Memory is the aggregator process's resident set (`/proc/<pid>/status`) before and after the
//! spectators connect. The load tool and the aggregator share this machine's cores, so the
//! figures include the clients' own work.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use event_config::EventConfig;
use futures::{SinkExt, StreamExt};
use timing_core::{Elapsed, Read, Status};
use timing_wire::live::{ClientMessage, LIVE_VERSION, Topic};
use timing_wire::{Batch, UPLINK_VERSION, WireRead};
use tokio_tungstenite::tungstenite::Message;

use crate::chain::{Proc, token_for};
use crate::cli::LoadtestArgs;

/// Wall-clock instants as nanoseconds since the tool started (0: not yet).
struct Sent {
    base: Instant,
    at: Vec<AtomicU64>,
}

impl Sent {
    fn mark(&self, p: usize, t: Instant) {
        self.at[p].store(t.duration_since(self.base).as_nanos() as u64 + 1, Ordering::Relaxed);
    }
    fn get(&self, p: usize) -> Option<Instant> {
        match self.at[p].load(Ordering::Relaxed) {
            0 => None,
            ns => Some(self.base + Duration::from_nanos(ns - 1)),
        }
    }
}

#[derive(Default)]
struct Samples {
    arrivals_us: Mutex<Vec<u64>>,
    /// Per runner sample: when its upload started (µs since the tool started) and the latency (µs).
    runner_us: Mutex<Vec<(u64, u64)>>,
    fanout_us: Mutex<Vec<u64>>,
    n_messages: AtomicU64,
    n_bytes: AtomicU64,
    connected: AtomicUsize,
    failed: AtomicUsize,
}

fn percentile(v: &mut [u64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i] as f64 / 1000.0
}

fn proc_status(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find_map(|l| l.strip_prefix(key)?.trim().strip_suffix("kB")?.trim().parse().ok())
}

fn cpu_seconds(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = s.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

pub fn run(args: &LoadtestArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run_async(args))
}

async fn run_async(args: &LoadtestArgs) -> anyhow::Result<()> {
    let t_all = Instant::now();
    std::fs::create_dir_all(&args.out)?;
    let event_dir = args.out.join("event");
    let event = ranked_event(&args.event, &event_dir)?;
    eprintln!("[1/5] generating a race of {} runners per race (seed {})", args.runners, args.seed);
    let race = race_sim::generate(&event, &race_sim::Scenario::clean(args.seed, vec![args.runners, args.runners]));
    crate::generate::write_race(&race, &args.out.join("race"))?;
    let course = &race.course;

    let (edges, envs) = edge_tokens(&event_dir, &event)?;
    let finish_point = course.race(timing_core::RaceIdx(0)).splits.last().map(|s| course.point(s.point).id.to_string());
    let finish_point = finish_point.context("the marathon has no finish")?;

    // The aggregator, a process of its own, on a race clock that reaches the first finisher when
    // the load test starts and runs at real speed (so predictions and "overdue" make sense).
    let first_finish = race
        .crossings
        .iter()
        .filter(|c| course.point(c.point).id.as_str() == finish_point)
        .map(|c| c.first_read)
        .min()
        .context("nobody finishes")?;
    let wall_now_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_micros() as i64;
    let race_clock = format!("{}@{}x1", first_finish.as_micros(), wall_now_us);
    let (agg, url) = spawn_aggregator(
        &std::env::current_exe()?,
        &event_dir,
        &args.out,
        &race_clock,
        &envs,
        &["--live-max-per-ip", "20000", "--live-max-clients", "19000"],
    )?;
    let pid = agg.0.id();
    let http = reqwest::Client::new();

    // Reads: everything but the finish goes into the backlog; the finish is the peak.
    let reads = race.reads();
    let n_total = reads.len();
    let winner = race
        .truth
        .iter()
        .find(|t| {
            course.participant(t.participant).race.idx() == 0
                && t.places.overall == Some(1)
                && course.participant(t.participant).division.as_str() == "running"
        })
        .map(|t| t.participant)
        .context("no marathon winner")?;
    let winner_chips: Vec<String> = course.participant(winner).chips.iter().map(|c| c.to_string()).collect();
    let mut backlog: BTreeMap<String, Vec<Read>> = BTreeMap::new();
    let mut finish_reads: Vec<Read> = Vec::new();
    for r in reads {
        if r.point.as_str() == finish_point {
            finish_reads.push(r);
        } else {
            backlog.entry(r.point.to_string()).or_default().push(r);
        }
    }
    let n_backlog: usize = backlog.values().map(Vec::len).sum();
    eprintln!(
        "[2/5] backlog: {n_backlog} reads from {} edges in batches of 10,000 (the finish's {} held for the peak)",
        backlog.len(),
        finish_reads.len()
    );
    let t0 = Instant::now();
    upload_backlog(&http, &url, &edges, backlog).await?;
    let stored = t0.elapsed();
    wait_applied(&http, &url, n_backlog as u64, Duration::from_secs(600)).await?;
    let applied = t0.elapsed();
    let rss_idle = proc_status(pid, "VmRSS:").unwrap_or(0);
    eprintln!(
        "      stored in {:.1} s ({:.0} reads/s), applied in {:.1} s ({:.0} reads/s); aggregator RSS {} MiB",
        stored.as_secs_f64(),
        n_backlog as f64 / stored.as_secs_f64(),
        applied.as_secs_f64(),
        n_backlog as f64 / applied.as_secs_f64(),
        rss_idle / 1024
    );

    // Spectators.
    let base = Instant::now();
    let sent = Arc::new(Sent { base, at: (0..course.participants.len()).map(|_| AtomicU64::new(0)).collect() });
    let bibs: Arc<HashMap<String, usize>> =
        Arc::new(course.participants.iter().enumerate().map(|(i, p)| (p.bib.as_str().to_string(), i)).collect());
    let samples = Arc::new(Samples::default());
    let winner_bib = course.participant(winner).bib.as_str().to_string();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    eprintln!("[3/5] connecting {} spectators", args.spectators);
    let ws_url = format!("{}/api/v1/live", url.replacen("http", "ws", 1));
    let mut spectators = Vec::new();
    let gate = Arc::new(tokio::sync::Semaphore::new(64));
    let spawn = |id: usize, full: bool, spectators: &mut Vec<tokio::task::JoinHandle<()>>| {
        let (ws_url, sent, bibs, samples, gate, mut stop) =
            (ws_url.clone(), sent.clone(), bibs.clone(), samples.clone(), gate.clone(), stop_rx.clone());
        let winner_bib = winner_bib.clone();
        let n = course.participants.len();
        let follow: Vec<String> =
            (0..3).map(|k| course.participants[(id * 7919 + k * 104_729) % n].bib.as_str().to_string()).collect();
        let on_arrivals = id.is_multiple_of((100 / args.arrivals_share.clamp(1, 100)) as usize);
        let finish = finish_point.clone();
        spectators.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let Ok((mut ws, _)) = tokio_tungstenite::connect_async(&ws_url).await else {
                samples.failed.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let mut topics = vec![Topic::Leaderboard {
                race: "marathon".into(),
                gender: None,
                category: None,
                division: None,
                top: 10,
            }];
            if full {
                topics.extend(follow.into_iter().map(|bib| Topic::Runner { bib }));
                if on_arrivals {
                    topics.push(Topic::Arrivals { point: finish });
                }
            }
            let n_topics = topics.len();
            for t in topics {
                let m = ClientMessage::Subscribe { v: LIVE_VERSION, topic: t };
                if ws.send(Message::text(serde_json::to_string(&m).expect("serialises"))).await.is_err() {
                    samples.failed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            drop(permit);
            // Connected once every subscription's snapshot came: the server is done with this
            // client's setup, so the phases measured after `wait_connected` measure only themselves.
            let mut snapshots = 0;
            let mut finished_seen: std::collections::HashSet<String> = Default::default();
            let winner_marker = format!("\"bib\":\"{winner_bib}\"");
            let mut got_winner = false;
            loop {
                tokio::select! {
                    msg = ws.next() => {
                        let Some(Ok(msg)) = msg else { return };
                        let Message::Text(t) = msg else { continue };
                        let now = Instant::now();
                        if snapshots < n_topics && t.contains("\"snapshot\":true") {
                            snapshots += 1;
                            if snapshots == n_topics {
                                samples.connected.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        samples.n_messages.fetch_add(1, Ordering::Relaxed);
                        samples.n_bytes.fetch_add(t.len() as u64, Ordering::Relaxed);
                        let t = t.as_str();
                        if !got_winner && t.starts_with("{\"type\":\"leaderboard\"") && t.contains(&winner_marker)
                            && let Some(s) = bibs.get(&winner_bib).and_then(|&p| sent.get(p))
                        {
                            got_winner = true;
                            samples.fanout_us.lock().unwrap_or_else(|p| p.into_inner()).push(now.duration_since(s).as_micros() as u64);
                        }
                        if t.starts_with("{\"type\":\"arrivals\"") && t.contains("\"snapshot\":false")
                            && let Ok(timing_wire::live::ServerMessage::Arrivals { items, .. }) = serde_json::from_str(t)
                        {
                            let mut v = samples.arrivals_us.lock().unwrap_or_else(|p| p.into_inner());
                            for a in items {
                                if let Some(s) = bibs.get(&a.bib).and_then(|&p| sent.get(p)) {
                                    v.push(now.duration_since(s).as_micros() as u64);
                                }
                            }
                        }
                        if t.starts_with("{\"type\":\"runner\"") && t.contains("\"status\":\"finished\"")
                            && let Ok(timing_wire::live::ServerMessage::Runner { runner, .. }) = serde_json::from_str(t)
                            && finished_seen.insert(runner.bib.clone())
                            && let Some(s) = bibs.get(&runner.bib).and_then(|&p| sent.get(p))
                        {
                            let sample = (s.duration_since(base).as_micros() as u64, now.duration_since(s).as_micros() as u64);
                            samples.runner_us.lock().unwrap_or_else(|p| p.into_inner()).push(sample);
                        }
                    }
                    _ = stop.changed() => return,
                }
            }
        }));
    };
    for id in 0..args.spectators {
        spawn(id, true, &mut spectators);
    }
    wait_connected(&samples, args.spectators).await?;
    let rss_spectators = proc_status(pid, "VmRSS:").unwrap_or(0);
    eprintln!(
        "      {} connected ({} failed); aggregator RSS {} MiB",
        samples.connected.load(Ordering::Relaxed),
        samples.failed.load(Ordering::Relaxed),
        rss_spectators / 1024
    );

    // The peak: finishers in race order, 50 hits each.
    let mut crossings: Vec<&race_sim::SimCrossing> = race
        .crossings
        .iter()
        .filter(|c| course.point(c.point).id.as_str() == finish_point && !winner_chips.contains(&c.chip.to_string()))
        .collect();
    crossings.sort_by_key(|c| c.first_read);
    let (finish_edge, finish_token) = edges.get(&finish_point).cloned().context("no finish edge")?;
    let chips: HashMap<timing_core::ChipId, usize> =
        course.participants.iter().enumerate().flat_map(|(i, p)| p.chips.iter().map(move |c| (c.clone(), i))).collect();
    let per_tick = args.finishers_per_s.div_ceil(10).max(1);
    let ticks = args.seconds * 10;
    eprintln!(
        "[4/5] peak finish: {} finishers/s × {} reads for {} s to {} spectators",
        args.finishers_per_s, args.hits, args.seconds, args.spectators
    );
    let cpu0 = cpu_seconds(pid).unwrap_or(0.0);
    let d0 = delivery(&http, &url).await?;
    let t_peak = Instant::now();
    let mut seq = 0u64;
    let mut next = 0usize;
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    let mut n_peak_reads = 0usize;
    for _ in 0..ticks {
        interval.tick().await;
        let mut wire = Vec::new();
        let now = Instant::now();
        for c in crossings.iter().skip(next).take(per_tick) {
            if let Some(&p) = chips.get(&c.chip) {
                sent.mark(p, now);
            }
            for k in 0..args.hits {
                seq += 1;
                let r = Read {
                    chip: c.chip.clone(),
                    at: c.first_read + Elapsed::from_millis(i64::from(k) * 20),
                    point: course.point(c.point).id.clone(),
                    line: c.line,
                    reader: timing_core::ReaderId::new(&format!("{finish_point}-main")),
                    antenna: (k % 4) as u16 + 1,
                    rssi: Some(timing_core::Rssi(-650 + (k as i16 % 40))),
                    reader_seq: Some(seq),
                };
                wire.push(WireRead::from_read(seq, &r, reader_protocol::ReaderTime::Utc(r.at), None, None, r.at));
            }
        }
        next += per_tick;
        n_peak_reads += wire.len();
        let body = Batch { v: UPLINK_VERSION, edge: finish_edge.clone(), reads: wire, signals: vec![] };
        let resp = http.post(format!("{url}/api/v1/ingest")).bearer_auth(&finish_token).json(&body).send().await?;
        if !resp.status().is_success() {
            bail!("peak upload refused: {}", resp.text().await?);
        }
    }
    let peak = t_peak.elapsed();
    // Let the last arrivals reach the spectators.
    let expected = n_peak_reads as u64 + n_backlog as u64;
    wait_applied(&http, &url, expected, Duration::from_secs(120)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu_peak = cpu_seconds(pid).unwrap_or(0.0) - cpu0;
    let d1 = delivery(&http, &url).await?;
    let mut runner_log = std::mem::take(&mut *samples.runner_us.lock().unwrap_or_else(|p| p.into_inner()));
    runner_log.sort_unstable();
    write_runner_log(&args.out, &runner_log, t_peak.duration_since(base))?;
    let mut runner_lat: Vec<u64> = runner_log.iter().map(|s| s.1).collect();
    let mut arrivals = std::mem::take(&mut *samples.arrivals_us.lock().unwrap_or_else(|p| p.into_inner()));

    // Fan-out.
    eprintln!("[5/5] fan-out: {} spectators on the marathon leaderboard; the winner finishes now", args.fanout);
    let rss_before_fanout = proc_status(pid, "VmRSS:").unwrap_or(0);
    for id in args.spectators..args.fanout.max(args.spectators) {
        spawn(id, false, &mut spectators);
    }
    wait_connected(&samples, args.fanout.max(args.spectators)).await?;
    let rss_all = proc_status(pid, "VmRSS:").unwrap_or(0);
    let n_connected = samples.connected.load(Ordering::Relaxed);
    let d2 = delivery(&http, &url).await?;
    let winner_reads: Vec<WireRead> = finish_reads
        .iter()
        .filter(|r| winner_chips.contains(&r.chip.to_string()))
        .map(|r| {
            seq += 1;
            WireRead::from_read(seq, r, reader_protocol::ReaderTime::Utc(r.at), None, None, r.at)
        })
        .collect();
    sent.mark(winner.idx(), Instant::now());
    let body = Batch { v: UPLINK_VERSION, edge: finish_edge.clone(), reads: winner_reads, signals: vec![] };
    let resp = http.post(format!("{url}/api/v1/ingest")).bearer_auth(&finish_token).json(&body).send().await?;
    if !resp.status().is_success() {
        bail!("winner upload refused: {}", resp.text().await?);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while samples.fanout_us.lock().unwrap_or_else(|p| p.into_inner()).len() < n_connected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut fanout = std::mem::take(&mut *samples.fanout_us.lock().unwrap_or_else(|p| p.into_inner()));
    let d3 = delivery(&http, &url).await?;
    let hwm = proc_status(pid, "VmHWM:").unwrap_or(0);
    let _ = stop_tx.send(true);
    for s in spectators {
        let _ = s.await;
    }
    let summary: aggregator::race::Summary = http.get(format!("{url}/api/v1/summary")).send().await?.json().await?;
    let finished = race.truth.iter().filter(|t| t.status == Status::Finished).count();

    // The clients added for the fan-out, each on one leaderboard: the RSS they added, each.
    let n_added = n_connected.saturating_sub(args.spectators).max(1);
    let per_conn_kib = (rss_all.saturating_sub(rss_before_fanout)) as f64 / n_added as f64;
    let report = format!(
        "# racetime loadtest\n\n\
         command: `racetime loadtest --event {event} --runners {runners} --spectators {spectators} --arrivals-share {arrivals_share} --fanout {fanout_n} --finishers-per-s {fps} --hits {hits} --seconds {secs} --seed {seed}`\n\
         machine: {cores} cores; aggregator and load tool on the same machine\n\n\
         | what | figure |\n|---|---|\n\
         | runners / reads generated | {n_runners} / {n_total} |\n\
         | backlog ingest from {n_edges} edges, into the store | {store_rate:.0} reads/s ({n_backlog} reads in {stored:.1} s) |\n\
         | backlog ingest, store and engine | {apply_rate:.0} reads/s ({applied:.1} s) |\n\
         | peak: reads uploaded | {n_peak_reads} in {peak:.1} s ({peak_rate:.0} reads/s) |\n\
         | peak: upload → a follower's runner message (finish), p50 / p99 / max | {r50:.1} / {r99:.1} / {rmax:.1} ms ({n_r} samples, {spectators} spectators following 3 runners each) |\n\
         | peak: upload → arrival on the finish feed, p50 / p99 / max | {a50:.1} / {a99:.1} / {amax:.1} ms ({n_a} samples, {arrivals_share} % of spectators on the feed) |\n\
         | peak: server side, message made → written to the socket, p50 / p99 | {dp50} / {dp99} ms (bucket bounds) |\n\
         | peak: aggregator CPU | {cpu:.0} % of one core |\n\
         | fan-out: leaderboard change → client, p50 / p99 / max | {f50:.1} / {f99:.1} / {fmax:.1} ms ({n_f} of {n_connected} clients) |\n\
         | fan-out: server side, made → written to each socket, p50 / p99 | {df50} / {df99} ms (bucket bounds) |\n\
         | aggregator RSS: after the backlog / with {spectators} spectators / after the peak / with {n_connected} | {r0} / {r1} / {r15} / {r2} MiB |\n\
         | aggregator memory per spectator connection (the {n_added} added for the fan-out) | {per_conn_kib:.1} KiB |\n\
         | aggregator peak RSS (VmHWM) | {hwm} MiB |\n\
         | live messages received / bytes | {msgs} / {mib:.0} MiB |\n\
         | race state at the end | {reads_applied} reads applied, {fin_now} finished (the peak covered {covered} of {finished} finishers) |\n\
         | whole run | {total:.0} s |\n",
        event = args.event.display(),
        runners = args.runners,
        spectators = args.spectators,
        fanout_n = args.fanout,
        fps = args.finishers_per_s,
        hits = args.hits,
        secs = args.seconds,
        seed = args.seed,
        cores = std::thread::available_parallelism().map_or(0, |n| n.get()),
        n_runners = course.participants.len(),
        n_edges = edges.len(),
        store_rate = n_backlog as f64 / stored.as_secs_f64(),
        stored = stored.as_secs_f64(),
        apply_rate = n_backlog as f64 / applied.as_secs_f64(),
        applied = applied.as_secs_f64(),
        peak = peak.as_secs_f64(),
        peak_rate = n_peak_reads as f64 / peak.as_secs_f64(),
        r50 = percentile(&mut runner_lat, 0.5),
        r99 = percentile(&mut runner_lat, 0.99),
        rmax = percentile(&mut runner_lat, 1.0),
        n_r = runner_lat.len(),
        arrivals_share = args.arrivals_share,
        dp50 = delivery_percentile(&d0, &d1, 0.5),
        dp99 = delivery_percentile(&d0, &d1, 0.99),
        df50 = delivery_percentile(&d2, &d3, 0.5),
        df99 = delivery_percentile(&d2, &d3, 0.99),
        a50 = percentile(&mut arrivals, 0.5),
        a99 = percentile(&mut arrivals, 0.99),
        amax = percentile(&mut arrivals, 1.0),
        n_a = arrivals.len(),
        cpu = cpu_peak / peak.as_secs_f64() * 100.0,
        f50 = percentile(&mut fanout, 0.5),
        f99 = percentile(&mut fanout, 0.99),
        fmax = percentile(&mut fanout, 1.0),
        n_f = fanout.len(),
        r0 = rss_idle / 1024,
        r1 = rss_spectators / 1024,
        r2 = rss_all / 1024,
        r15 = rss_before_fanout / 1024,
        hwm = hwm / 1024,
        msgs = samples.n_messages.load(Ordering::Relaxed),
        mib = samples.n_bytes.load(Ordering::Relaxed) as f64 / (1 << 20) as f64,
        reads_applied = summary.n_reads,
        fin_now = summary.n_finished,
        covered = next.min(crossings.len()),
        total = t_all.elapsed().as_secs_f64(),
    );
    println!("{report}");
    let path = args.out.join("report.md");
    std::fs::write(&path, &report)?;
    eprintln!("report written to {}", path.display());
    drop(agg);
    Ok(())
}

/// Every runner sample of the peak (in sending order) as `sent_ms,latency_ms` (sent: since the
/// peak started) in `out/runner-latency.csv`, to see when the slow ones happened.
fn write_runner_log(out: &Path, log: &[(u64, u64)], peak_start: Duration) -> anyhow::Result<()> {
    let start = peak_start.as_micros() as u64;
    let mut csv = String::from("sent_ms,latency_ms\n");
    for &(sent, us) in log {
        csv.push_str(&format!("{:.1},{:.1}\n", sent.saturating_sub(start) as f64 / 1000.0, us as f64 / 1000.0));
    }
    std::fs::write(out.join("runner-latency.csv"), csv)?;
    Ok(())
}

/// The server's delivery histogram: (upper bound in seconds, cumulative count) per bucket.
async fn delivery(http: &reqwest::Client, url: &str) -> anyhow::Result<Vec<(f64, u64)>> {
    let text = http.get(format!("{url}/metrics")).send().await?.text().await?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("racetime_live_delivery_seconds_bucket{le=\"")?;
            let (le, n) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((le, n.parse().ok()?))
        })
        .collect())
}

/// The bucket bound (ms) under which a fraction `p` of the deliveries between two scrapes fell.
fn delivery_percentile(before: &[(f64, u64)], after: &[(f64, u64)], p: f64) -> String {
    let total = after.last().map_or(0, |b| b.1) - before.last().map_or(0, |b| b.1);
    if total == 0 {
        return "n/a".into();
    }
    for ((le, a), (_, b)) in after.iter().zip(before) {
        if (a - b) as f64 >= p * total as f64 {
            return if le.is_finite() { format!("≤ {}", le * 1000.0) } else { "> 2500".into() };
        }
    }
    "n/a".into()
}

/// Waits until the aggregator at `url` has applied `n` reads.
pub async fn wait_applied(http: &reqwest::Client, url: &str, n: u64, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let s: aggregator::race::Summary = http.get(format!("{url}/api/v1/summary")).send().await?.json().await?;
        if s.n_reads >= n {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the aggregator applied {} of {n} reads in {within:?}", s.n_reads);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_connected(samples: &Samples, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    while samples.connected.load(Ordering::Relaxed) + samples.failed.load(Ordering::Relaxed) < n {
        if Instant::now() > deadline {
            bail!("only {} of {n} spectators connected", samples.connected.load(Ordering::Relaxed));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Copies the event folder `src`'s TOML files into `dir` with every race ranked: the Paris mass
/// races published no places, but leaderboards are the heaviest part of the live feed and the
/// pages, so load and scale tests rank them.
pub fn ranked_event(src: &Path, dir: &Path) -> anyhow::Result<EventConfig> {
    std::fs::create_dir_all(dir)?;
    for entry in std::fs::read_dir(src)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path)?;
            let text = if path.file_name().is_some_and(|n| n == "event.toml") {
                text.replace("ranked = false", "ranked = true")
            } else {
                text
            };
            std::fs::write(dir.join(path.file_name().expect("a file")), text)?;
        }
    }
    Ok(crate::load::event(dir)?)
}

/// Timing point id → (edge id, upload token).
pub type EdgeTokens = BTreeMap<String, (String, String)>;

/// The edges of the event in `event_dir` with a fresh token each: timing point id → (edge id,
/// token), and the environment variables that give the aggregator the tokens.
pub fn edge_tokens(event_dir: &Path, event: &EventConfig) -> anyhow::Result<(EdgeTokens, Vec<(String, String)>)> {
    let mut edges = BTreeMap::new();
    let mut envs = Vec::new();
    for entry in std::fs::read_dir(event_dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if name.starts_with("edge-") && name.ends_with(".toml") {
            let cfg = crate::load::edge(&path, event)?;
            let (var, token) = token_for(&cfg);
            edges.insert(event.course.point(cfg.point).id.to_string(), (cfg.id.clone(), token.clone()));
            envs.push((var, token));
        }
    }
    Ok((edges, envs))
}

/// Starts `exe aggregator` on the event in `event_dir` with the race `racetime generate` wrote
/// to `out/race` (participants, and its guns as corrections), a fresh store `out/aggregator.sqlite`,
/// any free port and the race clock `race_clock` (as `--sim-clock`); returns it and its URL.
pub fn spawn_aggregator(
    exe: &Path,
    event_dir: &Path,
    out: &Path,
    race_clock: &str,
    envs: &[(String, String)],
    extra: &[&str],
) -> anyhow::Result<(Proc, String)> {
    let db = out.join("aggregator.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let mut cmd = Command::new(exe);
    cmd.args(["aggregator", "--event"])
        .arg(event_dir)
        .arg("--participants")
        .arg(out.join("race/participants.csv"))
        .arg("--db")
        .arg(&db)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .arg("--corrections")
        .arg(out.join("race/guns.toml"))
        .args(["--sim-clock", race_clock])
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().context("starting the aggregator")?;
    let stdout = child.stdout.take().context("stdout")?;
    let agg = Proc(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let url = line.trim().strip_prefix("aggregator listening on ").context("the aggregator did not start")?.to_string();
    Ok((agg, url))
}

/// Uploads each timing point's reads as its edge would after an outage: all edges at once, in
/// seq order, batches of 10,000.
pub async fn upload_backlog(
    http: &reqwest::Client,
    url: &str,
    edges: &EdgeTokens,
    backlog: BTreeMap<String, Vec<Read>>,
) -> anyhow::Result<()> {
    let mut uploads = Vec::new();
    for (point, reads) in backlog {
        let (edge, token) = edges.get(&point).cloned().with_context(|| format!("no edge at {point}"))?;
        let http = http.clone();
        let url = url.to_string();
        uploads.push(tokio::spawn(async move {
            let mut seq = 0u64;
            for chunk in reads.chunks(10_000) {
                let wire: Vec<WireRead> = chunk
                    .iter()
                    .map(|r| {
                        seq += 1;
                        WireRead::from_read(seq, r, reader_protocol::ReaderTime::Utc(r.at), None, None, r.at)
                    })
                    .collect();
                let body = Batch { v: UPLINK_VERSION, edge: edge.clone(), reads: wire, signals: vec![] };
                let resp = http.post(format!("{url}/api/v1/ingest")).bearer_auth(&token).json(&body).send().await?;
                if !resp.status().is_success() {
                    bail!("upload refused: {}", resp.text().await?);
                }
            }
            anyhow::Ok(())
        }));
    }
    for u in uploads {
        u.await??;
    }
    Ok(())
}
