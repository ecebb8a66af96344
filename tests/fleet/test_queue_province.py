"""A center's queue at the province (``fleet.queue.province``): the ``queue-event/1`` messages a center's
publisher sends, handed to the province's ingest (``fleet.ingest.process.Processor``, as its workers
do), become the province's steps of that center, and the same statistics code gives the same figures
there. The center's own ingest, which receives the same messages from its broker, stores none of
them. Refusals are counted like every other channel's. The province's store on SQLite and PostgreSQL;
the center's on SQLite."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import astuple
from datetime import UTC, datetime

import pytest

from contract.queue import QueueEvent
from contract.topics import CenterTopics
from fleet.ingest.process import Processor
from fleet.queue import stats
from fleet.queue.engine import Queue
from fleet.queue.province import runs_queue
from fleet.queue.publisher import queue_event
from fleet.store import Scope, Store, open_store
from tests.fleet.conftest import FakeClock
from tests.fleet.data import build
from tests.fleet.mqtt import seed
from tests.fleet.queue_data import CENTER, a_day_at_the_counters, issue, setup_center

TOPIC = CenterTopics(CENTER).queue_event
ALL = Scope.everything()


@pytest.fixture
def center(sqlite_url: str, clock: FakeClock) -> Iterator[tuple[Store, Queue, str]]:
    """The center's own store with a day of its queue (not yet published: the outbox holds it all)."""
    opened = open_store(sqlite_url, clock=clock)
    build(opened)
    queue = Queue(opened)
    setup_center(queue)
    day = a_day_at_the_counters(opened, queue, clock)
    yield opened, queue, day
    opened.close()


def published(queue: Queue) -> list[bytes]:
    """What the center's publisher sends on ``_center/queue/event``, step by step."""
    return [queue_event(step, ticket).to_payload() for step, ticket in queue.unpublished(500, CENTER)]


def figures(queue: Queue, day: str) -> dict[str, list[tuple[object, ...]]]:
    """Every grouping's numbers (labels left out: the province names services by code)."""
    groups = stats.compute_groups(queue, CENTER, day, day, stats.GROUPS, 1800, lang="vi", zone=queue.zone)
    return {by: [astuple(r)[:1] + astuple(r)[2:] for r in rows] for by, rows in groups.items()}


def test_the_province_computes_the_centers_figures_from_the_bridged_steps(
    center: tuple[Store, Queue, str], store: Store
) -> None:
    center_store, center_queue, day = center
    seed(store)  # the province knows the centers, not their services, counters or officers
    processor = Processor(store)
    payloads = published(center_queue)
    assert len(payloads) == 20
    now = datetime.now(UTC)
    results = [processor.handle(TOPIC, payload, now) for payload in reversed(payloads)]  # any order
    assert {(r.outcome, r.channel) for r in results} == {("stored", "queue/event")}
    province = Queue(store)
    assert figures(province, day) == figures(center_queue, day)
    services = {r.key: r for r in stats.compute(province, CENTER, day, day, "service", 1800, lang="vi",
                                                zone=province.zone)}
    b = services["CHUNGTHUC"]
    # B001 and the transferred A003: waited 50 and 25 minutes, served 5 and 10
    assert (b.arrivals, b.called, b.served, b.wait_max_s, b.wait_over_target, b.service_avg_s) == (
        1, 2, 2, 50 * 60, 1, 7.5 * 60
    )
    officers = stats.compute(province, CENTER, day, day, "officer", 1800, lang="vi", zone=province.zone)
    assert [r.label for r in officers] == ["canbo.bt", "canbo01.bt"]  # no accounts here: the usernames
    assert [r.label for r in stats.compute(center_queue, CENTER, day, day, "officer", 1800, lang="vi",
                                           zone=center_queue.zone)] == ["Phạm Thu Hà", "Cán bộ 01"]
    # the bridge's resend, another worker's redelivery: nothing counts twice
    again = [processor.handle(TOPIC, payload, now) for payload in payloads[:5]]
    assert {r.outcome for r in again} == {"duplicate"}
    assert figures(province, day) == figures(center_queue, day)
    # the bridged steps are not the province's to publish, and do not make it the center's queue
    assert province.unpublished(500) == []
    assert not runs_queue(store, CENTER)
    province.settings(CENTER)  # a manager opens the center's page at the province: a settings row
    assert not runs_queue(store, CENTER)
    assert processor.handle(TOPIC, payloads[0], now).outcome == "duplicate"
    assert center_store.registry.center(ALL, CENTER).id == CENTER


