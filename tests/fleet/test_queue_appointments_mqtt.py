"""End to end over a real Mosquitto: a kiosk journals a booked appointment's ``ticket_issued`` (with
``appointment_at``) after a walk-in's; its agent publishes both; the fleet ingest stores them and the
queue's hook makes the booked one an appointment, which the counter then calls first."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from common.journal import EventJournal
from contract.events import TicketIssued
from contract.tickets import center_zone
from fleet.store import Store, open_store
from tests.agent.broker import Broker, Pki, running_broker, temporary_pki
from tests.fleet.mqtt import CENTER, KIOSKS, eventually, kiosk, running_worker, seed, worker_settings

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def pki() -> Iterator[Pki]:
    with temporary_pki((*KIOSKS, "fleet"), "fapki-") as made:
        yield made


@pytest.fixture(scope="module")
def broker(pki: Pki) -> Iterator[Broker]:
    with running_broker(pki, "fabrk-") as instance:
        yield instance


@pytest.fixture
def fleet(sqlite_url: str) -> Iterator[Store]:
    store = open_store(sqlite_url)
    seed(store)
    yield store
    store.close()


def test_a_booked_ticket_from_a_kiosk_is_an_appointment_in_the_queue(
    fleet: Store, broker: Broker, pki: Pki
) -> None:
    from fleet.ingest import plugins
    from fleet.queue.hooks import queue_of
    from tests.fleet.queue_data import add_officers, setup_center

    plugins.load()
    queue = queue_of(fleet)
    setup_center(queue)
    now = datetime.now(center_zone("Asia/Ho_Chi_Minh"))
    day, booked = now.date().isoformat(), now.strftime("%H:%M")  # on time: within the tolerance
    group = f"t{uuid.uuid4().hex[:8]}"
    with (
        running_worker(fleet, worker_settings(broker, pki, group, share=group, session_expiry_s=0)),
        kiosk(broker, pki, "kiosk-d") as (_agent, _app, directory),
    ):
        journal = EventJournal(directory / "events.sqlite")
        journal.append(TicketIssued("A020", "HOTICH", day=day))  # a walk-in, first
        journal.append(TicketIssued("A021", "HOTICH", day=day, appointment_at=booked))
        journal.close()

        def both() -> list[Any] | None:
            found = queue.tickets(CENTER, day)
            return found if len(found) == 2 else None

        tickets = {t.number: t for t in eventually(both, timeout=20)}
    assert tickets["A020"].appointment_at is None
    appointment = tickets["A021"]
    assert appointment.booked and appointment.kiosk_id == "kiosk-d"
    assert appointment.appointment_at is not None
    assert appointment.appointment_at.astimezone(now.tzinfo).strftime("%Y-%m-%d %H:%M") == f"{day} {booked}"
    issued = queue.steps_of_ticket(appointment.id)[0]
    assert issued.kind == "issued" and "appointment_at" in issued.detail
    person = add_officers(fleet, 1)[0]
    queue.open_session(person, "1", ["HOTICH"])
    first = queue.call_next(person)
    assert first is not None and first.number == "A021"  # its time has come: before the earlier walk-in
