use proptest::prelude::*;
use timing_core::Elapsed;

use super::*;

fn point(name: &str, table: Table, address: u16, width: Width) -> Point {
    Point::new(name, table, address, width)
}

fn scaled(mut p: Point, scale_pow10: i8, unit: Unit, signed: bool) -> Point {
    p.scale_pow10 = scale_pow10;
    p.unit = unit;
    p.signed = signed;
    p
}

fn rw(mut p: Point, min: Option<i64>, max: Option<i64>) -> Point {
    p.access = Access::ReadWrite;
    p.min = min;
    p.max = max;
    p
}

fn counted(mut p: Point, count: u16) -> Point {
    p.count = count;
    p
}

/// The ADAM-6050 layout of the research notes (section 8a), built in code.
fn adam() -> RegisterMap {
    RegisterMap::new(
        "ADAM-6050",
        vec![
            counted(point("di", Table::DiscreteInput, 0, Width::Bit), 12),
            counted(rw(point("do", Table::Coil, 16, Width::Bit), None, None), 6),
            counted(point("di_counter", Table::HoldingRegister, 0, Width::DoubleWord(WordOrder::LowFirst)), 12),
            point("di_word", Table::HoldingRegister, 300, Width::Word),
        ],
    )
    .unwrap()
}

/// The EPEver Tracer points of the research notes (section 8b).
fn tracer() -> RegisterMap {
    let ir = Table::InputRegister;
    RegisterMap::new(
        "EPEver Tracer",
        vec![
            scaled(point("pv_voltage", ir, 0x3100, Width::Word), -2, Unit::Volt, false),
            scaled(point("pv_current", ir, 0x3101, Width::Word), -2, Unit::Ampere, false),
            scaled(point("pv_power", ir, 0x3102, Width::DoubleWord(WordOrder::LowFirst)), -2, Unit::Watt, false),
            scaled(point("battery_voltage", ir, 0x3104, Width::Word), -2, Unit::Volt, false),
            scaled(point("charging_current", ir, 0x3105, Width::Word), -2, Unit::Ampere, false),
            scaled(point("battery_temperature", ir, 0x3110, Width::Word), -2, Unit::Celsius, true),
            scaled(point("device_temperature", ir, 0x3111, Width::Word), -2, Unit::Celsius, true),
            rw(scaled(point("battery_soc", ir, 0x311A, Width::Word), 0, Unit::Percent, false), Some(0), Some(100)),
            scaled(
                point("battery_current", ir, 0x331B, Width::DoubleWord(WordOrder::LowFirst)),
                -2,
                Unit::Ampere,
                true,
            ),
        ]
        .into_iter()
        .map(|mut p| {
            p.access = Access::Read;
            p
        })
        .collect(),
    )
    .unwrap()
}

/// The race-clock layout shipped in `hardware/modbus/race-clock.toml`.
fn race_clock() -> RegisterMap {
    let hr = Table::HoldingRegister;
    RegisterMap::new(
        "race clock",
        vec![
            rw(
                scaled(
                    point("elapsed_seconds", hr, 0, Width::DoubleWord(WordOrder::HighFirst)),
                    0,
                    Unit::Second,
                    false,
                ),
                None,
                None,
            ),
            rw(scaled(point("elapsed_fraction", hr, 2, Width::Word), -3, Unit::Second, false), Some(0), Some(999)),
            rw(point("mode", hr, 3, Width::Word), Some(0), Some(2)),
            rw(scaled(point("brightness", hr, 4, Width::Word), 0, Unit::Percent, false), Some(0), Some(100)),
        ],
    )
    .unwrap()
}

#[track_caller]
fn check_map_errors(points: Vec<Point>, expect: &[&str]) {
    let errors = RegisterMap::new("m", points).unwrap_err();
    let got: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(got, expect);
}

