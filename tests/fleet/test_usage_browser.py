"""The usage page and the reports in a real browser (Chromium driven by Playwright) against
``main.py fleet serve`` in its own process: figures of November, a figure changing live after an
event stored by another process (the page is not reloaded), a report downloaded from the form and
read back with openpyxl, a manager refused another center's report by URL, the province in English.
Screenshots: artifacts/fleet/40-... to 45-...."""

from __future__ import annotations

import csv
import io
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from playwright.sync_api import Browser, Page, expect

from fleet.store import Store, open_store
from tests.fleet.browser import launched_chromium, log_in, shot, watched_page
from tests.fleet.conftest import TIMINGS, FakeClock
from tests.fleet.server import Server, running_server
from tests.fleet.usage_data import Expected, event, seed

pytestmark = pytest.mark.browser
MONTH = "from=2026-11-01&to=2026-11-30"


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[tuple[Server, Store, Path]]:
    folder = tmp_path_factory.mktemp("usage-browser")
    shutil.copyfile(sqlite_template, folder / "fleet.sqlite")
    url = f"sqlite:///{folder / 'fleet.sqlite'}"
    clock = FakeClock()
    seeding = open_store(url, clock=clock)
    seed(seeding, clock)
    seeding.close()
    writer = open_store(url)  # the real clock from here on: what "another process" writes live
    with running_server(url, folder) as server:
        yield server, writer, folder
    writer.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


@pytest.fixture
def console() -> list[str]:
    return []


@pytest.fixture
def page(chromium: Browser, site: tuple[Server, Store, Path], console: list[str]) -> Iterator[Page]:
    with watched_page(chromium, site[0].base, console, accept_downloads=True) as opened:
        yield opened



def test_a_manager_sees_the_month_a_live_change_and_downloads_the_report(
    page: Page, site: tuple[Server, Store, Path], console: list[str], tmp_path: Path
) -> None:
    writer = site[1]
    expected = Expected()
    log_in(page, "quanly.bt")
    page.click("nav a[href='/usage']")
    expect(page.locator("h1")).to_contain_text(
        "Tình hình sử dụng: Trung tâm Phục vụ hành chính công phường Bến Thành"
    )
    page.goto(f"/usage?center=hcm-ben-thanh&{MONTH}")
    expect(page.locator("#sum-issued")).to_have_text(str(expected.bt_issued))
    expect(page.locator("#sum-satisfaction")).to_have_text("57.1 %")
    # the browser draws the date field in its own locale's order: the day is said beside it as the
    # page writes dates, and follows the field while it is edited
    expect(page.locator("#usage-from-said")).to_have_text("01/11/2026")
    expect(page.locator("#usage-to-said")).to_have_text("30/11/2026")
    page.fill("#usage-to", "2026-11-04")
    expect(page.locator("#usage-to-said")).to_have_text("04/11/2026")
    page.fill("#usage-to", "2026-11-30")
    expect(page.locator("#tickets-by-day [data-day='2026-11-23'] td").last).to_have_text("4")
    expect(page.locator("#lookups [data-outcome='found'] td").nth(1)).to_have_text("2")
    expect(page.locator("#card-reads [data-outcome='ok'] td").nth(2)).to_have_text("900")
    # the kiosk's result is its error's name: the manager reads words
    expect(page.locator("#card-reads [data-outcome='CardRemovedError'] td").first).to_have_text(
        "Thẻ bị rút ra giữa chừng"
    )
    expect(page.locator("#ratings-by-officer [data-key='canbo01.bt']")).to_be_visible()
    expect(page.locator("#ratings-by-reason")).to_contain_text("Thời gian chờ đến lượt")
    expect(page.locator("#availability [data-part='printer'] td").nth(3)).to_have_text("2:00:00")
    expect(page.locator("svg.bars rect.bar")).to_have_count(24)
    expect(page.locator(".live-status")).to_have_text("Cập nhật trực tiếp")
    assert "⟦" not in page.content() and "Thủ Dầu Một" not in page.content()
    shot(page, "40-usage-center-month")

    # today, live: a ticket and a look-up stored by another process appear without a reload
    page.goto("/usage")
    expect(page.locator(".live-status")).to_have_text("Cập nhật trực tiếp")
    before = int(page.locator("#sum-issued").inner_text())
    marker = page.evaluate("document.getElementById('usage-body').dataset.marker = 'old'")
    assert marker == "old"
    started = time.monotonic()
    now = writer.db.now()
    event(writer, "hcm-ben-thanh", "kiosk-bt-01", "ticket_issued", now, number="A777", service="HOTICH")
    event(
        writer,
        "hcm-ben-thanh",
        "kiosk-bt-01",
        "lookup",
        now,
        outcome="not_found",
        source="camera",
        latency_ms=31.0,
    )
    expect(page.locator("#sum-issued")).to_have_text(str(before + 1), timeout=10_000)
    TIMINGS["usage_event_to_page_s"] = round(time.monotonic() - started, 2)
    expect(page.locator("#lookups [data-outcome='not_found']")).to_be_visible()
    assert (
        page.evaluate("document.getElementById('usage-body').dataset.marker") is None
    )  # swapped, not reloaded
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    shot(page, "41-usage-live")

    # the report from the form, downloaded and read back
    page.click("#usage-report-link")
    expect(page.locator("h1")).to_have_text("Báo cáo tháng và theo khoảng thời gian")
    expect(page.locator("#report-span")).to_have_value("range")  # the usage page's days came along
    page.select_option("#report-span", "month")
    page.fill("#report-month", "2026-11")
    expect(page.locator("#report-month-said")).to_have_text("11/2026")
    page.select_option("#report-format", "xlsx")
    shot(page, "42-reports")
    with page.expect_download() as waiting:
        page.click("#report-download")
    download = waiting.value
    assert download.suggested_filename == "bao-cao-hcm-ben-thanh-2026-11.xlsx"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    book = openpyxl.load_workbook(saved)
    assert book.sheetnames[0] == "Tổng hợp" and "Đánh giá" in book.sheetnames
    summary = {row[0]: row[1] for row in book["Tổng hợp"].iter_rows(min_row=2, values_only=True)}
    assert summary["Số thứ tự đã phát"] == expected.bt_issued
    assert summary["Tỷ lệ hài lòng (%)"] == 57.1
    devices = list(book["Thiết bị"].iter_rows(values_only=True))
    assert any(r[1] == "kiosk-bt-01" and r[3] == "Máy in phiếu" and r[5] == "2:00:00" for r in devices)

    # another center's report by URL: refused, the same page as any unknown thing
    response = page.goto("/reports/download?center=hcm-thu-dau-mot&month=2026-11&format=xlsx")
    assert response is not None and response.status == 404
    expect(page.locator("main")).to_contain_text("Không tìm thấy trang hoặc dữ liệu này")
    shot(page, "43-report-refused")
    response = page.goto("/usage?center=hcm-thu-dau-mot")
    assert response is not None and response.status == 404
    console[:] = [
        c for c in console if not c.startswith("404 /reports/download") and not c.startswith("404 /usage")
    ]