def test_the_centers_own_ingest_stores_none_of_its_own_events(center: tuple[Store, Queue, str]) -> None:
    """The center's ingest receives its queue's events back from its own broker: they are the queue's
    own steps (ignored), and a forged step with a fresh id and the next seq is not stored either: it
    would take the seq the engine's next step needs."""
    store, queue, day = center
    assert runs_queue(store, CENTER)
    processor = Processor(store)
    before = figures(queue, day)
    steps = len(queue.steps_since(CENTER, 0))
    now = datetime.now(UTC)
    results = [processor.handle(TOPIC, payload, now) for payload in published(queue)]
    assert {(r.outcome, r.reason) for r in results} == {("ignored", "own_queue")}
    forged = QueueEvent(
        uuid.uuid4().hex, steps + 1, "called", "2026-11-23T02:00:00+00:00", day=day, number="A001",
        service="HOTICH", counter="1", officer="canbo.bt", waited_s=99999.0,
    )
    assert processor.handle(TOPIC, forged.to_payload(), now).reason == "own_queue"
    assert len(queue.steps_since(CENTER, 0)) == steps and figures(queue, day) == before
    # the engine goes on numbering its steps without a gap
    queue.mark_published([s.id for s, _ in queue.unpublished(500, CENTER)])
    issue(store, "A005", "HOTICH", day=day)
    assert [s.seq for s in queue.steps_since(CENTER, 0)] == list(range(1, steps + 2))


def _event(seq: int, **fields: object) -> bytes:
    values: dict[str, object] = {
        "event_id": uuid.uuid4().hex, "seq": seq, "kind": "issued", "at": "2026-11-23T01:00:00+00:00",
        "day": "2026-11-23", "number": "A001", "service": "HOTICH",
    }
    values.update(fields)
    return QueueEvent(**values).to_payload()  # type: ignore[arg-type]


def test_hostile_or_malformed_queue_events_are_refused_and_counted(store: Store) -> None:
    seed(store)
    processor = Processor(store)
    now = datetime.now(UTC)
    good = _event(1)
    assert processor.handle(TOPIC, good, now).outcome == "stored"
    body = json.loads(good)
    cases: list[tuple[str, bytes, str]] = [
        (CenterTopics("hcm-nowhere").queue_event, _event(1), "unknown_center"),
        (TOPIC, b"{not json", "invalid_queue_event"),
        (TOPIC, json.dumps({**body, "kind": "exploded"}).encode(), "invalid_queue_event"),
        (TOPIC, json.dumps({**body, "number": None, "event_id": uuid.uuid4().hex}).encode(),
         "invalid_queue_event"),  # a ticket step without its number
        (TOPIC, json.dumps({**body, "officer": "x" * 200}).encode(), "invalid_queue_event"),
        (TOPIC, json.dumps({**body, "pad": "x" * 5000}).encode(), "invalid_queue_event"),  # > 4 KiB
        (TOPIC, json.dumps({**body, "at": "yesterday"}).encode(), "invalid_queue_event"),
        (TOPIC, _event(1), "invalid_queue_event"),  # another event under a seq already used
        (TOPIC, json.dumps({**body, "seq": 2}).encode(), "invalid_queue_event"),  # a used id, new seq
    ]
    for topic, payload, reason in cases:
        result = processor.handle(topic, payload, now)
        assert (result.outcome, result.reason) in (("refused", reason), ("invalid", reason)), payload[:80]
    refusals = {(r.center_id, r.reason): r.count for r in store.ingest.refusals(ALL)}
    assert refusals == {("hcm-nowhere", "unknown_center"): 1, (CENTER, "invalid_queue_event"): 8}
    queue = Queue(store)
    assert [(s.seq, s.kind, s.number) for s in queue.steps_since(CENTER, 0)] == [(1, "issued", "A001")]
