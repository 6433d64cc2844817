//! The contents of a device's tables, address by address.
//!
//! The edge fills an [`Image`] with the replies to a map's [`ReadBlock`]s and decodes values out
//! of it; an emulator keeps one with every mapped address ([`Image::power_on`]) and answers
//! requests from it with the checks a strict device makes ([`Image::serve_read_bits`] and
//! friends return the Modbus [`Exception`] the device would send).

use std::collections::BTreeMap;

use super::map::{Access, Point, ReadBlock, RegisterMap, Table, Width, WordOrder};
use super::{Exception, ValueError};

/// Most coils one write request may carry (Modbus application protocol 1.1b3, 6.11).
pub const MAX_WRITE_BITS: u16 = 1968;
/// Most registers one write request may carry (6.12).
pub const MAX_WRITE_WORDS: u16 = 123;

/// Bits and registers by table and address; absent means "not read" (edge) or "not mapped"
/// (emulator).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Image {
    bits: BTreeMap<(Table, u16), bool>,
    words: BTreeMap<(Table, u16), u16>,
}

impl Image {
    /// Every address of every point at its initial value: a device just powered on.
    pub fn power_on(map: &RegisterMap) -> Image {
        let mut image = Image::default();
        for p in map.points() {
            for index in 0..p.count {
                image.set_value(p, index, p.initial).expect("RegisterMap::new checked the initial values");
            }
        }
        image
    }

    pub fn bit(&self, table: Table, address: u16) -> Option<bool> {
        self.bits.get(&(table, address)).copied()
    }
    pub fn word(&self, table: Table, address: u16) -> Option<u16> {
        self.words.get(&(table, address)).copied()
    }

    /// Stores the reply to a bit read. Replies come padded to whole bytes, so extra bits are
    /// dropped; a reply with fewer bits than asked stores nothing.
    pub fn store_bits(&mut self, block: ReadBlock, reply: &[bool]) -> Result<(), ValueError> {
        if !block.table.holds_bits() || reply.len() < block.count as usize {
            return Err(ValueError::ShortRead { block, got: reply.len() });
        }
        for (i, &b) in reply.iter().take(block.count as usize).enumerate() {
            self.bits.insert((block.table, block.start.wrapping_add(i as u16)), b);
        }
        Ok(())
    }

    /// Stores the reply to a register read; a reply with fewer registers than asked stores nothing.
    pub fn store_words(&mut self, block: ReadBlock, reply: &[u16]) -> Result<(), ValueError> {
        if block.table.holds_bits() || reply.len() < block.count as usize {
            return Err(ValueError::ShortRead { block, got: reply.len() });
        }
        for (i, &w) in reply.iter().take(block.count as usize).enumerate() {
            self.words.insert((block.table, block.start.wrapping_add(i as u16)), w);
        }
        Ok(())
    }

    /// The raw value of element `index` of `point` (bits as 0/1; signed widths sign-extended).
    pub fn value(&self, point: &Point, index: u16) -> Result<i64, ValueError> {
        let address = element(point, index)?;
        let not_read = |address: u16| ValueError::NotRead { name: point.name.clone(), table: point.table, address };
        let raw = match point.width {
            Width::Bit => self.bit(point.table, address).ok_or_else(|| not_read(address))? as i64,
            Width::Word => {
                let w = self.word(point.table, address).ok_or_else(|| not_read(address))?;
                if point.signed { w as i16 as i64 } else { w as i64 }
            }
            Width::DoubleWord(order) => {
                let second = address.checked_add(1).ok_or_else(|| not_read(address))?;
                let a = self.word(point.table, address).ok_or_else(|| not_read(address))?;
                let b = self.word(point.table, second).ok_or_else(|| not_read(second))?;
                let (hi, lo) = match order {
                    WordOrder::HighFirst => (a, b),
                    WordOrder::LowFirst => (b, a),
                };
                let v = (hi as u32) << 16 | lo as u32;
                if point.signed { v as i32 as i64 } else { v as i64 }
            }
        };
        let (min, max) = point.raw_range();
        if raw < min || raw > max {
            return Err(ValueError::OutOfRange { name: point.name.clone(), value: raw, min, max });
        }
        Ok(raw)
    }

