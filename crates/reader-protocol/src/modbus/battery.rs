//! A solar charge controller's view of the edge box's battery.

use super::map::{Point, RegisterMap, Unit};
use super::{Image, ValueError, fixed, require, set_fixed};

/// Battery state as a charge controller reports it, in integer units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Battery {
    pub voltage_mv: u32,
    /// Net battery current: positive while charging, negative while the load drains it.
    pub current_ma: i32,
    pub soc_percent: u8,
    /// Battery temperature in tenths of a degree Celsius, if the map has it.
    pub temperature_dc: Option<i16>,
    /// Current the controller pushes into the battery (never negative), if the map has it.
    pub charging_current_ma: Option<u32>,
    /// Solar panel voltage, if the map has it.
    pub pv_voltage_mv: Option<u32>,
    /// The controller's own temperature in tenths of a degree Celsius, if the map has it.
    pub device_temperature_dc: Option<i16>,
}

const MILLI: i8 = -3;
const DECI: i8 = -1;

impl Battery {
    pub const VOLTAGE: &'static str = "battery_voltage";
    pub const CURRENT: &'static str = "battery_current";
    pub const SOC: &'static str = "battery_soc";
    pub const TEMPERATURE: &'static str = "battery_temperature";
    pub const CHARGING_CURRENT: &'static str = "charging_current";
    pub const PV_VOLTAGE: &'static str = "pv_voltage";
    pub const DEVICE_TEMPERATURE: &'static str = "device_temperature";
    /// Points a charge-controller map must have; the others are read when present.
    pub const REQUIRED: &'static [&'static str] = &[Self::VOLTAGE, Self::CURRENT, Self::SOC];

    /// Reads the battery state out of `image`, scaling each point per the map.
    pub fn decode(map: &RegisterMap, image: &Image) -> Result<Battery, ValueError> {
        let optional = |name: &str, unit: Unit, pow10: i8, min: i64, max: i64| -> Result<Option<i64>, ValueError> {
            match map.point(name) {
                Some(_) => fixed(image, require(map, name, unit)?, pow10, min, max).map(Some),
                None => Ok(None),
            }
        };
        let u32_max = u32::MAX as i64;
        let (i16_min, i16_max) = (i16::MIN as i64, i16::MAX as i64);
        Ok(Battery {
            voltage_mv: fixed(image, require(map, Self::VOLTAGE, Unit::Volt)?, MILLI, 0, u32_max)? as u32,
            current_ma: fixed(
                image,
                require(map, Self::CURRENT, Unit::Ampere)?,
                MILLI,
                i32::MIN as i64,
                i32::MAX as i64,
            )? as i32,
            soc_percent: fixed(image, require(map, Self::SOC, Unit::Percent)?, 0, 0, 100)? as u8,
            temperature_dc: optional(Self::TEMPERATURE, Unit::Celsius, DECI, i16_min, i16_max)?.map(|v| v as i16),
            charging_current_ma: optional(Self::CHARGING_CURRENT, Unit::Ampere, MILLI, 0, u32_max)?.map(|v| v as u32),
            pv_voltage_mv: optional(Self::PV_VOLTAGE, Unit::Volt, MILLI, 0, u32_max)?.map(|v| v as u32),
            device_temperature_dc: optional(Self::DEVICE_TEMPERATURE, Unit::Celsius, DECI, i16_min, i16_max)?
                .map(|v| v as i16),
        })
    }

    /// Writes the state into `image` (emulators), rounding to each point's resolution.
    /// Optional fields that are `None`, or that the map lacks, are left alone.
    pub fn encode(&self, map: &RegisterMap, image: &mut Image) -> Result<(), ValueError> {
        set_fixed(image, require(map, Self::VOLTAGE, Unit::Volt)?, self.voltage_mv as i64, MILLI)?;
        set_fixed(image, require(map, Self::CURRENT, Unit::Ampere)?, self.current_ma as i64, MILLI)?;
        set_fixed(image, require(map, Self::SOC, Unit::Percent)?, self.soc_percent as i64, 0)?;
        let optional = [
            (Self::TEMPERATURE, Unit::Celsius, self.temperature_dc.map(i64::from), DECI),
            (Self::CHARGING_CURRENT, Unit::Ampere, self.charging_current_ma.map(i64::from), MILLI),
            (Self::PV_VOLTAGE, Unit::Volt, self.pv_voltage_mv.map(i64::from), MILLI),
            (Self::DEVICE_TEMPERATURE, Unit::Celsius, self.device_temperature_dc.map(i64::from), DECI),
        ];
        for (name, unit, value, pow10) in optional {
            if let (Some(_), Some(value)) = (map.point(name), value) {
                let point: &Point = require(map, name, unit)?;
                set_fixed(image, point, value, pow10)?;
            }
        }
        Ok(())
    }
}
