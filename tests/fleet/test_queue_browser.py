"""The queue in a real browser (Chromium by Playwright) against ``main.py fleet serve`` in its own
process: an officer calls, a second browser context (the hall's TV, display token, no login) shows it
within 1 s and fetches its announcement; recall, no-show, transfer and break; the phone page follows a
ticket from issue to call to rating, and the rating shows on the manager's page under that officer.
One server for the module; tickets come in from this process as the ingest will bring them."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    expect,
)

from fleet.queue.engine import Queue
from fleet.store import Store, open_store
from tests.fleet.browser import launched_chromium, log_in, new_context, shot
from tests.fleet.browser import watch as watch_page
from tests.fleet.conftest import FakeClock
from tests.fleet.data import build
from tests.fleet.queue_data import CENTER, add_officers, issue, setup_center
from tests.fleet.server import Server, running_server

pytestmark = pytest.mark.browser


@dataclass
class Site:
    server: Server
    store: Store
    queue: Queue
    display: str  # the TV's path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("queue-browser")
    shutil.copyfile(sqlite_template, folder / "fleet.sqlite")
    url = f"sqlite:///{folder / 'fleet.sqlite'}"
    seeding = open_store(url, clock=FakeClock())
    build(seeding)
    seeding.close()
    writer = open_store(url)  # the real clock: what the server sees
    queue = Queue(writer)
    setup_center(queue)
    add_officers(writer, 2)
    queue.update_settings(CENTER, notice_vi="Nghỉ trưa từ 11:30 đến 13:00. Xin cảm ơn!")
    token = queue.create_display(CENTER, "Sảnh tầng 1", None)
    with running_server(url, folder) as server:
        yield Site(server, writer, queue, f"/display/{token}")
    writer.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with launched_chromium("--autoplay-policy=no-user-gesture-required") as browser:
        yield browser


class Watch:
    """Console errors and failed answers of every page of a context (any one fails the test)."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def attach(self, page: Page) -> Page:
        return watch_page(page, self.problems)


@pytest.fixture
def watch() -> Iterator[Watch]:
    found = Watch()
    yield found
    assert found.problems == []


def context(chromium: Browser, site: Site, **options: Any) -> BrowserContext:
    return new_context(chromium, site.server.base, **options)


def calls_when(page: Page, ready: str, timeout_s: float) -> list[dict[str, Any]]:
    """``window.__calls`` once ``ready`` (a Python test on it) holds; polled from here, because the
    pages' CSP forbids the string evaluation of Playwright's wait_for_function."""
    deadline = time.monotonic() + timeout_s
    while True:
        calls: list[dict[str, Any]] = page.evaluate("() => window.__calls || []")
        if eval(ready, {"calls": calls}):
            return calls
        if time.monotonic() > deadline:
            raise AssertionError(f"display never got to {ready}: {calls}")
        time.sleep(0.05)


def open_counter(page: Page, counter: str, services: list[str]) -> None:
    expect(page.locator("h1")).to_have_text("Chọn quầy và lĩnh vực")
    page.check(f"input[name=counter][value='{counter}']")
    for box in page.locator("input[name=services]").all():
        box.set_checked(box.get_attribute("value") in services)
    page.click("#open-counter")
    expect(page.locator("#counter-panel h1")).to_have_text(f"Quầy số {counter}")


