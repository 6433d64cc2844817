//! Standings as files: CSV, JSON and XLSX, the format of `racetime results`.
//!
//! CSV columns, in this order: `race,place,gender_place,category_place,bib,first_name,last_name,
//! gender,category,wave,nation,club,status,gun_time,chip_time`, one `split_<point_id>` per timing
//! point of the event (elapsed chip time at that point; at the start point, the time from the gun
//! to the start crossing), then `flags` (space-separated).
//! Published times are rounded up, each value separately, from full-resolution ticks; JSON also
//! carries every value at full resolution (`*_us`, microseconds).
//!
//! Rows come from a live or batch [`Engine`] ([`rows_from_engine`]) or from any other source of
//! results, such as the race generator's truth ([`Row::new`]), so both can be compared as files.

use std::io::Write;

use serde::Serialize;
use timing_core::{Course, Elapsed, Engine, Flags, ParticipantIdx, Places, Precision, Status, standings};

pub const FIXED_COLUMNS: [&str; 15] = [
    "race",
    "place",
    "gender_place",
    "category_place",
    "bib",
    "first_name",
    "last_name",
    "gender",
    "category",
    "wave",
    "nation",
    "club",
    "status",
    "gun_time",
    "chip_time",
];

/// One participant's published line, with full-resolution values beside it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Row {
    pub race: String,
    pub place: Option<u32>,
    pub gender_place: Option<u32>,
    pub category_place: Option<u32>,
    pub bib: String,
    pub first_name: String,
    pub last_name: String,
    pub gender: &'static str,
    pub category: String,
    pub wave: String,
    pub nation: String,
    pub club: String,
    pub status: &'static str,
    pub gun_time: Option<String>,
    pub chip_time: Option<String>,
    /// `(point id, published value)` for every point of the event, in event order.
    pub splits: Vec<(String, Option<String>)>,
    pub flags: Vec<&'static str>,
    pub gun_time_us: Option<i64>,
    pub chip_time_us: Option<i64>,
    pub splits_us: Vec<Option<i64>>,
}

/// Which rows to keep.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub race: Option<String>,
    pub gender: Option<String>,
    pub category: Option<String>,
}

impl Filter {
    pub fn keeps(&self, row: &Row) -> bool {
        self.race.as_ref().is_none_or(|r| *r == row.race)
            && self.gender.as_ref().is_none_or(|g| g.eq_ignore_ascii_case(row.gender))
            && self.category.as_ref().is_none_or(|c| *c == row.category)
    }
}

/// Formats a published time: `H:MM:SS`, or `H:MM:SS.mmm` at millisecond precision.
pub fn format_time(t: Elapsed, precision: Precision) -> String {
    let p = t.publish(precision);
    let us = p.as_micros();
    let secs = us.div_euclid(1_000_000);
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    match precision {
        Precision::Seconds => format!("{h}:{m:02}:{s:02}"),
        Precision::Millis => format!("{h}:{m:02}:{s:02}.{:03}", us.rem_euclid(1_000_000) / 1000),
    }
}

impl Row {
    /// A row from already computed values. `split_values` holds, per split of the
    /// participant's race, the value to publish (see the crate docs for the start point).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        course: &Course,
        p: ParticipantIdx,
        status: Status,
        places: Places,
        gun_time: Option<Elapsed>,
        chip_time: Option<Elapsed>,
        split_values: &[Option<Elapsed>],
        flags: Flags,
        precision: Precision,
    ) -> Row {
        let part = course.participant(p);
        let race = course.race(part.race);
        let mut splits = Vec::with_capacity(course.points.len());
        let mut splits_us = Vec::with_capacity(course.points.len());
        for (pi, point) in course.points.iter().enumerate() {
            let v = race
                .splits
                .iter()
                .position(|s| s.point.idx() == pi)
                .and_then(|si| split_values.get(si).copied().flatten());
            splits.push((point.id.to_string(), v.map(|v| format_time(v, precision))));
            splits_us.push(v.map(Elapsed::as_micros));
        }
        Row {
            race: race.id.clone(),
            place: places.overall,
            gender_place: places.gender,
            category_place: places.category,
            bib: part.bib.to_string(),
            first_name: part.first_name.clone(),
            last_name: part.last_name.clone(),
            gender: part.gender.code(),
            category: part.category.map(|c| course.categories[c.idx()].code.clone()).unwrap_or_default(),
            wave: course.wave(part.wave).id.clone(),
            nation: part.nation.clone(),
            club: part.club.clone(),
            status: status.as_str(),
            gun_time: gun_time.map(|t| format_time(t, precision)),
            chip_time: chip_time.map(|t| format_time(t, precision)),
            splits,
            flags: flags.names().collect(),
            gun_time_us: gun_time.map(Elapsed::as_micros),
            chip_time_us: chip_time.map(Elapsed::as_micros),
            splits_us,
        }
    }
}

/// The split values an engine result publishes: chip elapsed per split, and at the start the
/// time from the gun to the start crossing.
pub fn split_values(engine: &Engine, p: ParticipantIdx) -> Vec<Option<Elapsed>> {
    let r = engine.result(p);
    let race = engine.course().race(engine.course().participant(p).race);
    (0..r.passings.len())
        .map(|i| {
            if race.start_split() == Some(i) {
                match (r.passings[i], r.gun) {
                    (Some(s), Some(gun)) => Some(s.at.since(gun)),
                    _ => None,
                }
            } else {
                r.split_elapsed(i)
            }
        })
        .collect()
}

