//! Register maps: which values a device keeps at which Modbus addresses, as data.
//!
//! A [`RegisterMap`] is a list of [`Point`]s, each a named value (or a run of `count` equal
//! values, such as twelve digital inputs) in one of the four Modbus tables, at a 0-based
//! protocol address (vendor tables number from 1: Advantech `40001` is holding register 0).
//! A map built by [`RegisterMap::new`] has been checked: names are unique, widths suit their
//! table, and no two points share an address, so every address belongs to at most one point.

use std::collections::BTreeMap;
use std::fmt;

/// The four Modbus data tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Read/write bits (function codes 01, 05, 15).
    Coil,
    /// Read-only bits (function code 02).
    DiscreteInput,
    /// Read-only 16-bit registers (function code 04).
    InputRegister,
    /// Read/write 16-bit registers (function codes 03, 06, 16).
    HoldingRegister,
}

impl Table {
    pub const ALL: [Table; 4] = [Table::Coil, Table::DiscreteInput, Table::InputRegister, Table::HoldingRegister];

    /// True for the bit tables (coils, discrete inputs).
    pub fn holds_bits(self) -> bool {
        matches!(self, Table::Coil | Table::DiscreteInput)
    }
    /// True for the tables a client can write (coils, holding registers).
    pub fn is_writable(self) -> bool {
        matches!(self, Table::Coil | Table::HoldingRegister)
    }
    /// The function code that reads this table.
    pub fn read_function(self) -> u8 {
        match self {
            Table::Coil => 0x01,
            Table::DiscreteInput => 0x02,
            Table::HoldingRegister => 0x03,
            Table::InputRegister => 0x04,
        }
    }
    /// Most items one read request may ask for (Modbus application protocol 1.1b3, 6.1–6.4).
    pub fn max_read(self) -> u16 {
        if self.holds_bits() { 2000 } else { 125 }
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Table::Coil => "coil",
            Table::DiscreteInput => "discrete input",
            Table::InputRegister => "input register",
            Table::HoldingRegister => "holding register",
        })
    }
}

/// Which 16-bit register of a 32-bit value comes first (at the lower address).
///
/// Modbus itself only defines big-endian bytes within a register; devices disagree on word order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WordOrder {
    /// High word at the lower address ("big-endian", ABCD).
    HighFirst,
    /// Low word at the lower address (Advantech counters, EPEver `L`/`H` pairs; CDAB).
    LowFirst,
}

/// How many addresses one element of a point takes, and how they combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Width {
    /// One bit (coils and discrete inputs only).
    Bit,
    /// One 16-bit register.
    Word,
    /// Two registers forming a 32-bit value.
    DoubleWord(WordOrder),
}

impl Width {
    /// Addresses one element takes.
    pub fn n_addresses(self) -> u16 {
        match self {
            Width::Bit | Width::Word => 1,
            Width::DoubleWord(_) => 2,
        }
    }
    fn describe(self, signed: bool) -> &'static str {
        match (self, signed) {
            (Width::Bit, _) => "bit",
            (Width::Word, false) => "u16",
            (Width::Word, true) => "i16",
            (Width::DoubleWord(_), false) => "u32",
            (Width::DoubleWord(_), true) => "i32",
        }
    }
}

/// The physical unit of a point's scaled value (SI prefixes go into the scale instead).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    /// A count, a code, a set of flags: no physical unit.
    None,
    Volt,
    Ampere,
    Watt,
    KilowattHour,
    Percent,
    Celsius,
    Second,
}

impl Unit {
    /// The spelling used in register map files.
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::None => "none",
            Unit::Volt => "V",
            Unit::Ampere => "A",
            Unit::Watt => "W",
            Unit::KilowattHour => "kWh",
            Unit::Percent => "%",
            Unit::Celsius => "degC",
            Unit::Second => "s",
        }
    }
    pub fn from_symbol(symbol: &str) -> Option<Unit> {
        [
            Unit::None,
            Unit::Volt,
            Unit::Ampere,
            Unit::Watt,
            Unit::KilowattHour,
            Unit::Percent,
            Unit::Celsius,
            Unit::Second,
        ]
        .into_iter()
        .find(|u| u.symbol() == symbol)
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// Whether a client may write a point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    ReadWrite,
}