def test_a_call_reaches_the_hall_display_within_a_second_and_is_spoken(
    chromium: Browser, site: Site, watch: Watch
) -> None:
    day = site.queue.today()
    for n in (12, 13, 14):
        issue(site.store, f"B{n:03d}", "CHUNGTHUC", day=day)
    officer_ctx, tv_ctx = (
        context(chromium, site),
        context(chromium, site, viewport={"width": 1920, "height": 1080}),
    )
    try:
        counter = watch.attach(officer_ctx.new_page())
        log_in(counter, "canbo01.bt")
        expect(counter).to_have_url(f"{site.server.base}/counter")
        open_counter(counter, "3", ["CHUNGTHUC"])
        tv = watch.attach(tv_ctx.new_page())
        tv.goto(site.display)
        expect(tv.locator(".d-notice")).to_contain_text("Nghỉ trưa")
        calls_when(tv, "calls == []", 5)
        tv.wait_for_timeout(300)  # the stream is open
        audio_requests: list[str] = []
        tv.on(
            "request", lambda r: audio_requests.append(urlsplit(r.url).path) if "/audio/" in r.url else None
        )
        started = time.monotonic()
        counter.keyboard.press("Enter")  # the USB keypad's key for "Gọi số tiếp theo"
        expect(tv.locator('.d-counter[data-counter="3"] .d-counter-number')).to_have_text(
            "B012", timeout=1000
        )
        shown_s = time.monotonic() - started
        assert shown_s < 1.0, shown_s
        expect(tv.locator('.d-counter[data-counter="3"]')).to_have_class("d-counter state-open new-call")
        expect(counter.locator("#current-number")).to_have_text("B012")
        calls_when(tv, "len(calls) == 1 and calls[0].get('audio_started')", 3)
        assert len(audio_requests) >= 1 and audio_requests[0].endswith(".wav")
        shot(tv, "queue-display")
        shot(counter, "queue-counter-app")
        # a recall is spoken again, after the first announcement (never over it)
        counter.click("#btn-recall")
        calls = calls_when(tv, "len(calls) == 2 and calls[1].get('audio_started')", 10)
        assert [c["number"] for c in calls] == ["B012", "B012"] and calls[1]["recall"] is True
        assert calls[1]["audio_started"] >= calls[0]["audio_ended"]
        assert len({p for p in audio_requests}) == 2
        expect(tv.locator(".d-recent li").first).to_contain_text("B012")
    finally:
        officer_ctx.close()
        tv_ctx.close()


def test_recall_no_show_transfer_and_break_at_the_counter(
    chromium: Browser, site: Site, watch: Watch
) -> None:
    day = site.queue.today()
    for n in (20, 21, 22):
        issue(site.store, f"A{n:03d}", "HOTICH", day=day)
    ctx = context(chromium, site)
    try:
        page = watch.attach(ctx.new_page())
        log_in(page, "canbo02.bt")
        open_counter(page, "1", ["HOTICH"])
        expect(page.locator("#waiting-list tbody tr")).to_have_count(3)
        page.click("#btn-next")
        expect(page.locator("#current-number")).to_have_text("A020")
        expect(page.locator("#btn-no-show")).to_be_disabled()  # 2 recalls first (the center's setting)
        page.keyboard.press("r")
        expect(page.locator("#counter-message")).to_have_text("Đã gọi lại số A020.")
        page.keyboard.press("*")
        expect(page.locator("#btn-no-show")).to_be_enabled()
        page.keyboard.press("v")
        expect(page.locator("#counter-message")).to_have_text("Đã ghi vắng mặt.")
        expect(page.locator("#current-number")).to_have_text("—")
        page.click("#btn-next")
        expect(page.locator("#current-number")).to_have_text("A021")
        page.click("#btn-start")
        expect(page.locator(".current")).to_have_class("current has-ticket state-serving")
        page.select_option("#transfer-to", "service:DATDAI")
        page.click("#btn-transfer")
        expect(page.locator("#counter-message")).to_have_text("Đã chuyển.")
        moved = site.queue.find(CENTER, day, "A021")
        assert moved is not None and moved.state == "waiting" and moved.service == "DATDAI"
        page.click("#btn-break")
        expect(page.locator("#counter-panel")).to_contain_text("Đang tạm nghỉ")
        expect(page.locator("#btn-next")).to_be_disabled()
        shot(page, "queue-counter-break")
        page.click("#btn-resume")
        # a ticket issued now (another process: the ingest) appears in the waiting list by itself
        issue(site.store, "A023", "HOTICH", day=day)
        expect(page.locator('#waiting-list tr[data-number="A023"]')).to_be_visible(timeout=3000)
        assert "⟦" not in page.content()
        kinds = [s.kind for s in site.queue.steps_of_ticket(moved.id)]
        assert kinds == ["issued", "called", "serving", "transferred"]
    finally:
        ctx.close()


