"""A counter's "next" and its waiting list read the queue in call order from an index (migration 0010,
docs/queue.md "Measured"), on SQLite and PostgreSQL: no query on the path sorts the waiting tickets,
whose number grows with the queue (with 1,000 waiting the sort made "next" cost ~50 ms of server time).
The hall display's latest calls and a service's pace read today's steps and the week's (migration
0012), never the center's history, which grows every day (a year of it made the display ~8 times
slower), and the open counters come from the index of the sessions not closed.

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


def _latest_step_reads(seen: list[Statement]) -> list[Statement]:
    return [s for s in seen if s.where().startswith("queue_steps ") and " LIMIT " in s.where()]


def test_the_display_and_the_pace_read_today_and_the_week_not_the_history(
    store: Store, clock: FakeClock
) -> None:
    build(store)
    queue = Queue(store)
    setup_center(queue)
    person = officer(store, "canbo.bt")
    for days_later in (0, 22, 8):  # a month ago, last week, today: three calls and services each
        clock.advance(days=days_later)
        day = queue.today()
        for n in range(1, 4):
            issue(store, f"A{n:03d}", "HOTICH", day=day)
        queue.open_session(person, "2", ["HOTICH", "CHUNGTHUC"])
        for _ in range(3):
            queue.call_next(person)  # finishes the one before
            clock.advance(minutes=5)
        queue.done(person)
        queue.close(person)  # the sessions of past days stay, closed
    queue.open_session(person, "2", ["HOTICH", "CHUNGTHUC"])
    with statements(store.db) as seen:
        board = queue.board(CENTER)
        paces = queue.paces(CENTER)
    assert [c.number for c in board.recent] == ["A003", "A002", "A001"]  # today's
    assert paces["HOTICH"].service_s == 300.0 and paces["HOTICH"].open_counters == 1
    reads = _latest_step_reads(seen)
    board_reads = [r for r in reads if "queue_steps.day = " in r.where()]
    pace_reads = [r for r in reads if "queue_steps.service = " in r.where()]
    # three services, a read per kind (done, transferred) each
    assert len(board_reads) == 1 and len(pace_reads) == 6, [r.where() for r in reads]
    sessions = [s for s in seen if s.where().startswith("queue_sessions ") and "state = " in s.where()]
    assert sessions, [s.where() for s in seen]
    if queue.db.is_postgres:
        for read in board_reads:
            lines = plan_of(queue.db, read, settings=NO_SHORTCUTS)
            assert any("Index Scan Backward using ix_queue_steps_day_order" in line for line in lines), lines
            assert any("Index Cond" in line and "(day)::text = " in line for line in lines), lines
            assert not any("Sort" in line for line in lines), lines
        for read in pace_reads:
            lines = plan_of(queue.db, read, settings=NO_SHORTCUTS[:2])
            # the newest of the week, backwards by time (the time in its Index Cond), no sort: by
            # (center, service, kind, at) or, on a test's few rows, (center, at) filtering the rest
            assert any("Index Scan Backward using" in line for line in lines), lines
            assert any("Index Cond" in line and "at >= " in line for line in lines), lines
            assert not any("ix_queue_steps_center_id_id" in line for line in lines), lines
            assert not any("Sort" in line for line in lines), lines
        for read in sessions:
            lines = plan_of(queue.db, read, settings=NO_SHORTCUTS)
            assert any("using uq_queue_sessions_open_counter" in line for line in lines), lines
    else:
        for read in board_reads:  # today's by day, or (on a test's few rows) today's calls by time
            plan = _plan(queue, read)
            assert plan[0] in (
                "SEARCH queue_steps USING INDEX ix_queue_steps_day_order (center_id=? AND day=?)",
                "SEARCH queue_steps USING INDEX ix_queue_steps_center_id_kind_at"
                " (center_id=? AND kind=? AND at>?)",
            ), plan
        for read in pace_reads:  # a range on time, read newest first: no sort
            assert _plan(queue, read) == [
                "SEARCH queue_steps USING INDEX ix_queue_steps_service_kind_at"
                " (center_id=? AND service=? AND kind=? AND at>?)",
            ]
        for read in sessions:
            assert _plan(queue, read) == [
                "SEARCH queue_sessions USING INDEX uq_queue_sessions_open_counter (center_id=?)"
            ]


def test_the_statistics_read_their_range_of_days_not_the_history(store: Store, clock: FakeClock) -> None:
    """The manager's page and the reports read the steps of their range by time (migration 0013), not
    every step the center ever had (with a year of history the statistics of today took ~28 times as
    long on SQLite, docs/queue.md "A long history")."""
    from fleet.queue.stats import compute_groups

    build(store)
    queue = Queue(store)
    setup_center(queue)
    person = officer(store, "canbo.bt")
    for days_later in (0, 30):  # a month ago and today: three tickets called and served each
        clock.advance(days=days_later)
        for n in range(1, 4):
            issue(store, f"A{n:03d}", "HOTICH", day=queue.today())
        queue.open_session(person, "2", ["HOTICH"])
        for _ in range(3):
            queue.call_next(person)
            clock.advance(minutes=5)
        queue.done(person)
        queue.close(person)
    today = queue.today()
    with statements(store.db) as seen:
        rows = compute_groups(queue, CENTER, today, today, ("service",), 900.0, lang="vi", zone=queue.zone)
    assert [(r.key, r.arrivals, r.served) for r in rows["service"]] == [("HOTICH", 3, 3)]  # today's only
    reads = [s for s in seen if s.where().startswith("queue_steps ") and "queue_steps.at < " in s.where()]
    assert len(reads) == 1, [s.where() for s in seen]
    plan = plan_of(queue.db, reads[0], settings=NO_SHORTCUTS if queue.db.is_postgres else ())
    if queue.db.is_postgres:  # in the index's order: no sort
        assert any("Index Scan using ix_queue_steps_center_at" in line for line in plan), plan
        assert any("Index Cond" in line and "at >= " in line and "at < " in line for line in plan), plan
        assert not any("Sort" in line for line in plan), plan
    else:
        range_read = "SEARCH queue_steps USING INDEX ix_queue_steps_center_at (center_id=? AND at>? AND at<?)"
        assert plan == [range_read]
