"""The ingest's batches (``Processor.handle_batch``: many messages in one store transaction), on SQLite
and PostgreSQL: a batch stores exactly what the same messages one by one store, a failing message undoes
only itself, a store error undoes the whole batch (nothing acknowledged, tried again), and two workers
with overlapping batches never deadlock on the kiosks' rows."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, text

from common.errors import StoreError
from contract.events import Event, payload_from_data
from contract.status import Hardware, Status
from contract.wire import now_iso
from fleet.ingest.process import Incoming, Processor, Result
from fleet.store import Scope, Store
from fleet.store.partitions import HEALTH
from fleet.store.schema import health_samples
from tests.fleet.conftest import FakeClock
from tests.fleet.test_ingest_process import beat, birth

ALL = Scope.everything()
C, OTHER = "hcm-ben-thanh", "hcm-thu-duc"
BATCHED, SINGLE = "kiosk-bt-01", "kiosk-bt-02"
MANY = tuple(f"kiosk-bt-{n:02d}" for n in range(3, 13))


@pytest.fixture
def fleet(store: Store) -> Store:
    store.registry.ensure_province("hcm", "TP. Hồ Chí Minh")
    store.registry.add_center(C, "hcm", "Trung tâm Bến Thành")
    store.registry.add_center(OTHER, "hcm", "Trung tâm Thủ Đức")
    for slot, kiosk in enumerate((BATCHED, SINGLE, *MANY)):
        store.registry.add_kiosk(kiosk, C, slot=slot)
    store.registry.add_kiosk("kiosk-td-01", OTHER, slot=0)
    return store


def ticket(seq: int, journal: str, event_id: str | None = None) -> bytes:
    payload = payload_from_data(
        "ticket_issued",
        {"number": f"A{seq:03d}", "service": "HOTICH", "priority": False, "identified": False,
         "day": "2026-11-23"},
    )
    return Event(event_id or uuid.uuid4().hex, seq, journal, payload, now_iso(), False).to_payload()


def rating(seq: int, journal: str) -> bytes:
    payload = payload_from_data("rating", {"level": 4, "scale": 4, "level_key": "satisfied"})
    return Event(uuid.uuid4().hex, seq, journal, payload, now_iso(), False).to_payload()


def dropped(seq: int, journal: str, first: int, last: int) -> bytes:
    count = last - first + 1
    payload = payload_from_data("outbox_dropped", {"count": count, "first_seq": first, "last_seq": last})
    return Event(uuid.uuid4().hex, seq, journal, payload, now_iso(), False).to_payload()


def scenario(kiosk: str, clock: FakeClock) -> list[tuple[str, bytes]]:
    """Everything a kiosk may send in a busy second, with the mistakes a batch must keep apart."""
    root = f"motcua/v1/{C}/{kiosk}"
    journal = uuid.uuid4().hex
    repeated = uuid.uuid4().hex
    return [
        (f"{root}/status", birth(10)),
        (f"{root}/health", beat(clock)),
        *[(f"{root}/event/ticket_issued", ticket(seq, journal)) for seq in (1, 2)],
        (f"{root}/event/ticket_issued", ticket(3, journal, repeated)),
        (f"{root}/event/ticket_issued", ticket(3, journal, repeated)),  # twice in one batch
        (f"{root}/event/ticket_issued", ticket(8, journal)),  # opens [4, 7]
        (f"{root}/event/ticket_issued", ticket(5, journal)),  # fills 5 of it
        (f"motcua/v1/{OTHER}/{kiosk}/event/ticket_issued", ticket(9, journal)),  # under another center
        (f"motcua/v1/{C}/kiosk-nobody/event/ticket_issued", ticket(1, journal)),  # not ours
        (f"{root}/event/rating", ticket(10, journal)),  # the wrong kind for its topic
        (f"{root}/event/ticket_issued", b"{not json"),
        (f"{root}/health", beat(clock, printer="paper_out")),
        (f"{root}/event/ticket_issued", ticket(9, journal)),
        (f"{root}/event/outbox_dropped", dropped(12, journal, 10, 11)),
        (f"{root}/event/ticket_issued", ticket(3, journal, repeated)),  # a redelivery after the others
    ]


def state_of(store: Store, kiosk: str) -> dict[str, Any]:
    return {
        "state": store.registry.kiosk(ALL, kiosk).state,
        "events": store.events.count(ALL, kiosk_id=kiosk),
        "gaps": sorted(
            (g.first_seq, g.last_seq, g.closed_reason) for g in store.events.gaps(ALL, kiosk, open_only=False)
        ),
        "alarms": sorted((a.type, a.severity) for a in store.alarms.active_for_kiosk(kiosk)),
        "devices": store.telemetry.latest_health(ALL, kiosk) is not None,
    }


def outcomes(results: list[Result]) -> list[tuple[str, str]]:
    return [(r.outcome, r.reason) for r in results]


def test_a_batch_stores_what_the_messages_one_by_one_store(fleet: Store, clock: FakeClock) -> None:
    p = Processor(fleet)
    at = clock.now
    batched = p.handle_batch([Incoming(t, b, at) for t, b in scenario(BATCHED, clock)])
    single = [p.handle(t, b, at) for t, b in scenario(SINGLE, clock)]
    assert outcomes(batched) == outcomes(single)
    assert [r.outcome for r in batched] == [
        "stored", "stored", "stored", "stored", "stored", "duplicate", "stored", "stored",
        "refused", "refused", "invalid", "invalid", "stored", "stored", "stored", "duplicate",
    ]
    assert state_of(fleet, BATCHED) == state_of(fleet, SINGLE)
    assert state_of(fleet, BATCHED) == {
        "state": "online",
        "events": 7,
        "gaps": [(4, 4, None), (5, 5, "filled"), (6, 7, None), (10, 11, "dropped")],
        "alarms": [("events_dropped", "major"), ("printer", "critical")],
        "devices": True,
    }


def statuses(kiosk: str) -> list[tuple[str, bytes]]:
    """A run of statuses as a reconnecting worker gets them (retained ones again among them), with the
    bdseq rules a run must follow in order: a late Will of an older connection, the Will of the live one,
    a new birth, a clean stop; and the refusals."""
    root = f"motcua/v1/{C}/{kiosk}"
    return [
        (f"{root}/status", birth(10)),
        (f"{root}/status", birth(10)),  # the retained birth once more
        (f"{root}/status", Status("offline", "lost", 9, 1).to_payload()),  # an older Will, late: not applied
        (f"{root}/status", Status("offline", "lost", 10, 1).to_payload()),  # the live connection's Will
        (f"motcua/v1/{OTHER}/{kiosk}/status", birth(12)),  # under another center
        (f"motcua/v1/{C}/kiosk-nobody/status", birth(1)),  # not ours
        (f"{root}/status", b"{not json"),
        (f"{root}/status", birth(11)),
        (f"{root}/status", Status("offline", "shutdown", 11, 1).to_payload()),
    ]


def test_a_run_of_statuses_stores_what_they_one_by_one_store(fleet: Store, clock: FakeClock) -> None:
    p = Processor(fleet)
    batched = p.handle_batch([Incoming(t, b, clock.now) for t, b in statuses(BATCHED)])
    single = [p.handle(t, b, clock.now) for t, b in statuses(SINGLE)]
    assert outcomes(batched) == outcomes(single)
    assert [r.outcome for r in batched] == [
        "stored", "stored", "stored", "stored", "refused", "refused", "invalid", "stored", "stored"
    ]

    def story(kiosk: str) -> Any:
        history = fleet.telemetry.status_history(ALL, kiosk)
        ended = fleet.alarms.page(ALL, active=False, kiosk_id=kiosk).items
        return (
            sorted((h.state, h.reason, h.bdseq, h.applied) for h in history),
            state_of(fleet, kiosk),
            sorted((a.type, a.severity, a.ended_at is not None) for a in ended),
        )

    assert story(BATCHED) == story(SINGLE)
    history, state, ended = story(BATCHED)
    assert state["state"] == "offline" and state["alarms"] == [("offline", "minor")]
    assert ("offline", "lost", 9, False) in history and ("online", "birth", 10, False) in history
    assert ended == [("offline", "major", True)]  # the Will's alarm, ended by the new birth


def full_birth(bdseq: int, printer: str = "ok") -> bytes:
    devices = {"printer": printer, "card_reader": "ok", "scanner": "ok"}
    return Status("online", "birth", bdseq, 2, agent_version="0.2.0", app_version="0.2.0",
                  hardware=Hardware(devices=devices)).to_payload()


def reconnect_burst(
    kiosks: tuple[str, ...], clock: FakeClock, bdseq: int = 11, *, trouble: bool = True
) -> list[tuple[str, bytes]]:
    """A province's broker restarted: every kiosk's new birth (``bdseq``) and first heartbeat, the kiosks
    interleaved as a worker gets them, the first kiosk's heartbeat overtaking its birth. With
    ``trouble``, what raises and clears alarms: every kiosk's Will first, the second kiosk's printer
    back without paper (its birth says so), the last kiosk's second heartbeat with paper near its end."""
    root = {k: f"motcua/v1/{C}/{k}" for k in kiosks}
    will = Status("offline", "lost", bdseq - 1, 1).to_payload()
    burst = [(f"{root[k]}/status", will) for k in kiosks] if trouble else []
    for n, k in enumerate(kiosks):
        printer = "paper_out" if n == 1 and trouble else "ok"
        pair = [(f"{root[k]}/status", full_birth(bdseq, printer)),
                (f"{root[k]}/health", beat(clock, bdseq, printer=printer))]
        burst += reversed(pair) if n == 0 else pair
    last = "paper_near_end" if trouble else "ok"
    burst.append((f"{root[kiosks[-1]]}/health", beat(clock, bdseq, printer=last)))
    return burst