def test_the_phone_follows_its_ticket_to_the_rating_and_the_manager_sees_it(
    chromium: Browser, site: Site, watch: Watch
) -> None:
    day = site.queue.today()
    ticket = issue(site.store, "C031", "DATDAI", day=day)
    issue(site.store, "C032", "DATDAI", day=day)
    phone_ctx = context(
        chromium, site, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    officer_ctx = context(chromium, site)
    try:
        phone = watch.attach(phone_ctx.new_page())
        phone.goto(f"/q/{ticket.token}")
        card = phone.locator("#phone-card")
        expect(card).to_contain_text("C031")
        transferred_first = site.queue.find(CENTER, day, "A021")
        ahead = 1 if transferred_first is not None and transferred_first.state == "waiting" else 0
        expect(card).to_contain_text(
            "Quý khách là người tiếp theo" if ahead == 0 else f"Trước quý khách còn {ahead} người"
        )
        assert "C032" not in phone.content()
        shot(phone, "queue-phone-waiting")
        counter = watch.attach(officer_ctx.new_page())
        log_in(counter, "canbo.bt")
        open_counter(counter, "2", ["DATDAI"])
        counter.click("#btn-next")
        while counter.locator("#current-number").inner_text() != "C031":
            counter.click("#btn-next")
            counter.wait_for_timeout(200)
        expect(card).to_contain_text("Mời quý khách đến Quầy số 2", timeout=3000)  # live, no reload
        shot(phone, "queue-phone-called")
        counter.click("#btn-done")
        expect(counter.locator("#counter-message")).to_have_text("Đã hoàn thành.")
        expect(phone.locator("#rate-4")).to_be_visible(timeout=3000)
        phone.click("#rate-4")
        expect(phone.locator("#thanks")).to_have_text("Xin cảm ơn quý khách đã đánh giá!")
        shot(phone, "queue-phone-rated")
    finally:
        phone_ctx.close()
        officer_ctx.close()
    manager_ctx = context(chromium, site)
    try:
        manager = watch.attach(manager_ctx.new_page())
        log_in(manager, "quanly.bt")
        manager.click("nav.nav >> text=Hàng đợi")
        expect(manager.locator("h1")).to_have_text("Hàng đợi tại quầy")
        row = manager.locator("#queue-ratings tbody tr", has_text="Phạm Thu Hà")
        expect(row).to_have_count(1)
        expect(row.locator("td").nth(1)).to_have_text("1")  # one rating, by phone
        expect(row.locator("td").nth(4)).to_have_text("1")
        expect(manager.locator("#queue-stats")).to_contain_text("Đất đai")
        assert "⟦" not in manager.content()
        shot(manager, "queue-manager")
    finally:
        manager_ctx.close()


def test_the_counter_calls_a_booked_ticket_before_an_earlier_walk_in(
    chromium: Browser, site: Site, watch: Watch
) -> None:
    """Booked appointments (docs/queue.md "Appointments"): the waiting list shows the booked time, and
    "Gọi số tiếp theo" calls the booked ticket whose time has come before the walk-in who came earlier."""
    from datetime import timedelta

    site.queue.set_service(CENTER, "CUTRU", "D", "Cư trú", "Residence", 9)
    site.queue.set_counter(CENTER, "4", "Quầy số 4", ["CUTRU"], 4)
    add_officers(site.store, 3)
    day = site.queue.today()
    now = site.store.db.now()
    issue(site.store, "D001", "CUTRU", day=day, at=now - timedelta(minutes=10))
    booked = now.astimezone(site.queue.zone).strftime("%H:%M")
    issue(site.store, "D002", "CUTRU", day=day, appointment_at=booked)
    ctx = context(chromium, site)
    try:
        page = watch.attach(ctx.new_page())
        log_in(page, "canbo03.bt")
        open_counter(page, "4", ["CUTRU"])
        rows = page.locator("#waiting-list tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.first).to_have_attribute("data-number", "D002")  # call order: the due appointment
        expect(rows.first.locator(".badge.appt")).to_have_text(f"Hẹn {booked}")
        expect(rows.nth(1)).to_have_attribute("data-number", "D001")
        shot(page, "queue-counter-appointment")
        page.click("#btn-next")
        expect(page.locator("#current-number")).to_have_text("D002")
        expect(page.locator(".current .badge.appt")).to_have_text(f"Hẹn {booked}")
        page.keyboard.press("Enter")
        expect(page.locator("#current-number")).to_have_text("D001")
        page.click("#btn-done")
        expect(page.locator("#counter-message")).to_have_text("Đã hoàn thành.")
    finally:
        ctx.close()
