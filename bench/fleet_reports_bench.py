"""Reports and usage page against a month of a busy center (docs/reports.md "Measured"):

- the store holds two centers of one province, each 20 kiosks x 30 days of events (tickets, look-ups,
  card reads, ratings, sessions, heartbeats' faults) at ``--per-day`` events per kiosk and day, their
  alarms (paper out most days, a few disconnections) and the queue's phone ratings; events are bulk
  inserted (this bench measures reading, ``bench/fleet_bench.py`` the ingest);
- a monthly report of one center, built (``fleet.reports.build_report``: the SQL aggregates) and
  written as XLSX and as CSV: wall time, median of ``--repeat``; target < 5 s;
- ``main.py fleet report --center ... --month ... --xlsx`` as a process, once (start-up included);
- the usage page's server time (``Server-Timing: app;dur=``) for today, the month of the center and
  the month of the province, median of ``--repeat``, in-process (Starlette's TestClient).

    python -m bench.fleet_reports_bench [--backend sqlite|postgresql|both] [--per-day 300] [--repeat 5]

Prints a table and writes bench/results/fleet_reports_bench.json.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select

from bench.stores import blank_store
from fleet.reports.build import Target, build_report
from fleet.reports.write import to_csv, to_xlsx
from fleet.store import Scope, Store
from fleet.store.queue_tables import queue_ratings
from fleet.store.schema import alarms, event_keys, events
from fleet.store.usage import Period
from tests.conftest import ROOT
from tests.fleet.conftest import FakeClock
from tests.fleet.data import build
from tests.fleet.web import browser

RESULTS = Path(__file__).resolve().parent / "results"
VN = ZoneInfo("Asia/Ho_Chi_Minh")
MONTH = "2026-11"
CENTERS = ("hcm-ben-thanh", "hcm-thu-dau-mot")
SERVICES = ("HOTICH", "CHUNGTHUC", "DATDAI", "DOANHNGHIEP", "XAYDUNG")
#: a kiosk's day, in shares of its events (tickets dominate; ratings after some visits)
MIX = (
    ("ticket_issued", 0.45),
    ("session_ended", 0.20),
    ("rating", 0.15),
    ("lookup", 0.10),
    ("card_read", 0.08),
    ("ticket_voided", 0.01),
    ("device_fault", 0.01),
)


def payload(kind: str, rng: random.Random) -> dict[str, Any]:
    if kind in ("ticket_issued", "ticket_voided"):
        body: dict[str, Any] = {"number": f"A{rng.randint(1, 799):03d}", "service": rng.choice(SERVICES)}
        if kind == "ticket_voided":
            body["reason"] = "PrinterPaperOutError"
        return body
    if kind == "rating":
        level = rng.choices((1, 2, 3, 4), weights=(2, 3, 35, 60))[0]
        reasons = rng.sample(["long_wait", "time_taken", "staff_attitude"], k=1) if level <= 2 else []
        target = rng.choice(("center", "counter", "official"))
        target_id = (
            None
            if target == "center"
            else (str(rng.randint(1, 8)) if target == "counter" else f"cb-{rng.randint(1, 12):03d}")
        )
        return {
            "level": level,
            "scale": 4,
            "level_key": ("very_dissatisfied", "dissatisfied", "satisfied", "very_satisfied")[level - 1],
            "target_kind": target,
            "target_id": target_id,
            "reasons": reasons,
            "criteria": {},
        }
    if kind == "lookup":
        return {
            "outcome": rng.choices(("found", "not_found", "unavailable"), weights=(85, 12, 3))[0],
            "source": "camera",
            "latency_ms": round(rng.uniform(20, 400), 1),
        }
    if kind == "card_read":
        return {
            "result": rng.choices(("ok", "CardRemovedError", "BacFailedError"), weights=(92, 6, 2))[0],
            "authenticity": "genuine",
            "duration_ms": rng.randint(600, 2500),
        }
    if kind == "session_ended":
        return {"reason": "finished", "duration_s": round(rng.uniform(10, 120), 1)}
    return {"device": "printer", "problem": "paper_out", "detail": "out of paper"}


def fill(store: Store, per_day: int, kiosks_per_center: int = 20, days: int = 30) -> dict[str, int]:
    """Registry, then the month's events, alarms and phone ratings in bulk (a few thousand rows per
    statement)."""
    clock = store.db.clock
    assert isinstance(clock, FakeClock)
    clock.now = datetime(2026, 10, 20, tzinfo=UTC)
    build(store, users=True)
    for center in CENTERS:
        prefix = "kiosk-bt" if center == CENTERS[0] else "kiosk-tdm"
        for i in range(1, kiosks_per_center + 1):
            if store.registry.kiosk_rows_by_id(Scope.everything(), [f"{prefix}-{i:02d}"]):
                continue
            store.registry.add_kiosk(f"{prefix}-{i:02d}", center, slot=i - 1, label=f"Máy {i}")
    rng = random.Random(11)
    kinds, weights = zip(*MIX, strict=True)
    start = datetime(2026, 11, 1, tzinfo=VN).astimezone(UTC)
    store.partitions.ensure_for(start)
    counts = {"events": 0, "alarms": 0, "phone_ratings": 0}
    with store.db.write() as conn:
        for center in CENTERS:
            prefix = "kiosk-bt" if center == CENTERS[0] else "kiosk-tdm"
            for i in range(1, kiosks_per_center + 1):
                kiosk, journal = f"{prefix}-{i:02d}", uuid.uuid4().hex
                rows, keys, seq = [], [], 0
                for day in range(days):
                    opening = start + timedelta(days=day, hours=1)  # 08:00 in Vietnam
                    for _ in range(per_day):
                        seq += 1
                        at = opening + timedelta(seconds=rng.uniform(0, 9 * 3600))  # 08:00-17:00
                        kind = rng.choices(kinds, weights=weights)[0]
                        event_id = uuid.uuid4().hex
                        rows.append(
                            {
                                "event_id": event_id,
                                "occurred_at": at,
                                "center_id": center,
                                "kiosk_id": kiosk,
                                "journal_id": journal,
                                "seq": seq,
                                "kind": kind,
                                "received_at": at,
                                "replay": False,
                                "payload": payload(kind, rng),
                            }
                        )
                        keys.append({"event_id": event_id, "kiosk_id": kiosk, "occurred_at": at})
                    # alarms of the day: paper out for 5-40 min most days, now and then offline
                    if rng.random() < 0.7:
                        began = opening + timedelta(hours=rng.uniform(0, 8))
                        conn.execute(
                            insert(alarms).values(
                                center_id=center,
                                kiosk_id=kiosk,
                                type="printer",
                                device="printer",
                                severity="critical",
                                active=False,
                                started_at=began,
                                updated_at=began,
                                ended_at=began + timedelta(minutes=rng.uniform(5, 40)),
                                detail={"state": "paper_out"},
                            )
                        )
                        counts["alarms"] += 1
                    if rng.random() < 0.1:
                        began = opening + timedelta(hours=rng.uniform(0, 8))
                        conn.execute(
                            insert(alarms).values(
                                center_id=center,
                                kiosk_id=kiosk,
                                type="offline",
                                severity="major",
                                active=False,
                                started_at=began,
                                updated_at=began,
                                ended_at=began + timedelta(minutes=rng.uniform(1, 90)),
                            )
                        )
                        counts["alarms"] += 1
                for chunk in range(0, len(rows), 2000):
                    conn.execute(insert(events), rows[chunk : chunk + 2000])
                    conn.execute(insert(event_keys), keys[chunk : chunk + 2000])
                counts["events"] += len(rows)
            phone: list[dict[str, Any]] = [
                {
                    "center_id": center,
                    "counter": str(rng.randint(1, 8)),
                    "level": rng.choice((3, 4, 4, 2)),
                    "scale": 4,
                    "via": "phone",
                    "reasons": [],
                    "at": start + timedelta(days=rng.randint(0, days - 1), hours=rng.uniform(1, 10)),
                }
                for _ in range(20 * days)
            ]
            conn.execute(insert(queue_ratings), phone)
            counts["phone_ratings"] += len(phone)
    clock.now = datetime(2026, 12, 1, 5, tzinfo=UTC)  # the report is made on 1 December, noon in Vietnam
    with store.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == counts["events"]
    if store.db.is_postgres:
        with store.db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    return counts


def median_s(fn: Any, repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def bench(backend: str, per_day: int, repeat: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="reports-bench-"))
    out: dict[str, Any] = {"backend": backend}
    try:
        with blank_store(backend, work, FakeClock()) as (url, store):
            started = time.perf_counter()
            out["filled"] = fill(store, per_day)
            out["fill_s"] = round(time.perf_counter() - started, 1)
            period = Period.month(MONTH, VN)
            target = Target("center", CENTERS[0])
            build_s, report = median_s(
                lambda: build_report(store, Scope.everything(), target, period, VN), repeat
            )
            xlsx_s, xlsx = median_s(lambda: to_xlsx(report), repeat)
            csv_s, text = median_s(lambda: to_csv(report), repeat)
            out["center_month"] = {
                "events_of_center": out["filled"]["events"] // 2,
                "build_s": round(build_s, 3),
                "xlsx_s": round(xlsx_s, 3),
                "csv_s": round(csv_s, 3),
                "total_xlsx_s": round(build_s + xlsx_s, 3),
                "xlsx_bytes": len(xlsx),
                "csv_bytes": len(text),
                "alarms": report.totals["alarms"],
                "satisfied_percent": round(report.totals["satisfied_percent"] or 0, 1),
            }
            province = Target("province", "hcm")
            p_build_s, p_report = median_s(
                lambda: build_report(store, Scope.everything(), province, period, VN), repeat
            )
            p_xlsx_s, _ = median_s(lambda: to_xlsx(p_report), 1)
            out["province_month"] = {"build_s": round(p_build_s, 3), "xlsx_s": round(p_xlsx_s, 3)}
            cli_out = work / "cli.xlsx"
            started = time.perf_counter()
            done = subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "main.py"),
                    "fleet",
                    "report",
                    "--db",
                    url,
                    "--center",
                    CENTERS[0],
                    "--month",
                    MONTH,
                    "--xlsx",
                    str(cli_out),
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            out["cli_s"] = round(time.perf_counter() - started, 2)
            out["cli_ok"] = done.returncode == 0
            # the usage page: server time of the handler
            pages = {
                "usage_today_center": ("quanly.bt", "/usage"),
                "usage_month_center": ("quanly.bt", "/usage?from=2026-11-01&to=2026-11-30"),
                "usage_month_province": ("admin.hcm", "/usage?from=2026-11-01&to=2026-11-30"),
            }
            for name, (user, path) in pages.items():
                with browser(store, user) as person:
                    person.client.get(path)  # templates compiled, caches warm
                    times = []
                    for _ in range(repeat):
                        response = person.client.get(path)
                        assert response.status_code == 200, (path, response.status_code)
                        times.append(float(response.headers["server-timing"].split("dur=")[1]))
                out[name + "_ms"] = round(statistics.median(times), 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--per-day", type=int, default=300, help="events per kiosk and day")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    results = [bench(b, args.per_day, args.repeat) for b in backends]
    print(
        f"\n{'measure (20 kiosks x 30 days, ' + str(args.per_day) + ' events/kiosk/day)':<58}"
        + "".join(f"{r['backend']:>12}" for r in results)
    )
    lines = [
        ("events in the store (2 centers)", lambda r: r["filled"]["events"]),
        ("monthly report of a center: build (SQL) s", lambda r: r["center_month"]["build_s"]),
        ("  + XLSX s", lambda r: r["center_month"]["xlsx_s"]),
        ("  + CSV s", lambda r: r["center_month"]["csv_s"]),
        ("  build + XLSX s (target < 5)", lambda r: r["center_month"]["total_xlsx_s"]),
        ("monthly report of the province (2 centers): build s", lambda r: r["province_month"]["build_s"]),
        ("main.py fleet report --xlsx, whole process s", lambda r: r["cli_s"]),
        ("usage page, center, today: server ms", lambda r: r["usage_today_center_ms"]),
        ("usage page, center, the month: server ms", lambda r: r["usage_month_center_ms"]),
        ("usage page, province, the month: server ms", lambda r: r["usage_month_province_ms"]),
    ]
    for label, value in lines:
        print(f"{label:<58}" + "".join(f"{value(r)!s:>12}" for r in results))
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / "fleet_reports_bench.json"
    target.write_text(
        json.dumps({"per_day": args.per_day, "repeat": args.repeat, "results": results}, indent=2) + "\n"
    )
    print(f"written {target}")


if __name__ == "__main__":
    main()
