"""The queue's latencies against ``main.py fleet serve`` (SQLite, one process) and a hall display in
headless Chromium (docs/queue.md "Measured"):

1. call -> display: an officer's "next" (HTTP POST) until the display page has the call (its
   ``window.__calls[].arrived``); target p95 < 500 ms;
2. call -> audio start: the POST until the display's announcement starts playing (``audio_started``),
   calls spaced so that each finds the display silent; target < 1 s;
3. 50 counters calling once every 10 s, sustained: POST latency and call -> display while they run.

    python -m bench.queue_bench [--calls 100] [--audio-calls 10] [--sustain-s 60] [--counters 50]

Prints a table and writes bench/results/queue_bench.json. Times of the browser (Date.now()) and of this
process (time.time()) are the same machine's clock.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from fleet.queue.engine import Queue
from fleet.store import open_store
from fleet.store.db import Database
from fleet.store.migrate import upgrade
from tests.fleet.browser import CHROMIUM, CHROMIUM_ARGS
from tests.fleet.conftest import FakeClock
from tests.fleet.data import build
from tests.fleet.queue_data import CENTER, add_officers, issue, setup_center
from tests.fleet.server import login, running_server

RESULTS = Path(__file__).resolve().parent / "results"


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values), 1) if values else float("nan"),
        "p95_ms": round(pct(values, 95), 1),
        "max_ms": round(max(values), 1) if values else float("nan"),
    }


class Officer:
    def __init__(self, base: str, username: str, counter: str) -> None:
        self.client = httpx.Client(base_url=base, timeout=10)
        login(self.client, username)
        page = self.client.get("/counter").text
        self.csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        opened = self.client.post(
            "/counter/open",
            data={"csrf": self.csrf, "counter": counter, "services": ["HOTICH", "CHUNGTHUC", "DATDAI"]},
        )
        assert opened.status_code in (200, 303), opened.text[:200]

    def next(self) -> tuple[float, float, str | None]:
        """(sent at, epoch ms; HTTP round trip, ms; the number called)."""
        sent = time.time() * 1000
        started = time.perf_counter()
        answer = self.client.post(
            "/counter/next", data={"csrf": self.csrf}, headers={"Accept": "application/json"}
        )
        elapsed = (time.perf_counter() - started) * 1000
        answer.raise_for_status()
        return sent, elapsed, answer.json()["number"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--audio-calls", type=int, default=10)
    parser.add_argument("--sustain-s", type=float, default=60.0)
    parser.add_argument("--counters", type=int, default=50)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="queue-bench-"))
    url = f"sqlite:///{folder / 'fleet.sqlite'}"
    db = Database(url)
    upgrade(db)
    db.close()
    seeding = open_store(url, clock=FakeClock())
    build(seeding)
    seeding.close()
    store = open_store(url)
    queue = Queue(store)
    setup_center(queue)
    day = queue.today()
    counters = max(args.counters, 2)
    for i in range(1, counters + 1):
        queue.set_counter(CENTER, f"{i}", f"Quầy số {i}", ["HOTICH", "CHUNGTHUC", "DATDAI"], i)
    people = add_officers(store, counters, prefix="bench")
    needed = args.calls + args.audio_calls + int(counters * (args.sustain_s / 10 + 2)) + 10
    for n in range(1, needed + 1):
        issue(store, f"{'ABC'[n % 3]}{n:04d}", ("HOTICH", "CHUNGTHUC", "DATDAI")[n % 3], day=day)
    token = queue.create_display(CENTER, "bench", None)
    results: dict[str, Any] = {"tickets": needed}
    try:
        with running_server(url, folder) as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"]
            )
            tv = browser.new_context(
                viewport={"width": 1920, "height": 1080}, base_url=server.base
            ).new_page()
            tv.goto(f"/display/{token}")
            time.sleep(0.5)

            def display_calls() -> dict[int, dict[str, Any]]:
                return {c["id"]: c for c in tv.evaluate("() => window.__calls")}

            def step_of(number: str) -> int:
                ticket = queue.find(CENTER, day, number)
                assert ticket is not None
                return max(s.id for s in queue.steps_of_ticket(ticket.id) if s.kind == "called")

            # 1. call -> display, one counter
            first = Officer(server.base, people[0].username, "1")
            sent: list[tuple[int, float, float]] = []
            for _ in range(args.calls):
                at, rtt, number = first.next()
                assert number is not None
                sent.append((step_of(number), at, rtt))
                time.sleep(0.25)
            time.sleep(1.5)
            seen = display_calls()
            display_ms = [seen[s]["arrived"] - at for s, at, _ in sent if s in seen]
            results["call_to_display"] = {**summary(display_ms), "missing": len(sent) - len(display_ms)}
            results["call_http"] = summary([rtt for _, _, rtt in sent])
            # 2. call -> audio start, each call finding the display silent
            tv.reload()  # phase 1 queued ~100 announcements of ~5 s: start from a silent display
            time.sleep(1.0)
            audio_ms = []
            for _ in range(args.audio_calls):
                at, _rtt, number = first.next()
                assert number is not None
                step = step_of(number)
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    call = display_calls().get(step)
                    if call and call.get("audio_ended"):
                        break
                    time.sleep(0.05)
                call = display_calls()[step]
                audio_ms.append(call["audio_started"] - at)
            results["call_to_audio_start"] = summary(audio_ms)
            # 3. 50 counters, each calling once every 10 s
            officers = [Officer(server.base, p.username, str(i)) for i, p in enumerate(people[1:], start=2)]
            officers.insert(0, first)
            records: list[tuple[int, float, float]] = []
            errors: list[str] = []
            lock = threading.Lock()
            stop_at = time.monotonic() + args.sustain_s

            def run(index: int, officer: Officer) -> None:
                time.sleep(index * 10.0 / len(officers))  # spread over the 10 s
                while time.monotonic() < stop_at:
                    began = time.monotonic()
                    try:
                        at, rtt, number = officer.next()
                    except httpx.HTTPError as exc:
                        errors.append(str(exc))
                        return
                    if number is not None:
                        with lock:
                            records.append((step_of(number), at, rtt))
                    time.sleep(max(0.0, 10.0 - (time.monotonic() - began)))

            threads = [threading.Thread(target=run, args=(i, o)) for i, o in enumerate(officers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(args.sustain_s + 30)
            time.sleep(1.5)
            seen = display_calls()  # the page was reloaded before phase 2: these are phase 2 and 3 calls
            sustained_display = [seen[s]["arrived"] - at for s, at, _ in records if s in seen]
            results["sustained"] = {
                "counters": len(officers),
                "seconds": args.sustain_s,
                "calls": len(records),
                "errors": len(errors),
                "http": summary([rtt for _, _, rtt in records]),
                "call_to_display": summary(sustained_display),
                "missing_on_display": len(records) - len(sustained_display),
            }
            browser.close()
    finally:
        store.close()
        shutil.rmtree(folder, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "queue_bench.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'measure':<44} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, row in (
        ("call -> display (1 counter, 4 calls/s)", results["call_to_display"]),
        ("call, HTTP round trip", results["call_http"]),
        ("call -> audio start (display silent)", results["call_to_audio_start"]),
        (f"{results['sustained']['counters']} counters / 10 s: HTTP", results["sustained"]["http"]),
        (
            f"{results['sustained']['counters']} counters / 10 s: call -> display",
            results["sustained"]["call_to_display"],
        ),
    ):
        print(f"{name:<44} {row['n']:>5} {row['p50_ms']:>8} {row['p95_ms']:>8} {row['max_ms']:>8}")
    print(
        json.dumps(
            {k: v for k, v in results["sustained"].items() if k in ("calls", "errors", "missing_on_display")}
        )
    )


if __name__ == "__main__":
    main()
