"""A province's reconnect burst as the ingest's batches see it (docs/fleet.md "Batches"): every kiosk's new
birth (``status/1``, bdseq 2: it wins) followed by its first heartbeat, in batches of ``--batch``
messages, handed to the worker's ``Processor`` in this process (no broker: what is measured is the
store's work per batch); a wave of births with nothing to change (a worker's reconnect: the broker
hands it every retained status again); a broker restart (Mosquitto sends every kiosk's Will at once:
each raises an offline alarm, which the birth that follows clears).

    python -m bench.burst_bench [--kiosks 2000] [--batch 500] [--backend postgresql|sqlite]

Prints ms per batch and µs per message for each wave; JSON in bench/results/burst_bench.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.fleet_bench import RESULTS, _health, cluster_for, kiosk_ids, make_store, seed


def _birth(bdseq: int) -> bytes:
    from contract.status import Hardware, Status

    hardware = Hardware(devices={"printer": "ok", "card_reader": "ok", "scanner": "ok"})
    return Status("online", "birth", bdseq, bdseq, agent_version="1.4.0", app_version="1.4.0",
                  hardware=hardware).to_payload()


def _messages(
    kiosks: list[tuple[str, str]], bdseq: int, beats: bool, wills: bool = False
) -> list[tuple[str, bytes]]:
    from contract.status import Status

    birth, beat = _birth(bdseq), _health(bdseq)
    will = Status("offline", "lost", bdseq - 1, bdseq - 1).to_payload()
    out = [(f"motcua/v1/{center}/{kiosk}/status", will) for center, kiosk in kiosks] if wills else []
    for center, kiosk in kiosks:
        out.append((f"motcua/v1/{center}/{kiosk}/status", birth))
        if beats:
            out.append((f"motcua/v1/{center}/{kiosk}/health", beat))
    return out


def _wave(processor: Any, messages: list[tuple[str, bytes]], batch: int) -> dict[str, Any]:
    from fleet.ingest.process import Incoming

    times = []
    outcomes: dict[str, int] = {}
    for start in range(0, len(messages), batch):
        now = datetime.now(UTC)
        items = [Incoming(topic, payload, now) for topic, payload in messages[start:start + batch]]
        began = time.perf_counter()
        results = processor.handle_batch(items)
        times.append(time.perf_counter() - began)
        for result in results:
            outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
    return {
        "messages": len(messages),
        "batches": len(times),
        "ms_per_batch_median": round(statistics.median(times) * 1000, 1),
        "ms_per_batch_max": round(max(times) * 1000, 1),
        "us_per_message": round(sum(times) / len(messages) * 1e6, 1),
        "outcomes": outcomes,
    }




def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kiosks", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--backend", default="postgresql", choices=("postgresql", "sqlite"))
    parser.add_argument("--out", type=Path, default=RESULTS / "burst_bench.json")
    args = parser.parse_args()

    from fleet.ingest.process import Processor
    from fleet.store import open_store

    kiosks = kiosk_ids(args.kiosks)
    with tempfile.TemporaryDirectory(prefix="burst-") as tmp, cluster_for(args.backend) as cluster:
        url = make_store(args.backend, Path(tmp), cluster, "burst")
        seed(url, kiosks)
        store = open_store(url, pre_ping=False)
        try:
            processor = Processor(store)
            waves = {
                name: _wave(processor, _messages(kiosks, bdseq, beats, wills), args.batch)
                for name, bdseq, beats, wills in (
                    ("first births and heartbeats (bdseq 1)", 1, True, False),
                    ("reconnect: births and heartbeats (bdseq 2)", 2, True, False),
                    ("retained births again (nothing wins)", 2, False, False),
                    ("broker restarted: Wills, births, heartbeats", 3, True, True),
                )
            }
        finally:
            store.close()
    result = {"backend": args.backend, "kiosks": args.kiosks, "batch": args.batch, "waves": waves}
    print(f"{'wave':<46} {'msgs':>6} {'ms/batch p50':>13} {'max':>8} {'µs/msg':>8}")
    for name, wave in waves.items():
        print(f"{name:<46} {wave['messages']:>6} {wave['ms_per_batch_median']:>13} "
              f"{wave['ms_per_batch_max']:>8} {wave['us_per_message']:>8}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"(written to {args.out})")


if __name__ == "__main__":
    main()
