"""A center's queue set up through the queue's own API, and tickets fed as the ingest will feed them."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta
from typing import Any

from contract.events import Event, TicketIssued
from contract.wire import now_iso
from fleet.queue.engine import Queue
from fleet.queue.hooks import on_ticket_issued
from fleet.queue.models import Ticket
from fleet.store import Store
from fleet.store.models import User

CENTER = "hcm-ben-thanh"
KIOSK = "kiosk-bt-01"
SERVICES = (
    ("HOTICH", "A", "Hộ tịch", "Civil status"),
    ("CHUNGTHUC", "B", "Chứng thực", "Certified copies"),
    ("DATDAI", "C", "Đất đai", "Land"),
)
_seq = itertools.count(1)


def setup_center(queue: Queue, counters: int = 3) -> None:
    for position, (code, prefix, vi, en) in enumerate(SERVICES):
        queue.set_service(CENTER, code, prefix, vi, en, position)
    plan = {"1": ["HOTICH"], "2": ["HOTICH", "CHUNGTHUC"], "3": ["CHUNGTHUC", "DATDAI"]}
    for i in range(1, counters + 1):
        code = str(i)
        queue.set_counter(
            CENTER, code, f"Quầy số {code}", plan.get(code, ["HOTICH", "CHUNGTHUC", "DATDAI"]), i
        )


def issue(
    store: Store,
    number: str,
    service: str,
    *,
    priority: bool = False,
    day: str,
    at: datetime | None = None,
    kiosk: str = KIOSK,
    appointment_at: str | None = None,
) -> Ticket:
    """A ``ticket_issued`` event as the kiosk journals it, handed to the hook the ingest will call
    (``appointment_at``: the booked ``HH:MM`` of an appointment's check-in)."""
    event = Event(
        uuid.uuid4().hex,
        next(_seq),
        "a" * 32,
        TicketIssued(number, service, priority, False, day, appointment_at=appointment_at),
        occurred_at=now_iso(at or store.db.now()),
    )
    ticket = on_ticket_issued(store, CENTER, kiosk, event)
    assert ticket is not None
    return ticket


def officer(store: Store, username: str) -> User:
    found = store.accounts.credentials(username)
    assert found is not None
    return found[0]


def add_officers(store: Store, count: int, prefix: str = "canbo") -> list[User]:
    from fleet.auth import hash_password
    from tests.fleet.data import CHEAP, PASSWORD

    password = hash_password(PASSWORD, CHEAP)
    out = []
    for i in range(1, count + 1):
        name = f"{prefix}{i:02d}.bt"
        if store.accounts.credentials(name) is None:
            store.accounts.add_user(
                name, password, "officer", center_id=CENTER, display_name=f"Cán bộ {i:02d}"
            )
        out.append(officer(store, name))
    return out


def queue_foreign_requests(f: Any) -> list[tuple[str, str, int]]:
    """The queue's routes with another center's id, for a manager of hcm-ben-thanh (test_web_http)."""
    other = f.other_center
    return [
        ("GET", f"/queue/{other}", 404),
        ("GET", f"/queue/{other}?format=csv", 404),
        ("GET", f"/queue/{other}?format=json&list=ratings", 404),
        ("POST", f"/queue/{other}/settings", 404),
        ("POST", "/counter/left/1", 403),  # a manager is no officer
    ]


def a_day_at_the_counters(store: Store, queue: Queue, clock: Any) -> str:
    """A day of Bến Thành's queue through the engine (``clock``: the store's FakeClock), whose figures
    the tests derive from the times below (target 30 minutes):

    - 08:00 A001-A004 (HOTICH) and B001 (CHUNGTHUC) taken; canbo.bt opens counter 1 (HOTICH),
      canbo01.bt counter 3 (CHUNGTHUC);
    - 08:05 counter 1 calls A001 (waited 5 min); 08:10 "next": A001 done (served 5 min), A002 called
      (waited 10); recalled twice, 08:12 no-show; A003 called (waited 12), 08:15 transferred to
      CHUNGTHUC (served 3 min); A004 left (marked by canbo.bt);
    - 08:40 counter 3 calls A003 first (it keeps its 08:00 issue time; waited 25 since its transfer
      at 08:15); 08:50 "next": A003 done (served 10), B001 called (waited 50: over the target);
      08:55 B001 done (served 5).

    Returns the day (center time)."""
    start = clock.now.replace(hour=1, minute=0, second=0, microsecond=0)  # 08:00 in Vietnam
    clock.now = start
    day = queue.today()
    for n in range(1, 5):
        issue(store, f"A{n:03d}", "HOTICH", day=day)
    issue(store, "B001", "CHUNGTHUC", day=day)
    ha = officer(store, "canbo.bt")
    other = add_officers(store, 1)[0]
    queue.open_session(ha, "1", ["HOTICH"])
    queue.open_session(other, "3", ["CHUNGTHUC"])

    def at(minutes: int) -> None:
        clock.now = start + timedelta(minutes=minutes)

    at(5)
    queue.call_next(ha)
    at(10)
    queue.call_next(ha)
    queue.recall(ha)
    queue.recall(ha)
    at(12)
    queue.no_show(ha)
    queue.call_next(ha)
    at(15)
    queue.transfer(ha, to_service="CHUNGTHUC")
    a004 = queue.find(CENTER, day, "A004")
    assert a004 is not None
    queue.mark_left(CENTER, a004.id, ha)
    at(40)
    queue.call_next(other)
    at(50)
    queue.call_next(other)
    at(55)
    queue.done(other)
    return day