#[test]
fn map_rejects_what_no_device_can_be() {
    let hr = Table::HoldingRegister;
    check_map_errors(
        vec![point("a", hr, 0, Width::DoubleWord(WordOrder::HighFirst)), point("b", hr, 1, Width::Word)],
        &["point \"b\" overlaps point \"a\" at holding register address 1"],
    );
    check_map_errors(
        vec![point("a", hr, 0, Width::Word), point("a", hr, 1, Width::Word)],
        &["duplicate point name \"a\""],
    );
    check_map_errors(
        vec![point("Bad-Name", Table::Coil, 0, Width::Word)],
        &[
            "point name \"Bad-Name\" is not lowercase a-z, 0-9 and _",
            "point \"Bad-Name\": a u16 value cannot live in the coil table",
        ],
    );
    check_map_errors(
        vec![rw(point("di", Table::DiscreteInput, 0, Width::Bit), None, None)],
        &["point \"di\": the discrete input table is read-only"],
    );
    check_map_errors(
        vec![counted(point("c", hr, 65530, Width::DoubleWord(WordOrder::LowFirst)), 4)],
        &["point \"c\": ends at address 65537, past 65535"],
    );
    check_map_errors(vec![counted(point("z", hr, 0, Width::Word), 0)], &["point \"z\": count 0 must be at least 1"]);
    check_map_errors(
        vec![rw(point("r", hr, 0, Width::Word), Some(10), Some(5))],
        &["point \"r\": min 10 and max 5 leave no u16 value"],
    );
    // A long point hides a later one that starts inside it even past a shorter one in between.
    check_map_errors(
        vec![
            counted(point("long", hr, 0, Width::Word), 10),
            point("mid", hr, 2, Width::Word),
            point("late", hr, 5, Width::Word),
        ],
        &[
            "point \"mid\" overlaps point \"long\" at holding register address 2",
            "point \"late\" overlaps point \"long\" at holding register address 5",
        ],
    );
}

#[test]
fn points_are_found_by_any_of_their_addresses() {
    let map = adam();
    let (p, index, word) = map.point_at(Table::HoldingRegister, 7).unwrap();
    assert_eq!((p.name.as_str(), index, word), ("di_counter", 3, 1));
    assert_eq!(map.point_at(Table::HoldingRegister, 24), None);
    assert_eq!(map.point_at(Table::DiscreteInput, 11).unwrap().1, 11);
    assert_eq!(map.point_at(Table::DiscreteInput, 12), None);
    assert_eq!(map.point_at(Table::Coil, 15), None);
    assert_eq!(map.point_at(Table::InputRegister, 0), None);
}

#[test]
fn read_plan_merges_adjacent_points_and_splits_long_runs() {
    assert_eq!(
        adam().read_plan(),
        vec![
            ReadBlock { table: Table::Coil, start: 16, count: 6 },
            ReadBlock { table: Table::DiscreteInput, start: 0, count: 12 },
            ReadBlock { table: Table::HoldingRegister, start: 0, count: 24 },
            ReadBlock { table: Table::HoldingRegister, start: 300, count: 1 },
        ]
    );
    let blocks = tracer().read_plan();
    assert_eq!(blocks[0], ReadBlock { table: Table::InputRegister, start: 0x3100, count: 6 });
    let long = RegisterMap::new("m", vec![counted(point("w", Table::HoldingRegister, 10, Width::Word), 130)])
        .unwrap()
        .read_plan();
    assert_eq!(long.iter().map(|b| (b.start, b.count)).collect::<Vec<_>>(), vec![(10, 125), (135, 5)]);
}

#[test]
fn serving_answers_the_exceptions_a_strict_device_sends() {
    let map = adam();
    let mut image = Image::power_on(&map);
    assert_eq!(image.serve_read_bits(Table::DiscreteInput, 0, 12), Ok(vec![false; 12]));
    assert_eq!(image.serve_read_bits(Table::DiscreteInput, 0, 13), Err(Exception::IllegalDataAddress));
    assert_eq!(image.serve_read_bits(Table::DiscreteInput, 0, 0), Err(Exception::IllegalDataValue));
    assert_eq!(image.serve_read_words(Table::HoldingRegister, 0, 126), Err(Exception::IllegalDataValue));
    assert_eq!(image.serve_read_words(Table::HoldingRegister, 65535, 2), Err(Exception::IllegalDataAddress));
    assert_eq!(image.serve_read_words(Table::InputRegister, 0, 1), Err(Exception::IllegalDataAddress));
    assert_eq!(image.serve_read_words(Table::Coil, 16, 1), Err(Exception::IllegalFunction));
    assert_eq!(image.serve_write_bits(&map, 16, &[true, false, true]), Ok(()));
    assert_eq!(image.serve_read_bits(Table::Coil, 16, 6), Ok(vec![true, false, true, false, false, false]));
    // Counters are read-only: the whole write is refused and nothing changes.
    assert_eq!(image.serve_write_words(&map, 0, &[7]), Err(Exception::IllegalDataAddress));
    assert_eq!(image.serve_write_bits(&map, 20, &[true, true, true]), Err(Exception::IllegalDataAddress));
    assert_eq!(image.bit(Table::Coil, 20), Some(false));
    assert_eq!(Exception::IllegalDataAddress.code(), 2);
}

