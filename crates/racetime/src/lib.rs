//! The `racetime` command: one binary, a subcommand per job, thin over the library crates.
//!
//! Layout: [`cli`] (clap), [`load`] (reading event folders and read files, turning problems into
//! [`InputError`]s that exit with code 2), one module per subcommand.
//! `main.rs` only installs tracing and maps errors to exit codes.

pub mod aggregator;
pub mod chain;
pub mod cli;
pub mod demo;
pub mod edge;
pub mod generate;
pub mod load;
pub mod loadtest;
pub mod results;
pub mod sim;
pub mod spectator;

use std::fmt;

/// Bad input from a person (config, participants, read files): exit code 2, nothing written.
#[derive(Debug)]
pub struct InputError(pub String);

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

pub fn run(cli: cli::Cli) -> anyhow::Result<()> {
    match cli.command {
        cli::Command::Results(args) => results::run(&args),
        cli::Command::Generate(args) => generate::run(&args),
        cli::Command::Demo(args) => demo::run(&args),
        cli::Command::Sim(args) => sim::run(&args),
        cli::Command::Edge(args) => edge::run(&args),
        cli::Command::Aggregator(args) => aggregator::run(&args),
        cli::Command::Loadtest(args) => loadtest::run(&args),
    }
}

/// Writes a file atomically: a temporary file beside it, then a rename.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// The clock `--sim-clock SPEC` names (the wall clock without one): `stepped:PATH` (a race
/// clock a player steps through a file), `file:PATH`, or `SIM_US@WALL_USxSPEED` (accelerated).
pub fn race_clock(spec: Option<&str>) -> Result<edge_daemon::link::EdgeClock, InputError> {
    Ok(match spec {
        Some(spec) if spec.starts_with("stepped:") => std::sync::Arc::new(
            firmware_sim::clock::FileClock::open(std::path::Path::new(spec.trim_start_matches("stepped:")))
                .map_err(|e| InputError(format!("{spec}: {e}")))?,
        ),
        Some(spec) if spec.starts_with("file:") => {
            std::sync::Arc::new(firmware_sim::clock::SteppedClock::new(spec.trim_start_matches("file:")))
        }
        Some(spec) => std::sync::Arc::new(firmware_sim::clock::AcceleratedClock::parse(spec).map_err(InputError)?),
        None => std::sync::Arc::new(firmware_sim::clock::SystemClock),
    })
}
