"""An officer's "next" with a long queue (docs/queue.md "Measured"): the engine's reads on the counter's
path against a throwaway store holding ``--waiting`` tickets of one center day over three services
(2% priority, 2% booked appointments over the next four hours), on SQLite and/or a throwaway PostgreSQL:

With ``--history-days N`` the center also has N days of past steps before today (``--calls-per-day``
tickets a day, each issued, called, started and done, over the three services and one in 25 of a
fourth, rare one; two closed counter sessions a day per counter): the history ``queue_steps`` keeps for
the reports, which the hall display's and ``paces``' "latest" reads must not walk (docs/queue.md
"A long queue").

- ``call_next`` (finish the ticket at the counter, pick and call the next: the candidate queries);
- ``waiting_for`` (the counter's list, drawn after every action and at each refresh), ``board`` (the
  hall display) and ``paces`` (the waiting counts per service);
- the web's server time (``Server-Timing``) of ``POST /counter/next`` (JSON, as the counter app sends it)
  and of ``GET /counter``, of the hall display's page ``GET /display/{token}`` (what a display redraws
  at each step: the board) and of the phone page ``GET /q/{token}`` (its position: ``paces``),
  in-process (Starlette's TestClient);

each in ms per call, the median and the fastest of ``--calls``;
- the plan of every SELECT of one ``call_next``, ``waiting_for``, ``board`` and ``paces``:
  ``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN (ANALYZE, COSTS OFF)`` on PostgreSQL (``--plans``).

    python -m bench.counter_bench [--backend sqlite|postgresql|both] [--waiting 1000 5000] [--calls 50]
        [--history-days 0 90 365] [--calls-per-day 50] [--plans]

Engine calls in-process (no HTTP), one thread; prints a table and writes bench/results/counter_bench.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text, update

from bench.stores import blank_store
from fleet.queue.engine import Queue
from fleet.queue.models import Printed
from fleet.queue.stats import compute_groups
from fleet.store import Store, open_store
from fleet.store.queue_tables import queue_sessions, queue_settings, queue_steps
from fleet.store.schema import users
from tests.fleet.conftest import FakeClock
from tests.fleet.data import build
from tests.fleet.plans import plan_of, statements
from tests.fleet.queue_data import CENTER, add_officers, setup_center

RESULTS = Path(__file__).resolve().parent / "results"
SERVICES = ("HOTICH", "CHUNGTHUC", "DATDAI")
#: a service of the history only, one ticket in 25 (two a day at 50): fewer than ``PACE_SAMPLES`` a week
RARE = "XAYDUNG"


def add_history(store: Store, queue: Queue, days: int, calls_per_day: int) -> None:
    """``days`` past days of the center before today, written as rows (the engine's way would take
    minutes): per ticket its issued, called, serving and done steps (published), one ticket every
    8 h / ``calls_per_day`` from 08:00, one in 25 of the ``RARE`` service; per counter a morning and
    an afternoon session, closed."""
    now = store.db.now()
    with store.db.read() as conn:
        officer = conn.execute(select(users.c.id).order_by(users.c.id).limit(1)).scalar_one()
    steps: list[dict[str, Any]] = []
    sessions: list[dict[str, Any]] = []
    for back in range(days, 0, -1):
        opening = (now - timedelta(days=back)).replace(hour=1, minute=0, second=0, microsecond=0)  # 08:00
        day = queue.today(opening)
        for n in range(calls_per_day):
            issued = opening + timedelta(seconds=n * 8 * 3600 // calls_per_day)
            service = RARE if n % 25 == 24 else SERVICES[n % 3]
            number = f"{'D' if service == RARE else 'ABC'[n % 3]}{n:03d}"
            counter = str(1 + n % 4)
            for kind, at, detail in (
                ("issued", issued, {}),
                ("called", issued + timedelta(minutes=5), {"waited_s": 300.0}),
                ("serving", issued + timedelta(minutes=6), {}),
                ("done", issued + timedelta(minutes=11), {"served_s": 300.0}),
            ):
                steps.append(
                    {
                        "center_id": CENTER,
                        "seq": len(steps) + 1,
                        "event_id": uuid.uuid4().hex,
                        "at": at,
                        "kind": kind,
                        "day": day,
                        "number": number,
                        "service": service,
                        "counter": None if kind == "issued" else counter,
                        "detail": detail,
                        "published_at": at,
                    }
                )
        for counter in ("1", "2", "3", "4"):
            for start_h, end_h in ((0, 4), (6, 9)):
                sessions.append(
                    {
                        "center_id": CENTER,
                        "counter": counter,
                        "user_id": officer,
                        "services": list(SERVICES),
                        "state": "closed",
                        "opened_at": opening + timedelta(hours=start_h),
                        "closed_at": opening + timedelta(hours=end_h),
                    }
                )
    with store.db.write() as conn:
        for start in range(0, len(steps), 5000):
            conn.execute(insert(queue_steps), steps[start : start + 5000])
        if sessions:
            conn.execute(insert(queue_sessions), sessions)
        conn.execute(
            update(queue_settings).where(queue_settings.c.center_id == CENTER).values(last_seq=len(steps))
        )


def fill(url: str, store: Store, queue: Queue, waiting: int, history_days: int, calls_per_day: int) -> str:
    """The test fleet, its history (``add_history``) and ``waiting`` tickets of today, in batches of
    500 (the ingest's way)."""
    seeding = open_store(url, clock=FakeClock())
    build(seeding)
    seeding.close()
    setup_center(queue, counters=4)  # counter 4 calls all three services
    queue.set_service(CENTER, RARE, "D", "Xây dựng", "Construction", 3)
    add_history(store, queue, history_days, calls_per_day)
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
            # VACUUM too: the history is old rows, which autovacuum has long marked all-visible (an
            # index-only scan of them reads no table page)
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    return day


def server_ms(answer: Any) -> float:
    assert answer.status_code == 200, answer.text[:200]
    return float(answer.headers["server-timing"].split("dur=")[1])


def server_times(
    store: Store, username: str, calls: int, display: str, phone: str
) -> dict[str, dict[str, float]]:
    """The web's own time (``Server-Timing``) for "next" as the counter app sends it (its answer draws
    the panel and the waiting list), for the counter page, the hall display's page (``display``'s
    token) and a waiting ticket's phone page (``phone``), in-process."""
    from tests.fleet.web import browser

    out: dict[str, list[float]] = {
        "http_next_ms": [],
        "http_counter_page_ms": [],
        "http_display_ms": [],
        "http_phone_ms": [],
    }
    with browser(store, username) as person:
        person.client.get("/counter")  # templates compiled
        person.client.get(f"/display/{display}")
        person.client.get(f"/q/{phone}")
        for _ in range(calls):
            answer = person.client.post(
                "/counter/next", data={"csrf": person.csrf}, headers={"Accept": "application/json"}
            )
            out["http_next_ms"].append(server_ms(answer))
            out["http_counter_page_ms"].append(server_ms(person.client.get("/counter")))
            out["http_display_ms"].append(server_ms(person.client.get(f"/display/{display}")))
            out["http_phone_ms"].append(server_ms(person.client.get(f"/q/{phone}")))
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


def bench(
    backend: str, waiting: int, history_days: int, calls_per_day: int, calls: int, plans: bool
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="counter-bench-"))
    out: dict[str, Any] = {"backend": backend, "waiting": waiting, "history_days": history_days}
    try:
        with blank_store(backend, work) as (url, store):
            queue = Queue(store)
            started = time.perf_counter()
            fill(url, store, queue, waiting, history_days, calls_per_day)
            out["fill_s"] = round(time.perf_counter() - started, 1)
            officer, single = add_officers(store, 2, prefix="bench")
            queue.open_session(officer, "4", list(SERVICES))
            queue.open_session(single, "1", ["HOTICH"])
            queue.call_next(officer)  # a ticket at the counter: each call below also finishes one
            session = queue.session_of(officer)
            assert session is not None
            display = queue.create_display(CENTER, "bench", None)
            phone = queue.waiting_for(session, limit=1000)[-1].token  # the back of the queue
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
            today = queue.today()  # the manager's page and a report read the range's steps
            out["statistics_today_ms"] = timed_ms(
                lambda: compute_groups(queue, CENTER, today, today, ("service",), 900.0, lang="vi",
                                       zone=queue.zone),
                calls,
            )
            out.update(server_times(store, officer.username, calls, display, phone))
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
    parser.add_argument("--history-days", type=int, nargs="+", default=[0], help="past days of steps")
    parser.add_argument("--calls-per-day", type=int, default=50, help="tickets a past day")
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--plans", action="store_true", help="print the plan of each queue_tickets read")
    args = parser.parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    results = [
        bench(b, n, days, args.calls_per_day, args.calls, args.plans)
        for b in backends
        for n in args.waiting
        for days in args.history_days
    ]
    if args.plans:
        for r in results:
            print(f"\n== {r['backend']}, {r['waiting']} waiting, {r['history_days']} days of history")
            for one in r["plans"]:
                print("--", one["sql"][:400])
                for line in one["plan"]:
                    print("   ", line)
    print(
        f"\n{'ms, median (fastest) of ' + str(args.calls):<34}"
        + "".join(
            f"{r['backend'][:6] + ' ' + str(r['waiting']) + ' ' + str(r['history_days']) + 'd':>16}"
            for r in results
        )
    )
    lines = [
        ("call_next, counter of 3 services", "call_next_ms"),
        ("call_next, counter of 1 service", "call_next_one_service_ms"),
        ("waiting_for (the counter's list)", "waiting_for_ms"),
        ("board (the hall display)", "board_ms"),
        ("paces (waiting per service)", "paces_ms"),
        ("statistics of today (the manager's page)", "statistics_today_ms"),
        ("POST /counter/next, server ms", "http_next_ms"),
        ("GET /counter, server ms", "http_counter_page_ms"),
        ("GET /display/{token}, server ms", "http_display_ms"),
        ("GET /q/{token}, server ms", "http_phone_ms"),
    ]
    for label, key in lines:
        print(f"{label:<34}" + "".join(f"{r[key]['median']:>8} ({r[key]['min']:>5})" for r in results))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "counter_bench.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