#[test]
fn writes_out_of_range_are_refused_whole() {
    let map = race_clock();
    let mut image = Image::power_on(&map);
    assert_eq!(image.serve_write_words(&map, 2, &[999, 1]), Ok(()));
    assert_eq!(image.serve_write_words(&map, 2, &[1000, 2]), Err(Exception::IllegalDataValue));
    assert_eq!(image.serve_write_words(&map, 3, &[3]), Err(Exception::IllegalDataValue));
    assert_eq!(image.serve_read_words(Table::HoldingRegister, 2, 2), Ok(vec![999, 1]));
    // Half of a 32-bit value may be written alone.
    assert_eq!(image.serve_write_words(&map, 1, &[5]), Ok(()));
    assert_eq!(image.value(map.point("elapsed_seconds").unwrap(), 0), Ok(5));
}

#[test]
fn word_order_and_sign() {
    let hr = Table::HoldingRegister;
    let lo = scaled(point("lo", hr, 0, Width::DoubleWord(WordOrder::LowFirst)), 0, Unit::None, false);
    let hi = scaled(point("hi", hr, 2, Width::DoubleWord(WordOrder::HighFirst)), 0, Unit::None, true);
    let s16 = scaled(point("s16", hr, 4, Width::Word), 0, Unit::None, true);
    let mut image = Image::default();
    image.store_words(ReadBlock { table: hr, start: 0, count: 5 }, &[0x5678, 0x1234, 0xFFFF, 0xFFFE, 0x8000]).unwrap();
    assert_eq!(image.value(&lo, 0), Ok(0x1234_5678));
    assert_eq!(image.value(&hi, 0), Ok(-2));
    assert_eq!(image.value(&s16, 0), Ok(-32768));
    let mut again = Image::default();
    again.set_value(&lo, 0, 0x1234_5678).unwrap();
    again.set_value(&hi, 0, -2).unwrap();
    again.set_value(&s16, 0, -32768).unwrap();
    assert_eq!(again, image);
    assert_eq!(
        image.set_value(&s16, 0, 40000),
        Err(ValueError::OutOfRange { name: "s16".into(), value: 40000, min: -32768, max: 32767 })
    );
    assert_eq!(image.value(&lo, 1), Err(ValueError::NoSuchElement { name: "lo".into(), index: 1, count: 1 }));
}

#[test]
fn short_reads_store_nothing_and_padded_bits_are_trimmed() {
    let mut image = Image::default();
    let block = ReadBlock { table: Table::InputRegister, start: 0x3100, count: 6 };
    let err = image.store_words(block, &[1, 2, 3]).unwrap_err();
    assert_eq!(err, ValueError::ShortRead { block, got: 3 });
    assert_eq!(err.to_string(), "short read: asked for 6 input registers at 12544, got 3");
    assert_eq!(image, Image::default());
    let bits = ReadBlock { table: Table::DiscreteInput, start: 0, count: 12 };
    let mut reply = vec![false; 16];
    reply[0] = true;
    image.store_bits(bits, &reply).unwrap();
    assert_eq!((image.bit(Table::DiscreteInput, 0), image.bit(Table::DiscreteInput, 12)), (Some(true), None));
    assert!(image.store_words(bits, &[0; 12]).is_err(), "a register reply for a bit block");
}

