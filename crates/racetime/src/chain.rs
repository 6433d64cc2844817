//! A whole simulated race through every real part, on one machine: emulated decoders and Modbus
//! devices (in this process, on real TCP ports and ptys) → one `racetime edge` process per edge
//! file → a `racetime aggregator` process, all on one race clock shared through a file.
//!
//! Used by `racetime demo` and by the full-chain and system tests. The race clock moves only
//! when the player moves it (event to event, paced or as fast as possible), so every process
//! sees the same race instant and the edges' clock measurements are exact: the published
//! standings can be compared with the generator's truth line for line.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use event_config::EventConfig;
use firmware_sim::clock::{FileClock, SharedClock};
use firmware_sim::player::{PacedFileClock, Progress, Routes, play};
use race_sim::SimRace;
use timing_core::Elapsed;

use crate::generate::write_race;

/// A child process, killed when dropped.
#[derive(Debug)]
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// Sends a signal by name (`TERM`, `KILL`, `STOP`, `CONT`).
    pub fn signal(&self, sig: &str) -> anyhow::Result<()> {
        let ok = Command::new("kill").arg(format!("-{sig}")).arg(self.0.id().to_string()).status()?.success();
        if !ok {
            bail!("kill -{sig} {} failed", self.0.id());
        }
        Ok(())
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct ChainOptions {
    /// The event folder whose `event.toml` and `edge-*.toml` are used.
    pub event_dir: PathBuf,
    /// Where everything goes (inputs, truth, stores, ptys, the clock file, standings).
    pub work_dir: PathBuf,
    /// The `racetime` binary to run the edges and the aggregator with.
    pub exe: PathBuf,
    /// The repository (register maps under `hardware/`).
    pub repo: PathBuf,
    /// Aggregator address (`127.0.0.1:0` for any free port).
    pub listen: String,
    /// Waves (`race/wave`) whose official gun time the desk enters during the race instead of
    /// the corrections file (until then the start-gun input's provisional time stands).
    pub desk_guns: Vec<String>,
}

/// The running chain.
#[derive(Debug)]
pub struct Chain {
    pub race: SimRace,
    pub event: EventConfig,
    pub agg_url: String,
    /// The aggregator process (`None` while a test has it stopped).
    pub aggregator: std::sync::Mutex<Option<Proc>>,
    /// One per edge file, in file order: (point, edge file, process).
    pub edges: Vec<(String, PathBuf, std::sync::Mutex<Option<Proc>>)>,
    pub routes: Routes,
    pub clock_path: PathBuf,
    pub race_dir: PathBuf,
    options: ChainOptions,
    event_dir: PathBuf,
    agg_addr: String,
    tokens: Vec<(String, String)>,
    /// The results desk's token for this run.
    pub desk_token: String,
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The environment variable an edge's token comes from, and a token for it.
pub fn token_for(edge: &event_config::EdgeConfig) -> (String, String) {
    let var = match &edge.token {
        event_config::edge::TokenSource::Env(v) => v.clone(),
        event_config::edge::TokenSource::File(_) => format!("RACETIME_EDGE_TOKEN_{}", edge.id.to_uppercase()),
    };
    // Random per run: a demo prints no secrets and reuses none.
    use rand::Rng;
    let secret: String = (0..24).map(|_| rand::rng().sample(rand::distr::Alphanumeric) as char).collect();
    (var, format!("{}-{secret}", edge.id))
}

/// Copies the event's edge files into `event_dir` with free ports, paths under `work`, the
/// aggregator's URL and localhost status ports.
fn rewrite_edge_files(
    src: &Path,
    event_dir: &Path,
    work: &Path,
    agg_url: &str,
) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(src)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("edge-") && n.ends_with(".toml"))
        })
        .collect();
    names.sort();
    let mut out = Vec::new();
    for path in names {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut rewritten = String::new();
        for line in text.lines() {
            let line = if line.starts_with("url = ") {
                format!("url = \"{agg_url}\"")
            } else if line.starts_with("listen = ") {
                "listen = \"127.0.0.1:0\"".to_string()
            } else if line.starts_with("address = \"") {
                format!("address = \"127.0.0.1:{}\"", free_port()?)
            } else if let Some(rest) = line.strip_prefix("device = \"") {
                let name = Path::new(rest.trim_end_matches('"'))
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                format!("device = \"{}\"", work.join("tty").join(name).display())
            } else if let Some(rest) = line.strip_prefix("path = \"") {
                let name = Path::new(rest.trim_end_matches('"'))
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                format!("path = \"{}\"", work.join("store").join(name).display())
            } else {
                line.to_string()
            };
            rewritten.push_str(&line);
            rewritten.push('\n');
        }
        let file = event_dir.join(path.file_name().expect("a file"));
        std::fs::write(&file, rewritten)?;
        let point =
            file.file_stem().and_then(|s| s.to_str()).unwrap_or_default().trim_start_matches("edge-").to_string();
        out.push((point, file));
    }
    Ok(out)
}

