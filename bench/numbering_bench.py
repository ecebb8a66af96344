"""Queue-number benchmark: tap-to-last-byte latency, online and offline, through the virtual printer.

    python -m bench.numbering_bench [--tickets 200] [--load 400]

One kiosk runtime in ``[numbering] mode = "center"`` with the real edge agent (in-process), the center
allocator (in-process) and a Mosquitto of its own (TLS, the shipped config and ACL) on loopback. A "tap"
is ``EffectHandlers.issue_ticket``: printer status, number, raster ticket to the virtual printer, which
returns when it has received the last byte. Scenarios:

- online: the allocator answers;
- offline, allocator announced down: its retained status says offline, the relay answers at once;
- offline, allocator silent: it hangs (its store lock held), the kiosk waits its whole budget;
- load: 5 kiosks asking for numbers back to back (numbers only, no printing), as in the tests.

Prints a table and writes bench/results/numbering_bench.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import random
import shutil
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contract.tickets import NumberPlan
from edge_agent.agent import Agent, AgentSettings
from fleet.allocator import Allocator
from kiosk.flows.ticket import IssueTicket
from kiosk.runtime import KioskRuntime, demo_config
from tests.agent.broker import ROOT, Broker, Pki
from tests.agent.conftest import RunningAgent, agent_config
from tests.numbering.conftest import CENTER, KIOSKS, SERVICES, SimKiosk, allocator_settings

RESULTS = ROOT / "bench" / "results"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def row(name: str, values_s: list[float], **extra: Any) -> dict[str, Any]:
    ms = [v * 1000 for v in values_s]
    return {
        "scenario": name,
        "n": len(ms),
        "p50_ms": round(pct(ms, 0.5), 2),
        "p99_ms": round(pct(ms, 0.99), 2),
        "max_ms": round(max(ms), 2),
        "mean_ms": round(statistics.fmean(ms), 2),
        **extra,
    }


def taps(runtime: KioskRuntime, n: int) -> tuple[list[float], list[str]]:
    service = runtime.config.services[0]
    times, numbers = [], []
    for _ in range(n):
        started = time.perf_counter()
        issued = runtime.handlers.issue_ticket(IssueTicket(service.code, priority=False))
        times.append(time.perf_counter() - started)
        numbers.append(issued.number)
    return times, numbers


def bench(tickets: int, load: int) -> list[dict[str, Any]]:
    work = Path(tempfile.mkdtemp(prefix="nbb-"))
    pki = Pki.create(work / "pki", (*KIOSKS, "allocator"))
    broker = Broker(work / "broker", pki)
    broker.start()
    rows: list[dict[str, Any]] = []
    try:
        # Blocks of 1000 so the offline scenarios can issue hundreds from one slot.
        plan = NumberPlan(800, 1000)
        allocator = Allocator(allocator_settings(broker, pki, work / "allocator.sqlite", plan=plan))
        allocator.start()
        assert allocator.wait_connected(10)
        data_dir = work / "k"
        config = demo_config(data_dir, id="kiosk-1", center_id=CENTER)
        config = dataclasses.replace(
            config,
            numbering=dataclasses.replace(config.numbering, mode="center", slot=0, offline_block=1000),
            devices=dataclasses.replace(
                config.devices, card_reader=dataclasses.replace(config.devices.card_reader, enabled=False)
            ),
        )
        settings = AgentSettings("kiosk-1", CENTER, data_dir, agent_config(broker, pki, "kiosk-1"))
        with RunningAgent(Agent(settings)) as agent:
            deadline = time.monotonic() + 10
            while agent.tickets.allocator_state != "online" and time.monotonic() < deadline:
                time.sleep(0.01)
            runtime = KioskRuntime(config, synchronous=True, wall_clock=lambda: datetime.now(UTC))
            runtime.start()
            try:
                taps(runtime, 5)  # warm-up: fonts, first raster
                times, numbers = taps(runtime, tickets)
                assert all(int(n[1:]) < 800 for n in numbers), "online run fell back to offline"
                rows.append(row("online (tap to last byte)", times))
                lock = allocator.book._lock
                lock.acquire()  # the allocator hangs: no answer within the budget
                try:
                    times, numbers = taps(runtime, max(5, tickets // 20))
                finally:
                    lock.release()
                assert all(int(n[1:]) >= 800 for n in numbers)
                rows.append(row("offline, allocator silent (budget 800 ms)", times))
                allocator.stop()
                deadline = time.monotonic() + 10
                while agent.tickets.allocator_state != "offline" and time.monotonic() < deadline:
                    time.sleep(0.01)
                times, numbers = taps(runtime, tickets)
                assert all(int(n[1:]) >= 800 for n in numbers)
                rows.append(row("offline, allocator announced down", times))
            finally:
                runtime.stop()
        rows.extend(concurrent_load(broker, pki, work, load))
    finally:
        broker.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return rows


def concurrent_load(broker: Broker, pki: Pki, work: Path, per_kiosk: int) -> list[dict[str, Any]]:
    allocator = Allocator(allocator_settings(broker, pki, work / "load.sqlite"))
    allocator.start()
    assert allocator.wait_connected(10)
    kiosks = [SimKiosk(k, s, broker, pki, work / f"load-{k}").start() for s, k in enumerate(KIOSKS)]
    alone = [kiosks[0].issue(SERVICES[i % 4], datetime.now(UTC))[2] for i in range(per_kiosk)]
    latencies: list[float] = []
    lock = threading.Lock()

    def run(kiosk: SimKiosk, rng: random.Random) -> None:
        for _ in range(per_kiosk):
            _d, _n, elapsed = kiosk.issue(rng.choice(SERVICES), datetime.now(UTC))
            with lock:
                latencies.append(elapsed)

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(k, random.Random(i))) for i, k in enumerate(kiosks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    for kiosk in kiosks:
        kiosk.stop()
    allocator.stop()
    return [
        row("1 kiosk, number only (no printing)", alone),
        row(
            f"5 kiosks back to back, number only ({len(latencies)})", latencies,
            tickets_per_s=round(len(latencies) / wall, 1),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=200, help="taps per single-kiosk scenario")
    parser.add_argument("--load", type=int, default=400, help="numbers per kiosk in the load scenario")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    rows = bench(args.tickets, args.load)
    print(f"{'scenario':<48} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for r in rows:
        extra = f"  {r['tickets_per_s']} numbers/s" if "tickets_per_s" in r else ""
        print(f"{r['scenario']:<48} {r['n']:>5} {r['p50_ms']:>8} {r['p99_ms']:>8} {r['max_ms']:>8}{extra}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "numbering_bench.json"
    out.write_text(json.dumps({
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "printer": "virtual printer (drivers.printer simulator), raster ticket, no line-speed model",
        "rows": rows,
    }, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
