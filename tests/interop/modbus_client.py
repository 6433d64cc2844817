#!/usr/bin/env python3
"""Reads and writes racetime's Modbus emulators with pymodbus, an independent implementation.

Run by firmware-sim's test `pymodbus_reads_and_writes_the_emulators` (src/modbus/interop.rs),
which starts the emulators and passes their endpoints:

    modbus_client.py --maps hardware/modbus \
        --device digital_input tcp 127.0.0.1:40123 \
        --device charge_controller rtu /tmp/x/battery \
        --device clock_display tcp 127.0.0.1:40125

It interprets the register map files itself (tomllib, pymodbus's own word-order and type
conversion), so a mistake shared by racetime's map decoding and its emulators still shows here.

Per device kind:
- digital_input: all inputs open and counters 0; prints "PULSE <label>" and waits for "PULSED"
  on stdin (the test closes channel 2 for a long time and pulses channel 5 briefly, then
  waits for 5 to reopen); then channel 2 closed, 5 open, both counters 1; reading past the
  map and writing a counter are refused with exception 2.
- charge_controller: the battery state the test set (12.84 V, 76 %, −1.25 A net, no
  charging current), scaled per the map; a read in a gap of the map is refused with exception 2.
- clock_display: writes 1:02:03.456 (mode running, brightness 80) through the map and reads it
  back; a millisecond value of 1000 is refused with exception 3.

Exits 0 when every check passed; prints what failed and exits 1 otherwise.
"""

import argparse
import select
import sys
import tomllib
from pathlib import Path

from pymodbus.client import ModbusSerialClient, ModbusTcpClient

UNIT = 1
EXPECTED_BATTERY = {"battery_voltage": 12.84, "battery_soc": 76, "battery_current": -1.25, "charging_current": 0.0}
CLOCK_SECONDS, CLOCK_MS, CLOCK_MODE, CLOCK_BRIGHTNESS = 3723, 456, 1, 80
HANDSHAKE_TIMEOUT_S = 30
MAP_FILES = {
    "digital_input": "adam-6050.toml",
    "charge_controller": "epever-tracer.toml",
    "clock_display": "race-clock.toml",
}


def check(condition, message):
    if not condition:
        raise AssertionError(message)


class Map:
    """A register map file, read the way its README describes."""

    def __init__(self, path):
        data = tomllib.loads(Path(path).read_text())
        self.points = {p["name"]: p for p in data["points"]}

    def point(self, name):
        return self.points[name]


def read_point(client, point, index=0):
    """The scaled value of one element of a point."""
    table, kind = point["table"], point["type"]
    words = 2 if kind in ("u32", "i32") else 1
    stride = point.get("stride", words)
    address = point["address"] + index * stride
    if table == "discrete_input":
        rr = client.read_discrete_inputs(address, count=1, device_id=UNIT)
        check(not rr.isError(), f"{point['name']}: {rr}")
        return rr.bits[0]
    if table == "coil":
        rr = client.read_coils(address, count=1, device_id=UNIT)
        check(not rr.isError(), f"{point['name']}: {rr}")
        return rr.bits[0]
    read = client.read_input_registers if table == "input_register" else client.read_holding_registers
    rr = read(address, count=words, device_id=UNIT)
    check(not rr.isError(), f"{point['name']}: {rr}")
    data_type = {
        "u16": client.DATATYPE.UINT16,
        "i16": client.DATATYPE.INT16,
        "u32": client.DATATYPE.UINT32,
        "i32": client.DATATYPE.INT32,
    }[kind]
    order = "little" if point.get("word_order") == "low_first" else "big"
    raw = client.convert_from_registers(rr.registers, data_type=data_type, word_order=order)
    scale = point.get("scale", 1)
    return raw * scale if scale != 1 else raw


def check_exception(rr, code, what):
    check(rr.isError() and getattr(rr, "exception_code", None) == code, f"{what}: expected exception {code}, got {rr}")


def wait_for_line(expected):
    ready, _, _ = select.select([sys.stdin], [], [], HANDSHAKE_TIMEOUT_S)
    check(ready, f"no {expected!r} on stdin within {HANDSHAKE_TIMEOUT_S} s")
    line = sys.stdin.readline().strip()
    check(line == expected, f"expected {expected!r} on stdin, got {line!r}")