def kiosk_story(store: Store, kiosk: str) -> Any:
    row = store.registry.kiosk(ALL, kiosk)
    return (
        (row.state, row.state_reason, row.bdseq, row.agent_version, row.app_version, row.hardware),
        sorted((d.device, d.state, d.detail, d.since) for d in store.registry.devices(ALL, kiosk)),
        sorted((h.state, h.reason, h.bdseq, h.applied) for h in store.telemetry.status_history(ALL, kiosk)),
        sorted((a.type, a.severity, a.active)
               for a in store.alarms.page(ALL, active=None, kiosk_id=kiosk).items),
    )


def test_a_reconnect_burst_stores_what_its_messages_one_by_one_store_in_a_fixed_number_of_statements(
    fleet: Store, clock: FakeClock
) -> None:
    """Births and heartbeats of many kiosks interleaved: ``_schedule`` makes them one run of statuses and
    one of heartbeats per round (each kiosk's own order kept), and the applied statuses are written
    together (``_flush_statuses``): the same rows as one by one (kiosk, devices with their ``since``,
    history, alarms), and, for kiosks back within their Will delay (no alarm to raise or clear), as
    many statements for ten kiosks as for three."""
    p = Processor(fleet)
    batched, single = MANY[:5], MANY[5:]
    for kiosk in MANY:  # connected once, the printer near its end (the births say ok: it changes, since too)
        p.handle(f"motcua/v1/{C}/{kiosk}/status", full_birth(10), clock.now)
        p.handle(f"motcua/v1/{C}/{kiosk}/health", beat(clock, 10, printer="paper_near_end"), clock.now)
    clock.advance(seconds=60)
    results = p.handle_batch([Incoming(t, b, clock.now) for t, b in reconnect_burst(batched, clock)])
    one_by_one = [p.handle(t, b, clock.now) for t, b in reconnect_burst(single, clock)]
    assert outcomes(results) == outcomes(one_by_one)
    for mine, theirs in zip(batched, single, strict=True):
        assert kiosk_story(fleet, mine) == kiosk_story(fleet, theirs)
    first, second, last = (kiosk_story(fleet, k) for k in (batched[0], batched[1], batched[-1]))
    assert first[0][:4] == ("online", "birth", 11, "0.2.0")
    assert ("printer", "paper_out", None) in [(d, s, detail) for d, s, detail, _ in second[1]]
    assert ("printer", "critical", True) in second[3] and ("offline", "major", False) in second[3]
    assert ("printer", "paper_near_end") in [(d, s) for d, s, _, _ in last[1]]

    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    counted = []
    p.handle_batch([Incoming(t, b, clock.now) for t, b in reconnect_burst(MANY, clock, 12, trouble=False)])
    for bdseq, kiosks in ((13, MANY[:3]), (14, MANY)):  # back within their Will delay, nothing wrong
        clock.advance(seconds=60)
        event.listen(fleet.db.engine, "before_cursor_execute", seen)
        try:
            burst = reconnect_burst(kiosks, clock, bdseq, trouble=False)
            p.handle_batch([Incoming(t, b, clock.now) for t, b in burst])
        finally:
            event.remove(fleet.db.engine, "before_cursor_execute", seen)
        counted.append(len(statements))
        statements.clear()
        assert {fleet.registry.kiosk(ALL, k).bdseq for k in kiosks} == {bdseq}
    assert counted[0] == counted[1], counted


