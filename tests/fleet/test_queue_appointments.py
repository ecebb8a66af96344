"""Booked appointments in the queue (docs/queue.md "Appointments"), on SQLite and PostgreSQL: a booked
ticket whose time has come is called before walk-ins, before its time it waits like a walk-in or is
held (the center's rule), a late one is a walk-in; its wait runs from the booked time when the citizen
came early; the statistics count appointments apart; the rules are validated settings."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from common.errors import ValidationError
from fleet.queue import stats
from fleet.queue.engine import Queue
from fleet.store import Store
from tests.fleet.conftest import START, FakeClock
from tests.fleet.data import build
from tests.fleet.queue_data import CENTER, add_officers, issue, setup_center

#: START is 10:00 in Vietnam
VN = timedelta(hours=7)


@pytest.fixture
def queue(store: Store) -> Queue:
    build(store)
    q = Queue(store)
    setup_center(q)
    return q


def at(clock: FakeClock, hhmm: str) -> datetime:
    """Sets the store's clock to HH:MM Vietnam time of the test day."""
    hour, minute = (int(x) for x in hhmm.split(":"))
    clock.now = START.replace(hour=hour, minute=minute) - VN
    return clock.now


def test_a_due_appointment_goes_before_earlier_walk_ins_and_its_wait_runs_from_its_time(
    queue: Queue, store: Store, clock: FakeClock
) -> None:
    day = queue.today()
    officer = add_officers(store, 1)[0]
    queue.open_session(officer, "1", ["HOTICH"])
    at(clock, "10:00")
    issue(store, "A001", "HOTICH", day=day)
    at(clock, "10:05")  # early for 10:20
    booked = issue(store, "A002", "HOTICH", day=day, appointment_at="10:20")
    assert booked.booked and booked.appointment_at == START.replace(hour=10, minute=20) - VN
    at(clock, "10:06")
    issue(store, "A003", "HOTICH", day=day, priority=True)
    issue(store, "A004", "HOTICH", day=day)
    # 10:07: A002's time has not come (due from 10:15 with the default 5 minutes ahead): the priority
    # ticket, then the walk-in of 10:00
    at(clock, "10:07")
    session = queue.session_of(officer)
    assert session is not None
    assert [t.number for t in queue.waiting_for(session)] == ["A003", "A001", "A002", "A004"]
    called = queue.call_next(officer)
    assert called is not None and called.number == "A003"
    at(clock, "10:16")  # due: before the walk-in of 10:00 that waited longer, and the other walk-ins
    session = queue.session_of(officer)
    assert session is not None and [t.number for t in queue.waiting_for(session)][:1] == ["A002"]
    called = queue.call_next(officer)
    assert called is not None and called.number == "A002"
    call = queue.steps_of_ticket(booked.id)[1]
    assert call.kind == "called" and call.detail["waited_s"] == 0.0  # came early: not a wait yet
    assert call.detail["appointment_at"] == booked.appointment_at.isoformat()
    # a booked citizen who came a little late (within the 15 minutes) waits from the arrival
    at(clock, "10:20")
    late = issue(store, "A005", "HOTICH", day=day, appointment_at="10:10")
    assert late.booked
    at(clock, "10:23")
    called = queue.call_next(officer)
    assert called is not None and called.number == "A005"
    assert queue.steps_of_ticket(late.id)[1].detail["waited_s"] == 180.0
    at(clock, "10:30")
    assert [t.number for t in (queue.call_next(officer), queue.call_next(officer))] == ["A001", "A004"]  # type: ignore[union-attr]
    # the statistics: five arrivals, two appointments, their waits apart from the walk-ins'
    rows = stats.compute(queue, CENTER, day, day, "service", 1800, lang="vi", zone=queue.zone)
    row = next(r for r in rows if r.key == "HOTICH")
    assert (row.arrivals, row.appointments, row.walk_ins, row.appointments_late) == (5, 2, 3, 0)
    assert (row.appt_wait_n, row.appt_wait_sum_s, row.appt_wait_max_s) == (2, 180.0, 180.0)
    # walk-ins: A003 1 min, A001 30 min, A004 24 min
    assert row.walkin_wait_avg_s == pytest.approx((60 + 1800 + 1440) / 3)


def test_before_its_time_a_booked_ticket_waits_like_a_walk_in_or_is_held(
    queue: Queue, store: Store, clock: FakeClock
) -> None:
    day = queue.today()
    officer = add_officers(store, 1)[0]
    queue.open_session(officer, "2", ["HOTICH", "CHUNGTHUC"])
    at(clock, "10:00")
    issue(store, "A010", "HOTICH", day=day, appointment_at="11:00")
    at(clock, "10:01")
    issue(store, "B011", "CHUNGTHUC", day=day)
    # "wait" (the default): its ticket order came first, so it is called, an hour early
    at(clock, "10:02")
    called = queue.call_next(officer)
    assert called is not None and called.number == "A010"
    queue.done(officer)
    # "hold": not called before its time, even when its ticket is the oldest; listed last, with its time
    assert queue.update_settings(CENTER, appointment_early="hold").appointment_early == "hold"
    issue(store, "A012", "HOTICH", day=day, appointment_at="11:00")
    at(clock, "10:03")
    issue(store, "A013", "HOTICH", day=day)
    session = queue.session_of(officer)
    assert session is not None
    assert [t.number for t in queue.waiting_for(session)] == ["B011", "A013", "A012"]
    assert [t.number for t in (queue.call_next(officer), queue.call_next(officer))] == ["B011", "A013"]  # type: ignore[union-attr]
    assert queue.call_next(officer) is None  # only the held one waits: nobody is called
    at(clock, "10:55")  # due
    called = queue.call_next(officer)
    assert called is not None and called.number == "A012"
    assert queue.steps_of_ticket(called.id)[1].detail["waited_s"] == 0.0