    /// Sets element `index` of `point` to `raw`, which must be within the point's range.
    pub fn set_value(&mut self, point: &Point, index: u16, raw: i64) -> Result<(), ValueError> {
        let address = element(point, index)?;
        let (min, max) = point.raw_range();
        if raw < min || raw > max {
            return Err(ValueError::OutOfRange { name: point.name.clone(), value: raw, min, max });
        }
        match point.width {
            Width::Bit => {
                self.bits.insert((point.table, address), raw != 0);
            }
            Width::Word => {
                self.words.insert((point.table, address), raw as u16);
            }
            Width::DoubleWord(order) => {
                let v = raw as u32;
                let (hi, lo) = ((v >> 16) as u16, v as u16);
                let (a, b) = match order {
                    WordOrder::HighFirst => (hi, lo),
                    WordOrder::LowFirst => (lo, hi),
                };
                // `element` checked that the whole element fits below 65536.
                self.words.insert((point.table, address), a);
                self.words.insert((point.table, address + 1), b);
            }
        }
        Ok(())
    }

    /// Answers a read of coils or discrete inputs: every address must be mapped.
    pub fn serve_read_bits(&self, table: Table, start: u16, count: u16) -> Result<Vec<bool>, Exception> {
        if !table.holds_bits() {
            return Err(Exception::IllegalFunction);
        }
        check_quantity(count, table.max_read())?;
        addresses(start, count)?.map(|a| self.bit(table, a).ok_or(Exception::IllegalDataAddress)).collect()
    }

    /// Answers a read of input or holding registers: every address must be mapped.
    pub fn serve_read_words(&self, table: Table, start: u16, count: u16) -> Result<Vec<u16>, Exception> {
        if table.holds_bits() {
            return Err(Exception::IllegalFunction);
        }
        check_quantity(count, table.max_read())?;
        addresses(start, count)?.map(|a| self.word(table, a).ok_or(Exception::IllegalDataAddress)).collect()
    }

    /// Answers a write of coils: every address must belong to a writable point, and the new
    /// values must be within the points' ranges. All or nothing.
    pub fn serve_write_bits(&mut self, map: &RegisterMap, start: u16, values: &[bool]) -> Result<(), Exception> {
        let count = u16::try_from(values.len()).map_err(|_| Exception::IllegalDataValue)?;
        check_quantity(count, MAX_WRITE_BITS)?;
        let mut next = self.clone();
        for (a, &v) in addresses(start, count)?.zip(values) {
            let (point, _, _) = map.point_at(Table::Coil, a).ok_or(Exception::IllegalDataAddress)?;
            if point.access != Access::ReadWrite {
                return Err(Exception::IllegalDataAddress);
            }
            next.bits.insert((Table::Coil, a), v);
        }
        next.check_points(map, Table::Coil, start, count)?;
        *self = next;
        Ok(())
    }

    /// Answers a write of holding registers, as [`Image::serve_write_bits`]. Half of a 32-bit
    /// value may be written alone; the combined value must still be in range.
    pub fn serve_write_words(&mut self, map: &RegisterMap, start: u16, values: &[u16]) -> Result<(), Exception> {
        let count = u16::try_from(values.len()).map_err(|_| Exception::IllegalDataValue)?;
        check_quantity(count, MAX_WRITE_WORDS)?;
        let mut next = self.clone();
        for (a, &v) in addresses(start, count)?.zip(values) {
            let (point, _, _) = map.point_at(Table::HoldingRegister, a).ok_or(Exception::IllegalDataAddress)?;
            if point.access != Access::ReadWrite {
                return Err(Exception::IllegalDataAddress);
            }
            next.words.insert((Table::HoldingRegister, a), v);
        }
        next.check_points(map, Table::HoldingRegister, start, count)?;
        *self = next;
        Ok(())
    }

    /// Every element touched by a write must hold a value within its point's range.
    fn check_points(&self, map: &RegisterMap, table: Table, start: u16, count: u16) -> Result<(), Exception> {
        for a in addresses(start, count)? {
            if let Some((point, index, _)) = map.point_at(table, a) {
                self.value(point, index).map_err(|_| Exception::IllegalDataValue)?;
            }
        }
        Ok(())
    }
}

fn element(point: &Point, index: u16) -> Result<u16, ValueError> {
    point
        .element_address(index)
        .filter(|&a| a as u32 + point.width.n_addresses() as u32 <= 65536)
        .ok_or_else(|| ValueError::NoSuchElement { name: point.name.clone(), index, count: point.count })
}

fn check_quantity(count: u16, max: u16) -> Result<(), Exception> {
    if count == 0 || count > max { Err(Exception::IllegalDataValue) } else { Ok(()) }
}

fn addresses(start: u16, count: u16) -> Result<impl Iterator<Item = u16>, Exception> {
    if start as u32 + count as u32 > 65536 {
        return Err(Exception::IllegalDataAddress);
    }
    Ok((0..count).map(move |i| start + i))
}
