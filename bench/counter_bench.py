"""An officer's "next" with a long queue (docs/queue.md "Measured"): the engine's reads on the counter's
path against a throwaway store holding ``--waiting`` tickets of one center day over three services
(2% priority, 2% booked appointments over the next four hours), on SQLite and/or a throwaway PostgreSQL:

- ``call_next`` (finish the ticket at the counter, pick and call the next: the candidate queries);
- ``waiting_for`` (the counter's list, drawn after every action and at each refresh), ``board`` (the
  hall display) and ``paces`` (the waiting counts per service);
- the web's server time (``Server-Timing``) of ``POST /counter/next`` (JSON, as the counter app sends it)
  and of ``GET /counter``, in-process (Starlette's TestClient);

each in ms per call, the median and the fastest of ``--calls``;
- the plan of every SELECT of one ``call_next``, ``waiting_for``, ``board`` and ``paces``:
  ``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN (ANALYZE, COSTS OFF)`` on PostgreSQL (``--plans``).

    python -m bench.counter_bench [--backend sqlite|postgresql|both] [--waiting 1000 5000] [--calls 50]
        [--plans]

Engine calls in-process (no HTTP), one thread; prints a table and writes bench/results/counter_bench.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from fleet.queue.engine import Queue
from fleet.queue.models import Printed
from fleet.store import Store, open_store
from fleet.store.db import Database
from fleet.store.migrate import upgrade
from tests.fleet.conftest import FakeClock
from tests.fleet.data import build
from tests.fleet.plans import plan_of, statements
from tests.fleet.queue_data import CENTER, add_officers, setup_center

RESULTS = Path(__file__).resolve().parent / "results"
SERVICES = ("HOTICH", "CHUNGTHUC", "DATDAI")


@contextmanager
def a_store(backend: str, work: Path) -> Iterator[tuple[str, Store]]:
    """A migrated blank store of ``backend`` (PostgreSQL: a throwaway cluster, tests/fleet/pg.py)."""
    if backend == "sqlite":
        url = f"sqlite:///{work / 'bench.sqlite'}"
        db = Database(url)
        upgrade(db)
        db.close()
        store = open_store(url)
        try:
            yield url, store
        finally:
            store.close()
        return
    import psycopg

    from tests.fleet.pg import throwaway_cluster

    with throwaway_cluster() as cluster:
        with psycopg.connect(cluster.url().replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench")
        url = cluster.url("bench")
        db = Database(url)
        upgrade(db)
        db.close()
        store = open_store(url)
        try:
            yield url, store
        finally:
            store.close()


def fill(url: str, store: Store, queue: Queue, waiting: int) -> str:
    """The test fleet, and ``waiting`` tickets of today, in batches of 500 (the ingest's way)."""
    seeding = open_store(url, clock=FakeClock())
    build(seeding)
    seeding.close()
    setup_center(queue, counters=4)  # counter 4 calls all three services
    now = store.db.now()
    day = queue.today(now)
    # issued one a second up to now; booked ones for the next four hours (a few of them due now)
    printed = []
    for n in range(waiting):
        booked = n % 50 == 7
        printed.append(
            Printed(
                f"{'ABC'[n % 3]}{n:05d}",
                SERVICES[n % 3],
                priority=n % 50 == 0,
                day=day,
                issued_at=now - timedelta(seconds=waiting - n),
                appointment_at=now + timedelta(minutes=(n * 7) % 240 - 10) if booked else None,
            )
        )
    for start in range(0, waiting, 500):
        queue.issue_many(CENTER, printed[start : start + 500])
    if store.db.is_postgres:
        with store.db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    return day


def server_times(store: Store, username: str, calls: int) -> dict[str, dict[str, float]]:
    """The web's own time (``Server-Timing``) for "next" as the counter app sends it (its answer draws
    the panel and the waiting list) and for the counter page, in-process."""
    from tests.fleet.web import browser

    out: dict[str, list[float]] = {"http_next_ms": [], "http_counter_page_ms": []}
    with browser(store, username) as person:
        person.client.get("/counter")  # templates compiled
        for _ in range(calls):
            answer = person.client.post(
                "/counter/next", data={"csrf": person.csrf}, headers={"Accept": "application/json"}
            )
            assert answer.status_code == 200, answer.text[:200]
            out["http_next_ms"].append(float(answer.headers["server-timing"].split("dur=")[1]))
            page = person.client.get("/counter")
            out["http_counter_page_ms"].append(float(page.headers["server-timing"].split("dur=")[1]))
    return {name: spread(times) for name, times in out.items()}


def spread(times: list[float]) -> dict[str, float]:
    """Median and fastest: on a shared machine the fastest is the cost without waiting for a CPU."""
    return {"median": round(statistics.median(times), 2), "min": round(min(times), 2)}


def timed_ms(fn: Callable[[], Any], repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return spread(times)


def bench(backend: str, waiting: int, calls: int, plans: bool) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="counter-bench-"))
    out: dict[str, Any] = {"backend": backend, "waiting": waiting}
    try:
        with a_store(backend, work) as (url, store):
            queue = Queue(store)
            started = time.perf_counter()
            fill(url, store, queue, waiting)
            out["fill_s"] = round(time.perf_counter() - started, 1)
            officer, single = add_officers(store, 2, prefix="bench")
            queue.open_session(officer, "4", list(SERVICES))
            queue.open_session(single, "1", ["HOTICH"])
            queue.call_next(officer)  # a ticket at the counter: each call below also finishes one
            session = queue.session_of(officer)
            assert session is not None
            if plans:
                with statements(store.db) as seen:
                    queue.call_next(officer)
                    queue.waiting_for(session)
                    queue.board(CENTER)
                    queue.paces(CENTER)
                out["plans"] = [
                    {"sql": one.where(), "plan": plan_of(store.db, one, analyze=True)} for one in seen
                ]
            out["call_next_ms"] = timed_ms(lambda: queue.call_next(officer), calls)
            out["call_next_one_service_ms"] = timed_ms(lambda: queue.call_next(single), calls)
            out["waiting_for_ms"] = timed_ms(lambda: queue.waiting_for(session), calls)
            out["board_ms"] = timed_ms(lambda: queue.board(CENTER), calls)
            out["paces_ms"] = timed_ms(lambda: queue.paces(CENTER), calls)
            out.update(server_times(store, officer.username, calls))
            with store.db.read() as conn:  # the queue is still long: the calls took a few of it
                left = conn.execute(
                    text("SELECT count(*) FROM queue_tickets WHERE state = 'waiting'")
                ).scalar_one()
            out["still_waiting"] = int(left)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--waiting", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--plans", action="store_true", help="print the plan of each queue_tickets read")
    args = parser.parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    results = [bench(b, n, args.calls, args.plans) for b in backends for n in args.waiting]
    if args.plans:
        for r in results:
            print(f"\n== {r['backend']}, {r['waiting']} waiting")
            for one in r["plans"]:
                print("--", one["sql"][:400])
                for line in one["plan"]:
                    print("   ", line)
    print(
        f"\n{'ms, median (fastest) of ' + str(args.calls):<34}"
        + "".join(f"{r['backend'][:6] + ' ' + str(r['waiting']):>16}" for r in results)
    )
    lines = [
        ("call_next, counter of 3 services", "call_next_ms"),
        ("call_next, counter of 1 service", "call_next_one_service_ms"),
        ("waiting_for (the counter's list)", "waiting_for_ms"),
        ("board (the hall display)", "board_ms"),
        ("paces (waiting per service)", "paces_ms"),
        ("POST /counter/next, server ms", "http_next_ms"),
        ("GET /counter, server ms", "http_counter_page_ms"),
    ]
    for label, key in lines:
        print(f"{label:<34}" + "".join(f"{r[key]['median']:>8} ({r[key]['min']:>5})" for r in results))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "counter_bench.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