#[test]
fn tracer_example_reply_decodes_per_the_map() {
    // The constructed reply of the research notes (8b): read 0x3100, 16 registers.
    let reply: Vec<u16> =
        [0x073C, 0x007D, 0x090B, 0x0000, 0x051E, 0x00AA, 0x08B3, 0x0000, 0, 0, 0, 0, 0x0519, 0x002A, 0x0224, 0x0000]
            .to_vec();
    let map = tracer();
    let mut image = Image::default();
    image.store_words(ReadBlock { table: Table::InputRegister, start: 0x3100, count: 16 }, &reply).unwrap();
    image
        .store_words(ReadBlock { table: Table::InputRegister, start: 0x3110, count: 2 }, &[2550, (-512i16) as u16])
        .unwrap();
    image.store_words(ReadBlock { table: Table::InputRegister, start: 0x311A, count: 1 }, &[87]).unwrap();
    image
        .store_words(ReadBlock { table: Table::InputRegister, start: 0x331B, count: 2 }, &[(-125i32) as u16, 0xFFFF])
        .unwrap();
    let battery = Battery::decode(&map, &image).unwrap();
    assert_eq!(
        battery,
        Battery {
            voltage_mv: 13_100,
            current_ma: -1_250,
            soc_percent: 87,
            temperature_dc: Some(255),
            charging_current_ma: Some(1_700),
            pv_voltage_mv: Some(18_520),
            device_temperature_dc: Some(-51),
        }
    );
    let pv_power = map.point("pv_power").unwrap();
    assert_eq!(pv_power.raw_to_fixed(image.value(pv_power, 0).unwrap(), -3), Some(23_150));
}

#[test]
fn battery_errors_are_typed() {
    let map = tracer();
    let mut image = Image::power_on(&map);
    image.store_words(ReadBlock { table: Table::InputRegister, start: 0x311A, count: 1 }, &[101]).unwrap();
    assert_eq!(
        Battery::decode(&map, &image),
        Err(ValueError::OutOfRange { name: "battery_soc".into(), value: 101, min: 0, max: 100 })
    );
    assert_eq!(
        Battery::decode(&map, &Image::default()),
        Err(ValueError::NotRead { name: "battery_voltage".into(), table: Table::InputRegister, address: 0x3104 })
    );
    assert_eq!(Battery::decode(&adam(), &image), Err(ValueError::MissingPoint { name: "battery_voltage".into() }));
    let wrong_unit = RegisterMap::new(
        "m",
        vec![
            scaled(point("battery_voltage", Table::InputRegister, 0, Width::Word), -3, Unit::Ampere, false),
            scaled(point("battery_current", Table::InputRegister, 1, Width::Word), -3, Unit::Ampere, false),
            scaled(point("battery_soc", Table::InputRegister, 2, Width::Word), 0, Unit::Percent, false),
        ],
    )
    .unwrap();
    assert_eq!(
        Battery::decode(&wrong_unit, &Image::power_on(&wrong_unit)),
        Err(ValueError::WrongUnit { name: "battery_voltage".into(), found: Unit::Ampere, expected: Unit::Volt })
    );
    let b = Battery { voltage_mv: 700_000, ..Battery::default() };
    assert!(
        matches!(b.encode(&map, &mut image), Err(ValueError::OutOfRange { .. })),
        "655.35 V is the most a u16 ×100 holds"
    );
}

#[test]
fn battery_encode_rounds_to_the_map_resolution() {
    let map = tracer();
    let mut image = Image::power_on(&map);
    let b = Battery {
        voltage_mv: 12_845,
        current_ma: -1_254,
        soc_percent: 76,
        temperature_dc: Some(-35),
        charging_current_ma: Some(0),
        pv_voltage_mv: None,
        device_temperature_dc: None,
    };
    b.encode(&map, &mut image).unwrap();
    let back = Battery::decode(&map, &image).unwrap();
    assert_eq!(
        back,
        Battery { voltage_mv: 12_850, current_ma: -1_250, pv_voltage_mv: Some(0), device_temperature_dc: Some(0), ..b }
    );
}

#[test]
fn digital_inputs_decode_channels_and_counters() {
    let map = adam();
    let mut image = Image::power_on(&map);
    let mut di = DigitalInputs { channels: vec![false; 12], counters: vec![0; 12] };
    di.channels[3] = true;
    di.counters[3] = 70_000;
    di.encode(&map, &mut image).unwrap();
    assert_eq!(image.serve_read_words(Table::HoldingRegister, 6, 2), Ok(vec![(70_000u32 & 0xFFFF) as u16, 1]));
    assert_eq!(DigitalInputs::decode(&map, &image), Ok(di.clone()));
    let short = DigitalInputs { channels: vec![true; 4], counters: vec![] };
    assert_eq!(short.encode(&map, &mut image), Err(ValueError::WrongLength { name: "di".into(), len: 4, count: 12 }));
}

