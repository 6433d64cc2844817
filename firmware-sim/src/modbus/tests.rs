use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_modbus::prelude::*;

use reader_protocol::modbus::{Image, ReadBlock, RegisterMap, Table};
use timing_core::time::Clock;
use timing_core::{Elapsed, Timestamp};

use super::line::resample;
use super::*;

/// Failure guard for anything awaited: far above what any step takes.
const GUARD: Duration = Duration::from_secs(10);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub(super) fn shipped_map(name: &str) -> RegisterMap {
    let path = repo().join("hardware/modbus").join(name);
    event_config::parse_register_map(name, &std::fs::read_to_string(path).unwrap()).unwrap_or_else(|e| panic!("{e}"))
}

#[derive(Debug)]
struct FixedClock(Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

/// 2024-08-10 19:00:00 UTC, the Paris marathon gun.
fn paris_clock() -> SharedClock {
    Arc::new(FixedClock(Timestamp::from_secs(1_723_316_400)))
}

pub(super) async fn spawn(id: &str, kind: DeviceKind, map: &str, endpoint: ModbusEndpoint) -> DeviceHandle {
    let spec = DeviceSpec { id: id.into(), kind, unit: 1, map: shipped_map(map), endpoint };
    spawn_device(spec, paris_clock()).await.unwrap()
}

pub(super) fn any_port() -> ModbusEndpoint {
    ModbusEndpoint::Tcp("127.0.0.1:0".parse().unwrap())
}

/// Waits (under the guard) until `ready` holds, waking on every change of the device.
pub(super) async fn wait_until(handle: &DeviceHandle, what: &str, ready: impl Fn(&DeviceHandle) -> bool) {
    let mut changes = handle.changes();
    let waited = tokio::time::timeout(GUARD, async {
        while !ready(handle) {
            changes.changed().await.unwrap();
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting for {what}");
}

async fn guarded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, f).await.unwrap_or_else(|_| panic!("timed out: {what}"))
}

fn rtu_client(path: &Path, baud: u32) -> tokio_serial::SerialStream {
    tokio_serial::SerialStream::open(&tokio_serial::new(path.to_string_lossy(), baud)).unwrap()
}

/// Reads every block of the map's plan into an image, as the edge does.
async fn read_all(ctx: &mut tokio_modbus::client::Context, map: &RegisterMap) -> Image {
    let mut image = Image::default();
    for block in map.read_plan() {
        let ReadBlock { table, start, count } = block;
        match table {
            Table::Coil => image.store_bits(block, &ctx.read_coils(start, count).await.unwrap().unwrap()),
            Table::DiscreteInput => {
                image.store_bits(block, &ctx.read_discrete_inputs(start, count).await.unwrap().unwrap())
            }
            Table::InputRegister => {
                image.store_words(block, &ctx.read_input_registers(start, count).await.unwrap().unwrap())
            }
            Table::HoldingRegister => {
                image.store_words(block, &ctx.read_holding_registers(start, count).await.unwrap().unwrap())
            }
        }
        .unwrap();
    }
    image
}

#[tokio::test]
async fn tcp_start_gun_pulses_close_contacts_and_count() {
    let handle = spawn("start-gun", DeviceKind::DigitalInput, "adam-6050.toml", any_port()).await;
    let map = shipped_map("adam-6050.toml");
    let mut ctx = guarded("connect", tcp::connect_slave(handle.local_addr().unwrap(), Slave(1))).await.unwrap();
    let before = DigitalInputs::decode(&map, &read_all(&mut ctx, &map).await).unwrap();
    assert_eq!(before, DigitalInputs { channels: vec![false; 12], counters: vec![0; 12] });

    // A long pulse is seen closed; a short one only by its counter once it has reopened.
    handle.pulse(2, Duration::from_secs(600));
    handle.pulse(5, Duration::from_millis(1));
    wait_until(&handle, "channel 5 to reopen", |h| !h.digital_inputs().unwrap().channels[5]).await;
    let image = read_all(&mut ctx, &map).await;
    let after = DigitalInputs::decode(&map, &image).unwrap();
    let mut channels = vec![false; 12];
    channels[2] = true;
    let mut counters = vec![0; 12];
    (counters[2], counters[5]) = (1, 1);
    assert_eq!(after, DigitalInputs { channels, counters });
    assert_eq!(ctx.read_holding_registers(300, 1).await.unwrap(), Ok(vec![1 << 2]), "di_word mirrors the inputs");
    assert_eq!(ctx.read_holding_registers(210, 1).await.unwrap(), Ok(vec![0x6050]), "module name");

    // The research notes' frame: read DI0–11 with function 02 (checked as bytes in the interop script).
    // Clearing a counter: write 1 to its clear coil (33 + 4n); the coil reads back 0.
    assert_eq!(ctx.write_single_coil(33 + 4 * 2, true).await.unwrap(), Ok(()));
    assert_eq!(ctx.read_holding_registers(4, 2).await.unwrap(), Ok(vec![0, 0]));
    assert_eq!(ctx.read_coils(33 + 4 * 2, 1).await.unwrap(), Ok(vec![false]));
    // A stopped counter does not count.
    assert_eq!(ctx.write_single_coil(32 + 4 * 7, false).await.unwrap(), Ok(()));
    handle.pulse(7, Duration::from_millis(1));
    assert_eq!(handle.digital_inputs().unwrap().counters[7], 0);
    // Outputs are writable and mirrored; inputs and counters are not writable.
    assert_eq!(ctx.write_multiple_coils(16, &[true, false, true]).await.unwrap(), Ok(()));
    assert_eq!(ctx.read_holding_registers(302, 1).await.unwrap(), Ok(vec![0b101]));
    assert_eq!(ctx.write_single_register(0, 9).await.unwrap(), Err(ExceptionCode::IllegalDataAddress));
    // Outside the map: the proper exception, and the connection carries on.
    assert_eq!(ctx.read_discrete_inputs(0, 13).await.unwrap(), Err(ExceptionCode::IllegalDataAddress));
    assert_eq!(ctx.read_input_registers(0, 1).await.unwrap(), Err(ExceptionCode::IllegalDataAddress));
    assert_eq!(ctx.read_holding_registers(0, 126).await.unwrap(), Err(ExceptionCode::IllegalDataValue));
    assert_eq!(ctx.call(Request::MaskWriteRegister(0, 0, 0)).await.unwrap(), Err(ExceptionCode::IllegalFunction));
    assert_eq!(ctx.read_discrete_inputs(0, 1).await.unwrap(), Ok(vec![false]));
    // Another unit through a TCP "gateway": exception 0x0B; 255 addresses the device itself.
    ctx.set_slave(Slave(9));
    assert_eq!(ctx.read_discrete_inputs(0, 1).await.unwrap(), Err(ExceptionCode::GatewayTargetDevice));
    ctx.set_slave(Slave(255));
    assert_eq!(ctx.read_discrete_inputs(2, 1).await.unwrap(), Ok(vec![true]));
    let stats = handle.stats();
    assert_eq!(stats.n_exceptions, 6, "{stats:?}");
    assert!(stats.n_requests > 20, "{stats:?}");
    // Unknown channels are ignored, never a panic.
    handle.pulse(12, Duration::from_millis(1));
    handle.set_battery(12_000, 50, 0);
    handle.shutdown().await;
}

#[tokio::test]
async fn rtu_charge_controller_over_a_pty() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("tty/start-battery");
    let endpoint = ModbusEndpoint::Rtu { link: link.clone(), baud: 115_200 };
    let handle = spawn("start-battery", DeviceKind::ChargeController, "epever-tracer.toml", endpoint).await;
    assert_eq!(handle.tty_path().as_deref(), Some(link.as_path()));
    let map = shipped_map("epever-tracer.toml");
    let mut ctx = rtu::attach_slave(rtu_client(&link, 115_200), Slave(1));

    let battery = Battery::decode(&map, &guarded("read", read_all(&mut ctx, &map)).await).unwrap();
    assert_eq!((battery.voltage_mv, battery.current_ma, battery.soc_percent), (13_100, 1_700, 80));
    assert_eq!((battery.pv_voltage_mv, battery.temperature_dc), (Some(18_520), Some(250)));

    handle.set_battery(12_840, 76, -1_250);
    let image = guarded("read", read_all(&mut ctx, &map)).await;
    let battery = Battery::decode(&map, &image).unwrap();
    assert_eq!(
        (battery.voltage_mv, battery.current_ma, battery.soc_percent, battery.charging_current_ma),
        (12_840, -1_250, 76, Some(0))
    );
    // The net current is a signed 32-bit value, low word first: −125 (×0.01 A).
    assert_eq!(ctx.read_input_registers(0x331B, 2).await.unwrap(), Ok(vec![0xFF83, 0xFFFF]));

    // The real-time clock shows the simulation's time: 2024-08-10 19:00:00 UTC.
    assert_eq!(ctx.read_holding_registers(0x9013, 3).await.unwrap(), Ok(vec![0, 10 << 8 | 19, 24 << 8 | 8]));
    // Set it to 2025-01-02 03:04:05 and it shows that (the simulation clock stands still here).
    assert_eq!(ctx.write_multiple_registers(0x9013, &[4 << 8 | 5, 2 << 8 | 3, 25 << 8 | 1]).await.unwrap(), Ok(()));
    assert_eq!(ctx.read_holding_registers(0x9013, 3).await.unwrap(), Ok(vec![4 << 8 | 5, 2 << 8 | 3, 25 << 8 | 1]));

    // Settings are checked; gaps in the map and the input registers are not writable.
    assert_eq!(ctx.write_single_register(0x9000, 2).await.unwrap(), Ok(()));
    assert_eq!(ctx.write_single_register(0x9000, 9).await.unwrap(), Err(ExceptionCode::IllegalDataValue));
    assert_eq!(ctx.read_input_registers(0x3108, 1).await.unwrap(), Err(ExceptionCode::IllegalDataAddress));
    assert_eq!(ctx.write_single_register(0x3104, 1).await.unwrap(), Err(ExceptionCode::IllegalDataAddress));
    assert_eq!(ctx.read_coils(2, 1).await.unwrap(), Ok(vec![true]), "load on");
    drop(ctx);

    // On a bus, a request for another unit gets no answer and a broadcast is carried out silently:
    // send both, then a request for unit 1, and the first bytes back are unit 1's answer.
    let mut port = rtu_client(&link, 115_200);
    let other_unit = [0x07, 0x04, 0x31, 0x1A, 0x00, 0x01];
    let broadcast_type_3 = [0x00, 0x06, 0x90, 0x00, 0x00, 0x03];
    let read_type = [0x01, 0x03, 0x90, 0x00, 0x00, 0x01];
    for frame in [&other_unit[..], &broadcast_type_3, &read_type] {
        port.write_all(&with_crc(frame)).await.unwrap();
    }
    let mut reply = [0u8; 7];
    guarded("reply", port.read_exact(&mut reply)).await.unwrap();
    assert_eq!(reply.to_vec(), with_crc(&[0x01, 0x03, 0x02, 0x00, 0x03]));
    // The research notes' constructed SOC request, byte for byte: 76 %.
    port.write_all(&[0x01, 0x04, 0x31, 0x1A, 0x00, 0x01, 0x1E, 0xF1]).await.unwrap();
    let mut reply = [0u8; 7];
    guarded("reply", port.read_exact(&mut reply)).await.unwrap();
    assert_eq!(reply.to_vec(), with_crc(&[0x01, 0x04, 0x02, 0x00, 76]));
    assert_eq!(handle.stats().n_ignored, 1);

    // Garbage that makes tokio-modbus's frame decoder give up does not end the device.
    let framing_errors = handle.stats().n_framing_errors;
    port.write_all(&[0xFF; 64]).await.unwrap();
    wait_until(&handle, "the decoder to give up", |h| h.stats().n_framing_errors > framing_errors).await;
    let mut ctx = rtu::attach_slave(port, Slave(1));
    assert_eq!(guarded("read", ctx.read_input_registers(0x311A, 1)).await.unwrap(), Ok(vec![76]));

    handle.shutdown().await;
    assert!(!link.exists(), "shutdown removes the link");
}

#[tokio::test]
async fn clock_display_decodes_what_a_client_writes() {
    let handle = spawn("finish-clock", DeviceKind::ClockDisplay, "race-clock.toml", any_port()).await;
    let map = shipped_map("race-clock.toml");
    assert_eq!(handle.clock_display(), None, "nothing written yet");
    let mut ctx = guarded("connect", tcp::connect(handle.local_addr().unwrap())).await.unwrap();
    let frame = ClockDisplayFrame {
        elapsed: Elapsed::from_micros(2 * 3_600_000_000 + 5 * 60_000_000 + 7_654_321),
        mode: reader_protocol::modbus::DisplayMode::Running,
        brightness_percent: 60,
    };
    for block in frame.encode(&map).unwrap() {
        assert_eq!(ctx.write_multiple_registers(block.start, &block.values).await.unwrap(), Ok(()));
    }
    assert_eq!(handle.clock_display(), Some(Elapsed::from_millis(7_507_654)));
    assert_eq!(handle.clock_display_frame().unwrap().brightness_percent, 60);
    // A register at a time, as a simple client would: the seconds' low word.
    assert_eq!(ctx.write_single_register(1, 7_508).await.unwrap(), Ok(()));
    assert_eq!(handle.clock_display(), Some(Elapsed::from_millis(7_508_654)));
    // Values the display does not take are refused whole.
    assert_eq!(ctx.write_multiple_registers(2, &[1000, 1]).await.unwrap(), Err(ExceptionCode::IllegalDataValue));
    assert_eq!(ctx.write_single_register(3, 7).await.unwrap(), Err(ExceptionCode::IllegalDataValue));
    assert_eq!(ctx.write_single_register(5, 0).await.unwrap(), Err(ExceptionCode::IllegalDataAddress));
    assert_eq!(handle.clock_display(), Some(Elapsed::from_millis(7_508_654)));
    assert_eq!(handle.stats().n_exceptions, 3);
    handle.shutdown().await;
}

#[tokio::test]
async fn a_map_that_does_not_fit_the_kind_is_refused() {
    let spec = DeviceSpec {
        id: "gun".into(),
        kind: DeviceKind::DigitalInput,
        unit: 1,
        map: shipped_map("epever-tracer.toml"),
        endpoint: any_port(),
    };
    let error = spawn_device(spec, paris_clock()).await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(
        error.to_string(),
        "device \"gun\": map \"EPEver Tracer A/B/AN\" does not fit a DigitalInput: the register map has no point \"di\""
    );
}

/// A client whose line runs at another speed than the device's: what it sees.
#[tokio::test]
async fn wrong_baud_rate_shows_as_framing_garbage() {
    let dir = tempfile::tempdir().unwrap();
    // Device at 9600, client at 115200: each device bit lasts twelve client bits, so the client
    // receives a burst of NUL bytes (framing errors) that never make a frame.
    let link = dir.path().join("slow-device");
    let endpoint = ModbusEndpoint::Rtu { link: link.clone(), baud: 9600 };
    let slow = spawn("slow", DeviceKind::ChargeController, "epever-tracer.toml", endpoint).await;
    let mut port = rtu_client(&link, 115_200);
    let request = with_crc(&[0x01, 0x04, 0x31, 0x1A, 0x00, 0x01]);
    port.write_all(&request).await.unwrap();
    let mut garbage = vec![0u8; 256];
    let n = guarded("garbled reply", port.read(&mut garbage)).await.unwrap();
    garbage.truncate(n);
    let expected = resample(&with_crc(&[0x01, 0x04, 0x02, 0x00, 80]), 9600, 115_200);
    assert_eq!(garbage, expected[..n]);
    assert!(!is_valid_frame(&garbage), "{garbage:02x?}");
    let mut rest = vec![0u8; expected.len() - n];
    guarded("rest of the garbled reply", port.read_exact(&mut rest)).await.unwrap();
    // tokio-modbus's client drops bytes it cannot frame and waits for more: the read does not
    // fail, it never completes. The garbled reply has arrived (the device counted it), yet
    // nothing frames within a client's response timeout.
    let mut ctx = rtu::attach_slave(port, Slave(1));
    let garbled = slow.stats().n_garbled_replies;
    let read = ctx.read_input_registers(0x311A, 1);
    tokio::pin!(read);
    tokio::select! {
        seen = &mut read => panic!("expected no frame, got {seen:?}"),
        () = wait_until(&slow, "the garbled reply", |h| h.stats().n_garbled_replies > garbled) => {}
    }
    assert!(tokio::time::timeout(Duration::from_millis(300), read).await.is_err(), "a reply framed");
    assert!(slow.stats().n_garbled_replies >= 2);
    slow.shutdown().await;

    // Device at 115200, client at 9600: the reply shrinks to a byte or two of garbage, too short
    // to frame; a client waits for the rest until its own timeout.
    let link = dir.path().join("fast-device");
    let endpoint = ModbusEndpoint::Rtu { link: link.clone(), baud: 115_200 };
    let fast = spawn("fast", DeviceKind::ChargeController, "epever-tracer.toml", endpoint).await;
    let mut port = rtu_client(&link, 9600);
    port.write_all(&request).await.unwrap();
    let mut garbage = vec![0u8; 16];
    let n = guarded("garbled reply", port.read(&mut garbage)).await.unwrap();
    assert_eq!(garbage[..n], resample(&with_crc(&[0x01, 0x04, 0x02, 0x00, 80]), 115_200, 9600)[..n]);
    assert!(n < 5, "{:02x?}", &garbage[..n]);
    fast.shutdown().await;
}

fn crc16(bytes: &[u8]) -> u16 {
    let mut crc = 0xFFFFu16;
    for &b in bytes {
        crc ^= b as u16;
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xA001 } else { crc >> 1 };
        }
    }
    crc
}

