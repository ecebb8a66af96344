"""Events: idempotent on event_id, gaps per (kiosk, journal), PostgreSQL monthly partitions."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from fleet.store import Scope, Store
from fleet.store.models import EventRecord
from fleet.store.partitions import month_of, partition_name
from tests.fleet.conftest import FakeClock

ALL = Scope.everything()
JOURNAL = "c8c2cb7eff0f4f8d83ddc332ab35b33d"


@pytest.fixture
def one(store: Store) -> Store:
    store.registry.ensure_province("hcm", "TP. Hồ Chí Minh")
    store.registry.add_center("c1", "hcm", "Trung tâm 1")
    store.registry.add_kiosk("k1", "c1")
    store.registry.add_kiosk("k2", "c1")
    return store


def event(
    seq: int,
    at: datetime,
    *,
    journal: str = JOURNAL,
    kind: str = "ticket_issued",
    payload: dict | None = None,
    event_id: str | None = None,
) -> EventRecord:
    return EventRecord(
        event_id or uuid.uuid4().hex,
        journal,
        seq,
        kind,
        at,
        payload if payload is not None else {"service": "HOTICH", "number": f"A{seq:03d}"},
    )


def open_gaps(store: Store, kiosk: str = "k1") -> list[tuple[int, int]]:
    return [(g.first_seq, g.last_seq) for g in store.events.gaps(ALL, kiosk)]


def test_the_same_event_twice_is_stored_once(one: Store, clock: FakeClock) -> None:
    first = event(1, clock.now)
    assert one.events.insert_event("c1", "k1", first).inserted
    again = one.events.insert_event("c1", "k1", EventRecord(**{**first.__dict__, "replay": True}))
    assert not again.inserted
    assert one.events.count(ALL) == 1
    stored = one.events.get(ALL, first.event_id)
    assert stored is not None and stored.payload == first.payload and stored.replay is False
    assert one.events.get(Scope.center("c9"), first.event_id) is None


def test_a_jump_opens_a_gap_that_late_events_fill(one: Store, clock: FakeClock) -> None:
    for seq in (1, 2, 6):
        outcome = one.events.insert_event("c1", "k1", event(seq, clock.now))
    assert [(g.first_seq, g.last_seq, g.missing) for g in outcome.opened] == [(3, 5, 3)]
    assert open_gaps(one) == [(3, 5)]
    late = one.events.insert_event("c1", "k1", event(4, clock.now))
    assert late.filled and not late.opened
    assert open_gaps(one) == [(3, 3), (5, 5)]
    one.events.insert_event("c1", "k1", event(3, clock.now))
    one.events.insert_event("c1", "k1", event(5, clock.now))
    assert open_gaps(one) == []
    closed = one.events.gaps(ALL, "k1", open_only=False)
    assert sorted((g.first_seq, g.last_seq, g.closed_reason) for g in closed) == [
        (3, 3, "filled"),
        (4, 4, "filled"),
        (5, 5, "filled"),
    ]
    assert one.events.insert_event("c1", "k1", event(7, clock.now)).opened == ()


def test_gaps_are_per_journal_and_start_at_one(one: Store, clock: FakeClock) -> None:
    opened = one.events.insert_event("c1", "k1", event(4, clock.now)).opened
    assert [(g.first_seq, g.last_seq) for g in opened] == [(1, 3)]
    # a new journal (corruption recovery, factory reset) restarts seq at 1: no gap against the old one
    assert one.events.insert_event("c1", "k1", event(1, clock.now, journal="new-journal")).opened == ()
    assert one.events.insert_event("c1", "k2", event(1, clock.now)).opened == ()  # other kiosk, own count
    assert open_gaps(one) == [(1, 3)] and open_gaps(one, "k2") == []


def test_an_announced_drop_closes_its_range(one: Store, clock: FakeClock) -> None:
    one.events.insert_event("c1", "k1", event(1, clock.now))
    one.events.insert_event("c1", "k1", event(2002, clock.now))  # the outbox dropped 2..2001 unsent
    assert open_gaps(one) == [(2, 2001)]
    drop = event(
        2003, clock.now, kind="outbox_dropped", payload={"count": 1990, "first_seq": 2, "last_seq": 1991}
    )
    one.events.insert_event("c1", "k1", drop)
    assert open_gaps(one) == [(1992, 2001)]  # what the drop did not announce is still missing
    closed = [g for g in one.events.gaps(ALL, "k1", open_only=False) if g.closed_at]
    assert [(g.first_seq, g.last_seq, g.closed_reason) for g in closed] == [(2, 1991, "dropped")]


def test_an_unseen_seq_below_the_highest_outside_any_gap_is_flagged(one: Store, clock: FakeClock) -> None:
    one.events.insert_event("c1", "k1", event(1, clock.now))
    one.events.insert_event("c1", "k1", event(2, clock.now))
    odd = one.events.insert_event("c1", "k1", event(2, clock.now))  # same seq, another event_id
    assert odd.inserted and odd.out_of_order and not odd.filled


def test_recent_events_newest_first_and_scoped(one: Store, clock: FakeClock) -> None:
    for seq in range(1, 6):
        one.events.insert_event("c1", "k1", event(seq, clock.now + timedelta(seconds=seq)))
    recent = one.events.recent(ALL, "k1", limit=3)
    assert [e.seq for e in recent] == [5, 4, 3]
    assert one.events.recent(Scope.center("c2"), "k1") == []
    assert [e.seq for e in one.events.recent(ALL, "k1", kinds=["ticket_issued"], limit=None)] == [
        5,
        4,
        3,
        2,
        1,
    ]


def test_two_workers_inserting_the_same_events_store_each_once(one: Store, clock: FakeClock) -> None:
    """At-least-once delivery to a shared subscription: the same events reach two workers."""
    batch = [event(seq, clock.now) for seq in range(1, 41)]
    results: list[bool] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            for item in batch:
                inserted = one.events.insert_event("c1", "k1", item).inserted
                with lock:
                    results.append(inserted)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert results.count(True) == 40 and results.count(False) == 40
    assert one.events.count(ALL) == 40 and open_gaps(one) == []


def test_events_land_in_their_monthly_partition(pg_store: Store) -> None:
    one = pg_store
    one.registry.ensure_province("hcm", "TP. Hồ Chí Minh")
    one.registry.add_center("c1", "hcm", "Trung tâm 1")
    one.registry.add_kiosk("k1", "c1")
    # 23:30 on 31 Dec UTC is already January in Vietnam: partitions follow Vietnam's months
    new_year = datetime(2026, 12, 31, 18, 30, tzinfo=UTC)
    november = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
    far = datetime(2031, 5, 1, tzinfo=UTC)  # a kiosk clock far ahead: its partition is made on demand
    ids: dict[str, str] = {}
    for when in (november, new_year, far):
        record = event(len(ids) + 1, when)
        one.events.insert_event("c1", "k1", record)
        ids[record.event_id] = partition_name(month_of(when))
    assert set(ids.values()) == {"events_y2026m11", "events_y2027m01", "events_y2031m05"}
    with one.db.engine.connect() as conn:
        rows = conn.execute(text("SELECT event_id, tableoid::regclass::text FROM events")).all()
        kinds = conn.execute(text("SELECT relkind FROM pg_class WHERE relname = 'events'")).scalar()
    assert dict(rows) == ids
    assert kinds == "p"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_batchs_gaps_are_what_its_events_one_at_a_time_make(
    one: Store, clock: FakeClock, seed: int
) -> None:
    """The gaps are followed in memory for a whole batch and written at the end (two workers taking
    turns at a kiosk's events make half of them late): the gaps, their ranges, how they closed and
    each event's outcome are what the same events stored one at a time make, out of order, with
    repeats and announced losses, on two kiosks (kiosk k1 one at a time, k2 in batches)."""
    import random

    from fleet.store.events import EventInsert

    rng = random.Random(seed)
    seqs = list(range(1, 61))
    rng.shuffle(seqs)
    seqs = seqs[:45] + rng.sample(seqs[:45], 5)  # 15 never come, 5 come twice
    plan: list[tuple[int, str, dict]] = []
    for seq in seqs:
        plan.append((seq, "ticket_issued", {"service": "HOTICH", "number": f"A{seq:03d}"}))
        if rng.random() < 0.1:  # a loss announced, over a range that may hold events that did come
            first = rng.randint(1, 55)
            plan.append((100 + len(plan), "outbox_dropped",
                         {"count": 3, "first_seq": first, "last_seq": first + rng.randint(0, 4)}))

    def records() -> list[EventRecord]:
        made = []
        for seq, kind, payload in plan:
            clock.advance(seconds=1)
            made.append(event(seq, clock.now, kind=kind, payload=payload))
        return made

    alone = [one.events.insert_event("c1", "k1", r) for r in records()]
    together = []
    batched = records()
    at = 0
    while at < len(batched):
        size = rng.randint(1, 12)
        chunk = [EventInsert("c1", "k2", r, r.occurred_at) for r in batched[at : at + size]]
        together.extend(one.events.insert_events(chunk))
        at += size

    def shape(outcome: object) -> tuple:
        assert not isinstance(outcome, Exception)
        return (
            outcome.inserted,  # type: ignore[attr-defined]
            tuple((g.first_seq, g.last_seq) for g in outcome.opened),  # type: ignore[attr-defined]
            outcome.filled,  # type: ignore[attr-defined]
            outcome.out_of_order,  # type: ignore[attr-defined]
        )

    assert [shape(o) for o in together] == [shape(o) for o in alone]

    def gaps(kiosk: str) -> list[tuple]:
        found = one.events.gaps(ALL, kiosk, open_only=False)
        return sorted((g.first_seq, g.last_seq, g.closed_reason, g.closed_at is None) for g in found)

    assert gaps("k2") == gaps("k1")
    assert gaps("k1"), "the plan made no gap: the test tests nothing"
    # and what is still open is what never came, up to the highest seq, less the announced losses
    came = {seq for seq, _, _ in plan}  # the announcements are events of the journal too
    dropped = {
        n for _, kind, p in plan if kind == "outbox_dropped" for n in range(p["first_seq"], p["last_seq"] + 1)
    }
    top = max(came)
    missing = [n for n in range(1, top + 1) if n not in came and n not in dropped]
    runs: list[tuple[int, int]] = []
    for n in missing:
        if runs and runs[-1][1] == n - 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    assert open_gaps(one, "k1") == runs and open_gaps(one, "k2") == runs