/// One named value (or `count` values in a row) at a Modbus address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Point {
    pub name: String,
    pub table: Table,
    /// 0-based protocol address of the first element.
    pub address: u16,
    /// Elements in a row (channels, counters); element `n` starts at `address + n × stride`.
    pub count: u16,
    /// Addresses from one element's start to the next: the width's size for packed runs, more
    /// where the device interleaves points (ADAM-6050 counter control coils: 4).
    pub stride: u16,
    pub width: Width,
    /// Two's complement (i16, i32) rather than unsigned.
    pub signed: bool,
    /// The value in `unit` is `raw × 10^scale_pow10` (EPEver volts ×100: `-2`).
    pub scale_pow10: i8,
    pub unit: Unit,
    pub access: Access,
    /// Smallest raw value the device accepts or reports (tighter than the width allows).
    pub min: Option<i64>,
    /// Largest raw value the device accepts or reports.
    pub max: Option<i64>,
    /// Raw value of every element at power-on (emulators).
    pub initial: i64,
    /// What the value means, and where that came from.
    pub doc: String,
}

impl Point {
    /// A read-only, unscaled point without limits.
    pub fn new(name: &str, table: Table, address: u16, width: Width) -> Point {
        Point {
            name: name.to_string(),
            table,
            address,
            count: 1,
            stride: width.n_addresses(),
            width,
            signed: false,
            scale_pow10: 0,
            unit: Unit::None,
            access: Access::Read,
            min: None,
            max: None,
            initial: 0,
            doc: String::new(),
        }
    }

    /// One past the last address the point takes (up to 65536 and beyond for a bad point).
    pub fn end(&self) -> u32 {
        self.address as u32 + self.count.saturating_sub(1) as u32 * self.stride as u32 + self.width.n_addresses() as u32
    }

    /// Address of element `index`, if the point has it (the element's first register).
    pub fn element_address(&self, index: u16) -> Option<u16> {
        if index >= self.count {
            return None;
        }
        u16::try_from(self.address as u32 + index as u32 * self.stride as u32).ok()
    }

    /// Every address the point takes, with the element index and the word within the element.
    fn addresses(&self) -> impl Iterator<Item = (u32, u16, u16)> + '_ {
        (0..self.count).flat_map(move |i| {
            let first = self.address as u32 + i as u32 * self.stride as u32;
            (0..self.width.n_addresses()).map(move |w| (first + w as u32, i, w))
        })
    }

    /// The raw values an element can take: the width's range narrowed by `min` and `max`.
    pub fn raw_range(&self) -> (i64, i64) {
        let (lo, hi) = match (self.width, self.signed) {
            (Width::Bit, _) => (0, 1),
            (Width::Word, false) => (0, u16::MAX as i64),
            (Width::Word, true) => (i16::MIN as i64, i16::MAX as i64),
            (Width::DoubleWord(_), false) => (0, u32::MAX as i64),
            (Width::DoubleWord(_), true) => (i32::MIN as i64, i32::MAX as i64),
        };
        (self.min.map_or(lo, |m| m.max(lo)), self.max.map_or(hi, |m| m.min(hi)))
    }

    /// "u16", "i32", "bit": for messages.
    pub fn type_name(&self) -> &'static str {
        self.width.describe(self.signed)
    }

    /// The raw value as a fixed-point number with `10^target_pow10` units per step
    /// (millivolts from volts ×100: `target_pow10 = -3`), rounded half away from zero when the
    /// target is coarser. `None` if it does not fit an `i64`.
    pub fn raw_to_fixed(&self, raw: i64, target_pow10: i8) -> Option<i64> {
        rescale(raw, self.scale_pow10 as i32 - target_pow10 as i32)
    }

    /// The raw value for a fixed-point number with `10^value_pow10` units per step, rounded half
    /// away from zero when the point is coarser. `None` if it does not fit an `i64`.
    pub fn fixed_to_raw(&self, value: i64, value_pow10: i8) -> Option<i64> {
        rescale(value, value_pow10 as i32 - self.scale_pow10 as i32)
    }
}