impl Chain {
    /// Starts the aggregator, the emulated hardware and the edges, and waits until every reader
    /// has its edge connected (an LLRP reader keeps nothing for later). The race clock stands a
    /// minute before the first gun.
    pub async fn start(options: &ChainOptions, race: SimRace) -> anyhow::Result<Chain> {
        let work = &options.work_dir;
        std::fs::create_dir_all(work)?;
        let event_dir = work.join("event");
        std::fs::create_dir_all(&event_dir)?;
        let event_text = std::fs::read_to_string(options.event_dir.join("event.toml"))?;
        std::fs::write(event_dir.join("event.toml"), &event_text)?;
        let event = event_config::parse_event("event.toml", &event_text).map_err(|e| anyhow::anyhow!("{e}"))?;
        let race_dir = work.join("race");
        write_race(&race, &race_dir)?;
        if !options.desk_guns.is_empty() {
            // The desk will enter these guns during the race: leave them out of the file.
            let kept: Vec<timing_core::Correction> = race
                .gun_corrections()
                .into_iter()
                .filter(|c| match c {
                    timing_core::Correction::GunTime { race, wave, .. } => {
                        !options.desk_guns.contains(&format!("{race}/{wave}"))
                    }
                    _ => true,
                })
                .collect();
            let mut guns = String::from("# Gun times known before the race (the desk enters the others).\n");
            for c in kept {
                if let timing_core::Correction::GunTime { race, wave, at: Some(at) } = c {
                    guns.push_str(&format!(
                        "\n[[correction]]\nkind = \"gun_time\"\nrace = \"{race}\"\nwave = \"{wave}\"\nat = \"{}\"\n",
                        event_config::units::format_utc(at)
                    ));
                }
            }
            std::fs::write(race_dir.join("guns.toml"), guns)?;
        }

        let agg_port = match options.listen.rsplit_once(':') {
            Some((_, "0")) | None => free_port()?,
            Some((_, p)) => p.parse().context("--listen port")?,
        };
        let agg_host = options.listen.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h).to_string();
        let agg_url = format!("http://{agg_host}:{agg_port}");
        let edge_files = rewrite_edge_files(&options.event_dir, &event_dir, work, &agg_url)?;
        let configs: Vec<event_config::EdgeConfig> = edge_files
            .iter()
            .map(|(_, f)| {
                event_config::parse_edge(&f.display().to_string(), &std::fs::read_to_string(f)?, &event)
                    .map_err(|e| anyhow::anyhow!("{e}"))
            })
            .collect::<anyhow::Result<_>>()?;
        let tokens: Vec<(String, String)> = configs.iter().map(token_for).collect();
        let desk_token = {
            use rand::Rng;
            let s: String = (0..32).map(|_| rand::rng().sample(rand::distr::Alphanumeric) as char).collect();
            format!("desk-{s}")
        };

        let clock_path = work.join("race-clock");
        let first_gun = race.guns.iter().map(|g| g.1).min().context("the event has no waves")?;
        FileClock::create(&clock_path, first_gun - Elapsed::from_secs(60))?;
        let agg_addr = format!("{agg_host}:{agg_port}");
        let aggregator =
            spawn_aggregator(options, &event_dir, &race_dir, &agg_addr, &tokens, &desk_token, &clock_path)?;

