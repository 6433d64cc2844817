//! Participant lists: CSV with header `bib,chip,first_name,last_name,gender,birth_date,race,wave,nation,club`.
//!
//! Extra columns are allowed; `division` (e.g. `wheelchair`, `guided`) and `estimate` (the runner's
//! declared finish time, `H:MM:SS`, for predicted times before the first split) are read when present.
//! `chip` may hold several chips separated by spaces (dual-tag bibs).
//! A file with any problem imports nothing: every problem is reported with its line and column.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};
use timing_core::{Bib, CategoryIdx, ChipId, Division, Gender, Participant};

use crate::error::{ConfigError, ConfigErrors, Position};
use crate::event::EventConfig;

pub const REQUIRED_COLUMNS: [&str; 10] =
    ["bib", "chip", "first_name", "last_name", "gender", "birth_date", "race", "wave", "nation", "club"];

/// Age in whole years on `on`.
pub fn age_on(birth: NaiveDate, on: NaiveDate) -> u16 {
    let mut age = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age.max(0) as u16
}

/// Parses and validates a participant list against the event.
pub fn parse_participants(file: &str, source: &str, event: &EventConfig) -> Result<Vec<Participant>, ConfigErrors> {
    let mut rdr = csv::ReaderBuilder::new().flexible(false).trim(csv::Trim::All).from_reader(source.as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| ConfigError {
            position: Some(Position { line: 1, column: 1 }),
            ..ConfigError::whole_file(file, format!("unreadable header: {e}"))
        })?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let missing: Vec<&str> = REQUIRED_COLUMNS.iter().copied().filter(|c| col(c).is_none()).collect();
    if !missing.is_empty() {
        return Err(ConfigError {
            position: Some(Position { line: 1, column: 1 }),
            ..ConfigError::whole_file(
                file,
                format!(
                    "missing column(s) {}; the header must include {}",
                    missing.join(", "),
                    REQUIRED_COLUMNS.join(",")
                ),
            )
        }
        .into());
    }
    let idx: Vec<usize> = REQUIRED_COLUMNS.iter().map(|c| col(c).expect("checked")).collect();
    let division_col = col("division");
    let estimate_col = col("estimate");
    let reference = event.age_reference_date();
    let course = &event.course;

    let mut errors: Vec<ConfigError> = Vec::new();
    let mut out: Vec<Participant> = Vec::new();
    let mut bibs: HashMap<String, usize> = HashMap::new();
    let mut chips: HashMap<String, (String, usize)> = HashMap::new();

    for record in rdr.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                errors.push(ConfigError {
                    position: Some(Position { line, column: 1 }),
                    ..ConfigError::whole_file(file, format!("unreadable row: {e}"))
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        let field = |i: usize| record.get(idx[i]).unwrap_or("");
        let mut err = |column: usize, message: String| {
            errors.push(ConfigError {
                file: file.to_string(),
                position: Some(Position { line, column: idx[column] + 1 }),
                column_name: Some(REQUIRED_COLUMNS[column].to_string()),
                message,
            });
        };

        let bib = field(0);
        if bib.is_empty() {
            err(0, "empty bib".into());
        } else if let Some(first) = bibs.get(bib) {
            err(0, format!("duplicate bib {bib} (first on line {first})"));
        } else {
            bibs.insert(bib.to_string(), line);
        }
        // Chip codes are compared as upper-case everywhere (decoders differ in case).
        let chips_upper = field(1).to_ascii_uppercase();
        let chip_list: Vec<&str> = chips_upper.split_whitespace().collect();
        if chip_list.is_empty() {
            err(1, format!("bib {bib} has no chip"));
        }
        for c in &chip_list {
            match chips.get(*c) {
                Some((other, l)) if other != bib => {
                    err(1, format!("chip {c} is on bib {other} (line {l}) and bib {bib}"))
                }
                Some(_) => err(1, format!("chip {c} listed twice for bib {bib}")),
                None => {
                    chips.insert(c.to_string(), (bib.to_string(), line));
                }
            }
        }
        let gender = Gender::parse(field(4));
        if gender.is_none() {
            err(4, format!("unknown gender {:?}: expected M, F or X", field(4)));
        }
        let birth = NaiveDate::parse_from_str(field(5), "%Y-%m-%d").ok();
        if birth.is_none() && !field(5).is_empty() {
            err(5, format!("unparseable birth date {:?}: expected YYYY-MM-DD", field(5)));
        }
        let age = birth.map(|b| age_on(b, reference));
        let race = course.race_by_id(field(6));
        if race.is_none() {
            err(6, format!("unknown race {:?}", field(6)));
        }
        let wave = race.and_then(|r| course.wave_by_id(r, field(7)));
        if let (Some(r), None) = (race, wave) {
            err(7, format!("unknown wave {:?} for race {:?}", field(7), course.race(r).id));
        }
        if let Some(r) = race
            && let Some(min) = course.race(r).min_age
        {
            match age {
                Some(a) if a < min => err(
                    5,
                    format!(
                        "bib {bib} is {a} on {reference}, under the minimum age {min} for race {:?}",
                        course.race(r).id
                    ),
                ),
                None if birth.is_none() && field(5).is_empty() => {
                    err(5, format!("bib {bib} has no birth date, and race {:?} has a minimum age", course.race(r).id))
                }
                _ => {}
            }
        }
        let estimate = match estimate_col.and_then(|c| record.get(c)).filter(|e| !e.is_empty()) {
            None => None,
            Some(text) => match crate::units::parse_duration(text) {
                Ok(e) if e > timing_core::Elapsed::ZERO => Some(e),
                Ok(_) => {
                    errors.push(ConfigError {
                        file: file.to_string(),
                        position: Some(Position { line, column: estimate_col.expect("read") + 1 }),
                        column_name: Some("estimate".into()),
                        message: format!("estimate {text:?} is not a positive duration"),
                    });
                    None
                }
                Err(message) => {
                    errors.push(ConfigError {
                        file: file.to_string(),
                        position: Some(Position { line, column: estimate_col.expect("read") + 1 }),
                        column_name: Some("estimate".into()),
                        message,
                    });
                    None
                }
            },
        };
        let division = division_col
            .and_then(|c| record.get(c))
            .filter(|d| !d.is_empty())
            .map_or_else(Division::running, |d| Division(d.to_ascii_lowercase().into()));

        if let (Some(gender), Some(race), Some(wave)) = (gender, race, wave) {
            let category = course
                .categories
                .iter()
                .position(|c| {
                    c.race == race
                        && c.division == division
                        && c.gender.is_none_or(|g| g == gender)
                        && age.is_some_and(|a| c.min_age.is_none_or(|m| a >= m) && c.max_age.is_none_or(|m| a <= m))
                })
                .map(|i| CategoryIdx(i as u16));
            out.push(Participant {
                bib: Bib::new(bib),
                chips: chip_list.iter().map(|c| ChipId::new(c)).collect(),
                first_name: field(2).to_string(),
                last_name: field(3).to_string(),
                gender,
                age,
                race,
                wave,
                division,
                category,
                nation: field(8).to_string(),
                club: field(9).to_string(),
                estimate,
            });
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(ConfigErrors(errors)) }
}
