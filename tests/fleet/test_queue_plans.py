"""A counter's "next" and its waiting list read the queue in call order from an index (migration 0010,
docs/queue.md "Measured"), on SQLite and PostgreSQL: no query on the path sorts the waiting tickets,
whose number grows with the queue (with 1,000 waiting the sort made "next" cost ~50 ms of server time).

Plans, not times: SQLite's ``EXPLAIN QUERY PLAN`` names the index and would say ``USE TEMP B-TREE FOR
ORDER BY`` for a sort. PostgreSQL picks by cost, and on a test's few rows a sequential scan is cheapest;
with sequential and bitmap scans and sorts priced out (``enable_*``), it still has to sort when no
index gives the order, so a plan without a ``Sort`` node says an index gives it."""

from __future__ import annotations

import pytest

from fleet.queue.engine import Queue
from fleet.store import Store
from tests.fleet.conftest import FakeClock
from tests.fleet.data import build
from tests.fleet.plans import Statement, plan_of, statements
from tests.fleet.queue_data import CENTER, issue, officer, setup_center

#: PostgreSQL: what is left when no index gives the order is a Sort (see the module doc)
NO_SHORTCUTS = ("enable_seqscan = off", "enable_bitmapscan = off", "enable_sort = off")


def _ticket_reads_in_order(seen: list[Statement]) -> list[Statement]:
    """The reads of waiting tickets in call order (the candidates of each class) among ``seen``."""
    return [s for s in seen if s.where().startswith("queue_tickets ") and " ORDER BY " in s.where()]


def _expected_index(statement: Statement) -> str:
    by_class = "queue_tickets.priority IS " in statement.where()  # priority, ordinary; else due, held
    return "ix_queue_tickets_call_order" if by_class else "ix_queue_tickets_booked_order"


def _plan(queue: Queue, statement: Statement) -> list[str]:
    return plan_of(queue.db, statement, settings=NO_SHORTCUTS if queue.db.is_postgres else ())


@pytest.mark.parametrize("early", ["wait", "hold"])
def test_next_and_the_waiting_list_read_the_queue_in_call_order_from_an_index(
    store: Store, clock: FakeClock, early: str
) -> None:
    build(store)
    queue = Queue(store)
    setup_center(queue)
    queue.update_settings(CENTER, appointment_early=early)
    day = queue.today()
    # every class, of three services: walk-ins, priority, booked for 12:00 (the clock says 10:00: not due)
    for n in range(1, 13):
        service = ("HOTICH", "CHUNGTHUC", "DATDAI")[n % 3]
        booked = "12:00" if n % 5 == 0 else None
        issue(store, f"A{n:03d}", service, day=day, priority=n % 4 == 0, appointment_at=booked)
        clock.advance(seconds=30)
    person = officer(store, "canbo.bt")
    queue.open_session(person, "2", ["HOTICH", "CHUNGTHUC"])
    with statements(store.db) as seen:
        called = queue.call_next(person)
        session = queue.session_of(person)
        assert session is not None
        listed = queue.waiting_for(session)
    assert called is not None and listed  # the queries below found tickets (not an empty shortcut)
    reads = _ticket_reads_in_order(seen)
    # next: due, priority, ordinary; the list: the same and, in hold mode, the booked ones not due yet
    kinds = 7 if early == "hold" else 6
    assert len(reads) == kinds, [r.where() for r in reads]
    for read in reads:
        plan = _plan(queue, read)
        index = _expected_index(read)
        assert any(index in line for line in plan), (read.where(), plan)
        if queue.db.is_postgres:
            assert not any("Sort" in line for line in plan), (read.where(), plan)
        else:
            assert not any("TEMP B-TREE" in line for line in plan), (read.where(), plan)