@pytest.mark.parametrize("broken", ["status", "heartbeat"])
def test_a_failing_message_undoes_only_itself(
    fleet: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, broken: str
) -> None:
    """A bug while handling one message (after its writes): that message is undone and counted as an
    error; the messages before and after it in the batch, and in its own run of heartbeats, are kept."""
    p = Processor(fleet)
    if broken == "status":
        real_statuses = fleet.telemetry.record_statuses

        def flaky_statuses(items: Any) -> Any:
            outcomes = real_statuses(items)
            if any(item.kiosk_id == BATCHED for item in items):
                raise RuntimeError("a bug while handling one status")
            return outcomes

        monkeypatch.setattr(fleet.telemetry, "record_statuses", flaky_statuses)
    else:
        real_records = fleet.telemetry.record_healths

        def flaky_records(items: Any) -> Any:
            outcomes = real_records(items)
            if any(item.report.devices["printer"]["state"] == "paper_out" for item in items):
                raise RuntimeError("a bug while storing a heartbeat of paper out")
            return outcomes

        monkeypatch.setattr(fleet.telemetry, "record_healths", flaky_records)
    root, other = f"motcua/v1/{C}/{BATCHED}", f"motcua/v1/{C}/{SINGLE}"
    journal = uuid.uuid4().hex
    results = p.handle_batch(
        [
            Incoming(f"{other}/status", birth(10), clock.now),
            Incoming(f"{root}/status", birth(10), clock.now),
            Incoming(f"{other}/health", beat(clock), clock.now),
            Incoming(f"{root}/health", beat(clock, printer="paper_out"), clock.now),
            Incoming(f"{other}/health", beat(clock, printer="paper_near_end"), clock.now),
            Incoming(f"{root}/event/ticket_issued", ticket(1, journal), clock.now),
        ]
    )
    if broken == "status":
        assert [r.outcome for r in results] == ["stored", "error", "stored", "stored", "stored", "stored"]
        # its birth undone: the kiosk came online by its heartbeat that followed
        assert [h.reason for h in fleet.telemetry.status_history(ALL, BATCHED)] == ["heartbeat"]
    else:
        assert [r.outcome for r in results] == ["stored", "stored", "stored", "error", "stored", "stored"]
        assert fleet.registry.kiosk(ALL, BATCHED).state == "online"
        assert fleet.telemetry.latest_health(ALL, BATCHED) is None  # the failed heartbeat left nothing
        assert fleet.alarms.active_for_kiosk(BATCHED) == []
    assert fleet.events.count(ALL, kiosk_id=BATCHED) == 1
    assert fleet.registry.kiosk(ALL, SINGLE).state == "online"
    assert [(a.type, a.severity) for a in fleet.alarms.active_for_kiosk(SINGLE)] == [("printer", "warning")]


