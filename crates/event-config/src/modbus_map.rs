//! Modbus register map files (`hardware/modbus/<model>.toml`) into
//! [`reader_protocol::modbus::RegisterMap`], and the check that a device of an edge file can use
//! the map it names.
//!
//! The format (see `hardware/modbus/README.md` for the full description):
//!
//! ```toml
//! [device]
//! model = "Advantech ADAM-6050"
//! source = "where the addresses come from"
//!
//! [[points]]
//! name = "di_counter"          # lowercase a-z, 0-9, _
//! table = "holding_register"   # coil | discrete_input | input_register | holding_register
//! address = 0                  # 0-based protocol address (Advantech 40001 is 0); hex allowed
//! count = 12                   # elements in a row (default 1)
//! stride = 2                   # addresses between elements (default: the type's size)
//! type = "u32"                 # bit | u16 | i16 | u32 | i32
//! word_order = "low_first"     # low_first | high_first: required for u32/i32, refused otherwise
//! scale = 0.01                 # value = raw × scale, a power of ten (default 1)
//! unit = "V"                   # none | V | A | W | kWh | % | degC | s (default none)
//! access = "read"              # read | read_write (default read)
//! min = 0                      # raw limits the device keeps to (optional)
//! max = 100
//! initial = 0                  # raw value at power-on, for emulators (default 0)
//! doc = "what it is, and its source if not the file's"
//! ```

use serde::Deserialize;
use toml::Spanned;

use reader_protocol::modbus::{
    Access, Battery, ClockDisplayFrame, DigitalInputs, Image, Point, RegisterMap, Table, Unit, Width, WordOrder,
};

