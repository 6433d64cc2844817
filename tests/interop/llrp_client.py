#!/usr/bin/env python3
"""Live LLRP interoperability check: sllurp's client against racetime's firmware-sim emulator.

sllurp (PyPI, pinned in requirements.txt) connects to the emulator, runs its whole client flow
(capabilities, reader config, ENABLE_EVENTS_AND_REPORTS, delete access specs and ROSpecs, ADD and
ENABLE_ROSPEC with one report per tag), prints "ready" once it is inventorying, and collects tag
reports until it has seen as many as expected (or times out). It then sends CLOSE_CONNECTION and
exits 0 when it saw exactly the expected EPCs, each once, with TagSeenCount 1, a first-seen UTC
timestamp and antenna 1 or 2, and the close was acknowledged; otherwise it prints what differed
and exits 1.

The firmware-sim test `readers::llrp_interop` runs it with the interpreter named by
RACETIME_INTEROP_PYTHON and injects the detections after "ready":

  python3 -m venv /tmp/venv-emu && /tmp/venv-emu/bin/pip install -r tests/interop/requirements.txt
  RACETIME_INTEROP_PYTHON=/tmp/venv-emu/bin/python cargo test -p firmware-sim llrp_interop

By hand: llrp_client.py --port <port> --expect EPC1,EPC2 (then make the emulator see them).
"""

import argparse
import logging
import os
import sys
import threading
import time
from collections import Counter

from sllurp.llrp import LLRPReaderClient, LLRPReaderConfig, LLRPReaderState


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--expect", required=True, help="comma-separated EPCs (hex)")
    ap.add_argument("--timeout", type=float, default=20.0)
    args = ap.parse_args()
    # Printed only when the check fails (the Rust test shows stderr then).
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(relativeCreated)6d %(threadName)s %(message)s")

    expected = Counter(e.strip().lower() for e in args.expect.split(",") if e.strip())
    seen = Counter()
    problems = []
    lock = threading.Lock()
    done = threading.Event()
    closed = threading.Event()

    config = LLRPReaderConfig(
        {
            "antennas": [1, 2],
            "report_every_n_tags": 1,
            "keepalive_interval": 1000,
            "tag_content_selector": {
                "EnableROSpecID": False,
                "EnableSpecIndex": False,
                "EnableInventoryParameterSpecID": False,
                "EnableAntennaID": True,
                "EnableChannelIndex": False,
                "EnablePeakRSSI": True,
                "EnableFirstSeenTimestamp": True,
                "EnableLastSeenTimestamp": False,
                "EnableTagSeenCount": True,
                "EnableAccessSpecID": False,
            },
        }
    )
    reader = LLRPReaderClient(args.host, args.port, config)

    def on_inventorying(_reader, _state):
        print("ready", flush=True)

    def on_tags(_reader, tags):
        with lock:
            for t in tags:
                epc = t.get("EPC") or t.get("EPC-96")
                epc = epc.decode() if isinstance(epc, (bytes, bytearray)) else str(epc)
                seen[epc.lower()] += 1
                if t.get("TagSeenCount") != 1:
                    problems.append(f"{epc}: TagSeenCount {t.get('TagSeenCount')!r}, expected 1")
                if not t.get("FirstSeenTimestampUTC"):
                    problems.append(f"{epc}: no FirstSeenTimestampUTC")
                if t.get("AntennaID") not in (1, 2):
                    problems.append(f"{epc}: AntennaID {t.get('AntennaID')!r}, expected 1 or 2")
            if sum(seen.values()) >= sum(expected.values()):
                done.set()

    def on_close_response(_reader, lmsg):
        if lmsg.isSuccess():
            closed.set()

    reader.add_state_callback(LLRPReaderState.STATE_INVENTORYING, on_inventorying)
    reader.add_tag_report_callback(on_tags)
    reader.add_message_callback("CLOSE_CONNECTION_RESPONSE", on_close_response)
    reader.connect()
    try:
        if not done.wait(args.timeout):
            problems.append(f"timed out after {args.timeout} s with {sum(seen.values())} tag reports")
        # Anything extra would arrive right behind the last expected report.
        time.sleep(0.2)
    finally:
        # CLOSE_CONNECTION rather than sllurp's disconnect(): its polite stop registers the
        # callback for DELETE_ACCESSSPEC_RESPONSE only after sending the request, so a reader that
        # answers within microseconds (this emulator on loopback) can beat it and the stop never
        # completes. (Its connect-time stop runs on the socket thread and has no such race.)
        reader.disconnect_requested.set()
        reader.llrp.sendMessage({"CLOSE_CONNECTION": {}})
        if not closed.wait(5):
            problems.append("no successful CLOSE_CONNECTION_RESPONSE")
        reader.join(5)
        reader.hard_disconnect()

    with lock:
        if seen != expected:
            problems.append(f"tag reports {dict(seen)}, expected {dict(expected)}")
    if problems:
        for p in problems:
            print(f"MISMATCH: {p}", flush=True)
        return 1
    print(f"ok: {sum(seen.values())} tag reports, EPCs as expected", flush=True)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # sllurp's socket thread is not a daemon: do not let a half-closed session keep us alive.
    os._exit(code)
