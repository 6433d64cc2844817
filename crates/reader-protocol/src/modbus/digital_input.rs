//! A digital-input module's channels (start-gun contacts) and their pulse counters.
//!
//! Modbus is polled and carries no timestamp, so a short contact closure can fall between two
//! polls; the counter (which the module advances on every closing edge) is what tells the edge
//! that a gun fired even when it never saw the contact closed.

use super::map::{RegisterMap, Table, Unit, Width};
use super::{Image, ValueError};

/// Channel states and counters of a digital-input module.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DigitalInputs {
    /// Contact state per channel: `true` is closed (input on).
    pub channels: Vec<bool>,
    /// Closing edges counted per channel (empty if the map has no counters).
    pub counters: Vec<u32>,
}

impl DigitalInputs {
    /// The point with one bit per channel (discrete inputs or coils).
    pub const CHANNELS: &'static str = "di";
    /// The optional point with one counter per channel (unsigned, 16 or 32 bits, unit `none`).
    pub const COUNTERS: &'static str = "di_counter";
    /// Points a digital-input map must have.
    pub const REQUIRED: &'static [&'static str] = &[Self::CHANNELS];

    /// Reads channels and counters out of `image`.
    pub fn decode(map: &RegisterMap, image: &Image) -> Result<DigitalInputs, ValueError> {
        let di = channels_point(map)?;
        let channels = (0..di.count).map(|i| image.value(di, i).map(|v| v != 0)).collect::<Result<_, _>>()?;
        let counters = match counters_point(map)? {
            Some(p) => (0..p.count).map(|i| image.value(p, i).map(|v| v as u32)).collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok(DigitalInputs { channels, counters })
    }

    /// Writes channels and counters into `image` (emulators); lengths must match the map.
    pub fn encode(&self, map: &RegisterMap, image: &mut Image) -> Result<(), ValueError> {
        let di = channels_point(map)?;
        check_len(&di.name, self.channels.len(), di.count)?;
        for (i, &on) in self.channels.iter().enumerate() {
            image.set_value(di, i as u16, on as i64)?;
        }
        if let Some(p) = counters_point(map)? {
            check_len(&p.name, self.counters.len(), p.count)?;
            for (i, &n) in self.counters.iter().enumerate() {
                image.set_value(p, i as u16, n as i64)?;
            }
        }
        Ok(())
    }
}

fn channels_point(map: &RegisterMap) -> Result<&super::Point, ValueError> {
    let p = super::require(map, DigitalInputs::CHANNELS, Unit::None)?;
    if p.width != Width::Bit || !matches!(p.table, Table::DiscreteInput | Table::Coil) {
        return Err(ValueError::WrongType { name: p.name.clone(), found: p.type_name(), expected: "bit" });
    }
    Ok(p)
}

fn counters_point(map: &RegisterMap) -> Result<Option<&super::Point>, ValueError> {
    if map.point(DigitalInputs::COUNTERS).is_none() {
        return Ok(None);
    }
    let p = super::require(map, DigitalInputs::COUNTERS, Unit::None)?;
    if p.width == Width::Bit || p.signed {
        return Err(ValueError::WrongType { name: p.name.clone(), found: p.type_name(), expected: "u16 or u32" });
    }
    Ok(Some(p))
}

fn check_len(name: &str, len: usize, count: u16) -> Result<(), ValueError> {
    if len != count as usize {
        return Err(ValueError::WrongLength { name: name.to_string(), len, count });
    }
    Ok(())
}
