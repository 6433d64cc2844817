//! `racetime results`: final standings from read files, offline.

use std::io::Write;

use anyhow::Context;
use timing_core::{Engine, EngineOptions, Precision, Status};

use crate::cli::{OutputFormat, ResultsArgs};
use crate::{InputError, load, write_atomically};

/// How many bad lines are printed one by one before only the count is given.
const BAD_LINES_SHOWN: usize = 20;

pub fn run(args: &ResultsArgs) -> anyhow::Result<()> {
    let event = load::event(&args.event)?;
    let course = load::course(&event, &args.participants)?;
    let corrections = match &args.corrections {
        Some(p) => load::corrections(&event, p)?,
        None => Vec::new(),
    };
    let specs = args.reads.iter().map(|a| load::ReadsSpec::parse(a)).collect::<Result<Vec<_>, _>>()?;
    let reference = load::reference_instants(&course, &corrections);
    let loaded = load::reads(&specs, args.reads_format, &course, event.time_zone, reference)?;
    let n_in = loaded.reads.len();
    let (engine, refused) = Engine::replay(course, EngineOptions::default(), loaded.reads, corrections);
    if !refused.is_empty() {
        let path = args.corrections.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        let msgs: Vec<String> = refused.iter().map(|(i, e)| format!("{path}: correction #{}: {e}", i + 1)).collect();
        return Err(InputError(msgs.join("\n")).into());
    }
    let precision: Precision = args.precision.into();
    let rows = results_export::rows_from_engine(&engine, precision, true);
    let mut buf = Vec::new();
    match args.format {
        OutputFormat::Csv => results_export::write_csv(&rows, engine.course(), &mut buf)?,
        OutputFormat::Json => results_export::write_json(&rows, &event.name, engine.course(), precision, &mut buf)?,
    }
    match &args.out {
        Some(path) => write_atomically(path, &buf)?,
        None => std::io::stdout().write_all(&buf).context("writing standings to standard output")?,
    }
    eprint!("{}", summary(&engine, n_in, &loaded.bad_lines));
    Ok(())
}

/// The desk's summary: what came in, what was made of it, and what needs a look.
pub fn summary(engine: &Engine, n_reads_in: usize, bad_lines: &[(std::path::PathBuf, usize, String)]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for (file, line, msg) in bad_lines.iter().take(BAD_LINES_SHOWN) {
        let _ = writeln!(s, "warning: {}:{line}: {msg}", file.display());
    }
    if bad_lines.len() > BAD_LINES_SHOWN {
        let _ = writeln!(s, "warning: … and {} more bad lines", bad_lines.len() - BAD_LINES_SHOWN);
    }
    let c = engine.counters();
    let results = engine.results();
    let count = |st: Status| results.iter().filter(|r| r.status().final_status() == st).count();
    let unknown = engine.unknown_chips();
    let _ = writeln!(
        s,
        "reads in: {n_reads_in} ({} distinct, {} duplicates), bad lines: {}",
        c.n_reads,
        c.n_duplicates,
        bad_lines.len()
    );
    let _ = writeln!(s, "crossings: {}", engine.n_crossings());
    let _ = writeln!(s, "unknown chips: {} ({} reads)", unknown.len(), c.n_unknown_chip_reads);
    let _ = writeln!(s, "strays: {}", engine.strays().len());
    let _ = writeln!(s, "wrong-race: {}", engine.wrong_race().len());
    let _ = writeln!(s, "reviews: {}", count(Status::Review));
    let _ = writeln!(
        s,
        "participants: {} — finished {}, DNF {}, DNS {}, DSQ {}",
        results.len(),
        count(Status::Finished),
        count(Status::Dnf),
        count(Status::Dns),
        count(Status::Dsq)
    );
    s
}