/// `value × 10^exp`, rounding half away from zero when `exp < 0`.
fn rescale(value: i64, exp: i32) -> Option<i64> {
    if exp >= 0 {
        let factor = 10i128.checked_pow(exp.unsigned_abs())?;
        i64::try_from((value as i128).checked_mul(factor)?).ok()
    } else {
        let Some(divisor) = 10i128.checked_pow(exp.unsigned_abs()) else { return Some(0) };
        let v = value as i128;
        let q = v / divisor;
        let r = v % divisor;
        let q = if 2 * r.abs() >= divisor { q + v.signum() } else { q };
        i64::try_from(q).ok()
    }
}

/// A structural problem in a register map, naming the point (by index in the list given).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    #[error("point name {name:?} is not lowercase a-z, 0-9 and _")]
    BadName { point: usize, name: String },
    #[error("duplicate point name {name:?}")]
    DuplicateName { point: usize, name: String },
    #[error("point {name:?}: a {type_name} value cannot live in the {table} table")]
    WidthInTable { point: usize, name: String, type_name: &'static str, table: Table },
    #[error("point {name:?}: count {count} must be at least 1")]
    ZeroCount { point: usize, name: String, count: u16 },
    #[error("point {name:?}: ends at address {end}, past 65535")]
    PastEnd { point: usize, name: String, end: u32 },
    #[error("point {name:?}: the {table} table is read-only")]
    WritableReadOnlyTable { point: usize, name: String, table: Table },
    #[error("point {name:?}: min {min} and max {max} leave no {type_name} value")]
    EmptyRange { point: usize, name: String, min: i64, max: i64, type_name: &'static str },
    #[error("point {name:?}: stride {stride} is less than the {width} addresses an element takes")]
    Stride { point: usize, name: String, stride: u16, width: u16 },
    #[error("point {name:?}: initial value {initial} out of range {min}..={max}")]
    Initial { point: usize, name: String, initial: i64, min: i64, max: i64 },
    #[error("point {name:?}: scale 10^{scale_pow10} is outside 10^-9..=10^9")]
    Scale { point: usize, name: String, scale_pow10: i8 },
    #[error("point {name:?} overlaps point {other:?} at {table} address {address}")]
    Overlap { point: usize, name: String, other: String, table: Table, address: u16 },
}

impl MapError {
    /// Index of the offending point in the list given to [`RegisterMap::new`].
    pub fn point(&self) -> usize {
        match self {
            MapError::BadName { point, .. }
            | MapError::DuplicateName { point, .. }
            | MapError::WidthInTable { point, .. }
            | MapError::ZeroCount { point, .. }
            | MapError::PastEnd { point, .. }
            | MapError::WritableReadOnlyTable { point, .. }
            | MapError::EmptyRange { point, .. }
            | MapError::Scale { point, .. }
            | MapError::Stride { point, .. }
            | MapError::Initial { point, .. }
            | MapError::Overlap { point, .. } => *point,
        }
    }
}

/// A checked list of points: see the module docs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterMap {
    model: String,
    points: Vec<Point>,
    /// Every mapped address → (point index, element index, word within the element).
    by_address: BTreeMap<(Table, u16), (usize, u16, u16)>,
}

/// One read request covering a run of addresses in one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReadBlock {
    pub table: Table,
    pub start: u16,
    pub count: u16,
}