use crate::edge::{DeviceConfig, DeviceKind};
use crate::error::{ConfigError, ConfigErrors};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    device: DeviceSection,
    points: Vec<Spanned<PointSection>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceSection {
    model: String,
    /// Where the addresses come from; required so every map says it.
    #[allow(dead_code)]
    source: String,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TableName {
    Coil,
    DiscreteInput,
    InputRegister,
    HoldingRegister,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TypeName {
    Bit,
    U16,
    I16,
    U32,
    I32,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WordOrderName {
    LowFirst,
    HighFirst,
}

#[derive(Clone, Copy, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
enum AccessName {
    #[default]
    Read,
    ReadWrite,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(untagged)]
enum Number {
    Integer(i64),
    Float(f64),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PointSection {
    name: String,
    table: TableName,
    address: u16,
    #[serde(default = "default_count")]
    count: u16,
    stride: Option<u16>,
    #[serde(rename = "type")]
    type_name: TypeName,
    word_order: Option<WordOrderName>,
    scale: Option<Number>,
    unit: Option<String>,
    #[serde(default)]
    access: AccessName,
    min: Option<i64>,
    max: Option<i64>,
    #[serde(default)]
    initial: i64,
    doc: String,
}

fn default_count() -> u16 {
    1
}

/// Parses and checks a register map file.
pub fn parse_register_map(file: &str, source: &str) -> Result<RegisterMap, ConfigErrors> {
    let raw: File = toml::from_str(source).map_err(|e| match e.span() {
        Some(span) => ConfigErrors::from(ConfigError::at(file, source, span, e.message().trim())),
        None => ConfigErrors::from(ConfigError::whole_file(file, e.message().trim())),
    })?;
    let mut errors = Vec::new();
    let mut points = Vec::new();
    for spanned in &raw.points {
        let span = spanned.span();
        let p = spanned.get_ref();
        let mut err = |m: String| errors.push(ConfigError::at(file, source, span.clone(), m));
        let table = match p.table {
            TableName::Coil => Table::Coil,
            TableName::DiscreteInput => Table::DiscreteInput,
            TableName::InputRegister => Table::InputRegister,
            TableName::HoldingRegister => Table::HoldingRegister,
        };
        let order = p.word_order.map(|o| match o {
            WordOrderName::LowFirst => WordOrder::LowFirst,
            WordOrderName::HighFirst => WordOrder::HighFirst,
        });
        let (width, signed) = match (p.type_name, order) {
            (TypeName::U32 | TypeName::I32, None) => {
                err(format!(
                    "point {:?}: a 32-bit value needs word_order = \"low_first\" or \"high_first\" (devices disagree)",
                    p.name
                ));
                (Width::DoubleWord(WordOrder::HighFirst), false)
            }
            (TypeName::U32, Some(o)) => (Width::DoubleWord(o), false),
            (TypeName::I32, Some(o)) => (Width::DoubleWord(o), true),
            (t, o) => {
                if o.is_some() {
                    err(format!("point {:?}: word_order applies to u32 and i32 only", p.name));
                }
                match t {
                    TypeName::Bit => (Width::Bit, false),
                    TypeName::I16 => (Width::Word, true),
                    _ => (Width::Word, false),
                }
            }
        };
        let scale_pow10 = match p.scale.map(power_of_ten).unwrap_or(Some(0)) {
            Some(k) => k,
            None => {
                let shown = match p.scale {
                    Some(Number::Integer(i)) => i.to_string(),
                    Some(Number::Float(f)) => f.to_string(),
                    None => String::new(),
                };
                err(format!("point {:?}: scale {shown} is not a power of ten (0.001, 0.01, 0.1, 1, 10 …)", p.name));
                0
            }
        };
        let unit = match p.unit.as_deref().map(|u| (u, Unit::from_symbol(u))) {
            None => Unit::None,
            Some((_, Some(u))) => u,
            Some((u, None)) => {
                err(format!("point {:?}: unknown unit {u:?} (none, V, A, W, kWh, %, degC or s)", p.name));
                Unit::None
            }
        };
        points.push(Point {
            name: p.name.clone(),
            table,
            address: p.address,
            count: p.count,
            stride: p.stride.unwrap_or(width.n_addresses()),
            width,
            signed,
            scale_pow10,
            unit,
            access: match p.access {
                AccessName::Read => Access::Read,
                AccessName::ReadWrite => Access::ReadWrite,
            },
            min: p.min,
            max: p.max,
            initial: p.initial,
            doc: p.doc.clone(),
        });
    }
    if raw.points.is_empty() {
        errors.push(ConfigError::whole_file(file, "a register map needs at least one [[points]] entry"));
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    RegisterMap::new(&raw.device.model, points).map_err(|map_errors| {
        ConfigErrors(
            map_errors
                .iter()
                .map(|e| ConfigError::at(file, source, raw.points[e.point()].span(), e.to_string()))
                .collect(),
        )
    })
}

/// `10^k` for a scale that is exactly a power of ten with `|k| ≤ 9`.
fn power_of_ten(scale: Number) -> Option<i8> {
    let value = match scale {
        Number::Integer(i) => i as f64,
        Number::Float(f) => f,
    };
    if !(value.is_finite() && value > 0.0) {
        return None;
    }
    let k = value.log10().round();
    let exact = 10f64.powi(k as i32);
    ((value - exact).abs() <= exact * 1e-9 && (-9.0..=9.0).contains(&k)).then_some(k as i8)
}

/// Checks that a device of an edge file can use `map` (parsed from `map_file`): the map has
/// the points its kind needs, with the right units and types, and every start-gun channel exists.
pub fn check_device_map(device: &DeviceConfig, map_file: &str, map: &RegisterMap) -> Result<(), ConfigErrors> {
    let image = Image::power_on(map);
    let fits = match device.kind {
        DeviceKind::DigitalInput => DigitalInputs::decode(map, &image).map(drop),
        DeviceKind::ChargeController => Battery::decode(map, &image).map(drop),
        DeviceKind::ClockDisplay => ClockDisplayFrame::decode(map, &image).map(drop),
    };
    let mut errors = Vec::new();
    if let Err(e) = fits {
        errors.push(ConfigError::whole_file(map_file, format!("device {:?} ({:?}): {e}", device.id, device.kind)));
    }
    let n_channels = map.point(DigitalInputs::CHANNELS).map_or(0, |p| p.count);
    for gun in &device.start_guns {
        if gun.channel >= n_channels {
            errors.push(ConfigError::whole_file(
                map_file,
                format!(
                    "device {:?}: start gun channel {} is not in the map ({n_channels} digital inputs)",
                    device.id, gun.channel
                ),
            ));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(ConfigErrors(errors)) }
}

#[cfg(test)]
mod tests;