fn with_crc(frame: &[u8]) -> Vec<u8> {
    let mut v = frame.to_vec();
    v.extend_from_slice(&crc16(frame).to_le_bytes());
    v
}

fn is_valid_frame(bytes: &[u8]) -> bool {
    bytes.len() >= 4 && with_crc(&bytes[..bytes.len() - 2]) == bytes
}

#[test]
fn crc_matches_the_research_notes_frames() {
    assert_eq!(with_crc(&[0x01, 0x04, 0x31, 0x00, 0x00, 0x10]), [0x01, 0x04, 0x31, 0x00, 0x00, 0x10, 0xFF, 0x3A]);
    assert_eq!(with_crc(&[0x01, 0x03, 0x90, 0x13, 0x00, 0x03]), [0x01, 0x03, 0x90, 0x13, 0x00, 0x03, 0xD9, 0x0E]);
}

#[test]
fn resampling_at_other_speeds_garbles() {
    let frame = with_crc(&[0x01, 0x04, 0x02, 0x00, 0x50]);
    // Twelve times slower than sent: the 70 bits of the frame pass within six received bits,
    // the rest of the byte is idle line.
    assert_eq!(resample(&frame, 115_200, 9600), vec![0xE8]);
    // Twelve times faster: a sent bit is a run of twelve samples, so a low bit reads as a byte
    // of zeros whose stop bit is low too (a framing error, delivered as NUL).
    assert_eq!(resample(&[0x01], 9600, 115_200), vec![0x00, 0x00]);
    assert_eq!(resample(&frame, 9600, 115_200), vec![0x00; 15]);
    // Twice as fast or slow.
    assert_eq!(resample(&frame, 19_200, 9600), vec![0x00, 0x00, 0x95]);
    // Close speeds (2 % apart) still get through, as on a real line.
    assert_eq!(resample(&frame, 9600, 9800), frame);
    assert_eq!(resample(&frame, 9600, 0), Vec::<u8>::new());
}

proptest! {
    #[test]
    fn resampling_at_the_same_speed_changes_nothing(bytes in proptest::collection::vec(any::<u8>(), 0..64), baud in 300u32..4_000_000) {
        prop_assert_eq!(resample(&bytes, baud, baud), bytes);
    }

    #[test]
    fn resampling_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), tx in 1u32..4_000_000, rx in 1u32..4_000_000) {
        let out = resample(&bytes, tx, rx);
        // A receiver cannot see more bytes than start bits fit in the sent time.
        prop_assert!(out.len() as u64 <= (bytes.len() as u64 * 10 * rx as u64).div_ceil(tx as u64) + 1);
    }
}
