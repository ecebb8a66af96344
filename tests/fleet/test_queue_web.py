"""The queue's pages in-process (Starlette's TestClient, real store): the counter app's buttons, who may
open what, the display and phone tokens (nothing but their own center and ticket), exports, audio."""

from __future__ import annotations

import csv
import io
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.queue import stats
from fleet.queue.audio import Voice
from fleet.queue.engine import Queue
from fleet.store import Scope, Store, open_store
from fleet.web.queue_web import QueueWebSettings
from tests.fleet.conftest import FakeClock
from tests.fleet.data import build
from tests.fleet.queue_data import CENTER, issue, setup_center
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


def test_the_counter_app_by_its_forms(web_store: Store, queue_settings: QueueWebSettings) -> None:
    queue = Queue(web_store)
    day = queue.today()
    for n in (1, 2):
        issue(web_store, f"A{n:03d}", "HOTICH", day=day)
    with browser(web_store, "canbo.bt", queue=queue_settings) as officer:
        page = officer.client.get("/counter")
        assert page.status_code == 200 and "Chọn quầy và lĩnh vực" in page.text
        opened = officer.post("/counter/open", {"counter": "1", "services": "HOTICH"})
        assert opened.status_code == 303
        assert "Quầy số 1" in officer.client.get("/counter").text
        # with JavaScript: the answer is JSON with the re-drawn panel and waiting list
        called = officer.client.post(
            "/counter/next", data={"csrf": officer.csrf}, headers={"Accept": "application/json"}
        )
        body = called.json()
        assert called.status_code == 200 and body["ok"] and body["number"] == "A001"
        assert (
            body["message"] == "Đã gọi số A001."
            and 'id="current-number">A001' in body["html"]["counter-panel"]
        )
        assert 'data-number="A002"' in body["html"]["waiting-list"]
        refused = officer.client.post(
            "/counter/no-show", data={"csrf": officer.csrf}, headers={"Accept": "application/json"}
        )
        assert refused.status_code == 409 and refused.json()["key"] == "queue.error.recall_first"
        # without JavaScript: 303 back to the page, which says what happened
        back = officer.post("/counter/recall")
        assert back.status_code == 303 and back.headers["location"] == "/counter?msg=queue.msg.recalled"
        assert "Đã gọi lại số" in officer.client.get(back.headers["location"]).text
        assert officer.post("/counter/transfer", {"to": "counter:2"}).status_code == 303
        left = queue.find(CENTER, day, "A002")
        assert left is not None
        assert officer.post(f"/counter/left/{left.id}").status_code == 303
        assert [t.state for t in queue.tickets(CENTER, day)] == ["waiting", "left"]
        assert officer.post("/counter/break").headers["location"] == "/counter?msg=queue.msg.break"
        assert officer.post("/counter/no-such-action").status_code == 404
        assert officer.post("/counter/next", csrf=False).status_code == 403  # CSRF as everywhere
        # officers see no statistics and no ratings, not even their own
        assert officer.client.get(f"/queue/{CENTER}").status_code == 403
        assert officer.client.get(f"/queue/{CENTER}?list=ratings&format=json").status_code == 403
    with browser(web_store, "quanly.bt", queue=queue_settings) as manager:
        assert manager.client.get("/counter").status_code == 403
        assert manager.post("/counter/next").status_code == 403


def test_manager_page_exports_and_settings(web_store: Store, queue_settings: QueueWebSettings) -> None:
    queue = Queue(web_store)
    day = queue.today()
    issue(web_store, "A001", "HOTICH", day=day)
    with browser(web_store, "quanly.bt", queue=queue_settings) as manager:
        page = manager.client.get(f"/queue/{CENTER}")
        assert page.status_code == 200 and "Hàng đợi tại quầy" in page.text and "Hộ tịch" in page.text
        # the statistics' days said beside their fields in the page's order (browsers draw the fields
        # in their own locale's)
        y, m, d = day.split("-")
        said = f'<output class="day-said" id="queue-from-said" for="queue-from">{d}/{m}/{y}</output>'
        assert said in page.text
        exported = manager.client.get(f"/queue/{CENTER}?format=csv&by=service")
        rows = list(csv.reader(io.StringIO(exported.text.lstrip("\ufeff"))))
        assert rows[0][:3] == ["Nhóm", "Số lượt lấy số", "Số lượt gọi"] and rows[1][:2] == ["Hộ tịch", "1"]
        assert manager.client.get(f"/queue/{CENTER}?list=ratings&format=json").json()["items"] == []
        saved = manager.post(
            f"/queue/{CENTER}/settings",
            {
                "max_recalls": "3",
                "priority_mode": "interleave",
                "priority_every": "4",
                "notice_vi": "Nghỉ trưa 11:30",
            },
        )
        assert saved.status_code == 303
        settings = queue.settings(CENTER)
        assert (settings.max_recalls, settings.priority_mode, settings.priority_every) == (3, "interleave", 4)
        assert manager.post(f"/queue/{CENTER}/settings", {"max_recalls": "99"}).status_code == 400
        audited = [
            e for e in web_store.audit.page(Scope.center(CENTER)).items if e.action == "queue.settings"
        ]
        assert len(audited) == 1 and audited[0].after is not None and audited[0].after["max_recalls"] == 3
    with browser(web_store, "xem.bt", queue=queue_settings) as viewer:  # a viewer: statistics, no ratings
        assert viewer.client.get(f"/queue/{CENTER}").status_code == 200
        assert viewer.client.get(f"/queue/{CENTER}?list=ratings&format=csv").status_code == 403
        assert viewer.post(f"/queue/{CENTER}/settings", {"max_recalls": "1"}).status_code == 403


