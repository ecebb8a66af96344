"""A month of usage in the store, through the store's and the queue's own API (what the ingest and the
counter app would have written): events of every kind the usage pages count, a queue with a phone
rating, alarms that start and end at known times. The expected figures are written next to the data
so that a test reads what it checks."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fleet.queue.engine import Queue
from fleet.store import Scope, Store
from fleet.store.models import EventRecord
from tests.fleet.conftest import FakeClock
from tests.fleet.data import Fleet, build
from tests.fleet.queue_data import add_officers, issue, setup_center

VN = timedelta(hours=7)
_seq = itertools.count(1)


def local(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    """A time in Vietnam in 2026, as the aware UTC time the store takes."""
    return datetime(2026, month, day, hour, minute, tzinfo=UTC) - VN


def event(store: Store, center: str, kiosk: str, kind: str, at: datetime, **payload: Any) -> None:
    record = EventRecord(uuid.uuid4().hex, "b" * 32, next(_seq), kind, at, payload)
    assert store.events.insert_event(center, kiosk, record).inserted


@dataclass(frozen=True)
class Expected:
    """What November 2026 of Bến Thành holds (and what the other centers add)."""

    bt_issued: int = 7  # 6 in November at kiosk-bt-01 + 1 at kiosk-bt-02
    bt_voided: int = 1
    tdm_issued: int = 4
    hk_issued: int = 2  # another province: never in HCM's figures
    bt_ratings: int = 7  # 6 kiosk rating events + 1 phone rating
    bt_satisfied: int = 4  # levels 3-4 of 4
    printer_down_s: float = 2 * 3600.0  # kiosk-bt-01's printer: 25/11 08:00 to 10:00
    offline_down_s: float = 30 * 60.0  # kiosk-bt-02 offline 26/11 14:00 to 14:30


def seed(store: Store, clock: FakeClock) -> tuple[Fleet, Expected]:
    """The small fleet of ``tests.fleet.data.build`` (made on 31 October), then November's usage."""
    clock.now = local(31, 7, month=10)
    f = build(store)
    # build() raised alarms "now" (31 Oct 07:00): clear them at once so only the ones below count
    for kiosk, type in (
        (f.kiosk, "printer"),
        ("kiosk-bt-02", "offline"),
        (f.other_kiosk, "printer"),
        (f.far_kiosk, "offline"),
    ):
        store.alarms.clear_alarm(kiosk, type, at=local(31, 7, month=10))
    bt, k1, k2 = f.center, f.kiosk, "kiosk-bt-02"
    # tickets: 23/11 three HOTICH at 8 h, one DATDAI at 10 h; 22/11 two HOTICH at 14 h; one voided
    for minute in (5, 20, 40):
        event(store, bt, k1, "ticket_issued", local(23, 8, minute), number=f"A{minute:03d}", service="HOTICH")
    event(store, bt, k1, "ticket_issued", local(23, 10, 15), number="C001", service="DATDAI")
    event(store, bt, k1, "ticket_issued", local(22, 14, 1), number="A001", service="HOTICH")
    event(store, bt, k1, "ticket_issued", local(22, 14, 2), number="A002", service="HOTICH")
    event(store, bt, k2, "ticket_issued", local(30, 23, 30), number="A099", service="HOTICH")  # last evening
    event(
        store, bt, k2, "ticket_issued", local(1, 0, 30, month=12), number="A001", service="HOTICH"
    )  # December
    event(
        store,
        bt,
        k1,
        "ticket_voided",
        local(23, 8, 6),
        number="A006",
        service="HOTICH",
        reason="PrinterPaperOutError",
    )
    for day in (3, 4, 5, 6):
        event(
            store,
            f.other_center,
            f.other_kiosk,
            "ticket_issued",
            local(day, 9),
            number="A001",
            service="HOTICH",
        )
    for day in (3, 4):
        event(
            store, f.far_center, f.far_kiosk, "ticket_issued", local(day, 9), number="A001", service="HOTICH"
        )
    # look-ups and card reads
    for outcome, latency in (("found", 40.0), ("found", 60.0), ("not_found", 20.0)):
        event(store, bt, k1, "lookup", local(23, 9), outcome=outcome, source="camera", latency_ms=latency)
    for result, ms in (("ok", 800), ("ok", 1000), ("CardRemovedError", 300)):
        event(
            store,
            bt,
            k1,
            "card_read",
            local(23, 9, 30),
            result=result,
            authenticity="genuine",
            duration_ms=ms,
        )
    # kiosk ratings on a scale of 4: two satisfied of the center, two dissatisfied with reasons,
    # one of counter 2 (satisfied), one of the official cb-017 (very dissatisfied)
    for level, key, target, target_id, reasons in (
        (4, "very_satisfied", "center", None, []),
        (3, "satisfied", "center", None, []),
        (1, "very_dissatisfied", "center", None, ["long_wait", "staff_attitude"]),
        (2, "dissatisfied", "center", None, ["long_wait"]),
        (4, "very_satisfied", "counter", "2", []),
        (1, "very_dissatisfied", "official", "cb-017", ["staff_attitude"]),
    ):
        event(
            store,
            bt,
            k1,
            "rating",
            local(24, 11),
            level=level,
            scale=4,
            level_key=key,
            target_kind=target,
            target_id=target_id,
            reasons=reasons,
            criteria={},
        )
    # the queue: a ticket served at counter 2 by canbo01.bt, rated by phone (4 of 4)
    clock.now = local(24, 9)
    queue = Queue(store)
    setup_center(queue)
    officer = add_officers(store, 1)[0]
    ticket = issue(store, "A050", "HOTICH", day="2026-11-24", at=local(24, 9))
    queue.open_session(officer, "2", ["HOTICH"])
    clock.now = local(24, 9, 5)
    queue.call_next(officer)
    clock.now = local(24, 9, 15)
    served = queue.done(officer)
    assert queue.rate(served, 4, 4, "phone")
    assert ticket.number == "A050"
    # alarms: kiosk-bt-01's printer out of paper 25/11 08:00-10:00; kiosk-bt-02 offline 26/11 14:00-14:30
    store.alarms.raise_alarm(
        k1, "printer", "critical", device="printer", detail={"state": "paper_out"}, at=local(25, 8)
    )
    store.alarms.clear_alarm(k1, "printer", at=local(25, 10))
    store.alarms.raise_alarm(k2, "offline", "major", at=local(26, 14))
    store.alarms.clear_alarm(k2, "offline", at=local(26, 14, 30))
    clock.now = local(1, 12, month=12)  # the report is made on 1 December
    return f, Expected()


