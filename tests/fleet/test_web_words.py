"""Managers read words, not codes: a card read's result on the usage page (Vietnamese and English; the
JSON keeps the code), and each recent event on the kiosk page said in a line (the raw payload kept
for a technician, in the page and in the CSV), a service's name from the queue or, for a center
without it, from its pushed configuration. An unknown code shows as itself. In-process over the
real app and a real store (SQLite; the pushed names on PostgreSQL too)."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from fleet.queue.engine import Queue
from fleet.store import Store, open_store
from fleet.store.models import EventRecord
from tests.fleet.conftest import FakeClock
from tests.fleet.data import Fleet, build
from tests.fleet.queue_data import setup_center
from tests.fleet.usage_data import event, local, push_officials, push_services, seed
from tests.fleet.web import Browser, browser

NOVEMBER = "/usage?center=hcm-ben-thanh&from=2026-11-01&to=2026-11-30"


def _row(html: str, attribute: str, value: str) -> str:
    """The table row with ``attribute="value"`` (its cells' text, tags removed)."""
    found = re.search(rf'<tr {attribute}="{re.escape(value)}"[^>]*>(.*?)</tr>', html, re.S)
    assert found, f"no row {attribute}={value}"
    return re.sub(r"<[^>]+>", " ", found.group(1))


def _english(person: Browser, path: str) -> str:
    assert person.post("/language", {"lang": "en", "next": path}).status_code == 303
    return person.client.get(path).text


@pytest.fixture
def usage_store(sqlite_url: str, clock: FakeClock) -> Iterator[Store]:
    store = open_store(sqlite_url, clock=clock)
    f, _ = seed(store, clock)  # one CardRemovedError read among two "ok" on 23/11
    # a result this fleet has no word for (a newer kiosk's)
    event(store, f.center, f.kiosk, "card_read", local(23, 9, 45), result="NewerKioskError", duration_ms=50)
    yield store
    store.close()


def test_the_usage_page_says_card_results_in_words(usage_store: Store) -> None:
    with browser(usage_store, "quanly.bt") as manager:
        page = manager.client.get(NOVEMBER).text
        assert "Thẻ bị rút ra giữa chừng" in _row(page, "data-outcome", "CardRemovedError")
        assert "Đọc được" in _row(page, "data-outcome", "ok")
        assert "NewerKioskError" in _row(page, "data-outcome", "NewerKioskError")  # shown as it came
        assert ">CardRemovedError<" not in page and "⟦" not in page

        answer = manager.client.get(NOVEMBER + "&format=json").json()
        reads = {r["outcome"]: r for r in answer["card_reads"]}
        assert set(reads) == {"ok", "CardRemovedError", "NewerKioskError"}  # the API keeps the codes
        assert "label" not in reads["CardRemovedError"]  # as look-ups: no words in the JSON

        english = _english(manager, NOVEMBER)
        assert "Card removed during the read" in _row(english, "data-outcome", "CardRemovedError")
        assert "Read" in _row(english, "data-outcome", "ok")
        assert "NewerKioskError" in _row(english, "data-outcome", "NewerKioskError")
        assert "Thẻ bị rút ra giữa chừng" not in english and "⟦" not in english


def _events(store: Store, f: Fleet, clock: FakeClock) -> None:
    """One event of each kind the page says in its own words, and one kind it does not know."""
    journal = uuid.uuid4().hex
    shown: list[tuple[str, dict[str, Any]]] = [
        ("ticket_issued", {"number": "A007", "service": "HOTICH"}),
        ("rating", {"level": 1, "scale": 4, "level_key": "very_dissatisfied", "reasons": ["long_wait"],
                    "target_kind": "official", "target_id": "cb-017"}),
        ("lookup", {"outcome": "not_found", "source": "camera"}),
        ("card_read", {"result": "CardRemovedError", "authenticity": "not_checked", "duration_ms": 300}),
        ("card_read", {"result": "NewerKioskError", "duration_ms": 40}),
        ("device_fault", {"device": "printer", "problem": "paper_out", "detail": "paper end sensor"}),
        ("device_recovered", {"device": "scanner"}),
        ("session_ended", {"reason": "timeout", "duration_s": 61.0}),
        ("brand_new_kind", {"anything": 1}),
    ]
    for seq, (kind, payload) in enumerate(shown, start=1):
        record = EventRecord(uuid.uuid4().hex, journal, seq, kind, clock.now, payload)
        assert store.events.insert_event(f.center, f.kiosk, record).inserted


@pytest.fixture
def kiosk_store(sqlite_url: str, clock: FakeClock) -> Iterator[tuple[Store, Fleet]]:
    store = open_store(sqlite_url, clock=clock)
    f = build(store)
    setup_center(Queue(store))  # HOTICH: "Hộ tịch" / "Civil status"
    _events(store, f, clock)
    yield store, f
    store.close()


def test_the_usage_page_names_services_in_the_pages_language(usage_store: Store) -> None:
    with browser(usage_store, "quanly.bt") as manager:
        page = manager.client.get(NOVEMBER).text
        assert '<th class="num" title="HOTICH">Hộ tịch</th>' in page
        english = _english(manager, NOVEMBER)
        assert '<th class="num" title="HOTICH">Civil status</th>' in english
        assert '<th class="num" title="DATDAI">Land</th>' in english


def test_the_usage_page_names_the_officers_it_rates(usage_store: Store) -> None:
    push_officials(usage_store, "hcm-ben-thanh", [("cb-017", "Võ Minh Tuấn")])
    with browser(usage_store, "quanly.bt") as manager:
        page = manager.client.get(NOVEMBER).text
        assert "Cán bộ 01 (canbo01.bt)" in _row(page, "data-key", "canbo01.bt")  # the queue's account
        assert "Võ Minh Tuấn (cb-017)" in _row(page, "data-key", "cb-017")  # the center's pushed list


def test_the_kiosk_page_says_each_event_in_a_line(kiosk_store: tuple[Store, Fleet]) -> None:
    store, f = kiosk_store
    path = f"/kiosks/{f.kiosk}"
    with browser(store, "quanly.bt") as manager:
        page = manager.client.get(path).text
        lines = {
            kind: _row(page, "data-kind", kind)
            for kind in ("ticket_issued", "rating", "lookup", "device_fault", "device_recovered")
        }
        assert "Số A007 · Hộ tịch" in lines["ticket_issued"]
        rated = "Đánh giá: Rất không hài lòng (1/4) · chưa hài lòng về: Thời gian chờ đến lượt"
        assert rated in lines["rating"]
        assert "Tra cứu hồ sơ: Không tìm thấy" in lines["lookup"]
        assert "Máy in phiếu: Hết giấy" in lines["device_fault"]
        assert "Máy quét mã QR: Bình thường" in lines["device_recovered"]
        assert "Đọc thẻ: Thẻ bị rút ra giữa chừng · 300 ms" in page
        assert "Đọc thẻ: NewerKioskError · 40 ms" in page
        assert "Kết thúc lượt sử dụng (hết thời gian chờ) sau 61 giây" in page
        assert "Sự kiện brand_new_kind" in _row(page, "data-kind", "brand_new_kind")
        # the raw payload is still there for a technician, folded
        assert "<summary>Dữ liệu gốc</summary>" in page
        assert '<code class="payload">{"number": "A007", "service": "HOTICH"}</code>' in page
        assert "⟦" not in page

        english = _english(manager, path)
        assert "Number A007 · Civil status" in _row(english, "data-kind", "ticket_issued")
        assert "Card read: Card removed during the read · 300 ms" in english
        assert "Ticket printer: Out of paper" in _row(english, "data-kind", "device_fault")
        assert "Event brand_new_kind" in english and "⟦" not in english


def test_the_events_csv_adds_the_words_and_keeps_the_payload(kiosk_store: tuple[Store, Fleet]) -> None:
    store, f = kiosk_store
    with browser(store, "quanly.bt") as manager:
        manager.post("/language", {"lang": "en", "next": "/"})  # CSV is always Vietnamese
        response = manager.client.get(f"/kiosks/{f.kiosk}/events?format=csv")
        rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
        header = rows[0]
        assert "Diễn giải" in header and "Nội dung gốc (JSON)" in header
        by_kind = {r[header.index("Loại")]: r for r in rows[1:]}
        ticket = by_kind["Lấy số thứ tự"]
        assert ticket[header.index("Diễn giải")] == "Số A007 · Hộ tịch"
        assert ticket[header.index("Nội dung gốc (JSON)")] == '{"number": "A007", "service": "HOTICH"}'
        card = next(r for r in rows[1:] if "300 ms" in r[header.index("Diễn giải")])
        assert card[header.index("Diễn giải")] == "Đọc thẻ: Thẻ bị rút ra giữa chừng · 300 ms"
        assert by_kind["brand_new_kind"][header.index("Diễn giải")] == "Sự kiện brand_new_kind"

        items = manager.client.get(f"/kiosks/{f.kiosk}/events?format=json").json()["items"]
        ticket_item = next(i for i in items if i["kind"] == "ticket_issued")  # JSON: codes, no words
        assert "text" not in ticket_item and ticket_item["payload"] == {"number": "A007", "service": "HOTICH"}


def test_ratings_one_by_one_are_withheld_on_the_kiosk_page_and_its_exports(
    kiosk_store: tuple[Store, Fleet],
) -> None:
    """center.md, "Privacy at the center": nobody reads an officer's ratings one by one (managers have
    the usage page's aggregates), and roles without ``rating.view`` see no rating at all."""
    store, f = kiosk_store
    page_path, csv_path = f"/kiosks/{f.kiosk}", f"/kiosks/{f.kiosk}/events?format=csv"
    json_path = f"/kiosks/{f.kiosk}/events?format=json"
    with browser(store, "quanly.bt") as manager:
        page = manager.client.get(page_path).text
        assert "Rất không hài lòng (1/4)" in _row(page, "data-kind", "rating")  # the level, the reasons
        exports = page + manager.client.get(csv_path).text + manager.client.get(json_path).text
        assert "cb-017" not in exports  # but not whom it was about
        rating = next(i for i in manager.client.get(json_path).json()["items"] if i["kind"] == "rating")
        assert rating["payload"]["level"] == 1 and "target_id" not in rating["payload"]
    for username in ("kythuat.bt", "xem.bt"):
        with browser(store, username) as reader:
            page = reader.client.get(page_path).text
            line = _row(page, "data-kind", "rating")
            assert "Đánh giá" in line and "hài lòng" not in line and "1/4" not in line
            exports = page + reader.client.get(csv_path).text + reader.client.get(json_path).text
            assert all(word not in exports for word in ("cb-017", "long_wait", "very_dissatisfied"))
            items = reader.client.get(json_path).json()["items"]
            assert next(i for i in items if i["kind"] == "rating")["payload"] == {}
            # the other events are theirs to read as before
            assert "Số A007 · Hộ tịch" in _row(page, "data-kind", "ticket_issued")


def test_a_center_without_the_queue_names_its_services_from_its_pushed_configuration(
    store: Store, clock: FakeClock
) -> None:
    """Thủ Dầu Một runs no queue (no ``queue_services``); its kiosks got their services by a push. The
    kiosk page and the events CSV name them from the push; a code named only by another center's push
    (Bến Thành's) stays a code."""
    f = build(store)
    tdm = f.other_center
    push_services(store, tdm, [("HOTICH", "A", "Hộ tịch", "Civil status")])
    push_services(store, f.center, [("KHIEUNAI", "K", "Khiếu nại của Bến Thành", "Bến Thành's complaints")])
    journal = uuid.uuid4().hex
    for seq, (number, service) in enumerate((("A007", "HOTICH"), ("K001", "KHIEUNAI")), start=1):
        payload = {"number": number, "service": service}
        record = EventRecord(uuid.uuid4().hex, journal, seq, "ticket_issued", clock.now, payload)
        assert store.events.insert_event(tdm, f.other_kiosk, record).inserted
    path = f"/kiosks/{f.other_kiosk}"
    with browser(store, "quanly.tdm") as manager:
        page = manager.client.get(path).text
        assert "Số A007 · Hộ tịch" in page and "Số A007 · HOTICH" not in page
        assert "Số K001 · KHIEUNAI" in page and "Khiếu nại của Bến Thành" not in page
        text = manager.client.get(f"{path}/events?format=csv").text
        rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
        said = {r[rows[0].index("Diễn giải")] for r in rows[1:]}
        assert {"Số A007 · Hộ tịch", "Số K001 · KHIEUNAI"} <= said
        english = _english(manager, path)
        assert "Number A007 · Civil status" in english and "Number K001 · KHIEUNAI" in english
        assert "Bến Thành's complaints" not in english
