"""The queue on the contract, through a real Mosquitto with the shipped configuration and ACL: the
publisher (user ``counter``) sends every step as ``queue-event/1`` in ``seq`` order, each call as
``queue-called/1`` which the real allocator consumes (so ``waiting_ahead`` leaves called tickets out),
and the retained ``queue-stats/1``; steps made while it was not running are sent when it starts."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from common.mqtt import Backoff, Message, MqttLink, TlsConfig, Will
from contract.queue import QueueEvent, QueueStats
from contract.tickets import NumberPlan, TicketRequest, TicketResponse, center_zone
from contract.topics import CenterTopics
from fleet.allocator import Allocator, AllocatorBook, AllocatorSettings
from fleet.queue.engine import Queue
from fleet.queue.publisher import PublisherSettings, QueuePublisher
from fleet.store import open_store
from tests.agent.broker import Broker, Pki, running_broker, temporary_pki
from tests.fleet.conftest import FakeClock
from tests.fleet.data import build
from tests.fleet.queue_data import CENTER, issue, officer, setup_center

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def pki() -> Iterator[Pki]:
    with temporary_pki(("counter", "allocator", "fleet"), "qpki-") as made:
        yield made


@pytest.fixture(scope="module")
def broker(pki: Pki) -> Iterator[Broker]:
    with running_broker(pki, "qbrk-") as instance:
        yield instance


def _tls(pki: Pki, name: str) -> TlsConfig:
    identity = pki.client(name)
    return TlsConfig(pki.ca.cert_file, identity.cert_file, identity.key_file)


def test_steps_calls_and_stats_reach_the_broker_and_the_allocator(
    broker: Broker, pki: Pki, tmp_path: Path, sqlite_template: Path
) -> None:
    shutil.copyfile(sqlite_template, tmp_path / "fleet.sqlite")
    url = f"sqlite:///{tmp_path / 'fleet.sqlite'}"
    seeding = open_store(url, clock=FakeClock())
    build(seeding)
    seeding.close()
    store = open_store(url)
    queue = Queue(store)
    setup_center(queue)
    # the allocator's book has the three numbers it handed out (online, in this order)
    book_path = tmp_path / "allocator.sqlite"
    book = AllocatorBook(book_path, NumberPlan(), center_zone())
    now = datetime.now(UTC)
    answers: list[TicketResponse] = []
    for n in (1, 2, 3):
        request = TicketRequest(
            f"kiosk-bt-01-r{n}", "allocate", 0, NumberPlan(), service="HOTICH", prefix="A"
        )
        payload = request.to_payload()
        answers += book.transaction(lambda payload=payload: [book.handle("kiosk-bt-01", payload, now)])  # type: ignore[misc]
    book.close()
    assert [a.number for a in answers] == ["A001", "A002", "A003"] and answers[2].waiting_ahead == 2
    day = answers[0].day
    assert day is not None
    for a in answers:
        assert a.number is not None
        issue(store, a.number, "HOTICH", day=day)  # the kiosks printed them: ticket_issued
    person = officer(store, "canbo.bt")
    queue.open_session(person, "1", ["HOTICH"])
    first = queue.call_next(person)  # before the publisher runs: it waits in the outbox
    assert first is not None and first.number == "A001"

    topics = CenterTopics(CENTER)
    received: list[Message] = []
    got = threading.Event()

    def on_message(message: Message) -> None:
        received.append(message)
        watcher.ack(message.generation, message.mid, message.qos)
        got.set()

    watcher = MqttLink(
        client_id="queue-watcher",
        host="127.0.0.1",
        port=broker.service_port,
        tls=_tls(pki, "fleet"),
        session_expiry_s=0,
        backoff=Backoff(0.1, 1.0),
        will=lambda: Will("motcua/v1/hcm-ben-thanh/_center/queue/watcher", b""),
    )
    for topic in (topics.queue_event, topics.queue_called, topics.queue_stats):
        watcher.subscribe(topic, 1, on_message)
    watcher.start()
    assert watcher.wait_subscribed(10)
    allocator = Allocator(
        AllocatorSettings(
            CENTER,
            book_path,
            port=broker.service_port,
            ca_file=pki.ca.cert_file,
            cert_file=pki.client("allocator").cert_file,
            key_file=pki.client("allocator").key_file,
        )
    )
    allocator.start()
    publisher = QueuePublisher(
        queue,
        PublisherSettings(
            CENTER,
            port=broker.service_port,
            ca_file=pki.ca.cert_file,
            cert_file=pki.client("counter").cert_file,
            key_file=pki.client("counter").key_file,
        ),
    )
    try:
        assert allocator.link.wait_subscribed(10)
        publisher.start()
        second = queue.call_next(person)  # while it runs
        assert second is not None and second.number == "A002"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(queue.unpublished(500)) > 0:
            time.sleep(0.05)
        assert queue.unpublished(500) == []
        deadline = time.monotonic() + 15
        called_in_book: list[str] = []
        while time.monotonic() < deadline:
            called_in_book = [t["number"] for t in allocator.book.tickets(day) if t["called_at"]]
            if called_in_book == ["A001", "A002"]:
                break
            time.sleep(0.05)
        assert called_in_book == ["A001", "A002"]  # the allocator knows who no longer waits
        # a new number now has only A003 ahead of it: the allocator's waiting_ahead is right again
        request = TicketRequest("kiosk-bt-01-r4", "allocate", 0, NumberPlan(), service="HOTICH", prefix="A")
        fourth = allocator.book.transaction(
            lambda: [allocator.book.handle("kiosk-bt-01", request.to_payload(), datetime.now(UTC))]
        )[0]
        assert fourth.number == "A004" and fourth.waiting_ahead == 1
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(m.topic == topics.queue_stats for m in received):
            time.sleep(0.05)
    finally:
        publisher.stop()
        allocator.stop()
        watcher.stop()
        store.close()
    events = [QueueEvent.parse(m.payload) for m in received if m.topic == topics.queue_event]
    steps = queue.steps_since(CENTER, 0)
    assert [e.event_id for e in events] == [s.event_id for s in steps]  # every step, in order, once here
    assert [e.seq for e in events] == list(range(1, len(steps) + 1))
    assert [e.kind for e in events if e.number == "A001"] == ["issued", "called", "done"]
    assert {e.officer for e in events if e.kind == "called"} == {"canbo.bt"}
    calls = [m for m in received if m.topic == topics.queue_called]
    assert [m.payload.count(b'"A00') for m in calls] == [1, 1]
    stats = [QueueStats.parse(m.payload) for m in received if m.topic == topics.queue_stats and m.payload]
    assert stats and stats[-1].service("HOTICH") is not None
    assert stats[-1].service("HOTICH").waiting == 1  # type: ignore[union-attr]  # A003