def push_services(
    store: Store, center: str, services: list[tuple[str, str, str, str]], *, target: str = "_center"
) -> int:
    """A configuration push with a ``services`` section of (code, prefix, name_vi, name_en), as the
    config page stores it (the target's whole body); its id."""
    body = {
        "services": [
            {"code": code, "prefix": prefix, "name_vi": vi, "name_en": en, "counters": []}
            for code, prefix, vi, en in services
        ]
    }
    return store.configs.record_push(Scope.everything(), center, target, body, None).id


def push_officials(
    store: Store, center: str, officials: list[tuple[str, str]], *, target: str = "_center"
) -> int:
    """A configuration push with an ``officials`` section of (id, name), as the config page stores it."""
    body = {"officials": [{"id": official_id, "name": name} for official_id, name in officials]}
    return store.configs.record_push(Scope.everything(), center, target, body, None).id


def usage_foreign_requests(f: Fleet) -> list[tuple[str, str, int]]:
    """What a manager of Bến Thành must be refused (404: we do not confirm it exists)."""
    other, far = f.other_center, f.far_center
    return [
        ("GET", f"/usage?center={other}", 404),
        ("GET", f"/usage?center={other}&format=json", 404),
        ("GET", f"/usage?center={far}", 404),
        ("GET", f"/usage/live?center={other}", 404),
        ("GET", f"/reports?center={other}", 404),
        ("GET", f"/reports/download?center={other}&month=2026-11&format=xlsx", 404),
        ("GET", f"/reports/download?center={other}&month=2026-11&format=csv", 404),
        ("GET", f"/reports/download?province={f.province}&month=2026-11&format=xlsx", 404),
        ("GET", f"/reports/download?center=province&province_id={f.province}&month=2026-11", 404),
        ("GET", f"/reports/download?province={f.other_province}&month=2026-11&format=csv", 404),
    ]


#: answers that are lists of the user's scope: nothing of another center may show in them
USAGE_OWN_LISTS = ["/usage", "/usage?format=json", "/reports"]
