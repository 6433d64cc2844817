use std::path::PathBuf;

use reader_protocol::modbus::{Access, Table, Unit, Width, WordOrder};

use super::*;
use crate::{parse_edge, parse_event};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn shipped(name: &str) -> RegisterMap {
    let path = repo().join("hardware/modbus").join(name);
    parse_register_map(name, &std::fs::read_to_string(path).unwrap()).unwrap_or_else(|e| panic!("{e}"))
}

#[track_caller]
fn check_errors(source: &str, expect: &[&str]) {
    let errors = parse_register_map("m.toml", source).unwrap_err();
    let got: Vec<String> = errors.0.iter().map(|e| e.to_string()).collect();
    assert_eq!(got, expect);
}

const HEADER: &str = "[device]\nmodel = \"m\"\nsource = \"test\"\n";

#[test]
fn every_shipped_map_parses() {
    let mut n = 0;
    for entry in std::fs::read_dir(repo().join("hardware/modbus")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let name = path.display().to_string();
            parse_register_map(&name, &std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 3, "adam-6050, epever-tracer and race-clock");
}

#[test]
fn every_edge_device_fits_its_map() {
    let mut n = 0;
    for event in ["demo", "paris-2024"] {
        let dir = repo().join("config").join(event);
        let ev = parse_event("event.toml", &std::fs::read_to_string(dir.join("event.toml")).unwrap()).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !(name.starts_with("edge-") && name.ends_with(".toml")) {
                continue;
            }
            let edge = parse_edge(&name, &std::fs::read_to_string(&path).unwrap(), &ev).unwrap();
            for device in &edge.devices {
                let map_path = repo().join(&device.register_map);
                let map_file = device.register_map.display().to_string();
                let map = parse_register_map(&map_file, &std::fs::read_to_string(&map_path).unwrap())
                    .unwrap_or_else(|e| panic!("{e}"));
                check_device_map(device, &map_file, &map).unwrap_or_else(|e| panic!("{}/{name}: {e}", event));
                n += 1;
            }
        }
    }
    assert!(n >= 10, "{n} devices");
}

#[test]
fn adam_6050_layout_follows_the_notes() {
    let map = shipped("adam-6050.toml");
    assert_eq!(map.model(), "Advantech ADAM-6050");
    let di = map.point("di").unwrap();
    assert_eq!((di.table, di.address, di.count, di.width), (Table::DiscreteInput, 0, 12, Width::Bit));
    let counter = map.point("di_counter").unwrap();
    assert_eq!(
        (counter.table, counter.address, counter.count, counter.width),
        (Table::HoldingRegister, 0, 12, Width::DoubleWord(WordOrder::LowFirst))
    );
    assert_eq!(map.point_at(Table::Coil, 33 + 4 * 11).unwrap().0.name, "di_counter_clear");
    assert_eq!(map.point("do").unwrap().access, Access::ReadWrite);
    assert_eq!(map.point("module_name").unwrap().initial, 0x6050);
    assert_eq!(map.point_at(Table::HoldingRegister, 300).unwrap().0.name, "di_word");
}

#[test]
fn tracer_scales_and_units() {
    let map = shipped("epever-tracer.toml");
    let v = map.point("battery_voltage").unwrap();
    assert_eq!((v.table, v.address, v.scale_pow10, v.unit), (Table::InputRegister, 0x3104, -2, Unit::Volt));
    let i = map.point("battery_current").unwrap();
    assert_eq!((i.address, i.signed, i.width), (0x331B, true, Width::DoubleWord(WordOrder::LowFirst)));
    assert_eq!(map.point("battery_soc").unwrap().max, Some(100));
    assert_eq!(map.point("load_on").unwrap().table, Table::Coil);
}

#[test]
fn race_clock_layout() {
    let map = shipped("race-clock.toml");
    let s = map.point("elapsed_seconds").unwrap();
    assert_eq!((s.address, s.width), (0, Width::DoubleWord(WordOrder::HighFirst)));
    let f = map.point("elapsed_fraction").unwrap();
    assert_eq!((f.address, f.scale_pow10, f.unit, f.max), (2, -3, Unit::Second, Some(999)));
}

