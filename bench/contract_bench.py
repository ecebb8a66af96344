"""What the contract's parsers cost per message: the ingest parses every message a kiosk sends.

    python -m bench.contract_bench [--messages 20000] [--repeat 5]

Prints a table and writes bench/results/contract_bench.json: parses per second and microseconds per
message (median of the repeats) for the kinds the fleet receives most: events of the busy center's mix
(bench.fleet_bench's), heartbeats, births.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contract.events import Event
from contract.health import Health
from contract.status import Status

RESULTS = Path(__file__).resolve().parent / "results"


def _birth(bdseq: int) -> bytes:
    from contract.status import Hardware

    hardware = Hardware(devices={"printer": "ok", "card_reader": "ok", "scanner": "ok"})
    return Status("online", "birth", bdseq, bdseq, agent_version="1.4.0", app_version="1.4.0",
                  hardware=hardware).to_payload()


def _samples(count: int) -> dict[str, tuple[Callable[[bytes], Any], list[bytes]]]:
    from bench.fleet_bench import _event, _health

    return {
        "event (mix)": (Event.parse, [_event(i, i + 1, "0123456789abcdef", 0.1)[1] for i in range(count)]),
        "health/1": (Health.parse, [_health(i) for i in range(count)]),
        "status/1 (birth)": (Status.parse, [_birth(i + 1) for i in range(count)]),
    }


def measure(count: int, repeat: int) -> list[dict[str, Any]]:
    rows = []
    for name, (parse, payloads) in _samples(count).items():
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            for payload in payloads:
                parse(payload)
            times.append(time.perf_counter() - started)
        best = statistics.median(times)
        size = statistics.mean(len(p) for p in payloads)
        rows.append({
            "message": name, "bytes": round(size), "per_s": round(count / best),
            "us_each": round(best / count * 1e6, 1),
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = measure(args.messages, args.repeat)
    print(f"{'message':<20} {'bytes':>6} {'parses/s':>10} {'µs each':>8}")
    for row in rows:
        print(f"{row['message']:<20} {row['bytes']:>6} {row['per_s']:>10,} {row['us_each']:>8}")
    RESULTS.mkdir(exist_ok=True)
    out = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()},
        "messages": args.messages, "repeat": args.repeat, "rows": rows,
    }
    (RESULTS / "contract_bench.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