impl RegisterMap {
    /// Checks the points; every problem found is reported.
    pub fn new(model: &str, points: Vec<Point>) -> Result<RegisterMap, Vec<MapError>> {
        let mut errors = Vec::new();
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, p) in points.iter().enumerate() {
            let name = p.name.clone();
            if p.name.is_empty() || !p.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
                errors.push(MapError::BadName { point: i, name: name.clone() });
            }
            if names.insert(&p.name, i).is_some() {
                errors.push(MapError::DuplicateName { point: i, name: name.clone() });
            }
            if (p.width == Width::Bit) != p.table.holds_bits() {
                errors.push(MapError::WidthInTable {
                    point: i,
                    name: name.clone(),
                    type_name: p.type_name(),
                    table: p.table,
                });
            }
            if p.count == 0 {
                errors.push(MapError::ZeroCount { point: i, name: name.clone(), count: p.count });
            }
            if p.end() > 65536 {
                errors.push(MapError::PastEnd { point: i, name: name.clone(), end: p.end() - 1 });
            }
            if p.access == Access::ReadWrite && !p.table.is_writable() {
                errors.push(MapError::WritableReadOnlyTable { point: i, name: name.clone(), table: p.table });
            }
            let (lo, hi) = p.raw_range();
            if lo > hi {
                errors.push(MapError::EmptyRange {
                    point: i,
                    name: name.clone(),
                    min: p.min.unwrap_or(lo),
                    max: p.max.unwrap_or(hi),
                    type_name: p.type_name(),
                });
            }
            if !(-9..=9).contains(&p.scale_pow10) {
                errors.push(MapError::Scale { point: i, name, scale_pow10: p.scale_pow10 });
            }
            if p.stride < p.width.n_addresses() {
                errors.push(MapError::Stride {
                    point: i,
                    name: p.name.clone(),
                    stride: p.stride,
                    width: p.width.n_addresses(),
                });
            } else if lo <= hi && !(lo..=hi).contains(&p.initial) {
                errors.push(MapError::Initial { point: i, name: p.name.clone(), initial: p.initial, min: lo, max: hi });
            }
        }
        let mut by_address: BTreeMap<(Table, u16), (usize, u16, u16)> = BTreeMap::new();
        for (i, p) in points.iter().enumerate() {
            if p.end() > 65536 || p.stride < p.width.n_addresses() {
                continue;
            }
            let mut overlapped = Vec::new();
            for (a, index, word) in p.addresses() {
                if let Some(&(j, _, _)) = by_address.get(&(p.table, a as u16)) {
                    if !overlapped.contains(&j) {
                        overlapped.push(j);
                        errors.push(MapError::Overlap {
                            point: i,
                            name: p.name.clone(),
                            other: points[j].name.clone(),
                            table: p.table,
                            address: a as u16,
                        });
                    }
                } else {
                    by_address.insert((p.table, a as u16), (i, index, word));
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(RegisterMap { model: model.to_string(), points, by_address })
    }

    /// The device model the map describes ("Advantech ADAM-6050").
    pub fn model(&self) -> &str {
        &self.model
    }
    pub fn points(&self) -> &[Point] {
        &self.points
    }
    pub fn point(&self, name: &str) -> Option<&Point> {
        self.points.iter().find(|p| p.name == name)
    }

    /// The point holding `address` of `table`, with the element index and the word within the
    /// element (0, or 1 for the second register of a 32-bit value).
    pub fn point_at(&self, table: Table, address: u16) -> Option<(&Point, u16, u16)> {
        let &(i, index, word) = self.by_address.get(&(table, address))?;
        Some((&self.points[i], index, word))
    }

    /// Every mapped address of `table`, ascending.
    pub fn addresses(&self, table: Table) -> impl Iterator<Item = u16> + '_ {
        self.by_address.range((table, 0)..=(table, u16::MAX)).map(|(&(_, a), _)| a)
    }

    /// Read requests that cover every point: [`RegisterMap::read_plan_for`] all of them.
    pub fn read_plan(&self) -> Vec<ReadBlock> {
        self.read_plan_for(|_| true)
    }

    /// Read requests that cover the points `wanted` picks, merging runs of adjacent addresses
    /// and never asking for an address no point holds (a strict device answers that with an
    /// exception), at most [`Table::max_read`] items each.
    pub fn read_plan_for(&self, wanted: impl Fn(&Point) -> bool) -> Vec<ReadBlock> {
        let mut blocks: Vec<ReadBlock> = Vec::new();
        for (&(table, address), &(i, _, _)) in &self.by_address {
            if !wanted(&self.points[i]) {
                continue;
            }
            match blocks.last_mut() {
                Some(b)
                    if b.table == table
                        && b.start as u32 + b.count as u32 == address as u32
                        && b.count < table.max_read() =>
                {
                    b.count += 1
                }
                _ => blocks.push(ReadBlock { table, start: address, count: 1 }),
            }
        }
        blocks
    }
}
