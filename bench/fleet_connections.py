"""How many kiosks' TLS connections one Mosquitto holds here, and how fast they all come back after the
broker restarts (docs/province.md, docs/fleet.md "Measured (batches)").

N simulated kiosks, each with its own certificate from a test CA (CN = kiosk id), open an MQTT v5
connection over TLS 1.2 to the kiosk listener of the shipped configuration (``deploy/mosquitto``:
``require_certificate``, ``use_identity_as_username``, the ACL), keep it with PINGREQs for ``--hold``
seconds, then the broker is restarted (SIGTERM, start) and every kiosk reconnects with a jittered backoff
(0.5 s doubling to 5 s, like an agent with short settings). The clients are a minimal MQTT CONNECT /
CONNACK / PINGREQ over asyncio (one process, one event loop): what is measured is the broker and TLS,
not paho's threads.

    python -m bench.fleet_connections [--kiosks 2000] [--hold 20]

Prints a table and writes bench/results/fleet_connections.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import ssl
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

RESULTS = Path(__file__).resolve().parent / "results"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value % 128, value // 128
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def connect_packet(client_id: str, keepalive: int) -> bytes:
    ident = client_id.encode()
    variable = b"\x00\x04MQTT" + bytes([5, 0x02]) + struct.pack("!H", keepalive) + b"\x00"  # clean start
    payload = struct.pack("!H", len(ident)) + ident
    body = variable + payload
    return b"\x10" + _varint(len(body)) + body


class Kiosk:
    def __init__(self, kiosk_id: str, context: ssl.SSLContext, port: int, keepalive: int) -> None:
        self.kiosk_id = kiosk_id
        self.context = context
        self.port = port
        self.keepalive = keepalive
        self.connected = asyncio.Event()
        self.connected_at = 0.0
        self.attempts = 0
        self.errors: list[str] = []

    async def run(self, stop: asyncio.Event) -> None:
        delay = 0.5
        while not stop.is_set():
            self.attempts += 1
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", self.port, ssl=self.context), 30
                )
                writer.write(connect_packet(self.kiosk_id, self.keepalive))
                await writer.drain()
                head = await asyncio.wait_for(reader.readexactly(2), 30)
                rest = await reader.readexactly(head[1])
                if head[0] != 0x20 or rest[1] != 0:
                    raise ConnectionError(f"CONNACK reason {rest[1]}")
                self.connected_at = time.monotonic()
                self.connected.set()
                delay = 0.5
                await self._hold(reader, writer, stop)
            except (OSError, asyncio.IncompleteReadError, ssl.SSLError) as exc:  # timeouts, refusals
                if len(self.errors) < 3:
                    self.errors.append(type(exc).__name__)
            self.connected.clear()
            if stop.is_set():
                return
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(5.0, delay * 2)

    async def _hold(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stop: asyncio.Event
    ) -> None:
        try:
            while not stop.is_set():
                try:
                    data = await asyncio.wait_for(reader.read(64), self.keepalive / 2)
                    if not data:
                        return  # the broker went away
                except TimeoutError:
                    writer.write(b"\xc0\x00")  # PINGREQ
                    await writer.drain()
        finally:
            writer.close()


async def measure(args: argparse.Namespace, pki: Any, broker: Any) -> dict[str, Any]:
    contexts = {}
    kiosks = []
    for n in range(args.kiosks):
        kiosk_id = f"kiosk-{n:05d}"
        issued = pki.clients[kiosk_id]
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki.ca.cert_file))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(issued.cert_file), str(issued.key_file))
        contexts[kiosk_id] = context
        kiosks.append(Kiosk(kiosk_id, context, broker.kiosk_port, args.keepalive))
    stop = asyncio.Event()
    started = time.monotonic()
    tasks = [asyncio.create_task(k.run(stop)) for k in kiosks]

    async def all_connected(timeout: float) -> float | None:
        begin = time.monotonic()
        while time.monotonic() - begin < timeout:
            if all(k.connected.is_set() for k in kiosks):
                return time.monotonic()
            await asyncio.sleep(0.2)
        return None

    first = await all_connected(args.timeout)
    result: dict[str, Any] = {"kiosks": args.kiosks}
    connected_now = sum(k.connected.is_set() for k in kiosks)
    result["connected"] = connected_now
    result["all_connected_s"] = round(first - started, 2) if first else None
    broker_proc = psutil.Process(broker.process.pid)
    result["broker_rss_mb"] = round(broker_proc.memory_info().rss / 2**20, 1)
    result["broker_fds"] = broker_proc.num_fds()
    result["client_rss_mb"] = round(psutil.Process().memory_info().rss / 2**20, 1)
    await asyncio.sleep(args.hold)
    result["held_s"] = args.hold
    result["still_connected_after_hold"] = sum(k.connected.is_set() for k in kiosks)
    restart_at = time.monotonic()
    await asyncio.to_thread(broker.restart)
    back = await all_connected(args.timeout)
    result["restart_all_back_s"] = round(back - restart_at, 2) if back else None
    result["connected_after_restart"] = sum(k.connected.is_set() for k in kiosks)
    result["attempts"] = sum(k.attempts for k in kiosks)
    result["errors_seen"] = sorted({e for k in kiosks for e in k.errors})
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kiosks", type=int, default=2000)
    parser.add_argument("--hold", type=float, default=20.0, help="seconds to hold every connection")
    parser.add_argument("--keepalive", type=int, default=60)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--out", type=Path, default=RESULTS / "fleet_connections.json")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    from tests.agent.broker import Broker, Pki

    directory = Path(tempfile.mkdtemp(prefix="fleetconn-"))
    try:
        issued_at = time.perf_counter()
        pki = Pki.create(directory / "pki", tuple(f"kiosk-{n:05d}" for n in range(args.kiosks)))
        issue_s = time.perf_counter() - issued_at
        broker = Broker(directory / "broker", pki)
        broker.start()
        try:
            result = asyncio.run(measure(args, pki, broker))
        finally:
            broker.stop()
        result["certificates_issued_s"] = round(issue_s, 1)
        result["fd_limit"] = {"soft_before": soft, "hard": hard}  # raised to the hard limit for the run
        result["machine"] = {"cpus": os.cpu_count(), "load_average_at_end": os.getloadavg()}
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    for key, value in result.items():
        print(f"{key:<36} {value}")
    print(f"(written to {args.out})", file=sys.stderr)


if __name__ == "__main__":
    main()
