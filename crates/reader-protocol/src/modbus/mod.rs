//! Modbus devices around a timing line, as data: register maps, the values in a device's tables,
//! and typed readings decoded from them.
//!
//! No transport here: the edge daemon and firmware-sim speak Modbus TCP and RTU through
//! tokio-modbus and hand this module register values.
//! The maps themselves are files under `hardware/modbus/` (parsed by `event-config`, which owns
//! the TOML), so a different I/O module or charge controller is a new file, not new code.
//!
//! - [`RegisterMap`] and [`Point`]: which value lives at which address, its width, word order,
//!   sign, scale and unit. [`RegisterMap::read_plan`] lists the reads that cover a map.
//! - [`Image`]: table contents by address; [`Image::value`] / [`Image::set_value`] per point, and
//!   the `serve_*` methods an emulator answers requests with (returning a Modbus [`Exception`]
//!   where a strict device would).
//! - Typed readings: [`DigitalInputs`] (start-gun contacts and their counters), [`Battery`]
//!   (charge controller), [`ClockDisplayFrame`] (what a race-clock display shows).
//!
//! Two kinds of failure stay apart, as in tokio-modbus's nested `Result`: a device's refusal is
//! an [`Exception`] (a value the device sent), while [`ValueError`] says the registers at hand do
//! not make the reading asked for (not read, short reply, out of range, map lacks a point).

mod battery;
mod clock_display;
mod digital_input;
mod image;
mod map;

#[cfg(test)]
mod tests;

pub use battery::Battery;
pub use clock_display::{ClockDisplayFrame, DisplayMode, WriteBlock};
pub use digital_input::DigitalInputs;
pub use image::{Image, MAX_WRITE_BITS, MAX_WRITE_WORDS};
pub use map::{Access, MapError, Point, ReadBlock, RegisterMap, Table, Unit, Width, WordOrder};

/// A Modbus exception a device answers instead of data (the ones a plain I/O device uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Exception {
    /// 0x01: the device does not support the function code (or not on that table).
    #[error("illegal function (exception 0x01)")]
    IllegalFunction,
    /// 0x02: an address in the request is not in the device's map, or not writable.
    #[error("illegal data address (exception 0x02)")]
    IllegalDataAddress,
    /// 0x03: a quantity or a written value the device does not accept.
    #[error("illegal data value (exception 0x03)")]
    IllegalDataValue,
}

impl Exception {
    /// The exception code on the wire.
    pub fn code(self) -> u8 {
        match self {
            Exception::IllegalFunction => 0x01,
            Exception::IllegalDataAddress => 0x02,
            Exception::IllegalDataValue => 0x03,
        }
    }
}

/// Why registers at hand do not make the value asked for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("the register map has no point {name:?}")]
    MissingPoint { name: String },
    #[error("point {name:?} is a {found}, expected {expected}")]
    WrongType { name: String, found: &'static str, expected: &'static str },
    #[error("point {name:?} is in {found}, expected {expected}")]
    WrongUnit { name: String, found: Unit, expected: Unit },
    #[error("point {name:?} has {count} elements, no element {index}")]
    NoSuchElement { name: String, index: u16, count: u16 },
    #[error("point {name:?} has {count} elements, got {len} values")]
    WrongLength { name: String, len: usize, count: u16 },
    #[error("point {name:?} not read: no {table} {address} in the image")]
    NotRead { name: String, table: Table, address: u16 },
    #[error("short read: asked for {} {}s at {}, got {got}", block.count, block.table, block.start)]
    ShortRead { block: ReadBlock, got: usize },
    #[error("point {name:?}: value {value} out of range {min}..={max}")]
    OutOfRange { name: String, value: i64, min: i64, max: i64 },
}

/// The point called `name`, checked for unit; for typed readings.
fn require<'m>(map: &'m RegisterMap, name: &str, unit: Unit) -> Result<&'m Point, ValueError> {
    let point = map.point(name).ok_or_else(|| ValueError::MissingPoint { name: name.to_string() })?;
    if point.unit != unit {
        return Err(ValueError::WrongUnit { name: name.to_string(), found: point.unit, expected: unit });
    }
    Ok(point)
}

/// Element 0 of `point` as a fixed-point number with `10^target_pow10` units per step, within
/// `min..=max`.
fn fixed(image: &Image, point: &Point, target_pow10: i8, min: i64, max: i64) -> Result<i64, ValueError> {
    let raw = image.value(point, 0)?;
    match point.raw_to_fixed(raw, target_pow10) {
        Some(v) if (min..=max).contains(&v) => Ok(v),
        Some(v) => Err(ValueError::OutOfRange { name: point.name.clone(), value: v, min, max }),
        None => Err(ValueError::OutOfRange { name: point.name.clone(), value: raw, min, max }),
    }
}

/// Sets element 0 of `point` from a fixed-point number with `10^value_pow10` units per step.
fn set_fixed(image: &mut Image, point: &Point, value: i64, value_pow10: i8) -> Result<(), ValueError> {
    let (min, max) = point.raw_range();
    let raw = point.fixed_to_raw(value, value_pow10).ok_or_else(|| ValueError::OutOfRange {
        name: point.name.clone(),
        value,
        min,
        max,
    })?;
    image.set_value(point, 0, raw)
}
