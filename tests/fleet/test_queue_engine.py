"""The queue engine on the real store, SQLite and PostgreSQL: a ticket's life, the call order, the
counters' sessions, transfers, ratings, statistics, the expected wait, and counters calling at once."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest

from contract.queue import QueueEvent
from fleet.queue import stats
from fleet.queue.engine import Queue
from fleet.queue.models import QueueError
from fleet.queue.publisher import queue_event, queue_stats
from fleet.store import Store
from tests.fleet.conftest import FakeClock
from tests.fleet.data import build
from tests.fleet.queue_data import CENTER, add_officers, issue, officer, setup_center


@pytest.fixture
def queue(store: Store) -> Queue:
    build(store)
    q = Queue(store)
    setup_center(q)
    return q


def test_a_tickets_life_is_recorded_step_by_step(queue: Queue, store: Store, clock: FakeClock) -> None:
    day = queue.today()
    a1 = issue(store, "A001", "HOTICH", day=day)
    issue(store, "A002", "HOTICH", day=day)
    assert issue(store, "A001", "HOTICH", day=day).id == a1.id  # a redelivered event: the same ticket
    ha = officer(store, "canbo.bt")
    session = queue.open_session(ha, "1", ["HOTICH"])
    assert session.counter == "1" and session.state == "open"
    clock.advance(minutes=4)
    called = queue.call_next(ha)
    assert called is not None and called.number == "A001" and called.state == "called"
    assert queue.position(queue.find(CENTER, day, "A002")).ahead == 0  # type: ignore[arg-type]
    with pytest.raises(QueueError) as refused:  # a no-show only after max_recalls (2) recalls
        queue.no_show(ha)
    assert refused.value.key == "queue.error.recall_first"
    clock.advance(seconds=30)
    assert queue.recall(ha).calls == 2
    clock.advance(seconds=20)
    queue.start(ha)
    clock.advance(minutes=5)
    done = queue.done(ha)
    assert done.state == "done" and done.finished_at == clock.now
    kinds = [s.kind for s in queue.steps_of_ticket(a1.id)]
    assert kinds == ["issued", "called", "recalled", "serving", "done"]
    call, finish = queue.steps_of_ticket(a1.id)[1], queue.steps_of_ticket(a1.id)[-1]
    assert call.detail["waited_s"] == 240.0 and call.counter == "1" and call.officer == "canbo.bt"
    assert finish.detail["served_s"] == 300.0  # from "start" (it was pressed), not from the call
    # the contract's events: one per step, seq 1..n without a gap, every one parses
    steps = queue.steps_since(CENTER, 0)
    assert [s.seq for s in steps] == list(range(1, len(steps) + 1))
    for step in steps:
        event = queue_event(step, queue.ticket(CENTER, step.ticket_id) if step.ticket_id else None)
        assert QueueEvent.parse(event.to_payload()) == event
    # no-show after two recalls; then a break, and back
    a2 = queue.call_next(ha)
    assert a2 is not None and a2.number == "A002"
    queue.recall(ha)
    queue.recall(ha)
    assert queue.no_show(ha).state == "no_show"
    assert queue.pause(ha).state == "break"
    with pytest.raises(QueueError):
        queue.call_next(ha)
    assert queue.resume(ha).state == "open"
    assert queue.call_next(ha) is None  # nobody waits
    queue.close(ha)
    assert queue.session_of(ha) is None


def test_call_order_priority_first_or_interleaved_and_longest_wait(
    queue: Queue, store: Store, clock: FakeClock
) -> None:
    day = queue.today()
    for number, service, priority in (
        ("A001", "HOTICH", False),
        ("B001", "CHUNGTHUC", False),
        ("A002", "HOTICH", True),
        ("B002", "CHUNGTHUC", False),
        ("A003", "HOTICH", False),
        ("B003", "CHUNGTHUC", True),
        ("A004", "HOTICH", False),
    ):
        issue(store, number, service, priority=priority, day=day)
        clock.advance(seconds=10)
    ha = officer(store, "canbo.bt")
    queue.open_session(ha, "2", ["HOTICH", "CHUNGTHUC"])
    first = [queue.call_next(ha) for _ in range(4)]
    # priority first (A002, B003), then the longest wait across both services (A001, then B001)
    assert [t.number for t in first if t] == ["A002", "B003", "A001", "B001"]
    queue.done(ha)
    queue.close(ha)
    # interleaved: one priority ticket in every 3 calls
    queue.update_settings(CENTER, priority_mode="interleave", priority_every=3)
    for i, priority in enumerate([True, True, False, False, False, False, False], start=10):
        issue(store, f"C{i:03d}", "DATDAI", priority=priority, day=day)
        clock.advance(seconds=5)
    queue.open_session(ha, "3", ["DATDAI"])
    order = [queue.call_next(ha) for _ in range(7)]
    assert [bool(t and t.priority) for t in order] == [False, False, True, False, False, True, False]


def test_transfer_keeps_the_issue_time_and_strict_pulling_deals_tickets(
    queue: Queue, store: Store, clock: FakeClock
) -> None:
    day = queue.today()
    ha, nam = officer(store, "canbo.bt"), add_officers(store, 1)[0]
    issue(store, "A001", "HOTICH", day=day)
    clock.advance(minutes=1)
    for n in range(1, 4):
        issue(store, f"B{n:03d}", "CHUNGTHUC", day=day)
        clock.advance(minutes=1)
    queue.open_session(ha, "1", ["HOTICH"])
    queue.open_session(nam, "3", ["CHUNGTHUC"])
    assert queue.call_next(ha).number == "A001"  # type: ignore[union-attr]
    moved = queue.transfer(ha, to_service="CHUNGTHUC")
    assert moved.state == "waiting" and moved.service == "CHUNGTHUC" and moved.first_service == "HOTICH"
    assert queue.call_next(nam).number == "A001"  # type: ignore[union-attr]  # issued first: called first
    sent = queue.transfer(nam, to_counter="1")  # to one counter: only it calls the ticket
    assert sent.target_counter == "1"
    assert queue.call_next(nam).number == "B001"  # type: ignore[union-attr]
    assert queue.call_next(ha).number == "A001"  # type: ignore[union-attr]
    transfers = [s for s in queue.steps_since(CENTER, 0) if s.kind == "transferred"]
    assert [(s.detail["to_service"], s.detail["to_counter"]) for s in transfers] == [
        ("CHUNGTHUC", None),
        (None, "1"),
    ]
    queue.done(ha)
    queue.done(nam)
    # strict pulling: each new ticket of a service two counters serve is dealt to one of them
    queue.update_settings(CENTER, pulling="strict")
    queue.close(ha)
    queue.open_session(ha, "2", ["CHUNGTHUC"])
    dealt = [issue(store, f"B{n:03d}", "CHUNGTHUC", day=day).assigned_counter for n in range(10, 14)]
    assert sorted(dealt) == ["2", "2", "3", "3"]  # type: ignore[type-var]
    mine = {t.number for t in queue.waiting_for(queue.session_of(ha))}  # type: ignore[arg-type]
    assert {t.number for t in queue.tickets(CENTER, day) if t.assigned_counter == "3"}.isdisjoint(mine)
    queue.pause(nam)  # a counter that stops gives its dealt tickets back to every counter of the service
    assert all(t.assigned_counter != "3" for t in queue.tickets(CENTER, day) if t.state == "waiting")


def test_tickets_of_several_centers_enter_in_one_write_of_a_fixed_number_of_statements(
    queue: Queue, store: Store, clock: FakeClock
) -> None:
    """An ingest batch's tickets of every center in one write (``Queue.issue_centers``): each center's
    queue is what ticket by ticket gives (steps 1..n in print order, a ticket printed twice queued
    once, the first print winning, a service not described yet known by its code, strict pulling
    dealing this write's own tickets evenly), and the write's statements do not grow with the centers
    or the tickets (a write per center cost ~8 round trips each)."""
    from sqlalchemy import event

    from fleet.queue.models import Printed
    from tests.fleet.data import Fleet

    f = Fleet()
    day = queue.today()
    nam = add_officers(store, 1)[0]
    queue.update_settings(CENTER, pulling="strict")
    queue.open_session(officer(store, "canbo.bt"), "2", ["CHUNGTHUC"])
    queue.open_session(nam, "3", ["CHUNGTHUC"])
    issue(store, "B001", "CHUNGTHUC", day=day)  # stored before: dealt to one of the two already
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    def printed(number: str, service: str, kiosk: str) -> Printed:
        clock.advance(seconds=5)
        return Printed(number, service, day=day, issued_at=clock.now, kiosk_id=kiosk, source="online")

    batch = {
        CENTER: [printed(f"B{n:03d}", "CHUNGTHUC", "kiosk-bt-01") for n in range(1, 6)]
        + [printed("B003", "CHUNGTHUC", "kiosk-bt-02")],  # B001 stored before, B003 printed twice
        f.other_center: [printed("A001", "HOTICH", "kiosk-tdm-01"), printed("X001", "NEW", "kiosk-tdm-02")],
        f.far_center: [printed("A001", "HOTICH", "kiosk-hk-01")],
    }
    for center in (f.other_center, f.far_center):
        queue.settings(center)  # a center's first write makes its queue's settings row: not counted here
    event.listen(store.db.engine, "before_cursor_execute", seen)
    try:
        done = queue.issue_centers(batch)
    finally:
        event.remove(store.db.engine, "before_cursor_execute", seen)
    assert [(t.number, new) for t, new in done[CENTER]] == [
        ("B001", False), ("B002", True), ("B003", True), ("B004", True), ("B005", True), ("B003", False)
    ]
    assert done[CENTER][5][0].kiosk_id == "kiosk-bt-01"  # the first print wins
    dealt = Counter(t.assigned_counter for t in queue.tickets(CENTER, day))
    assert dealt == {"2": 3, "3": 2} or dealt == {"2": 2, "3": 3}, dealt  # 5 tickets, one more at most
    for center, numbers in ((CENTER, ["B001", "B002", "B003", "B004", "B005"]),
                            (f.other_center, ["A001", "X001"]), (f.far_center, ["A001"])):
        assert [t.number for t in queue.tickets(center, day)] == numbers
        steps = queue.steps_since(center, 0)
        assert [s.seq for s in steps] == list(range(1, len(steps) + 1))
        assert [s.number for s in steps if s.kind == "issued"] == numbers
    assert "NEW" in {s.code for s in queue.services(f.other_center)}
    # lock + settings, tickets named, services known, open sessions and loads (strict pulling), the new
    # service, tickets, steps, step counters, and SQLite's BEGIN
    assert len(statements) <= 10, "\n".join(s[:90] for s in statements)


def test_offline_numbers_enter_the_queue_by_the_time_they_were_printed(
    queue: Queue, store: Store, clock: FakeClock
) -> None:
    day = queue.today()
    printed_offline = clock.now
    clock.advance(minutes=10)
    issue(store, "A001", "HOTICH", day=day)  # online, printed now
    late = issue(store, "A820", "HOTICH", day=day, at=printed_offline, kiosk="kiosk-bt-02")  # reported late
    assert late.source == "offline" and late.kiosk_id == "kiosk-bt-02"
    ha = officer(store, "canbo.bt")
    queue.open_session(ha, "1", ["HOTICH"])
    assert queue.call_next(ha).number == "A820"  # type: ignore[union-attr]  # it waited longest


def test_expected_wait_is_unknown_without_history_then_follows_the_pace(
    queue: Queue, store: Store, clock: FakeClock
) -> None:
    day = queue.today()
    ha = officer(store, "canbo.bt")
    for n in range(1, 9):
        issue(store, f"A{n:03d}", "HOTICH", day=day)
    last = queue.find(CENTER, day, "A008")
    assert last is not None
    assert queue.position(last).expected_wait_min is None  # no counter open, no history: unknown
    queue.open_session(ha, "1", ["HOTICH"])
    for _ in range(3):
        queue.call_next(ha)
        clock.advance(minutes=3)
    queue.done(ha)
    position = queue.position(last)
    assert (
        position.pace is not None and position.pace.service_s == 180.0 and position.pace.per_person_s == 180.0
    )
    assert position.ahead == 4 and position.expected_wait_min == 12
    wire = queue_stats(queue, CENTER).service("HOTICH")
    assert wire is not None and wire.waiting == 5 and wire.open_counters == 1 and wire.expected_wait_min == 15
    queue.pause(ha)
    assert queue.position(last).expected_wait_min is None  # nobody at a counter: unknown again


def test_ratings_tie_to_the_officer_who_served_and_count_once(queue: Queue, store: Store) -> None:
    day = queue.today()
    ticket = issue(store, "A001", "HOTICH", day=day)
    ha = officer(store, "canbo.bt")
    queue.open_session(ha, "1", ["HOTICH"])
    with pytest.raises(QueueError):
        queue.rate(ticket, 4, 4, "phone")  # not served yet
    queue.call_next(ha)
    done = queue.done(ha)
    assert queue.rate(done, 4, 4, "phone") is True
    assert queue.rate(done, 1, 4, "phone") is False  # one tap per ticket
    assert queue.rate(done, 3, 5, "kiosk", event_id="e" * 32) is True
    assert queue.rate(done, 3, 5, "kiosk", event_id="e" * 32) is False
    summary = stats.ratings(queue, CENTER, day, day, zone=queue.zone)
    assert [(r.label, r.count, r.by_via) for r in summary] == [("Phạm Thu Hà", 2, {"phone": 1, "kiosk": 1})]
    assert summary[0].average == 75.0 and summary[0].satisfied_share == 0.5  # 3 of 5 is "neutral"


def test_statistics_per_service_counter_officer_hour(queue: Queue, store: Store, clock: FakeClock) -> None:
    day = queue.today()
    ha = officer(store, "canbo.bt")
    for n in range(1, 5):
        issue(store, f"A{n:03d}", "HOTICH", day=day)
    queue.open_session(ha, "1", ["HOTICH"])
    clock.advance(minutes=40)  # over the 30-minute target
    queue.call_next(ha)
    clock.advance(minutes=10)
    queue.call_next(ha)  # finishes the first (10 minutes of service)
    clock.advance(minutes=2)
    queue.recall(ha)
    queue.recall(ha)
    queue.no_show(ha)
    queue.call_next(ha)
    queue.transfer(ha, to_service="CHUNGTHUC")
    queue.mark_left(CENTER, queue.find(CENTER, day, "A004").id)  # type: ignore[union-attr]
    rows = {
        r.key: r for r in stats.compute(queue, CENTER, day, day, "service", 1800, lang="vi", zone=queue.zone)
    }
    a = rows["HOTICH"]
    assert (a.arrivals, a.called, a.served, a.no_shows, a.transfers, a.left, a.recalls) == (
        4,
        3,
        1,
        1,
        1,
        1,
        2,
    )
    assert a.wait_n == 3 and a.wait_max_s == 52 * 60 and a.wait_over_target == 3
    assert a.service_avg_s == (600 + 0) / 2
    by_officer = stats.compute(queue, CENTER, day, day, "officer", 1800, lang="vi", zone=queue.zone)
    assert [(r.label, r.served, r.no_shows) for r in by_officer] == [("Phạm Thu Hà", 1, 1)]
    by_hour = stats.compute(queue, CENTER, day, day, "hour", 1800, lang="vi", zone=queue.zone)
    assert sum(r.arrivals for r in by_hour) == 4 and all("–" in r.label for r in by_hour)


def test_two_counters_calling_at_once_never_get_the_same_ticket(queue: Queue, store: Store) -> None:
    """5 counters, 1,000 tickets, as fast as they can, from 5 threads on one store."""
    day = queue.today()
    for n in range(1, 1001):
        issue(
            store,
            f"A{n:03d}" if n < 800 else f"B{n - 799:03d}",
            "HOTICH" if n < 800 else "CHUNGTHUC",
            day=day,
        )
    officers = add_officers(store, 5)
    for i, person in enumerate(officers, start=1):
        queue.set_counter(CENTER, f"9{i}", f"Quầy 9{i}", ["HOTICH", "CHUNGTHUC"])
        queue.open_session(person, f"9{i}", ["HOTICH", "CHUNGTHUC"])
    called: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(person: object) -> None:
        try:
            while True:
                ticket = queue.call_next(person)  # type: ignore[arg-type]
                if ticket is None:
                    return
                with lock:
                    called.append(ticket.number)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in officers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    assert errors == []
    assert len(called) == 1000 and Counter(called).most_common(1)[0][1] == 1
    states = Counter(t.state for t in queue.tickets(CENTER, day))
    assert states == {"done": 1000}  # the last "next" of each counter finished its ticket and found nobody
    calls = [s for s in queue.steps_since(CENTER, 0, limit=10_000) if s.kind == "called"]
    assert len(calls) == 1000 and len({s.ticket_id for s in calls}) == 1000
    seqs = [s.seq for s in queue.steps_since(CENTER, 0, limit=10_000)]
    assert seqs == list(range(1, len(seqs) + 1))


def test_a_past_day_is_not_called(queue: Queue, store: Store, clock: FakeClock) -> None:
    yesterday = queue.today(clock.now - timedelta(days=1))
    issue(store, "A001", "HOTICH", day=yesterday, at=clock.now - timedelta(days=1))
    ha = officer(store, "canbo.bt")
    queue.open_session(ha, "1", ["HOTICH"])
    assert queue.call_next(ha) is None


def test_a_kiosks_rating_through_the_ingest_is_tied_to_the_ticket_it_names(
    queue: Queue, store: Store, clock: FakeClock
) -> None:
    """The ingest's batch hands the queue's hooks the typed events it read: a ticket printed at a kiosk
    enters the queue, and the kiosk's rating of it (the ticket's QR scanned) counts for who served it,
    once, a redelivery of the same rating included."""
    import uuid

    from contract.events import Event, Rating, TicketIssued
    from contract.wire import now_iso
    from fleet.ingest import handlers, plugins
    from fleet.ingest.process import Incoming, Processor
    from fleet.queue import ingest_hooks

    plugins.load()
    day = queue.today()
    root = f"motcua/v1/{CENTER}/kiosk-bt-01/event"
    journal = uuid.uuid4().hex
    ticket = TicketIssued("A001", "HOTICH", day=day)
    printed = Event(uuid.uuid4().hex, 1, journal, ticket, now_iso(clock.now), False)
    p = Processor(store)
    assert [r.hook_errors for r in p.handle_batch([
        Incoming(f"{root}/ticket_issued", printed.to_payload(), clock.now)
    ])] == [0]
    ha = officer(store, "canbo.bt")
    queue.open_session(ha, "1", ["HOTICH"])
    queue.call_next(ha)
    queue.done(ha)
    rating = Rating(4, 4, "satisfied", "ticket", f"{CENTER}/{day}/A001")
    rated = Event(uuid.uuid4().hex, 2, journal, rating, now_iso(clock.now), False).to_payload()
    results = p.handle_batch([Incoming(f"{root}/rating", rated, clock.now)] * 2)
    assert [(r.outcome, r.hook_errors) for r in results] == [("stored", 0), ("duplicate", 0)]
    summary = stats.ratings(queue, CENTER, day, day, zone=queue.zone)
    assert [(r.label, r.count, r.by_via) for r in summary] == [("Phạm Thu Hà", 1, {"kiosk": 1})]
    assert ingest_hooks.on_ratings in handlers._batch_handlers["rating"]
