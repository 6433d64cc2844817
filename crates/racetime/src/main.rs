//! The `racetime` binary: a thin shell over the `racetime` library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,firmware_sim=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = racetime::cli::Cli::parse();
    match racetime::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            if error.downcast_ref::<racetime::InputError>().is_some() { ExitCode::from(2) } else { ExitCode::FAILURE }
        }
    }
}