#[test]
fn clock_frame_golden() {
    let map = race_clock();
    let frame = ClockDisplayFrame {
        elapsed: Elapsed::from_micros(3_723_456_789),
        mode: DisplayMode::Running,
        brightness_percent: 80,
    };
    let blocks = frame.encode(&map).unwrap();
    assert_eq!(blocks, vec![WriteBlock { start: 0, values: vec![0, 3723, 456, 1, 80] }]);
    let mut image = Image::power_on(&map);
    for b in &blocks {
        image.serve_write_words(&map, b.start, &b.values).unwrap();
    }
    let back = ClockDisplayFrame::decode(&map, &image).unwrap();
    assert_eq!(back, ClockDisplayFrame { elapsed: Elapsed::from_millis(3_723_456), ..frame });
    let negative = ClockDisplayFrame { elapsed: Elapsed::from_millis(-1), ..frame };
    assert!(matches!(negative.encode(&map), Err(ValueError::OutOfRange { .. })));
    let too_long = ClockDisplayFrame { elapsed: Elapsed::from_secs(1 << 32), ..frame };
    assert!(matches!(too_long.encode(&map), Err(ValueError::OutOfRange { .. })));
    image.serve_write_words(&map, 3, &[2]).unwrap();
    assert_eq!(ClockDisplayFrame::decode(&map, &image).unwrap().mode, DisplayMode::Hold);
}

#[test]
fn fixed_point_rescaling_rounds_half_away_from_zero() {
    let p = scaled(point("v", Table::InputRegister, 0, Width::Word), -2, Unit::Volt, true);
    assert_eq!(p.raw_to_fixed(1310, -3), Some(13_100));
    assert_eq!(p.fixed_to_raw(12_845, -3), Some(1285));
    assert_eq!(p.fixed_to_raw(-12_845, -3), Some(-1285));
    assert_eq!(p.fixed_to_raw(12_844, -3), Some(1284));
    assert_eq!(p.raw_to_fixed(1315, 0), Some(13));
    assert_eq!(p.raw_to_fixed(i64::MAX, -9), None);
}

fn any_map() -> impl Strategy<Value = RegisterMap> {
    prop_oneof![Just(adam()), Just(tracer()), Just(race_clock())]
}

