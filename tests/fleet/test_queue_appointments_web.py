"""Appointments on the queue's pages in-process (real store): the manager's settings form and audit,
the statistics page and its CSV/JSON exports with appointments apart from walk-ins, the booked time in
the counter's waiting list, and the phone page of a booked ticket."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.queue.audio import Voice
from fleet.queue.engine import Queue
from fleet.store import Scope, Store, open_store
from fleet.web.queue_web import QueueWebSettings
from tests.fleet.conftest import FakeClock
from tests.fleet.data import build
from tests.fleet.queue_data import CENTER, issue, officer, setup_center
from tests.fleet.web import browser


@pytest.fixture
def web_store(sqlite_url: str, clock: FakeClock) -> Iterator[Store]:
    store = open_store(sqlite_url, clock=clock)
    build(store)
    setup_center(Queue(store))
    yield store
    store.close()


@pytest.fixture
def queue_settings(tmp_path: Path) -> QueueWebSettings:
    return QueueWebSettings(audio_cache=tmp_path / "audio", voice=Voice("espeak"))


def test_the_manager_sets_the_rules_and_reads_appointments_apart(
    web_store: Store, queue_settings: QueueWebSettings, clock: FakeClock
) -> None:
    queue = Queue(web_store)
    day = queue.today()  # the clock says 10:00 in Vietnam
    issue(web_store, "A001", "HOTICH", day=day)
    issue(web_store, "A002", "HOTICH", day=day, appointment_at="10:00")
    with browser(web_store, "quanly.bt", queue=queue_settings) as manager:
        page = manager.client.get(f"/queue/{CENTER}")
        assert page.status_code == 200 and 'name="appointment_early"' in page.text
        saved = manager.post(
            f"/queue/{CENTER}/settings",
            {"appointment_early": "hold", "appointment_ahead_min": "10", "appointment_late_min": "20"},
        )
        assert saved.status_code == 303
        settings = queue.settings(CENTER)
        rules = (settings.appointment_early, settings.appointment_ahead_min, settings.appointment_late_min)
        assert rules == ("hold", 10, 20)
        assert manager.post(f"/queue/{CENTER}/settings", {"appointment_early": "never"}).status_code == 400
        assert manager.post(f"/queue/{CENTER}/settings", {"appointment_late_min": "x"}).status_code == 400
        entries = web_store.audit.page(Scope.center(CENTER)).items
        audited = [e for e in entries if e.action == "queue.settings"]
        assert len(audited) == 1 and audited[0].after is not None
        assert audited[0].before is not None and audited[0].before["appointment_early"] == "wait"
        assert audited[0].after["appointment_late_min"] == 20
        # served: the booked one first (it is due), then the walk-in
        person = officer(web_store, "canbo.bt")
        queue.open_session(person, "1", ["HOTICH"])
        clock.advance(minutes=6)
        assert [t.number for t in (queue.call_next(person), queue.call_next(person))] == ["A002", "A001"]  # type: ignore[union-attr]
        clock.advance(minutes=1)
        queue.done(person)
        exported = manager.client.get(f"/queue/{CENTER}?format=csv&by=service")
        rows = list(csv.reader(io.StringIO(exported.text.lstrip("\ufeff"))))
        header, hotich = rows[0], next(r for r in rows if r[0] == "Hộ tịch")
        cell = dict(zip(header, hotich, strict=True))
        assert (cell["Số lượt lấy số"], cell["Không hẹn"], cell["Có lịch hẹn"]) == ("2", "1", "1")
        assert cell["Chờ trung bình, có hẹn (phút)"] == "6.0"  # from 10:00, the booked time
        assert cell["Chờ trung bình, không hẹn (phút)"] == "6.0"
        items = manager.client.get(f"/queue/{CENTER}?format=json&by=service").json()["items"]
        found = next(i for i in items if i["key"] == "Hộ tịch")
        assert (found["appointments"], found["walk_ins"], found["appointments_late"]) == (1, 1, 0)
        assert found["appt_wait_avg_min"] == 6.0 and found["appt_wait_max_min"] == 6.0
        html = manager.client.get(f"/queue/{CENTER}").text
        assert "Có lịch hẹn" in html and "Không hẹn" in html


def test_the_counter_shows_the_booked_time_and_the_phone_page_works(
    web_store: Store, queue_settings: QueueWebSettings
) -> None:
    queue = Queue(web_store)
    day = queue.today()
    issue(web_store, "A001", "HOTICH", day=day)
    booked = issue(web_store, "A002", "HOTICH", day=day, appointment_at="10:30")
    with browser(web_store, "canbo.bt", queue=queue_settings) as person:
        assert person.post("/counter/open", {"counter": "1", "services": "HOTICH"}).status_code == 303
        page = person.client.get("/counter")
        assert page.status_code == 200
        assert 'data-booked="10:30"' in page.text and "Hẹn 10:30" in page.text
        phone = person.client.get(f"/q/{booked.token}")
        assert phone.status_code == 200 and "A002" in phone.text