        let emulator_clock: SharedClock = Arc::new(FileClock::open(&clock_path)?);
        let routes = crate::sim::start_hardware(&configs, &event, &race, emulator_clock, &options.repo).await?;

        let mut edges = Vec::new();
        for ((point, file), (var, token)) in edge_files.iter().zip(&tokens) {
            let child = spawn_edge(options, file, &clock_path, var, token)
                .with_context(|| format!("starting the edge at {point}"))?;
            edges.push((point.clone(), file.clone(), std::sync::Mutex::new(Some(child))));
        }

        let deadline = Instant::now() + Duration::from_secs(60);
        for ((point, line), reader) in &routes.readers {
            while reader.stats().clients_connected == 0 || reader.stats().commands_received < 2 {
                if Instant::now() > deadline {
                    bail!("no edge connected to the reader at {point:?}/{line:?} within a minute");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(Chain {
            race,
            event,
            agg_url,
            aggregator: std::sync::Mutex::new(Some(aggregator)),
            edges,
            routes,
            clock_path,
            race_dir,
            options: options.clone(),
            event_dir,
            agg_addr,
            tokens,
            desk_token,
        })
    }

    /// Stops the aggregator with a signal (`KILL`, `TERM`) and waits for it to exit.
    pub fn stop_aggregator(&self, sig: &str) -> anyhow::Result<()> {
        let mut slot = self.aggregator.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(mut p) = slot.take() {
            p.signal(sig)?;
            let _ = p.0.wait();
        }
        Ok(())
    }

    /// Starts the aggregator again on the same address and store.
    pub fn start_aggregator(&self) -> anyhow::Result<()> {
        let p = spawn_aggregator(
            &self.options,
            &self.event_dir,
            &self.race_dir,
            &self.agg_addr,
            &self.tokens,
            &self.desk_token,
            &self.clock_path,
        )?;
        *self.aggregator.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(p);
        Ok(())
    }

    /// Stops edge `i` with a signal and waits for it to exit.
    pub fn stop_edge(&self, i: usize, sig: &str) -> anyhow::Result<()> {
        let mut slot = self.edges[i].2.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(mut p) = slot.take() {
            p.signal(sig)?;
            let _ = p.0.wait();
        }
        Ok(())
    }

    /// Starts edge `i` again (same edge file, same outbox).
    pub fn start_edge(&self, i: usize) -> anyhow::Result<()> {
        let (var, token) = &self.tokens[i];
        let p = spawn_edge(&self.options, &self.edges[i].1, &self.clock_path, var, token)?;
        *self.edges[i].2.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(p);
        Ok(())
    }

    /// The index of the edge at `point`.
    pub fn edge_index(&self, point: &str) -> Option<usize> {
        self.edges.iter().position(|(p, _, _)| p == point)
    }

    /// Plays the race: at `speed` × real time, or as fast as the machine allows (`None`).
    pub async fn play(&self, speed: Option<f64>, progress: &Progress) -> anyhow::Result<()> {
        let clock = FileClock::open(&self.clock_path)?;
        match speed {
            Some(s) => play(&self.race, &self.routes, &PacedFileClock::new(clock, s), progress).await,
            None => play(&self.race, &self.routes, &clock, progress).await,
        }
        // A minute more, so every decoder closes its last crossings.
        let clock = FileClock::open(&self.clock_path)?;
        clock.set(timing_core::time::Clock::now(&clock) + Elapsed::from_secs(60));
        Ok(())
    }

    /// Records in every emulated decoder's passing store: the reads the race must count, each once.
    pub fn decoder_records(&self) -> u64 {
        self.routes.readers.values().map(|r| r.stats().records_stored).sum()
    }

    /// Waits until the aggregator holds every read the decoders stored and has settled.
    pub async fn settle(&self, within: Duration) -> anyhow::Result<u64> {
        let stored = self.decoder_records();
        let client = reqwest::Client::new();
        let deadline = Instant::now() + within;
        let mut last = (u64::MAX, Instant::now());
        loop {
            let fleet: Vec<aggregator::FleetEdge> =
                client.get(format!("{}/api/v1/fleet", self.agg_url)).send().await?.json().await?;
            // The cursors are durable (counters restart with the aggregator); each counts the reads
            // held with no gap, which is at least what the decoders stored once everything is in.
            let held: u64 = fleet.iter().map(|e| e.acked_seq).sum();
            if held != last.0 {
                last = (held, Instant::now());
            }
            if held >= stored && last.1.elapsed() > Duration::from_secs(2) {
                return Ok(held);
            }
            if Instant::now() > deadline {
                bail!("the aggregator holds {held} of the {stored} reads the decoders stored");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The aggregator's final standings (CSV).
    pub async fn standings(&self) -> anyhow::Result<String> {
        Ok(reqwest::get(format!("{}/api/v1/standings.csv?final=true", self.agg_url))
            .await?
            .error_for_status()?
            .text()
            .await?)
    }

    /// The generator's truth, in the same format.
    pub fn truth(&self) -> anyhow::Result<String> {
        Ok(std::fs::read_to_string(self.race_dir.join("truth.csv"))?)
    }
}

fn spawn_aggregator(
    options: &ChainOptions,
    event_dir: &Path,
    race_dir: &Path,
    addr: &str,
    tokens: &[(String, String)],
    desk_token: &str,
    clock_path: &Path,
) -> anyhow::Result<Proc> {
    let mut agg = Command::new(&options.exe);
    agg.args(["aggregator", "--event"])
        .arg(event_dir)
        .arg("--participants")
        .arg(race_dir.join("participants.csv"))
        .arg("--db")
        .arg(options.work_dir.join("store/aggregator.sqlite"))
        .args(["--listen", addr])
        .arg("--sim-clock")
        .arg(format!("stepped:{}", clock_path.display()))
        .arg("--corrections")
        .arg(race_dir.join("guns.toml"))
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in tokens {
        agg.env(k, v);
    }
    agg.env("RACETIME_DESK_TOKEN", desk_token);
    let mut agg = agg.spawn().context("starting the aggregator")?;
    let mut line = String::new();
    BufReader::new(agg.stdout.take().context("aggregator stdout")?).read_line(&mut line)?;
    if !line.contains("listening") {
        bail!("the aggregator did not start: {line:?}");
    }
    Ok(Proc(agg))
}

fn spawn_edge(options: &ChainOptions, file: &Path, clock_path: &Path, var: &str, token: &str) -> anyhow::Result<Proc> {
    let child = Command::new(&options.exe)
        .args(["edge", "--config"])
        .arg(file)
        .arg("--sim-clock")
        .arg(format!("stepped:{}", clock_path.display()))
        .env(var, token)
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into()))
        .current_dir(&options.repo)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    Ok(Proc(child))
}

/// How standings `got` differ from the truth `want`, line by line (the first few shown), or
/// `None` if they are the same.
pub fn standings_mismatch(got: &str, want: &str) -> Option<String> {
    let differing: Vec<(&str, &str)> = got.lines().zip(want.lines()).filter(|(a, b)| a != b).collect();
    let (n_got, n_want) = (got.lines().count(), want.lines().count());
    if differing.is_empty() && n_got == n_want {
        return None;
    }
    let shown: Vec<String> = differing.iter().take(6).map(|(a, b)| format!("  got:  {a}\n  want: {b}")).collect();
    Some(format!(
        "{} standings lines differ from the truth ({n_got} lines, {n_want} expected):\n{}",
        differing.len(),
        shown.join("\n")
    ))
}

#[cfg(test)]
mod tests {
    use super::standings_mismatch;

    #[test]
    fn standings_that_differ_say_where() {
        assert_eq!(standings_mismatch("a\nb\n", "a\nb\n"), None);
        let m = standings_mismatch("a\nx\n", "a\nb\n").unwrap();
        assert!(m.starts_with("1 standings lines differ") && m.contains("got:  x") && m.contains("want: b"), "{m}");
        assert!(standings_mismatch("a\n", "a\nb\n").unwrap().contains("(1 lines, 2 expected)"));
    }
}
