//! Command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "racetime", version, about = "Live race timing: edge daemons, aggregator, results")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compute final standings offline from read files (what a results desk does with decoder backups).
    Results(ResultsArgs),
    /// Generate a seeded simulated race: participants, reads, gun times, and the true results.
    Generate(GenerateArgs),
    /// Run a whole simulated race end to end and check the standings against the truth.
    Demo(DemoArgs),
    /// Run an edge box: read its mats, keep every read, sync it to the aggregator.
    Edge(EdgeArgs),
    /// Run the aggregator: ingest from every edge, keep the race state, serve results.
    Aggregator(AggregatorArgs),
    /// Start the emulated decoders and Modbus devices an event's edge files name, and play a
    /// seeded race into them in accelerated real time.
    Sim(SimArgs),
    /// Load-test the aggregator with a Paris-size race: backlog ingest from every edge, a peak
    /// finish with thousands of spectators on the live feed, a leaderboard fan-out; reports
    /// throughput, latency percentiles and memory.
    Loadtest(LoadtestArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct LoadtestArgs {
    /// Event folder (its edge files name the edges that upload).
    #[arg(long, default_value = "config/paris-2024")]
    pub event: PathBuf,
    /// Runners per race.
    #[arg(long, default_value_t = 20_024)]
    pub runners: usize,
    /// Spectators on the live feed during the peak finish (arrivals at the finish + the marathon leaderboard).
    #[arg(long, default_value_t = 10_000)]
    pub spectators: usize,
    /// Percent of spectators who also watch the finish arrivals feed (everyone follows three
    /// runners and the marathon leaderboard).
    #[arg(long, default_value_t = 10)]
    pub arrivals_share: u32,
    /// Spectators in all for the fan-out of one leaderboard change.
    #[arg(long, default_value_t = 16_000)]
    pub fanout: usize,
    /// Finishers per second during the peak.
    #[arg(long, default_value_t = 50)]
    pub finishers_per_s: usize,
    /// Reads per finisher at the finish mat.
    #[arg(long, default_value_t = 50)]
    pub hits: u32,
    /// Length of the peak, in seconds.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where the aggregator's store and the report go.
    #[arg(long, default_value = "out/loadtest")]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    Csv,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum PrecisionArg {
    /// Whole seconds, rounded up (World Athletics).
    S,
    /// Milliseconds, rounded up.
    Ms,
}

impl From<PrecisionArg> for timing_core::Precision {
    fn from(p: PrecisionArg) -> timing_core::Precision {
        match p {
            PrecisionArg::S => timing_core::Precision::Seconds,
            PrecisionArg::Ms => timing_core::Precision::Millis,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ReadsFormat {
    /// Detect from the file's first lines.
    Auto,
    /// `timestamp,chip,point,line,reader,antenna,rssi[,seq]`.
    Neutral,
    /// RACE RESULT passing records (a decoder's passing file, or a captured session).
    Raceresult,
    /// Ultra / Joey read log.
    Ultra,
    /// IPICO `aa` records.
    Ipico,
    /// JChip records.
    Jchip,
}

#[derive(Debug, clap::Args)]
pub struct ResultsArgs {
    /// Event folder (holds event.toml).
    #[arg(long)]
    pub event: PathBuf,
    /// Participant list (CSV).
    #[arg(long)]
    pub participants: PathBuf,
    /// Read files (repeat, or list several). A neutral CSV names its points itself; a decoder
    /// backup file needs its place: `POINT[:LINE[:READER]]=FILE` (e.g. `finish:backup=ipico.log`).
    #[arg(long, num_args = 1.., required = true)]
    pub reads: Vec<String>,
    #[arg(long, value_enum, default_value = "auto")]
    pub reads_format: ReadsFormat,
    /// Desk corrections (TOML): gun times, manual passings, statuses, chip assignments, clock offsets.
    #[arg(long)]
    pub corrections: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "csv")]
    pub format: OutputFormat,
    /// Write here instead of standard output (written only if everything succeeds).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "s")]
    pub precision: PrecisionArg,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ScenarioArg {
    /// Every kind of trouble: DNS, DNF, re-crossings, missed mats, backup-only reads, strays, wrong race.
    Troubled,
    /// Everyone finishes, every mat reads.
    Clean,
}

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    #[arg(long)]
    pub event: PathBuf,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Runners per race, in the event's race order (e.g. `300,200`).
    #[arg(long, value_delimiter = ',', default_values_t = [300usize, 200])]
    pub runners: Vec<usize>,
    #[arg(long, value_enum, default_value = "troubled")]
    pub scenario: ScenarioArg,
    /// Reads per mat crossing, `MIN-MAX` (1 to 255; RSSI rises to a peak and falls across them).
    #[arg(long, value_parser = parse_hits)]
    pub hits: Option<(u32, u32)>,
    /// Folder to write participants.csv, reads.csv, guns.toml and truth.csv into.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    #[arg(long, default_value = "config/demo")]
    pub event: PathBuf,
    #[arg(long, default_value_t = 2024)]
    pub seed: u64,
    /// Runners per race, in the event's race order.
    #[arg(long, value_delimiter = ',', default_values_t = [1500usize, 1000])]
    pub runners: Vec<usize>,
    /// Folder for the generated inputs, the stores and the final standings (cleared each run).
    #[arg(long, default_value = "out/demo")]
    pub out: PathBuf,
    /// Race seconds per wall second, or `max` (as fast as this machine allows).
    #[arg(long, default_value = "240")]
    pub speed: String,
    /// The aggregator's address (port 0: any free port; the URLs are printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// After the finish and the checks, keep the aggregator and the edges running (the pages
    /// stay up) until Ctrl-C.
    #[arg(long)]
    pub stay: bool,
}

#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Event folder (event.toml and edge-*.toml).
    #[arg(long)]
    pub event: PathBuf,
    /// Participant list (CSV); the race is generated for these runners.
    #[arg(long)]
    pub participants: PathBuf,
    /// Race seconds per wall second.
    #[arg(long, default_value_t = 30.0)]
    pub speed: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Start the race clock this many race seconds before the first gun.
    #[arg(long, default_value_t = 60)]
    pub lead_s: i64,
    /// Also write the race's inputs and true standings here (as `racetime generate` does).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Reads per mat crossing, `MIN-MAX` (1 to 255).
    #[arg(long, value_parser = parse_hits)]
    pub hits: Option<(u32, u32)>,
    /// Inject a fault into a reader at a race time after the first gun:
    /// `READER:KIND@H:MM:SS` with KIND one of `drop` (mid-frame), `garbage`, `stall=SECONDS`,
    /// `reboot`, `clock=±MS` (repeatable), e.g. `finish-main:reboot@1:45:00`.
    #[arg(long = "fault", value_parser = parse_fault)]
    pub faults: Vec<FaultArg>,
    /// Share a race clock made elsewhere (`SIM_US@WALL_USxSPEED`, as printed by another `sim`);
    /// by default this command makes one and prints it for the edges.
    #[arg(long)]
    pub sim_clock: Option<String>,
    /// Keep the emulators running this many wall seconds after the last read.
    #[arg(long, default_value_t = 0)]
    pub linger_s: u64,
    /// Repository root, where `hardware/modbus/` register maps are found.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
}

/// `MIN-MAX` reads per crossing.
fn parse_hits(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{s:?}: expected MIN-MAX reads per crossing, 1 to 255 (e.g. 5-30)");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let (a, b): (u32, u32) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
    if a == 0 || b > 255 || a > b {
        return Err(bad());
    }
    Ok((a, b))
}

/// A fault to inject into one reader at a race time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultArg {
    pub reader: String,
    pub fault: firmware_sim::Fault,
    /// After the first gun.
    pub at: timing_core::Elapsed,
}