proptest! {
    #[test]
    fn decoding_never_panics_on_any_register_contents(
        map in any_map(),
        words in proptest::collection::vec(any::<u16>(), 0..64),
        bits in proptest::collection::vec(any::<bool>(), 0..32),
        skip in 0usize..8,
    ) {
        let mut image = Image::default();
        for (i, block) in map.read_plan().into_iter().enumerate() {
            if i == skip {
                continue;
            }
            if block.table.holds_bits() {
                let _ = image.store_bits(block, &bits);
            } else {
                let reply: Vec<u16> = words.iter().copied().cycle().take(if words.is_empty() { 0 } else { block.count as usize }).collect();
                let _ = image.store_words(block, &reply);
            }
        }
        let _ = DigitalInputs::decode(&map, &image);
        let _ = Battery::decode(&map, &image);
        let _ = ClockDisplayFrame::decode(&map, &image);
    }

    #[test]
    fn serving_never_panics(
        map in any_map(),
        table in prop_oneof![Just(Table::Coil), Just(Table::DiscreteInput), Just(Table::InputRegister), Just(Table::HoldingRegister)],
        start in any::<u16>(),
        count in any::<u16>(),
        words in proptest::collection::vec(any::<u16>(), 0..130),
    ) {
        let mut image = Image::power_on(&map);
        let _ = image.serve_read_bits(table, start, count);
        let _ = image.serve_read_words(table, start, count);
        let bits: Vec<bool> = words.iter().map(|w| w & 1 == 1).collect();
        let _ = image.serve_write_bits(&map, start, &bits);
        let _ = image.serve_write_words(&map, start, &words);
    }

    #[test]
    fn clock_frames_round_trip_at_millisecond_resolution(
        us in 0i64..(u32::MAX as i64 * 1_000_000),
        mode in 0u16..3,
        brightness in 0u8..=100,
    ) {
        let map = race_clock();
        let frame = ClockDisplayFrame { elapsed: Elapsed::from_micros(us), mode: DisplayMode::from_raw(mode).unwrap(), brightness_percent: brightness };
        let mut image = Image::power_on(&map);
        for b in frame.encode(&map).unwrap() {
            prop_assert_eq!(image.serve_write_words(&map, b.start, &b.values), Ok(()));
        }
        let back = ClockDisplayFrame::decode(&map, &image).unwrap();
        prop_assert_eq!(back, ClockDisplayFrame { elapsed: Elapsed::from_micros(us / 1000 * 1000), ..frame });
    }

    #[test]
    fn battery_round_trips_at_map_resolution(
        centivolts in 0u32..=65535,
        centiamps in i32::MIN..=i32::MAX,
        soc in 0u8..=100,
        centidegrees in -32768i32..=32767,
    ) {
        let map = tracer();
        let b = Battery {
            voltage_mv: centivolts * 10,
            current_ma: (centiamps / 10).saturating_mul(10),
            soc_percent: soc,
            temperature_dc: Some((centidegrees / 10) as i16),
            charging_current_ma: Some(centivolts * 10),
            pv_voltage_mv: Some(centivolts * 10),
            device_temperature_dc: Some(-((centidegrees / 10) as i16)),
        };
        let mut image = Image::power_on(&map);
        b.encode(&map, &mut image).unwrap();
        prop_assert_eq!(Battery::decode(&map, &image), Ok(b));
    }

    #[test]
    fn values_round_trip_through_registers(raw in any::<i64>(), signed: bool, high_first: bool, word: bool) {
        let width = if word { Width::Word } else { Width::DoubleWord(if high_first { WordOrder::HighFirst } else { WordOrder::LowFirst }) };
        let p = scaled(point("p", Table::HoldingRegister, 65534, width), 0, Unit::None, signed);
        let (lo, hi) = p.raw_range();
        let raw = lo + raw.rem_euclid(hi - lo + 1);
        let mut image = Image::default();
        image.set_value(&p, 0, raw).unwrap();
        prop_assert_eq!(image.value(&p, 0), Ok(raw));
    }
}

#[test]
fn strided_points_interleave_and_start_at_their_initial_values() {
    let mut start = counted(rw(point("start", Table::Coil, 32, Width::Bit), None, None), 12);
    start.stride = 4;
    start.initial = 1;
    let mut clear = counted(rw(point("clear", Table::Coil, 33, Width::Bit), None, None), 12);
    clear.stride = 4;
    let map = RegisterMap::new("m", vec![start.clone(), clear]).unwrap();
    assert_eq!(map.point_at(Table::Coil, 37).map(|(p, i, _)| (p.name.as_str(), i)), Some(("clear", 1)));
    assert_eq!(map.point_at(Table::Coil, 34), None);
    assert_eq!(
        map.read_plan()[..2],
        [ReadBlock { table: Table::Coil, start: 32, count: 2 }, ReadBlock { table: Table::Coil, start: 36, count: 2 }]
    );
    assert_eq!(map.read_plan_for(|p| p.name == "start").len(), 12);
    let image = Image::power_on(&map);
    assert_eq!(image.serve_read_bits(Table::Coil, 32, 2), Ok(vec![true, false]));
    assert_eq!(image.serve_read_bits(Table::Coil, 32, 3), Err(Exception::IllegalDataAddress));
    let mut bad = start.clone();
    bad.name = "bad".into();
    bad.address = 40;
    bad.stride = 0;
    check_map_errors(vec![bad], &["point \"bad\": stride 0 is less than the 1 addresses an element takes"]);
    let mut overlapping = start;
    overlapping.name = "again".into();
    overlapping.address = 36;
    overlapping.initial = 2;
    check_map_errors(
        vec![map.point("start").unwrap().clone(), overlapping],
        &[
            "point \"again\": initial value 2 out of range 0..=1",
            "point \"again\" overlaps point \"start\" at coil address 36",
        ],
    );
}
