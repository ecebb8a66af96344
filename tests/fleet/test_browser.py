"""The fleet monitor in a real browser (Chromium driven by Playwright) against ``main.py fleet serve``
in its own process, over a store filled through the store API. Screenshots: artifacts/fleet/*.png."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from fleet.store import Scope, Store, open_store
from fleet.store.models import StatusReport
from tests.fleet.browser import launched_chromium, log_in, shot, watched_page
from tests.fleet.conftest import FakeClock
from tests.fleet.data import PASSWORD, birth, build_day, health
from tests.fleet.server import Server, running_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[tuple[Server, Store]]:
    import shutil

    folder = tmp_path_factory.mktemp("fleet-browser")
    shutil.copyfile(sqlite_template, folder / "fleet.sqlite")
    url = f"sqlite:///{folder / 'fleet.sqlite'}"
    seeding = open_store(url, clock=FakeClock())
    clock = seeding.db.clock
    assert isinstance(clock, FakeClock)
    build_day(seeding, clock)
    seeding.close()
    writer = open_store(url)  # real clock from here on: the writes the live tests make
    with running_server(url, folder) as server:
        yield server, writer
    writer.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


@pytest.fixture
def console() -> list[str]:
    """What went wrong in the page: console errors, script exceptions, and every answer >= 400 with its
    path (a test that expects some takes them out)."""
    return []


@pytest.fixture
def page(chromium: Browser, site: tuple[Server, Store], console: list[str]) -> Iterator[Page]:
    with watched_page(chromium, site[0].base, console) as opened:
        yield opened



def no_missing_text(page: Page) -> None:
    assert "⟦" not in page.content()


def test_province_admin_sees_every_page(page: Page) -> None:
    page.goto("/centers/hcm-ben-thanh")
    expect(page).to_have_url("/login?next=/centers/hcm-ben-thanh")
    expect(page.locator("h1")).to_have_text("Đăng nhập")
    shot(page, "01-login")
    page.fill("input[name=username]", "admin.hcm")
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")  # back to where the link pointed
    expect(page.locator("h1")).to_have_text("Trung tâm Phục vụ hành chính công phường Bến Thành")
    page.goto("/centers")
    expect(page.locator("h1")).to_have_text("Các trung tâm")
    rows = page.locator("table.list tbody tr")
    expect(rows).to_have_count(2)
    assert "Hoàn Kiếm" not in page.content()  # another province
    expect(page.locator(".live-status")).to_have_text("Cập nhật trực tiếp")
    no_missing_text(page)
    shot(page, "02-centers")
    page.click("text=Trung tâm Phục vụ hành chính công phường Bến Thành")
    expect(page.locator("table.kiosks tbody tr")).to_have_count(3)
    expect(page.locator('[data-kiosk="kiosk-bt-01"] [data-field="devices"]')).to_contain_text(
        "Máy in phiếu: Hết giấy"
    )
    no_missing_text(page)
    shot(page, "03-center")
    page.click("a[href='/kiosks/kiosk-bt-01']")
    expect(page.locator("h1")).to_have_text("Kiosk kiosk-bt-01")
    expect(page.locator("svg.timeline rect")).to_have_count(4)  # online, offline, online... within 24 h
    expect(page.locator(".dev-card")).to_have_count(3)
    expect(page.locator(".gaps")).to_contain_text("Từ số 5 đến 6 (2 sự kiện)")
    # each event in words, its raw payload folded for a technician
    ticket = page.locator("#events tr[data-kind='ticket_issued']").first
    expect(ticket).to_contain_text("Lấy số thứ tự")
    expect(ticket.locator(".event-text")).to_have_text("Số A007 · HOTICH")  # no queue service named here
    expect(ticket.locator("details code.payload")).to_be_hidden()
    outcome = page.locator("#commands .outcome[data-outcome='error']")  # the kiosk's English: its title
    expect(outcome).to_have_text("Không in được phiếu thử.")
    expect(outcome).to_have_attribute("title", "Nguyên văn (tiếng Anh): printer: paper out")
    no_missing_text(page)
    shot(page, "04-kiosk")
    page.click("nav.nav >> text=Cảnh báo")
    expect(page.locator("h1")).to_have_text("Cảnh báo")
    expect(page.locator("table.list tbody tr")).to_have_count(3)
    shot(page, "05-alarms")
    page.click("nav.nav >> text=Người dùng")
    expect(page.locator("tr[data-user='quanly.tdm']")).to_be_visible()
    assert "admin.hn" not in page.content()
    shot(page, "06-users")
    page.click("nav.nav >> text=Nhật ký thao tác")
    expect(page.locator("tr[data-action='login.ok']").first).to_contain_text("admin.hcm")
    shot(page, "07-audit")
    page.click("a.who")
    expect(page.locator("h1")).to_have_text("Tài khoản của tôi")
    shot(page, "08-account")


def test_a_technician_acknowledges_an_alarm(page: Page, site: tuple[Server, Store]) -> None:
    _, writer = site
    alarm, _ = writer.alarms.raise_alarm("kiosk-bt-02", "app_down", "major")
    log_in(page, "kythuat.bt")
    page.goto("/alarms")
    row = page.locator(f"tr[data-alarm='{alarm.id}']")
    expect(row).to_contain_text("Ứng dụng kiosk không chạy")
    row.locator("button[data-ack]").click()
    expect(page.locator(".flash.ok")).to_have_text("Đã xác nhận cảnh báo.")
    expect(page.locator(f"tr[data-alarm='{alarm.id}']")).to_contain_text("Đã xác nhận: kythuat.bt")
    shot(page, "09-alarm-acknowledged")
    stored = writer.alarms.get(Scope.everything(), alarm.id)
    assert stored.acknowledged_by_name == "kythuat.bt"
    entry = writer.audit.page(Scope.everything(), action="alarm.ack").items[0]
    assert (entry.username, entry.object_id) == ("kythuat.bt", str(alarm.id))


def test_a_row_changes_live_after_a_write_from_another_process(
    page: Page, site: tuple[Server, Store]
) -> None:
    _, writer = site
    log_in(page, "quanly.bt")
    page.goto("/centers/hcm-ben-thanh")
    expect(page.locator(".live-status")).to_have_text("Cập nhật trực tiếp")
    cell = page.locator('[data-kiosk="kiosk-bt-03"] [data-field="state"]')
    expect(cell).to_contain_text("Chưa kết nối")
    page.evaluate("window.fleetMarker = 'not reloaded'")
    shot(page, "10-live-before")
    writer.telemetry.record_status("hcm-ben-thanh", "kiosk-bt-03", birth(7_000, writer.db.now()))
    writer.telemetry.record_health(
        "hcm-ben-thanh", "kiosk-bt-03", health(writer.db.now(), 7_000, printer="paper_near_end")
    )
    expect(cell).to_contain_text("Trực tuyến", timeout=5_000)
    expect(page.locator('[data-kiosk="kiosk-bt-03"] [data-field="devices"]')).to_contain_text(
        "Máy in phiếu: Sắp hết giấy", timeout=5_000
    )
    expect(page.locator("[data-live-target='center-summary:hcm-ben-thanh'] dd").nth(1)).to_have_text("2")
    assert page.evaluate("window.fleetMarker") == "not reloaded"
    shot(page, "11-live-after")
    writer.telemetry.record_status("hcm-ben-thanh", "kiosk-bt-03", StatusReport("offline", "shutdown", 7_000))
    expect(cell).to_contain_text("Ngoại tuyến", timeout=5_000)


def test_switch_to_english_and_back(page: Page) -> None:
    log_in(page, "quanly.bt")
    page.goto("/kiosks/kiosk-bt-01")
    page.click("#language-toggle")
    expect(page.locator("h2").first).to_contain_text("Status timeline")
    expect(page.locator("nav.nav")).to_contain_text("Alarms")
    expect(page.locator(".dev-card[data-device='printer']")).to_contain_text("Out of paper")
    no_missing_text(page)
    shot(page, "12-kiosk-english")
    page.goto("/centers/hcm-ben-thanh")
    expect(page.locator("h2")).to_have_text("Kiosks of the center")
    shot(page, "13-center-english")
    page.click("#language-toggle")
    expect(page.locator("h2")).to_have_text("Kiosk của trung tâm")


def test_a_center_manager_is_refused_another_centers_kiosk_by_url(page: Page, console: list[str]) -> None:
    log_in(page, "quanly.bt")
    response = page.goto("/kiosks/kiosk-tdm-01")
    assert response is not None and response.status == 404
    expect(page.locator("#error-message")).to_have_text(
        "Không tìm thấy trang hoặc dữ liệu này, hoặc tài khoản của bạn không có quyền xem."
    )
    assert "Thủ Dầu Một" not in page.content()
    shot(page, "14-refused-other-center")
    response = page.goto("/centers/hcm-thu-dau-mot?format=csv")
    assert response is not None and response.status == 404
    page.goto("/centers")
    expect(page.locator("table.list tbody tr")).to_have_count(1)
    assert console == ["404 /kiosks/kiosk-tdm-01", "404 /centers/hcm-thu-dau-mot?format=csv"]
    console.clear()
