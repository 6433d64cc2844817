//! What a race-clock display shows: the elapsed time of the leading wave, written by the edge
//! into holding registers.
//!
//! The time is split over two points, whole steps of `elapsed_seconds` and the rest in
//! `elapsed_fraction` (both in unit `s`, each with its own scale), so one map format describes a
//! display showing milliseconds, tenths or (with both scales at 1 s) whole seconds.
//! The display truncates: it never shows a time ahead of the true one.

use timing_core::Elapsed;

use super::image::MAX_WRITE_WORDS;
use super::map::{Point, RegisterMap, Table, Unit};
use super::{Image, ValueError, require};

/// What the display does with the time it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DisplayMode {
    /// Shows nothing (raw 0).
    Blank,
    /// Shows the time written and counts on by itself between writes (raw 1).
    Running,
    /// Shows the time written, frozen (a winner's time; raw 2).
    Hold,
}

impl DisplayMode {
    pub fn raw(self) -> u16 {
        match self {
            DisplayMode::Blank => 0,
            DisplayMode::Running => 1,
            DisplayMode::Hold => 2,
        }
    }
    pub fn from_raw(raw: u16) -> Option<DisplayMode> {
        match raw {
            0 => Some(DisplayMode::Blank),
            1 => Some(DisplayMode::Running),
            2 => Some(DisplayMode::Hold),
            _ => None,
        }
    }
}

/// Holding registers to write in one request (function code 16).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteBlock {
    pub start: u16,
    pub values: Vec<u16>,
}

/// One full state of the display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockDisplayFrame {
    /// Not negative; [`ClockDisplayFrame::encode`] truncates it to the display's resolution.
    pub elapsed: Elapsed,
    pub mode: DisplayMode,
    pub brightness_percent: u8,
}

impl ClockDisplayFrame {
    pub const SECONDS: &'static str = "elapsed_seconds";
    pub const FRACTION: &'static str = "elapsed_fraction";
    pub const MODE: &'static str = "mode";
    pub const BRIGHTNESS: &'static str = "brightness";
    /// Points a clock-display map must have, all holding registers.
    pub const REQUIRED: &'static [&'static str] = &[Self::SECONDS, Self::FRACTION, Self::MODE, Self::BRIGHTNESS];

    /// The register writes that put this frame on the display, in address order, contiguous
    /// registers merged into one request each.
    pub fn encode(&self, map: &RegisterMap) -> Result<Vec<WriteBlock>, ValueError> {
        let mut image = Image::default();
        self.encode_into(map, &mut image)?;
        let mut words = std::collections::BTreeMap::new();
        for p in points(map)? {
            for a in p.address as u32..p.end() {
                words.insert(a, image.word(Table::HoldingRegister, a as u16).expect("encode_into set every element"));
            }
        }
        let mut blocks: Vec<WriteBlock> = Vec::new();
        for (a, word) in words {
            match blocks.last_mut() {
                Some(b) if b.start as u32 + b.values.len() as u32 == a && b.values.len() < MAX_WRITE_WORDS as usize => {
                    b.values.push(word)
                }
                _ => blocks.push(WriteBlock { start: a as u16, values: vec![word] }),
            }
        }
        Ok(blocks)
    }

    /// Sets the frame's registers in `image`.
    pub fn encode_into(&self, map: &RegisterMap, image: &mut Image) -> Result<(), ValueError> {
        let [seconds, fraction, mode, brightness] = points(map)?;
        let (seconds_step, fraction_step) = (step_us(seconds)?, step_us(fraction)?);
        let us = self.elapsed.as_micros();
        if us < 0 {
            return Err(ValueError::OutOfRange { name: seconds.name.clone(), value: us, min: 0, max: i64::MAX });
        }
        image.set_value(seconds, 0, us / seconds_step)?;
        image.set_value(fraction, 0, us % seconds_step / fraction_step)?;
        image.set_value(mode, 0, self.mode.raw() as i64)?;
        let percent = brightness.fixed_to_raw(self.brightness_percent as i64, 0).unwrap_or(i64::MAX);
        image.set_value(brightness, 0, percent)
    }

    /// Reads the frame back out of `image`.
    pub fn decode(map: &RegisterMap, image: &Image) -> Result<ClockDisplayFrame, ValueError> {
        let [_, _, mode, brightness] = points(map)?;
        let raw_mode = image.value(mode, 0)?;
        let mode = DisplayMode::from_raw(raw_mode as u16)
            .filter(|_| raw_mode >= 0)
            .ok_or_else(|| ValueError::OutOfRange { name: mode.name.clone(), value: raw_mode, min: 0, max: 2 })?;
        let percent = super::fixed(image, brightness, 0, 0, 100)? as u8;
        Ok(ClockDisplayFrame { elapsed: Self::decode_elapsed(map, image)?, mode, brightness_percent: percent })
    }

    /// Only the time shown.
    pub fn decode_elapsed(map: &RegisterMap, image: &Image) -> Result<Elapsed, ValueError> {
        let [seconds, fraction, _, _] = points(map)?;
        let (seconds_step, fraction_step) = (step_us(seconds)?, step_us(fraction)?);
        let whole = image.value(seconds, 0)?;
        let part = image.value(fraction, 0)?;
        let max_part = seconds_step / fraction_step - 1;
        if part < 0 || part > max_part {
            return Err(ValueError::OutOfRange { name: fraction.name.clone(), value: part, min: 0, max: max_part });
        }
        let us =
            whole.checked_mul(seconds_step).and_then(|w| w.checked_add(part * fraction_step)).ok_or_else(|| {
                ValueError::OutOfRange {
                    name: seconds.name.clone(),
                    value: whole,
                    min: 0,
                    max: i64::MAX / seconds_step,
                }
            })?;
        Ok(Elapsed::from_micros(us))
    }
}

fn points(map: &RegisterMap) -> Result<[&Point; 4], ValueError> {
    let get = |name: &str, unit: Unit| -> Result<&Point, ValueError> {
        let p = require(map, name, unit)?;
        if p.table != Table::HoldingRegister {
            return Err(ValueError::WrongType {
                name: p.name.clone(),
                found: p.type_name(),
                expected: "holding register",
            });
        }
        Ok(p)
    };
    let seconds = get(ClockDisplayFrame::SECONDS, Unit::Second)?;
    let fraction = get(ClockDisplayFrame::FRACTION, Unit::Second)?;
    if fraction.scale_pow10 > seconds.scale_pow10 {
        return Err(ValueError::WrongType {
            name: fraction.name.clone(),
            found: "coarser scale than elapsed_seconds",
            expected: "finer scale",
        });
    }
    Ok([
        seconds,
        fraction,
        get(ClockDisplayFrame::MODE, Unit::None)?,
        get(ClockDisplayFrame::BRIGHTNESS, Unit::Percent)?,
    ])
}

/// Microseconds per raw step of a point in seconds (from 1 µs to 1000 s).
fn step_us(point: &Point) -> Result<i64, ValueError> {
    match point.scale_pow10 {
        p @ -6..=3 => Ok(10i64.pow((p + 6) as u32)),
        _ => Err(ValueError::WrongType {
            name: point.name.clone(),
            found: "scale outside 10^-6..=10^3 s",
            expected: "scale between a microsecond and 1000 s",
        }),
    }
}