fn parse_fault(s: &str) -> Result<FaultArg, String> {
    let bad = |why: &str| {
        format!("{s:?}: {why}; expected READER:KIND@H:MM:SS (KIND: drop, garbage, stall=SECONDS, reboot, clock=±MS)")
    };
    let (head, when) = s.rsplit_once('@').ok_or_else(|| bad("no @time"))?;
    let (reader, kind) = head.split_once(':').ok_or_else(|| bad("no READER:"))?;
    let at = event_config::units::parse_duration(when).map_err(|e| bad(&e))?;
    let (name, value) = kind.split_once('=').map_or((kind, None), |(k, v)| (k, Some(v)));
    let fault = match (name, value) {
        ("drop", None) => firmware_sim::Fault::DropMidFrame,
        ("garbage", None) => firmware_sim::Fault::Garbage(b"\x00\xff\x13garbage\x07".to_vec()),
        ("reboot", None) => firmware_sim::Fault::Reboot,
        ("stall", Some(v)) => firmware_sim::Fault::Stall(std::time::Duration::from_secs_f64(
            v.parse::<f64>().map_err(|_| bad("stall needs seconds"))?,
        )),
        ("clock", Some(v)) => firmware_sim::Fault::ClockStep(timing_core::Elapsed::from_millis(
            v.trim_start_matches('+').parse::<i64>().map_err(|_| bad("clock needs ±milliseconds"))?,
        )),
        _ => return Err(bad("unknown fault")),
    };
    Ok(FaultArg { reader: reader.to_string(), fault, at })
}

#[derive(Debug, clap::Args)]
pub struct EdgeArgs {
    #[command(subcommand)]
    pub action: Option<EdgeAction>,
    /// The edge file (`config/<event>/edge-<box>.toml`); its folder holds the event.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Run on a simulated race clock instead of the system clock, for simulations, demos and
    /// tests only: `SIM_US@WALL_USxSPEED` (printed by `racetime sim`), `stepped:PATH` (the race
    /// time in a file the player writes), or `file:PATH` (the system clock stepped by the
    /// microseconds in a file).
    #[arg(long)]
    pub sim_clock: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum EdgeAction {
    /// Print the running edge's status (from its local status endpoint).
    Status,
}

#[derive(Debug, clap::Args)]
pub struct AggregatorArgs {
    /// Event folder (event.toml and the edge-*.toml files naming the edges allowed to upload).
    #[arg(long)]
    pub event: PathBuf,
    #[arg(long)]
    pub participants: PathBuf,
    /// The aggregator's SQLite store.
    #[arg(long, default_value = "var/aggregator.sqlite")]
    pub db: PathBuf,
    /// Address to listen on (port 0: any free port; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub listen: String,
    /// Desk corrections applied on top of the reads (gun times, statuses, …).
    #[arg(long)]
    pub corrections: Option<PathBuf>,
    /// Upload tokens file (`edge_id = "token"`); otherwise each edge's `token_env` variable.
    #[arg(long)]
    pub tokens: Option<PathBuf>,
    /// Run on a simulation's race clock (as `racetime edge --sim-clock`), for "overdue" and the
    /// live feed's ticks; the wall clock by default.
    #[arg(long)]
    pub sim_clock: Option<String>,
    /// Live-feed connections in total (each is an open file; this machine allows 20,000 per process).
    #[arg(long, default_value_t = 18_000)]
    pub live_max_clients: u64,
    /// Live-feed connections from one IP address (phones behind a carrier NAT share one).
    #[arg(long, default_value_t = 1_000)]
    pub live_max_per_ip: u32,
    /// Serve HTTPS and WSS (rustls) with this PEM certificate chain…
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// …and this PEM private key.
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
}
