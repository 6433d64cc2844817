//! `racetime demo`: a whole simulated race, from generated reads to checked standings.
//!
//! This first version runs the race through the offline path (the same code as
//! `racetime results`); the live chain (emulated decoders → edge daemons → aggregator → pages)
//! replaces it as those parts land.

use anyhow::{Context, bail};
use race_sim::{Scenario, generate};
use timing_core::Precision;

use crate::cli::{DemoArgs, OutputFormat, PrecisionArg, ReadsFormat, ResultsArgs};
use crate::{generate as gen_cmd, load, results};

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let event = load::event(&args.event)?;
    eprintln!("racetime demo: {} ({}), seed {}", event.name, args.event.display(), args.seed);
    let race = generate(&event, &Scenario::troubled(args.seed, args.runners.clone()));
    let n_reads: usize = race.crossings.iter().map(|c| c.hits as usize).sum();
    eprintln!(
        "[1/3] generated {} runners in {} waves: {} mat crossings, {} raw reads (DNS, DNF, strays, missed mats and re-crossings included)",
        race.course.participants.len(),
        race.course.waves.len(),
        race.crossings.len(),
        n_reads
    );
    gen_cmd::write_race(&race, &args.out)?;

    eprintln!("[2/3] computing standings from {}", args.out.join("reads.csv").display());
    let standings_path = args.out.join("standings.csv");
    results::run(&ResultsArgs {
        event: args.event.clone(),
        participants: args.out.join("participants.csv"),
        reads: vec![args.out.join("reads.csv").display().to_string()],
        reads_format: ReadsFormat::Auto,
        corrections: Some(args.out.join("guns.toml")),
        format: OutputFormat::Csv,
        out: Some(standings_path.clone()),
        precision: PrecisionArg::S,
    })?;

    eprintln!("[3/3] checking the standings against the generator's truth");
    let got =
        std::fs::read_to_string(&standings_path).with_context(|| format!("reading {}", standings_path.display()))?;
    let mut want = Vec::new();
    results_export::write_csv(&gen_cmd::truth_rows(&race, Precision::Seconds), &race.course, &mut want)?;
    let want = String::from_utf8(want)?;
    let differing: Vec<(&str, &str)> = got.lines().zip(want.lines()).filter(|(a, b)| a != b).collect();
    if !differing.is_empty() || got.lines().count() != want.lines().count() {
        for (a, b) in differing.iter().take(5) {
            eprintln!("  got:  {a}\n  want: {b}");
        }
        bail!("{} standings lines differ from the truth (seed {})", differing.len(), args.seed);
    }
    eprintln!("standings match the truth for all {} participants", race.course.participants.len());
    println!("final standings: {}", standings_path.display());
    Ok(())
}