/// Every participant in standings order (final statuses when `final_standings`).
pub fn rows_from_engine(engine: &Engine, precision: Precision, final_standings: bool) -> Vec<Row> {
    let course = engine.course();
    standings(engine, final_standings)
        .into_iter()
        .map(|row| {
            let r = engine.result(row.participant);
            let splits = split_values(engine, row.participant);
            Row::new(
                course,
                row.participant,
                row.status,
                row.places,
                r.gun_time,
                r.chip_time,
                &splits,
                r.flags,
                precision,
            )
        })
        .collect()
}

/// Writes rows as CSV with the header described in the crate docs.
pub fn write_csv(rows: &[Row], course: &Course, out: impl Write) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let mut header: Vec<String> = FIXED_COLUMNS.iter().map(|c| c.to_string()).collect();
    header.extend(course.points.iter().map(|p| format!("split_{}", p.id)));
    header.push("flags".into());
    w.write_record(&header)?;
    let num = |v: Option<u32>| v.map(|n| n.to_string()).unwrap_or_default();
    for r in rows {
        let mut rec: Vec<String> = vec![
            r.race.clone(),
            num(r.place),
            num(r.gender_place),
            num(r.category_place),
            r.bib.clone(),
            r.first_name.clone(),
            r.last_name.clone(),
            r.gender.to_string(),
            r.category.clone(),
            r.wave.clone(),
            r.nation.clone(),
            r.club.clone(),
            r.status.to_string(),
            r.gun_time.clone().unwrap_or_default(),
            r.chip_time.clone().unwrap_or_default(),
        ];
        rec.extend(r.splits.iter().map(|(_, v)| v.clone().unwrap_or_default()));
        rec.push(r.flags.join(" "));
        w.write_record(&rec)?;
    }
    w.flush()
}

/// A published `H:MM:SS[.mmm]` as a fraction of a day (Excel's duration unit).
fn excel_duration(text: &str) -> Option<f64> {
    let (whole, frac) = text.split_once('.').map_or((text, "0"), |(w, f)| (w, f));
    let mut secs = 0f64;
    for part in whole.split(':') {
        secs = secs * 60.0 + part.parse::<u64>().ok()? as f64;
    }
    let frac: f64 = format!("0.{frac}").parse().ok()?;
    Some((secs + frac) / 86_400.0)
}

/// Writes rows as an Excel workbook with the CSV's columns: places as numbers, times as
/// durations (`[h]:mm:ss`, the published value), a frozen, filterable header.
pub fn write_xlsx(rows: &[Row], course: &Course, precision: Precision) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("Results")?;
    let bold = Format::new().set_bold();
    let duration = Format::new().set_num_format(match precision {
        Precision::Seconds => "[h]:mm:ss",
        Precision::Millis => "[h]:mm:ss.000",
    });
    let mut header: Vec<String> = FIXED_COLUMNS.iter().map(|c| c.to_string()).collect();
    header.extend(course.points.iter().map(|p| format!("split_{}", p.id)));
    header.push("flags".into());
    for (c, h) in header.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, h, &bold)?;
    }
    for (i, r) in rows.iter().enumerate() {
        let row = i as u32 + 1;
        let texts: [&str; 9] = [&r.race, "", "", "", &r.bib, &r.first_name, &r.last_name, r.gender, &r.category];
        for (c, t) in texts.iter().enumerate() {
            if !t.is_empty() {
                sheet.write_string(row, c as u16, *t)?;
            }
        }
        for (c, place) in [(1u16, r.place), (2, r.gender_place), (3, r.category_place)] {
            if let Some(p) = place {
                sheet.write_number(row, c, f64::from(p))?;
            }
        }
        for (c, t) in [(9u16, &r.wave), (10, &r.nation), (11, &r.club)] {
            sheet.write_string(row, c, t)?;
        }
        sheet.write_string(row, 12, r.status)?;
        let times = [r.gun_time.as_deref(), r.chip_time.as_deref()]
            .into_iter()
            .chain(r.splits.iter().map(|(_, v)| v.as_deref()));
        for (k, t) in times.enumerate() {
            if let Some(d) = t.and_then(excel_duration) {
                sheet.write_number_with_format(row, 13 + k as u16, d, &duration)?;
            }
        }
        sheet.write_string(row, header.len() as u16 - 1, r.flags.join(" "))?;
    }
    sheet.set_freeze_panes(1, 0)?;
    sheet.autofilter(0, 0, rows.len() as u32, header.len() as u16 - 1)?;
    workbook.save_to_buffer()
}

/// Writes rows as one JSON document: `{"event", "precision", "points", "results": [...]}`.
pub fn write_json(
    rows: &[Row],
    event_name: &str,
    course: &Course,
    precision: Precision,
    mut out: impl Write,
) -> std::io::Result<()> {
    let doc = serde_json::json!({
        "event": event_name,
        "precision": match precision { Precision::Seconds => "s", Precision::Millis => "ms" },
        "points": course.points.iter().map(|p| p.id.to_string()).collect::<Vec<_>>(),
        "results": rows,
    });
    serde_json::to_writer_pretty(&mut out, &doc)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_times_round_up_at_the_chosen_precision() {
        let t = Elapsed::from_micros(2 * 3_600_000_000 + 9 * 60_000_000 + 44_300_000);
        assert_eq!(format_time(t, Precision::Seconds), "2:09:45");
        assert_eq!(format_time(t, Precision::Millis), "2:09:44.300");
        assert_eq!(format_time(Elapsed::from_micros(44_000_001), Precision::Millis), "0:00:44.001");
        assert_eq!(format_time(Elapsed::from_secs(27 * 3600), Precision::Seconds), "27:00:00");
    }
}
