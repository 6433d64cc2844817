//! `event.toml`: the event, its timing points, races, waves and categories.

use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;
use serde::Deserialize;
use toml::Spanned;

use timing_core::{
    Category, Course, Division, Elapsed, Gender, PointId, RaceDef, RaceIdx, RankBy, Split, TimeMode, TimingPoint, Wave,
};

use crate::error::{ConfigError, ConfigErrors};
use crate::units::{parse_date, parse_duration, parse_instant, parse_pace};

/// Which date ages are counted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgeReference {
    /// Age on the day of the race (USATF, masters).
    RaceDay,
    /// Age on 31 December of the event year (World Athletics youth categories, FFA).
    Dec31,
}

/// The validated event: metadata plus the core's [`Course`] (without participants).
#[derive(Clone, Debug)]
pub struct EventConfig {
    pub name: String,
    pub time_zone: Tz,
    pub date: NaiveDate,
    pub age_reference: AgeReference,
    pub course: Course,
    /// Point descriptions for pages and crews (lines present, place name).
    pub point_lines: Vec<Vec<timing_core::Line>>,
}

impl EventConfig {
    /// The date ages are computed on.
    pub fn age_reference_date(&self) -> NaiveDate {
        match self.age_reference {
            AgeReference::RaceDay => self.date,
            AgeReference::Dec31 => NaiveDate::from_ymd_opt(self.date.year(), 12, 31).expect("31 December exists"),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    event: EventSection,
    #[serde(default)]
    timing: TimingDefaults,
    points: Vec<PointSection>,
    races: Vec<RaceSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventSection {
    name: String,
    time_zone: Spanned<String>,
    date: Spanned<String>,
    age_reference: AgeReference,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimingDefaults {
    #[serde(default = "default_quiet_gap_ms")]
    quiet_gap_ms: u32,
    #[serde(default = "default_stray_after_s")]
    stray_after_s: u32,
    #[serde(default = "default_line_tolerance_s")]
    line_tolerance_s: u32,
}

impl Default for TimingDefaults {
    fn default() -> TimingDefaults {
        TimingDefaults {
            quiet_gap_ms: default_quiet_gap_ms(),
            stray_after_s: default_stray_after_s(),
            line_tolerance_s: default_line_tolerance_s(),
        }
    }
}

fn default_quiet_gap_ms() -> u32 {
    400
}
fn default_stray_after_s() -> u32 {
    8
}
fn default_line_tolerance_s() -> u32 {
    20
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum TimeModeName {
    First,
    Last,
    PeakRssi,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PointSection {
    id: Spanned<String>,
    name: String,
    #[serde(default = "default_lines")]
    lines: Vec<Spanned<String>>,
    #[serde(default)]
    time_mode: Option<TimeModeName>,
    #[serde(default)]
    backup_offset_ms: i32,
    quiet_gap_ms: Option<u32>,
    stray_after_s: Option<u32>,
    line_tolerance_s: Option<u32>,
}

fn default_lines() -> Vec<Spanned<String>> {
    vec![Spanned::new(0..0, "main".to_string())]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RaceSection {
    id: Spanned<String>,
    name: String,
    distance_m: u32,
    min_age: Option<u16>,
    #[serde(default = "yes")]
    ranked: bool,
    #[serde(default)]
    rank_by: Option<RankByName>,
    time_limit: Spanned<String>,
    #[serde(default = "default_start_window")]
    start_window: Spanned<String>,
    #[serde(default = "default_min_pace")]
    min_pace_per_km: Spanned<String>,
    #[serde(default = "default_max_pace")]
    max_pace_per_km: Spanned<String>,
    course: Vec<SplitSection>,
    waves: Vec<WaveSection>,
    #[serde(default)]
    categories: Vec<CategorySection>,
}

fn yes() -> bool {
    true
}
fn default_start_window() -> Spanned<String> {
    Spanned::new(0..0, "0:30:00".into())
}
fn default_min_pace() -> Spanned<String> {
    Spanned::new(0..0, "2:30".into())
}
fn default_max_pace() -> Spanned<String> {
    Spanned::new(0..0, "20:00".into())
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RankByName {
    Gun,
    Chip,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SplitSection {
    point: Spanned<String>,
    distance_m: Spanned<u32>,
    #[serde(default = "yes")]
    mandatory: bool,
    min_pace_per_km: Option<Spanned<String>>,
    max_pace_per_km: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaveSection {
    id: Spanned<String>,
    scheduled_start: Spanned<String>,
    gun_time: Option<Spanned<String>>,
    start_window: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CategorySection {
    code: Spanned<String>,
    gender: Option<Spanned<String>>,
    #[serde(default)]
    division: Option<String>,
    min_age: Option<u16>,
    max_age: Option<u16>,
}

/// Collects every problem instead of stopping at the first.
struct Check<'a> {
    file: &'a str,
    source: &'a str,
    errors: Vec<ConfigError>,
}

impl Check<'_> {
    fn err<T>(&mut self, span: std::ops::Range<usize>, message: impl Into<String>) -> Option<T> {
        self.errors.push(ConfigError::at(self.file, self.source, span, message));
        None
    }
    fn ok<T>(&mut self, span: std::ops::Range<usize>, r: Result<T, String>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(m) => self.err(span, m),
        }
    }
}

/// Parses and validates an `event.toml`. `file` names the file in messages.
pub fn parse_event(file: &str, source: &str) -> Result<EventConfig, ConfigErrors> {
    let raw: File = toml::from_str(source).map_err(|e| {
        let mut err = ConfigError::whole_file(file, e.message().to_string());
        if let Some(span) = e.span() {
            err = ConfigError::at(file, source, span, e.message().trim().to_string());
        }
        ConfigErrors::from(err)
    })?;
    let mut ck = Check { file, source, errors: Vec::new() };

    let zone: Option<Tz> = ck.ok(
        raw.event.time_zone.span(),
        raw.event
            .time_zone
            .get_ref()
            .parse::<Tz>()
            .map_err(|_| format!("unknown IANA time zone {:?}", raw.event.time_zone.get_ref())),
    );
    let date = ck.ok(raw.event.date.span(), parse_date(raw.event.date.get_ref()));
    let zone_or_utc = zone.unwrap_or(chrono_tz::UTC);

    // Timing points.
    const MAX_POINTS: usize = 1 << 15;
    let d = &raw.timing;
    let mut points = Vec::new();
    let mut point_lines = Vec::new();
    for (i, p) in raw.points.iter().enumerate() {
        let id = p.id.get_ref();
        // The engine packs a point's index and line into 16 bits.
        if i == MAX_POINTS {
            ck.err::<()>(p.id.span(), format!("too many timing points: at most {MAX_POINTS}"));
        }
        if !valid_id(id) {
            ck.err::<()>(p.id.span(), format!("invalid point id {id:?}: use letters, digits, '-' and '_'"));
        }
        if points.iter().any(|q: &TimingPoint| q.id.as_str() == id) {
            ck.err::<()>(p.id.span(), format!("duplicate point id {id:?}"));
        }
        let mut lines = Vec::new();
        for l in &p.lines {
            match timing_core::Line::parse(l.get_ref()) {
                Some(line) if !lines.contains(&line) => lines.push(line),
                Some(_) => {
                    ck.err::<()>(l.span(), format!("line {:?} listed twice", l.get_ref()));
                }
                None => {
                    ck.err::<()>(l.span(), format!("unknown line {:?}: expected \"main\" or \"backup\"", l.get_ref()));
                }
            }
        }
        point_lines.push(lines);
        points.push(TimingPoint {
            id: PointId::new(id),
            name: p.name.clone(),
            time_mode: match p.time_mode {
                None | Some(TimeModeName::First) => TimeMode::First,
                Some(TimeModeName::Last) => TimeMode::Last,
                Some(TimeModeName::PeakRssi) => TimeMode::PeakRssi,
            },
            quiet_gap: Elapsed::from_millis(p.quiet_gap_ms.unwrap_or(d.quiet_gap_ms) as i64),
            stray_after: Elapsed::from_secs(p.stray_after_s.unwrap_or(d.stray_after_s) as i64),
            backup_offset: Elapsed::from_millis(p.backup_offset_ms as i64),
            line_tolerance: Elapsed::from_secs(p.line_tolerance_s.unwrap_or(d.line_tolerance_s) as i64),
        });
    }

    // Races, their course plans, waves and categories.
    let mut races = Vec::new();
    let mut waves = Vec::new();
    let mut categories = Vec::new();
    for (ri, r) in raw.races.iter().enumerate() {
        let race_idx = RaceIdx(ri as u16);
        let rid = r.id.get_ref();
        if !valid_id(rid) {
            ck.err::<()>(r.id.span(), format!("invalid race id {rid:?}: use letters, digits, '-' and '_'"));
        }
        if raw.races[..ri].iter().any(|q| q.id.get_ref() == rid) {
            ck.err::<()>(r.id.span(), format!("duplicate race id {rid:?}"));
        }
        let time_limit = ck.ok(r.time_limit.span(), parse_duration(r.time_limit.get_ref())).unwrap_or(Elapsed::ZERO);
        let start_window =
            ck.ok(r.start_window.span(), parse_duration(r.start_window.get_ref())).unwrap_or(Elapsed::ZERO);
        let min_pace =
            ck.ok(r.min_pace_per_km.span(), parse_pace(r.min_pace_per_km.get_ref())).unwrap_or(Elapsed::ZERO);
        let max_pace =
            ck.ok(r.max_pace_per_km.span(), parse_pace(r.max_pace_per_km.get_ref())).unwrap_or(Elapsed::ZERO);

        let mut splits: Vec<Split> = Vec::new();
        for s in &r.course {
            let Some(pi) = points.iter().position(|p| p.id.as_str() == s.point.get_ref()) else {
                ck.err::<()>(s.point.span(), format!("race {rid:?} uses unknown point {:?}", s.point.get_ref()));
                continue;
            };
            if splits.iter().any(|x| x.point.idx() == pi) {
                ck.err::<()>(s.point.span(), format!("race {rid:?} uses point {:?} twice", s.point.get_ref()));
                continue;
            }
            let d = *s.distance_m.get_ref();
            if let Some(prev) = splits.last()
                && d <= prev.distance_m
            {
                ck.err::<()>(
                    s.distance_m.span(),
                    format!(
                        "race {rid:?}: point {:?} at {d} m is not after the previous point ({} m)",
                        s.point.get_ref(),
                        prev.distance_m
                    ),
                );
            }
            let pace = |ck: &mut Check<'_>, v: &Option<Spanned<String>>, default: Elapsed| match v {
                Some(v) => ck.ok(v.span(), parse_pace(v.get_ref())).unwrap_or(default),
                None => default,
            };
            let min_pace_per_km = pace(&mut ck, &s.min_pace_per_km, min_pace);
            let max_pace_per_km = pace(&mut ck, &s.max_pace_per_km, max_pace);
            if min_pace_per_km > max_pace_per_km {
                ck.err::<()>(
                    s.point.span(),
                    format!("race {rid:?}, point {:?}: min pace is slower than max pace", s.point.get_ref()),
                );
            }
            splits.push(Split {
                point: timing_core::PointIdx(pi as u16),
                distance_m: d,
                mandatory: s.mandatory,
                min_pace_per_km,
                max_pace_per_km,
            });
        }
        match splits.last() {
            None => {
                ck.err::<()>(r.id.span(), format!("race {rid:?} has no timing points in its course"));
            }
            Some(last) if last.distance_m != r.distance_m => {
                ck.err::<()>(
                    r.id.span(),
                    format!(
                        "race {rid:?}: the last point (the finish) is at {} m but the race is {} m",
                        last.distance_m, r.distance_m
                    ),
                );
            }
            Some(_) if splits.len() < 2 && splits[0].distance_m == 0 => {
                ck.err::<()>(r.id.span(), format!("race {rid:?} needs a finish point after its start"));
            }
            _ => {}
        }

        if r.waves.is_empty() {
            ck.err::<()>(r.id.span(), format!("race {rid:?} has no waves"));
        }
        for (wi, w) in r.waves.iter().enumerate() {
            let wid = w.id.get_ref();
            if r.waves[..wi].iter().any(|x| x.id.get_ref() == wid) {
                ck.err::<()>(w.id.span(), format!("duplicate wave id {wid:?} in race {rid:?}"));
            }
            let scheduled = ck.ok(w.scheduled_start.span(), parse_instant(w.scheduled_start.get_ref(), zone_or_utc));
            let gun = w.gun_time.as_ref().and_then(|g| ck.ok(g.span(), parse_instant(g.get_ref(), zone_or_utc)));
            let window = match &w.start_window {
                Some(sw) => ck.ok(sw.span(), parse_duration(sw.get_ref())).unwrap_or(start_window),
                None => start_window,
            };
            waves.push(Wave {
                id: wid.clone(),
                race: race_idx,
                scheduled_start: scheduled.unwrap_or_default(),
                gun_time: gun,
                start_window: window,
            });
        }
        for c in &r.categories {
            let gender = c.gender.as_ref().and_then(|g| {
                let parsed = Gender::parse(g.get_ref());
                if parsed.is_none() {
                    ck.err::<()>(g.span(), format!("unknown gender {:?}: expected M, F or X", g.get_ref()));
                }
                parsed
            });
            if categories.iter().any(|x: &Category| x.race == race_idx && x.code == *c.code.get_ref()) {
                ck.err::<()>(c.code.span(), format!("duplicate category {:?} in race {rid:?}", c.code.get_ref()));
            }
            if let (Some(a), Some(b)) = (c.min_age, c.max_age)
                && a > b
            {
                ck.err::<()>(
                    c.code.span(),
                    format!("category {:?}: min_age {a} is above max_age {b}", c.code.get_ref()),
                );
            }
            categories.push(Category {
                code: c.code.get_ref().clone(),
                race: race_idx,
                gender,
                division: c.division.as_deref().map_or_else(Division::running, |d| Division(d.into())),
                min_age: c.min_age,
                max_age: c.max_age,
            });
        }
        races.push(RaceDef {
            id: rid.clone(),
            name: r.name.clone(),
            distance_m: r.distance_m,
            min_age: r.min_age,
            ranked: r.ranked,
            rank_by: match r.rank_by {
                Some(RankByName::Chip) => RankBy::Chip,
                _ => RankBy::Gun,
            },
            time_limit,
            splits,
        });
    }
    if raw.races.is_empty() {
        ck.errors.push(ConfigError::whole_file(file, "the event has no races"));
    }

    if !ck.errors.is_empty() {
        return Err(ConfigErrors(ck.errors));
    }
    Ok(EventConfig {
        name: raw.event.name,
        time_zone: zone.expect("checked"),
        date: date.expect("checked"),
        age_reference: raw.event.age_reference,
        course: Course { points, races, waves, categories, participants: Vec::new() },
        point_lines,
    })
}

fn valid_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
