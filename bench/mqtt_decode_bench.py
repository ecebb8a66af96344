"""What paho's read of a received MQTT v5 PUBLISH costs, with paho's ``Properties`` and with
``common.mqtt._LeanProperties``: every message a fleet worker ingests goes through it on paho's
network thread, beside the processing thread (one GIL).

    python -m bench.mqtt_decode_bench [--messages 20000] [--repeat 6]

No network: the packets (encoded by paho itself, QoS 1, a topic and payload of a busy center's event,
no properties) are read from memory by ``_Client.loop_read``, each handed to an ``on_message`` that
only counts; CPU time of this thread (``time.thread_time``). Prints a table and writes
bench/results/mqtt_decode_bench.json (µs per message: min and median of the repeats, interleaved).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt import _packet as paho_packet
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion, _ConnectionState
from paho.mqtt.properties import Properties

from common.mqtt import _Client, _LeanProperties

RESULTS = Path(__file__).resolve().parent / "results"
TOPIC = "motcua/v1/bench-c001/kiosk-00021/event/lookup"
PAYLOAD = b'{"x":"' + b"1" * 320 + b'"}'  # an event's size (bench.fleet_bench: 330 bytes)


def packets(count: int) -> bytes:
    """``count`` PUBLISH packets as paho writes them (QoS 1, mids 1, 2, ...)."""
    encoder = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    encoder._sock = object()  # type: ignore[assignment]  # queued, never sent
    out = []
    for index in range(count):
        encoder._out_packet.clear()
        encoder._send_publish(1 + index % 65535, TOPIC.encode(), PAYLOAD, qos=1, retain=False, dup=False)
        out.append(bytes(encoder._out_packet[0]["packet"]))
    encoder._sock = None
    return b"".join(out)


class _MemorySocket:
    """What paho reads from: the packets, then nothing (``BlockingIOError``, as a drained socket)."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def recv(self, size: int) -> bytes:
        if self._pos >= len(self._data):
            raise BlockingIOError
        piece = self._data[self._pos : self._pos + size]
        self._pos += len(piece)
        return piece

    def pending(self) -> int:
        return 0


def read_cost(stream: bytes, count: int) -> float:
    """µs of this thread's CPU per message for ``_Client.loop_read`` to read ``count`` of ``stream``."""
    client = _Client(CallbackAPIVersion.VERSION2, client_id="bench", protocol=MQTTProtocolVersion.MQTTv5,
                     manual_ack=True)
    client._sock = _MemorySocket(stream)  # type: ignore[assignment]
    client._state = _ConnectionState.MQTT_CS_CONNECTED
    seen = [0]
    client.on_message = lambda c, userdata, message: seen.__setitem__(0, seen[0] + 1)
    started = time.thread_time()
    while seen[0] < count:
        client.loop_read(200)
    took = time.thread_time() - started
    client._sock = None
    return took / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=6)
    args = parser.parse_args()
    stream = packets(args.messages)
    kinds: dict[str, type[Properties]] = {"paho Properties": Properties, "_LeanProperties": _LeanProperties}
    costs: dict[str, list[float]] = {name: [] for name in kinds}
    try:
        for _ in range(args.repeat):
            for name, kind in kinds.items():
                paho_packet.Properties = kind  # type: ignore[misc]
                costs[name].append(read_cost(stream, args.messages))
    finally:
        paho_packet.Properties = _LeanProperties  # type: ignore[misc]  # as common.mqtt installs it
    rows: dict[str, Any] = {
        name: {"min_us": round(min(v), 1), "median_us": round(statistics.median(v), 1)}
        for name, v in costs.items()
    }
    print(f"{'properties':<18} {'min us/msg':>10} {'median':>8}")
    for name, row in rows.items():
        print(f"{name:<18} {row['min_us']:>10} {row['median_us']:>8}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "mqtt_decode_bench.json"
    out.write_text(json.dumps({
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average": os.getloadavg()},
        "settings": vars(args), "read_us_per_message": rows,
    }, indent=2))
    print(f"(written to {out})")


if __name__ == "__main__":
    main()