def test_the_province_in_english_and_its_csv(page: Page, site: tuple[Server, Store, Path]) -> None:
    server = site[0]
    log_in(page, "admin.hcm")
    page.goto(f"/usage?{MONTH}")
    expect(page.locator("h1")).to_have_text("Tình hình sử dụng: TP. Hồ Chí Minh")
    expect(page.locator("#usage-centers tbody tr")).to_have_count(2)
    expect(page.locator("#usage-centers [data-center='hcm-thu-dau-mot'] td").nth(1)).to_have_text("4")
    assert "Hoàn Kiếm" not in page.content()
    shot(page, "44-usage-province")
    page.click("#language-toggle")
    expect(page.locator("h1")).to_have_text("Usage: TP. Hồ Chí Minh")
    expect(page.locator("#usage-body")).to_contain_text("Queue numbers issued")
    expect(page.locator("#card-reads [data-outcome='CardRemovedError'] td").first).to_have_text(
        "Card removed during the read"
    )
    assert "⟦" not in page.content()
    shot(page, "45-usage-province-en")
    page.goto("/reports")
    page.select_option("#report-center", "province")
    page.fill("#report-month", "2026-11")
    page.select_option("#report-format", "csv")
    with page.expect_download() as waiting:
        page.click("#report-download")
    download = waiting.value
    assert download.suggested_filename == "bao-cao-hcm-2026-11.csv"
    text = Path(download.path()).read_text("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [
        "Báo cáo",
        "Các trung tâm của TP. Hồ Chí Minh",
    ]  # Vietnamese whatever the page's language
    assert ["Số thứ tự đã phát", str(Expected().bt_issued + Expected().tdm_issued)] in rows
    assert server.base  # the same server as the other test