def test_a_booking_printed_beyond_the_tolerance_is_a_walk_in_and_counted_apart(
    queue: Queue, store: Store, clock: FakeClock
) -> None:
    day = queue.today()
    queue.update_settings(CENTER, appointment_late_min=10)
    at(clock, "10:00")
    issue(store, "A001", "HOTICH", day=day)
    at(clock, "10:11")
    late = issue(store, "A002", "HOTICH", day=day, appointment_at="10:00")
    assert late.appointment_at is None and not late.booked
    issued = queue.steps_of_ticket(late.id)[0]
    assert "appointment_at" not in issued.detail and issued.detail["appointment_late"].startswith(day)
    officer = add_officers(store, 1)[0]
    queue.open_session(officer, "1", ["HOTICH"])
    assert [t.number for t in (queue.call_next(officer), queue.call_next(officer))] == ["A001", "A002"]  # type: ignore[union-attr]
    row = next(
        r
        for r in stats.compute(queue, CENTER, day, day, "day", 1800, lang="vi", zone=queue.zone)
        if r.key == day
    )
    assert (row.arrivals, row.appointments, row.appointments_late, row.walk_ins) == (2, 0, 1, 2)
    assert row.appt_wait_avg_s is None and row.walkin_wait_avg_s is not None


def test_a_transferred_appointment_is_ordered_like_any_transferred_ticket(
    queue: Queue, store: Store, clock: FakeClock
) -> None:
    day = queue.today()
    one, two = add_officers(store, 2)
    at(clock, "10:00")
    issue(store, "B001", "CHUNGTHUC", day=day)
    issue(store, "A002", "HOTICH", day=day, appointment_at="10:00")
    queue.open_session(one, "1", ["HOTICH"])
    called = queue.call_next(one)
    assert called is not None and called.number == "A002"
    moved = queue.transfer(one, to_service="CHUNGTHUC")
    assert moved.appointment_at is not None and not moved.booked
    queue.open_session(two, "3", ["CHUNGTHUC"])
    called = queue.call_next(two)  # B001 was issued at the same time but earlier (id): no jump ahead
    assert called is not None and called.number == "B001"


def test_the_appointment_rules_are_checked(queue: Queue) -> None:
    settings = queue.settings(CENTER)
    assert (settings.appointment_early, settings.appointment_ahead_min, settings.appointment_late_min) == (
        "wait", 5, 15
    )
    for bad in ({"appointment_early": "first"}, {"appointment_ahead_min": 61}, {"appointment_late_min": -1},
                {"appointment_late_min": "15"}):
        with pytest.raises(ValidationError):
            queue.update_settings(CENTER, **bad)
    changed = queue.update_settings(CENTER, appointment_ahead_min=0, appointment_late_min=240)
    assert (changed.appointment_ahead_min, changed.appointment_late_min) == (0, 240)


def test_an_impossible_day_is_a_walk_in_not_a_crash(queue: Queue, store: Store, clock: FakeClock) -> None:
    at(clock, "10:00")
    ticket = issue(store, "A001", "HOTICH", day="2026-02-30", appointment_at="10:00")
    assert ticket.appointment_at is None


def test_people_ahead_follow_the_call_order_of_appointments(
    queue: Queue, store: Store, clock: FakeClock
) -> None:
    """The phone page's "people ahead": a due booked ticket is ahead of every walk-in, a walk-in is
    behind every due one; in hold mode a booked ticket not due yet is ahead of nobody."""
    day = queue.today()
    at(clock, "10:00")
    walk_in = issue(store, "A001", "HOTICH", day=day)
    early = issue(store, "A002", "HOTICH", day=day, appointment_at="11:00")
    at(clock, "10:10")
    due = issue(store, "A003", "HOTICH", day=day, appointment_at="10:10")
    later = issue(store, "A004", "HOTICH", day=day)

    def ahead(ticket: object) -> int | None:
        found = queue.find(CENTER, day, ticket.number)  # type: ignore[attr-defined]
        assert found is not None
        return queue.position(found).ahead

    assert ahead(due) == 0
    assert (ahead(walk_in), ahead(early), ahead(later)) == (1, 2, 3)  # "wait": A002 in ticket order
    queue.update_settings(CENTER, appointment_early="hold")
    assert (ahead(walk_in), ahead(later)) == (1, 2)  # the held A002 is ahead of nobody
    officer = add_officers(store, 1)[0]
    queue.open_session(officer, "1", ["HOTICH"])
    session = queue.session_of(officer)
    assert session is not None
    assert [t.number for t in queue.waiting_for(session)] == ["A003", "A001", "A004", "A002"]
