//! The emulators against pymodbus, an independent Modbus implementation
//! (`tests/interop/modbus_client.py`), over TCP and over RTU on the pty links.
//!
//! The interpreter comes from `RACETIME_INTEROP_PYTHON` (scripts/test sets it to a virtualenv
//! with `tests/interop/requirements.txt`). Without it the test fails under `CI` and otherwise
//! says how to run it and passes.

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::tests::{any_port, spawn, wait_until};
use super::*;

const INTEROP_PYTHON: &str = "RACETIME_INTEROP_PYTHON";
/// Failure guard for the whole script; it finishes in a few seconds.
const SCRIPT_GUARD: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymodbus_reads_and_writes_the_emulators() {
    let Some(python) = std::env::var_os(INTEROP_PYTHON) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "{INTEROP_PYTHON} is not set: under CI the Modbus interop check must run (scripts/test sets it)"
        );
        eprintln!(
            "notice: skipping the pymodbus interop check; to run it: python3 -m venv /tmp/venv-mb && \
             /tmp/venv-mb/bin/pip install -r tests/interop/requirements.txt && \
             {INTEROP_PYTHON}=/tmp/venv-mb/bin/python cargo test -p firmware-sim pymodbus"
        );
        return;
    };
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir().unwrap();
    let rtu = |name: &str| ModbusEndpoint::Rtu { link: dir.path().join(name), baud: 115_200 };

    let di_tcp = spawn("gun-tcp", DeviceKind::DigitalInput, "adam-6050.toml", any_port()).await;
    let di_rtu = spawn("gun-rtu", DeviceKind::DigitalInput, "adam-6050.toml", rtu("gun")).await;
    let battery_tcp = spawn("battery-tcp", DeviceKind::ChargeController, "epever-tracer.toml", any_port()).await;
    let battery_rtu = spawn("battery-rtu", DeviceKind::ChargeController, "epever-tracer.toml", rtu("battery")).await;
    let clock_tcp = spawn("clock-tcp", DeviceKind::ClockDisplay, "race-clock.toml", any_port()).await;
    let clock_rtu = spawn("clock-rtu", DeviceKind::ClockDisplay, "race-clock.toml", rtu("clock")).await;
    for battery in [&battery_tcp, &battery_rtu] {
        battery.set_battery(12_840, 76, -1_250);
    }

    let tcp = |h: &DeviceHandle| h.local_addr().unwrap().to_string();
    let tty = |h: &DeviceHandle| h.tty_path().unwrap().display().to_string();
    let devices = [
        ("digital_input", "tcp", tcp(&di_tcp)),
        ("digital_input", "rtu", tty(&di_rtu)),
        ("charge_controller", "tcp", tcp(&battery_tcp)),
        ("charge_controller", "rtu", tty(&battery_rtu)),
        ("clock_display", "tcp", tcp(&clock_tcp)),
        ("clock_display", "rtu", tty(&clock_rtu)),
    ];
    let mut command = Command::new(&python);
    command.arg(repo.join("tests/interop/modbus_client.py")).arg("--maps").arg(repo.join("hardware/modbus"));
    for (kind, transport, address) in &devices {
        command.arg("--device").arg(kind).arg(transport).arg(address);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python:?} ({INTEROP_PYTHON}): {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, mut lines) = tokio::sync::mpsc::channel::<String>(16);
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    let exit = tokio::task::spawn_blocking(move || child.wait());

    let conversation = async {
        // The script asks for the pulses when it has seen the inputs open and counters at zero.
        while let Some(line) = lines.recv().await {
            let di = match line.as_str() {
                "PULSE digital_input/tcp" => &di_tcp,
                "PULSE digital_input/rtu" => &di_rtu,
                other => panic!("unexpected line from the script: {other:?}"),
            };
            di.pulse(2, Duration::from_secs(600));
            di.pulse(5, Duration::from_millis(1));
            wait_until(di, "channel 5 to reopen", |h| !h.digital_inputs().unwrap().channels[5]).await;
            stdin.write_all(b"PULSED\n").unwrap();
            stdin.flush().unwrap();
        }
        exit.await.unwrap().unwrap()
    };
    let status = tokio::time::timeout(SCRIPT_GUARD, conversation).await.expect("the pymodbus script did not finish");
    assert!(status.success(), "tests/interop/modbus_client.py failed: {status}");

    for clock in [&clock_tcp, &clock_rtu] {
        let frame = clock.clock_display_frame().unwrap();
        assert_eq!(frame.elapsed, timing_core::Elapsed::from_millis(3_723_456));
        assert_eq!((frame.mode, frame.brightness_percent), (reader_protocol::modbus::DisplayMode::Running, 80));
        assert_eq!(clock.stats().n_exceptions, 1, "the 1000 ms write");
    }
    for di in [&di_tcp, &di_rtu] {
        assert_eq!(di.stats().n_exceptions, 2, "{:?}", di.stats());
    }
    for handle in [di_tcp, di_rtu, battery_tcp, battery_rtu, clock_tcp, clock_rtu] {
        handle.shutdown().await;
    }
}