#[test]
fn errors_point_at_the_point_to_fix() {
    check_errors(
        &format!(
            "{HEADER}\n[[points]]\nname = \"a\"\ntable = \"coil\"\naddress = 0\ntype = \"bit\"\ndoc = \"\"\ncolour = 1\n"
        ),
        &[
            "m.toml:11:1: unknown field `colour`, expected one of `name`, `table`, `address`, `count`, `stride`, `type`, `word_order`, `scale`, `unit`, `access`, `min`, `max`, `initial`, `doc`",
        ],
    );
    check_errors(
        &format!(
            "{HEADER}\n[[points]]\nname = \"a\"\ntable = \"holding_register\"\naddress = 70000\ntype = \"u16\"\ndoc = \"\"\n"
        ),
        &["m.toml:8:11: invalid value: integer `70000`, expected u16"],
    );
    let two = format!(
        "{HEADER}\n[[points]]\nname = \"a\"\ntable = \"holding_register\"\naddress = 0\ntype = \"u32\"\nscale = 0.3\ndoc = \"\"\n\n[[points]]\nname = \"b\"\ntable = \"input_register\"\naddress = 0\ntype = \"u16\"\nword_order = \"low_first\"\nunit = \"mV\"\ndoc = \"\"\n"
    );
    check_errors(
        &two,
        &[
            "m.toml:5:1: point \"a\": a 32-bit value needs word_order = \"low_first\" or \"high_first\" (devices disagree)",
            "m.toml:5:1: point \"a\": scale 0.3 is not a power of ten (0.001, 0.01, 0.1, 1, 10 …)",
            "m.toml:13:1: point \"b\": word_order applies to u32 and i32 only",
            "m.toml:13:1: point \"b\": unknown unit \"mV\" (none, V, A, W, kWh, %, degC or s)",
        ],
    );
    let overlap = format!(
        "{HEADER}\n[[points]]\nname = \"a\"\ntable = \"holding_register\"\naddress = 0\ntype = \"u32\"\nword_order = \"high_first\"\ndoc = \"\"\n\n[[points]]\nname = \"b\"\ntable = \"holding_register\"\naddress = 1\ntype = \"u16\"\naccess = \"read_write\"\nmax = 70000\ndoc = \"\"\n"
    );
    check_errors(&overlap, &["m.toml:13:1: point \"b\" overlaps point \"a\" at holding register address 1"]);
    check_errors(HEADER, &["m.toml:1:1: missing field `points`"]);
}

#[test]
fn scales_are_exact_powers_of_ten() {
    assert_eq!(power_of_ten(Number::Float(0.01)), Some(-2));
    assert_eq!(power_of_ten(Number::Float(0.001)), Some(-3));
    assert_eq!(power_of_ten(Number::Integer(1)), Some(0));
    assert_eq!(power_of_ten(Number::Integer(1000)), Some(3));
    assert_eq!(power_of_ten(Number::Float(0.02)), None);
    assert_eq!(power_of_ten(Number::Integer(0)), None);
    assert_eq!(power_of_ten(Number::Float(-0.1)), None);
    assert_eq!(power_of_ten(Number::Float(1e-12)), None);
}

#[test]
fn a_device_needs_a_map_that_fits_its_kind() {
    let adam = shipped("adam-6050.toml");
    let tracer = shipped("epever-tracer.toml");
    let mut device = DeviceConfig {
        id: "gun".into(),
        kind: DeviceKind::DigitalInput,
        address: Some("127.0.0.1:502".into()),
        serial: None,
        unit: 1,
        register_map: "hardware/modbus/adam-6050.toml".into(),
        poll: timing_core::Elapsed::from_millis(10),
        start_guns: vec![crate::edge::StartGun { channel: 12, waves: vec![] }],
    };
    let errors = check_device_map(&device, "adam-6050.toml", &adam).unwrap_err();
    assert_eq!(
        errors.to_string(),
        "adam-6050.toml: device \"gun\": start gun channel 12 is not in the map (12 digital inputs)"
    );
    device.start_guns[0].channel = 11;
    check_device_map(&device, "adam-6050.toml", &adam).unwrap();
    let errors = check_device_map(&device, "epever-tracer.toml", &tracer).unwrap_err();
    assert_eq!(
        errors.to_string(),
        "epever-tracer.toml: device \"gun\" (DigitalInput): the register map has no point \"di\"\nepever-tracer.toml: device \"gun\": start gun channel 11 is not in the map (0 digital inputs)"
    );
    device.kind = DeviceKind::ClockDisplay;
    device.start_guns.clear();
    assert!(check_device_map(&device, "adam-6050.toml", &adam).is_err());
}
