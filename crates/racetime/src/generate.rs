//! `racetime generate`: a seeded simulated race written as the files a results desk would have.

use std::path::Path;

use anyhow::Context;
use race_sim::{Scenario, SimRace, generate};
use timing_core::{Correction, Precision};

use crate::cli::{GenerateArgs, ScenarioArg};
use crate::{load, write_atomically};

pub fn run(args: &GenerateArgs) -> anyhow::Result<()> {
    let event = load::event(&args.event)?;
    let mut scenario = match args.scenario {
        ScenarioArg::Troubled => Scenario::troubled(args.seed, args.runners.clone()),
        ScenarioArg::Clean => Scenario::clean(args.seed, args.runners.clone()),
    };
    if let Some(hits) = args.hits {
        scenario.hits = hits;
    }
    let race = generate(&event, &scenario);
    write_race(&race, &args.out)?;
    eprintln!(
        "seed {}: {} participants, {} crossings, {} reads → {}",
        args.seed,
        race.course.participants.len(),
        race.crossings.len(),
        race.crossings.iter().map(|c| c.hits as usize).sum::<usize>(),
        args.out.display()
    );
    Ok(())
}

/// Writes participants.csv, reads.csv, guns.toml (the actual guns, as corrections) and
/// truth.csv (the expected standings, in the format of `racetime results`).
pub fn write_race(race: &SimRace, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write_atomically(&dir.join("participants.csv"), race.participants_csv.as_bytes())?;
    let mut reads = format!("{}\n", reader_protocol::files::neutral::HEADER);
    for r in race.reads() {
        reader_protocol::files::neutral::write_row(&r, &mut reads);
    }
    write_atomically(&dir.join("reads.csv"), reads.as_bytes())?;
    let mut guns = String::from("# Actual gun times of every wave (generated).\n");
    for c in race.gun_corrections() {
        if let Correction::GunTime { race, wave, at: Some(at) } = c {
            guns.push_str(&format!(
                "\n[[correction]]\nkind = \"gun_time\"\nrace = \"{race}\"\nwave = \"{wave}\"\nat = \"{}\"\n",
                event_config::units::format_utc(at)
            ));
        }
    }
    write_atomically(&dir.join("guns.toml"), guns.as_bytes())?;
    let mut buf = Vec::new();
    results_export::write_csv(&truth_rows(race, Precision::Seconds), &race.course, &mut buf)?;
    write_atomically(&dir.join("truth.csv"), &buf)?;
    Ok(())
}

/// The generator's truth as standings rows, in the same order as an engine's standings would be.
pub fn truth_rows(race: &SimRace, precision: Precision) -> Vec<results_export::Row> {
    let course = &race.course;
    let mut truth: Vec<&race_sim::Truth> = race.truth.iter().collect();
    let class = |s: timing_core::Status| match s {
        timing_core::Status::Finished => 0,
        timing_core::Status::Review => 1,
        timing_core::Status::Dnf => 3,
        timing_core::Status::Dsq => 4,
        _ => 5,
    };
    truth.sort_by_key(|t| {
        let p = course.participant(t.participant);
        let time = match course.race(p.race).rank_by {
            timing_core::RankBy::Gun => t.gun_time,
            timing_core::RankBy::Chip => t.chip_time,
        };
        (p.race.0, class(t.status), time.map_or(i64::MAX, |x| x.as_micros()), p.bib.sort_key().0, p.bib.to_string())
    });
    truth
        .into_iter()
        .map(|t| {
            let p = course.participant(t.participant);
            let race_def = course.race(p.race);
            let gun = race.guns[p.wave.idx()].1;
            // At the start point the published value is gun → start crossing (see results-export).
            let splits: Vec<_> = t
                .splits
                .iter()
                .enumerate()
                .map(|(i, v)| if race_def.start_split() == Some(i) { t.start.map(|s| s.since(gun)) } else { *v })
                .collect();
            results_export::Row::new(
                course,
                t.participant,
                t.status,
                t.places,
                t.gun_time,
                t.chip_time,
                &splits,
                t.flags,
                precision,
            )
        })
        .collect()
}