def test_a_store_error_undoes_the_whole_batch(
    fleet: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = Processor(fleet)
    root = f"motcua/v1/{C}/{BATCHED}"
    journal = uuid.uuid4().hex
    batch = [
        Incoming(f"{root}/status", birth(10), clock.now),
        Incoming(f"{root}/event/ticket_issued", ticket(1, journal), clock.now),
    ]

    def away(items: Any) -> Any:
        raise StoreError("database away (test)")

    monkeypatch.setattr(fleet.events, "claim_events", away)  # the batch's first store call for events
    with pytest.raises(StoreError):
        p.handle_batch(batch)
    assert fleet.registry.kiosk(ALL, BATCHED).state == "unknown"  # the birth before it is undone too
    monkeypatch.undo()
    assert [r.outcome for r in p.handle_batch(batch)] == ["stored", "stored"]  # the retry stores it all
    assert fleet.events.count(ALL, kiosk_id=BATCHED) == 1


def test_an_announced_loss_and_its_alarm_are_stored_together_or_not_at_all(
    fleet: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ``events_dropped`` alarm is raised in the batch's own transaction: a database lost between
    the event's insert and the alarm undoes the insert too, and the redelivered message (never
    acknowledged) stores both. An event stored without its alarm would never raise it: a second
    delivery is a duplicate."""
    p = Processor(fleet)
    journal = uuid.uuid4().hex
    batch = [Incoming(f"motcua/v1/{C}/{BATCHED}/event/outbox_dropped", dropped(4, journal, 1, 3), clock.now)]

    def away(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("database away (test)")

    monkeypatch.setattr(fleet.alarms, "raise_alarm", away)
    with pytest.raises(StoreError):
        p.handle_batch(batch)
    assert fleet.events.count(ALL, kiosk_id=BATCHED) == 0  # the insert went with the alarm
    monkeypatch.undo()
    assert [r.outcome for r in p.handle_batch(batch)] == ["stored"]
    alarm = next(a for a in fleet.alarms.active_for_kiosk(BATCHED) if a.type == "events_dropped")
    assert alarm.detail is not None and alarm.detail["count"] == 3
    assert fleet.events.count(ALL, kiosk_id=BATCHED) == 1


def test_two_workers_with_overlapping_batches_do_not_deadlock(fleet: Store, clock: FakeClock) -> None:
    """Heartbeats of the same ten kiosks, in opposite orders, from two threads at once: each batch locks
    its kiosks in id order first, so neither waits for the other in a cycle (on PostgreSQL a deadlock
    would abort one batch with a StoreError)."""
    for kiosk in MANY:
        Processor(fleet).handle(f"motcua/v1/{C}/{kiosk}/status", birth(10), clock.now)
    failures: list[BaseException] = []

    def run(order: tuple[str, ...]) -> None:
        p = Processor(fleet)
        try:
            for _ in range(15):
                batch = [Incoming(f"motcua/v1/{C}/{k}/health", beat(clock), clock.now) for k in order]
                assert {r.outcome for r in p.handle_batch(batch)} == {"stored"}
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(order,)) for order in (MANY, tuple(reversed(MANY)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    assert all(fleet.registry.kiosk(ALL, k).state == "online" for k in MANY)


def test_a_batch_locks_its_kiosks_once_and_overlapping_event_batches_do_not_deadlock(
    fleet: Store, clock: FakeClock
) -> None:
    """Events of the same ten kiosks from two threads in opposite orders: the kiosks are locked once per
    batch, after the events are claimed and in id order (``track_events`` takes the owners the batch's
    lock found), with NO KEY UPDATE (the other batch's inserts of their events need not wait), the
    batches wait for each other instead of deadlocking, and each thread's journals have no gap."""
    locks: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM kiosks" in statement and "FOR NO KEY UPDATE" in statement:
            locks.append(statement)

    event.listen(fleet.db.engine, "before_cursor_execute", seen)
    failures: list[BaseException] = []
    rounds = 12

    def run(order: tuple[str, ...]) -> None:
        p = Processor(fleet)
        journal = uuid.uuid4().hex
        try:
            for seq in range(1, rounds + 1):
                topics = [f"motcua/v1/{C}/{k}/event/rating" for k in order]
                batch = [Incoming(topic, rating(seq, journal), clock.now) for topic in topics]
                assert {r.outcome for r in p.handle_batch(batch)} == {"stored"}
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    try:
        threads = [threading.Thread(target=run, args=(order,)) for order in (MANY, tuple(reversed(MANY)))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        event.remove(fleet.db.engine, "before_cursor_execute", seen)
    assert not failures, failures
    assert len(locks) == (2 * rounds if fleet.db.is_postgres else 0)
    for kiosk in MANY:
        assert fleet.events.count(ALL, kiosk_id=kiosk) == 2 * rounds
        assert fleet.events.gaps(ALL, kiosk) == []


@pytest.mark.parametrize("backend", ["postgresql"])  # row locks: SQLite has one writer at a time
def test_a_batch_holding_its_kiosks_does_not_hold_up_another_batchs_event_inserts(
    fleet: Store, clock: FakeClock
) -> None:
    """The shared subscription hands both workers every kiosk's messages, so their batches name the
    same kiosks: the second batch's events are claimed and inserted while the first batch still holds
    the kiosks' locks (NO KEY UPDATE allows the events' foreign key), and only their gaps wait for it.
    With the kiosks locked first (FOR UPDATE), the whole second batch waited (seen in the benchmark:
    the two workers' batches took turns)."""
    journal = uuid.uuid4().hex
    held, release, inserted = threading.Event(), threading.Event(), threading.Event()
    results: list[Result] = []

    def first_batch() -> None:
        with fleet.db.batch():
            fleet.telemetry.lock_kiosks({BATCHED})
            held.set()
            release.wait(30)

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "INSERT INTO event_keys" in statement:
            inserted.set()

    def second_batch() -> None:
        batch = [Incoming(f"motcua/v1/{C}/{BATCHED}/event/rating", rating(seq, journal), clock.now)
                 for seq in (1, 2)]
        results.extend(Processor(fleet).handle_batch(batch))

    event.listen(fleet.db.engine, "after_cursor_execute", after)
    holder = threading.Thread(target=first_batch)
    holder.start()
    try:
        assert held.wait(10)
        second = threading.Thread(target=second_batch)
        second.start()
        assert inserted.wait(10), "the second batch's events waited for the first batch's locks"
        assert not results  # its gaps wait for the kiosk's lock
    finally:
        release.set()
        holder.join(10)
        event.remove(fleet.db.engine, "after_cursor_execute", after)
    second.join(30)
    assert [r.outcome for r in results] == ["stored", "stored"]
    assert fleet.events.count(ALL, kiosk_id=BATCHED) == 2
    assert fleet.events.gaps(ALL, BATCHED) == []


def test_a_birth_overtaken_by_its_heartbeat_still_brings_its_versions(fleet: Store, clock: FakeClock) -> None:
    """Seen in the demo fleet: a connection's first heartbeat (QoS 0) arrived before its birth (QoS 1);
    the heartbeat brought the kiosk online, and the birth of that same bdseq was then not applied, so the
    kiosk never showed its agent version or hardware. The birth of the live connection is applied."""
    p = Processor(fleet)
    root = f"motcua/v1/{C}/{BATCHED}"
    results = p.handle_batch(
        [Incoming(f"{root}/health", beat(clock), clock.now), Incoming(f"{root}/status", birth(10), clock.now)]
    )
    assert [r.outcome for r in results] == ["stored", "stored"]
    kiosk = fleet.registry.kiosk(ALL, BATCHED)
    assert (kiosk.state, kiosk.agent_version) == ("online", "0.1.0")
    history = fleet.telemetry.status_history(ALL, BATCHED)
    assert [(h.reason, h.applied) for h in reversed(history)] == [("heartbeat", True), ("birth", True)]
    # the next heartbeat of that connection changes nothing
    p.handle(f"{root}/health", beat(clock), clock.now)
    assert fleet.registry.kiosk(ALL, BATCHED).state == "online"


def test_hooks_run_after_the_commit_so_two_workers_do_not_deadlock_on_the_queue(
    fleet: Store, clock: FakeClock
) -> None:
    """Seen in the benchmark on PostgreSQL: the queue's hook locks its center's row; run inside the
    batch, two workers whose batches held tickets of the same two centers in opposite orders deadlocked
    (each batch then rolled back and tried again, and again). The hooks run after the commit."""
    from fleet.ingest import plugins

    # the queue's hooks as every ingest process loads them (registered once, at the module's import: a
    # test that unregistered them would leave later tests without them)
    plugins.load()
    fleet.registry.add_kiosk("kiosk-td-02", OTHER, slot=1)
    failures: list[BaseException] = []

    def run(kiosks: tuple[tuple[str, str], ...]) -> None:
        p = Processor(fleet)
        journals = {k: uuid.uuid4().hex for _, k in kiosks}
        try:
            for seq in range(1, 16):
                batch = [
                    Incoming(f"motcua/v1/{c}/{k}/event/ticket_issued", ticket(seq, journals[k]), clock.now)
                    for c, k in kiosks
                ]
                results = p.handle_batch(batch)
                assert {(r.outcome, r.hook_errors) for r in results} == {("stored", 0)}, results
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    orders = (((C, BATCHED), (OTHER, "kiosk-td-01")), ((OTHER, "kiosk-td-02"), (C, SINGLE)))
    threads = [threading.Thread(target=run, args=(order,)) for order in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    kiosks = (BATCHED, SINGLE, "kiosk-td-01", "kiosk-td-02")
    assert sum(fleet.events.count(ALL, kiosk_id=k) for k in kiosks) == 60


def test_a_batchs_tickets_enter_the_queue_together_and_a_bad_one_fails_alone(
    fleet: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The queue's hook takes a batch's tickets of every center in one write (``Queue.issue_centers``):
    the same queue as ticket by ticket, a ticket printed twice (a redelivery, the same number from two
    kiosks) queued once, and a bug in one ticket makes that ticket alone fail (the others are issued
    center by center, then one by one), counted as that message's hook error."""
    import fleet.queue.engine as engine
    from fleet.ingest import plugins
    from fleet.queue.hooks import queue_of

    plugins.load()
    real_token = engine.phone_token

    def token(key: bytes, center_id: str, day: str, number: str) -> str:
        if number == "A004":
            raise RuntimeError("a bug in one ticket")
        return real_token(key, center_id, day, number)

    monkeypatch.setattr(engine, "phone_token", token)
    journals = {k: uuid.uuid4().hex for k in (BATCHED, SINGLE, "kiosk-td-01")}
    redelivered = uuid.uuid4().hex
    sent = [
        (C, BATCHED, ticket(1, journals[BATCHED])),
        (OTHER, "kiosk-td-01", ticket(1, journals["kiosk-td-01"])),
        (C, BATCHED, ticket(2, journals[BATCHED], redelivered)),
        (C, BATCHED, ticket(2, journals[BATCHED], redelivered)),  # the broker's redelivery
        (C, SINGLE, ticket(2, journals[SINGLE])),  # A002 again, from another kiosk: queued once
        (C, BATCHED, ticket(3, journals[BATCHED])),
        (C, BATCHED, ticket(4, journals[BATCHED])),  # the bug
        (OTHER, "kiosk-td-01", ticket(2, journals["kiosk-td-01"])),
        (C, BATCHED, ticket(5, journals[BATCHED])),
    ]
    batch = [Incoming(f"motcua/v1/{c}/{k}/event/ticket_issued", body, clock.now) for c, k, body in sent]
    results = Processor(fleet).handle_batch(batch)
    assert [(r.outcome, r.hook_errors) for r in results] == [
        ("stored", 0), ("stored", 0), ("stored", 0), ("duplicate", 0), ("stored", 0), ("stored", 0),
        ("stored", 1), ("stored", 0), ("stored", 0),
    ]
    queue = queue_of(fleet)
    day = "2026-11-23"
    assert [t.number for t in queue.tickets(C, day)] == ["A001", "A002", "A003", "A005"]
    assert [t.number for t in queue.tickets(OTHER, day)] == ["A001", "A002"]
    a002 = queue.find(C, day, "A002")
    assert a002 is not None and a002.kiosk_id == BATCHED  # the first print wins, the second changes nothing
    assert [s.kind for s in queue.steps_of_ticket(a002.id)] == ["issued"]
    # the same tickets once more (a replay after a reconnect): nothing new, no error
    monkeypatch.undo()
    again = Processor(fleet).handle_batch(batch)
    assert {(r.outcome, r.hook_errors) for r in again} == {("duplicate", 0)}
    assert sorted(t.number for t in queue.tickets(C, day)) == ["A001", "A002", "A003", "A004", "A005"]
    assert len(queue.steps_since(C, 0)) == 5


def test_a_failing_batch_handler_counts_its_events_and_the_others_still_run(
    fleet: Store, clock: FakeClock
) -> None:
    from fleet.ingest import handlers

    seen: list[int] = []
    calls: list[list[handlers.HookCall]] = []

    def broken(store: Store, batch: Any) -> list[bool]:
        raise RuntimeError("a bug in a batch handler")

    def short(store: Store, batch: Any) -> list[bool]:
        return []  # one outcome missing per call: counted as failures, never ignored

    def fine(store: Store, batch: Any) -> list[bool]:
        calls.append(list(batch))
        return [call.event.seq == 2 for call in batch]  # says the second one failed

    handlers.register_batch("outbox_dropped", broken)
    handlers.register_batch("outbox_dropped", short)
    handlers.register_batch("outbox_dropped", fine)
    handlers.register("outbox_dropped", lambda store, center_id, kiosk_id, record: seen.append(record.seq))
    try:
        journal = uuid.uuid4().hex
        batch = [
            Incoming(f"motcua/v1/{C}/{BATCHED}/event/outbox_dropped", dropped(seq, journal, 1, 1), clock.now)
            for seq in (2, 3)
        ]
        results = Processor(fleet).handle_batch(batch)
        assert [(r.outcome, r.hook_errors) for r in results] == [("stored", 3), ("stored", 2)]
        assert seen == [2, 3]
        assert [[(c.center_id, c.kiosk_id, c.event.seq, c.duplicate) for c in b] for b in calls] == [
            [(C, BATCHED, 2, False), (C, BATCHED, 3, False)]
        ]
    finally:
        for handler in (broken, short, fine):
            handlers.unregister_batch("outbox_dropped", handler)
        handlers._handlers.pop("outbox_dropped", None)


@pytest.mark.parametrize("backend", ["postgresql"])  # the pool's pre-ping is PostgreSQL's
def test_without_pre_ping_a_batch_on_connections_a_restart_killed_fails_whole_then_is_stored(
    fleet: Store, store_url: str, clock: FakeClock
) -> None:
    """The ingest's store has no pre-ping (a round trip per transaction): after the database dropped its
    connections (a restart), the next batch fails with a StoreError, nothing of it stored (the worker
    keeps it unacknowledged), and the retry stores it on fresh connections."""
    assert fleet.db.is_postgres
    from sqlalchemy import create_engine, text

    from fleet.store import open_store

    ingest = open_store(store_url, clock=clock, pre_ping=False)
    try:
        p = Processor(ingest)
        root = f"motcua/v1/{C}/{BATCHED}"
        journal = uuid.uuid4().hex
        first = [Incoming(f"{root}/event/ticket_issued", ticket(1, journal), clock.now)]
        assert [r.outcome for r in p.handle_batch(first)] == ["stored"]
        admin = create_engine(store_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            killed = conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )).scalar_one()
        admin.dispose()
        assert killed >= 1
        batch = [Incoming(f"{root}/event/ticket_issued", ticket(seq, journal), clock.now) for seq in (2, 3)]
        with pytest.raises(StoreError):
            p.handle_batch(batch)
        assert fleet.events.count(ALL, kiosk_id=BATCHED) == 1
        results = p.handle_batch(batch)
        assert [(r.outcome, r.hook_errors) for r in results] == [("stored", 0), ("stored", 0)]
        assert fleet.events.count(ALL, kiosk_id=BATCHED) == 3
        assert fleet.events.gaps(ALL, BATCHED) == []
    finally:
        ingest.close()


def test_heartbeats_either_side_of_vietnam_midnight_land_in_their_days_made_before_the_batch(
    fleet: Store, clock: FakeClock
) -> None:
    """No partition exists for these days (the store's template was made today): the batch makes both
    before its transaction begins (DDL inside it would wait for the batch's own locks), then stores."""
    p = Processor(fleet)
    p.handle(f"motcua/v1/{C}/{BATCHED}/status", birth(10), clock.now)
    evening = datetime(2027, 2, 9, 16, 59, 59, tzinfo=UTC)  # 23:59:59 in Vietnam
    night = evening + timedelta(seconds=1)  # 00:00, the next day there
    creates: list[bool] = []  # per CREATE TABLE: was a batch open on this thread?

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("CREATE TABLE"):
            creates.append(fleet.db.batch_memo() is not None)

    event.listen(fleet.db.engine, "before_cursor_execute", seen)
    try:
        results = p.handle_batch(
            [
                Incoming(f"motcua/v1/{C}/{BATCHED}/health", beat(clock), evening),
                Incoming(f"motcua/v1/{C}/{BATCHED}/health", beat(clock), night),
                Incoming(f"motcua/v1/{C}/{SINGLE}/health", beat(clock), night),
            ]
        )
    finally:
        event.remove(fleet.db.engine, "before_cursor_execute", seen)
    assert [r.outcome for r in results] == ["stored"] * 3
    with fleet.db.read() as conn:
        rows = conn.execute(
            select(health_samples.c.kiosk_id, health_samples.c.received_at).order_by(
                health_samples.c.received_at, health_samples.c.kiosk_id
            )
        ).all()
    assert [tuple(r) for r in rows if r.received_at >= evening] == [
        (BATCHED, evening),
        (BATCHED, night),
        (SINGLE, night),
    ]
    if fleet.db.is_postgres:
        assert {date(2027, 2, 9), date(2027, 2, 10)} <= fleet.health_partitions.existing()
        assert creates == [False, False]  # both days, each once, neither inside the batch
        with fleet.db.read() as conn:
            placed = conn.execute(
                text("SELECT tableoid::regclass::text, count(*) FROM health_samples "
                     "WHERE received_at >= :t GROUP BY 1"),
                {"t": evening},
            ).all()
        assert sorted(tuple(r) for r in placed) == [
            (HEALTH.name(date(2027, 2, 9)), 1),
            (HEALTH.name(date(2027, 2, 10)), 2),
        ]
    else:
        assert creates == []