def digital_input(client, m, label):
    di, counter = m.point("di"), m.point("di_counter")
    rr = client.read_discrete_inputs(di["address"], count=di["count"], device_id=UNIT)
    check(not rr.isError(), f"read DI: {rr}")
    check(rr.bits[: di["count"]] == [False] * di["count"], f"inputs before the pulse: {rr.bits}")
    counters = [read_point(client, counter, i) for i in range(counter["count"])]
    check(counters == [0] * 12, f"counters before the pulse: {counters}")

    print(f"PULSE {label}", flush=True)
    wait_for_line("PULSED")

    rr = client.read_discrete_inputs(di["address"], count=di["count"], device_id=UNIT)
    check(not rr.isError(), f"read DI: {rr}")
    expected = [i == 2 for i in range(12)]
    check(rr.bits[:12] == expected, f"inputs after the pulses: {rr.bits[:12]}, expected only 2 closed")
    counters = [read_point(client, counter, i) for i in range(counter["count"])]
    check(counters == [1 if i in (2, 5) else 0 for i in range(12)], f"counters after the pulses: {counters}")
    # All twelve counters in one read, as the notes' frame 3 does: 24 registers, low word first.
    rr = client.read_holding_registers(counter["address"], count=24, device_id=UNIT)
    check(not rr.isError() and rr.registers[4:6] == [1, 0], f"counter block: {rr}")

    check_exception(client.read_discrete_inputs(0, count=13, device_id=UNIT), 2, "reading DI 0-12")
    check_exception(client.write_register(0, 9, device_id=UNIT), 2, "writing a counter")
    rr = client.write_coil(m.point("do")["address"], True, device_id=UNIT)
    check(not rr.isError(), f"writing DO0: {rr}")
    check(read_point(client, m.point("do_word")) == 1, "do_word mirrors DO0")


def charge_controller(client, m, label):
    for name, expected in EXPECTED_BATTERY.items():
        value = read_point(client, m.point(name))
        check(abs(value - expected) < 1e-9, f"{label} {name}: {value}, expected {expected}")
    check(read_point(client, m.point("load_on")) is True, f"{label}: load is on")
    check_exception(client.read_input_registers(0x3108, count=1, device_id=UNIT), 2, f"{label}: gap at 0x3108")


def clock_display(client, m, label):
    seconds, fraction = m.point("elapsed_seconds"), m.point("elapsed_fraction")
    mode, brightness = m.point("mode"), m.point("brightness")
    order = "little" if seconds["word_order"] == "low_first" else "big"
    words = client.convert_to_registers(CLOCK_SECONDS, data_type=client.DATATYPE.UINT32, word_order=order)
    # One write per point, as a simple client does (racetime's edge merges them).
    for address, values in [
        (seconds["address"], words),
        (fraction["address"], [round(CLOCK_MS * 0.001 / fraction["scale"])]),
        (mode["address"], [CLOCK_MODE]),
        (brightness["address"], [CLOCK_BRIGHTNESS]),
    ]:
        rr = client.write_registers(address, values, device_id=UNIT)
        check(not rr.isError(), f"{label}: writing {values} at {address}: {rr}")
    check(read_point(client, seconds) == CLOCK_SECONDS, f"{label}: seconds read back")
    check(abs(read_point(client, fraction) - 0.456) < 1e-9, f"{label}: fraction read back")
    check_exception(client.write_register(fraction["address"], 1000, device_id=UNIT), 3, f"{label}: 1000 ms")


def connect(transport, address):
    if transport == "tcp":
        host, port = address.rsplit(":", 1)
        client = ModbusTcpClient(host, port=int(port), timeout=3, retries=0)
    else:
        client = ModbusSerialClient(address, baudrate=115200, bytesize=8, parity="N", stopbits=1, timeout=3, retries=0)
    check(client.connect(), f"cannot connect to {transport} {address}")
    return client


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", required=True, help="folder of the register map files")
    parser.add_argument("--device", nargs=3, action="append", metavar=("KIND", "TRANSPORT", "ADDRESS"), default=[])
    args = parser.parse_args()
    checks = {"digital_input": digital_input, "charge_controller": charge_controller, "clock_display": clock_display}
    try:
        for kind, transport, address in args.device:
            m = Map(Path(args.maps) / MAP_FILES[kind])
            label = f"{kind}/{transport}"
            client = connect(transport, address)
            try:
                checks[kind](client, m, label)
            finally:
                client.close()
            print(f"ok {label}", file=sys.stderr, flush=True)
    except AssertionError as e:
        print(f"modbus interop check failed: {e}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