def test_display_token_shows_its_center_and_speaks_its_calls(
    web_store: Store, queue_settings: QueueWebSettings
) -> None:
    queue = Queue(web_store)
    day = queue.today()
    token = queue.create_display(CENTER, "Sảnh tầng 1", None)
    other = queue.create_display("hcm-thu-dau-mot", "", None)
    issue(web_store, "A012", "HOTICH", day=day)
    from tests.fleet.queue_data import officer

    person = officer(web_store, "canbo.bt")
    queue.open_session(person, "3", ["HOTICH"])
    queue.call_next(person)
    call = next(s for s in queue.steps_since(CENTER, 0) if s.kind == "called")
    with browser(web_store, queue=queue_settings) as tv:  # nobody logged in
        page = tv.client.get(f"/display/{token}")
        assert page.status_code == 200 and "A012" in page.text and "Quầy 3" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert tv.client.get("/display/not-a-token").status_code == 404
        audio = tv.client.get(f"/display/{token}/audio/{call.id}.wav")
        assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
        assert audio.content[:4] == b"RIFF" and len(audio.content) > 50_000
        assert tv.client.get(f"/display/{other}/audio/{call.id}.wav").status_code == 404  # another center's
        issued = next(s for s in queue.steps_since(CENTER, 0) if s.kind == "issued")
        assert tv.client.get(f"/display/{token}/audio/{issued.id}.wav").status_code == 404  # not a call
        display_id = queue.displays(CENTER)[0]["id"]
        queue.revoke_display(CENTER, display_id)
        assert tv.client.get(f"/display/{token}").status_code == 404


def test_the_phone_page_shows_one_ticket_of_today_only(
    web_store: Store, queue_settings: QueueWebSettings, clock: FakeClock
) -> None:
    queue = Queue(web_store)
    day = queue.today()
    mine = issue(web_store, "A001", "HOTICH", day=day)
    issue(web_store, "A002", "HOTICH", day=day)
    from tests.fleet.queue_data import officer

    person = officer(web_store, "canbo.bt")
    with browser(web_store, queue=queue_settings) as phone:
        page = phone.client.get(f"/q/{mine.token}")
        assert page.status_code == 200 and "A001" in page.text and "A002" not in page.text
        assert "Quý khách là người tiếp theo" in page.text
        assert "Chưa ước tính được thời gian chờ" in page.text  # no history: said so, not guessed
        assert "Phạm Thu Hà" not in page.text and "canbo" not in page.text
        other_last = "y" if mine.token.endswith("x") else "x"  # "x" alone was the real token 1 run in 32
        assert phone.client.get(f"/q/{mine.token[:-1]}{other_last}").status_code == 404
        queue.open_session(person, "1", ["HOTICH"])
        queue.call_next(person)
        assert "Mời quý khách đến Quầy số 1" in phone.client.get(f"/q/{mine.token}").text
        queue.done(person)
        rating_page = phone.client.get(f"/q/{mine.token}").text
        assert "Rất hài lòng" in rating_page
        from tests.fleet.web import csrf_of

        rated = phone.client.post(
            f"/q/{mine.token}/rate", data={"level": "4", "csrf": csrf_of(rating_page)}, follow_redirects=False
        )
        assert rated.status_code == 303 and rated.headers["location"].endswith("?rated=1")
        again = phone.client.post(
            f"/q/{mine.token}/rate", data={"level": "1", "csrf": csrf_of(rating_page)}, follow_redirects=False
        )
        assert again.headers["location"].endswith("?rated=again")
        assert "Quý khách đã đánh giá lượt phục vụ này" in phone.client.get(f"/q/{mine.token}").text
        clock.advance(days=1)  # tomorrow the token opens nothing
        assert phone.client.get(f"/q/{mine.token}").status_code == 404
    ratings = stats.ratings(queue, CENTER, day, day, zone=queue.zone)
    assert [(r.label, r.count) for r in ratings] == [("Phạm Thu Hà", 1)]


def test_the_token_is_what_the_kiosk_computes_offline(web_store: Store) -> None:
    from contract.queue import phone_token, phone_url

    queue = Queue(web_store)
    ticket = issue(web_store, "B023", "CHUNGTHUC", day=queue.today())
    key = queue.settings(CENTER).phone_key
    assert ticket.token == phone_token(key, CENTER, ticket.day, "B023")
    assert (
        phone_url("https://motcua-benthanh.local/", ticket.token)
        == f"https://motcua-benthanh.local/q/{ticket.token}"
    )
    out = subprocess.run(
        [
            ".venv/bin/python",
            "main.py",
            "fleet",
            "queue",
            "phone-key",
            "--db",
            str(web_store.db.url.database),
            "--center",
            CENTER,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert bytes.fromhex(out.stdout.strip()) == key
