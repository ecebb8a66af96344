"""The ticket says where to go and how long (issue 14), on the real runtime and the virtual printer:
tesseract (Vietnamese) reads the new wording back from the printed PNG, zxing reads the QR, which is
the queue's phone page of that number, computed offline from the center's phone key."""

from __future__ import annotations

import dataclasses
import subprocess
import unicodedata
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from contract.config import ServiceArea
from contract.queue import phone_token, phone_url
from kiosk.config import QueueSection
from kiosk.flows.ticket import IssueTicket
from kiosk.runtime import KioskRuntime, demo_config
from kiosk.ticketing import AllocatedNumber, LocalTicketBook, parse_ticket_qr, ticket_qr, ticket_qr_text


class CenterLikeBook:
    """The kiosk's own durable book, answering like the center's allocator does (people ahead and the
    expected wait): the interface the center source implements (kiosk/numbering.py)."""

    def __init__(self, book: LocalTicketBook, ahead: int, minutes: int | None) -> None:
        self.book, self.ahead, self.minutes = book, ahead, minutes

    def allocate(self, service: ServiceArea, priority: bool, now: datetime) -> AllocatedNumber:
        number = self.book.allocate(service, priority, now)
        return dataclasses.replace(number, waiting_ahead=self.ahead, expected_wait_min=self.minutes)

    def confirm(self, allocated: AllocatedNumber) -> None:
        self.book.confirm(allocated)

    def void(self, allocated: AllocatedNumber, reason: str) -> None:
        self.book.void(allocated, reason)

    def issued_today(self, now: datetime) -> int:
        return self.book.issued_today(now)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[KioskRuntime]:
    config = demo_config(tmp_path)
    devices = dataclasses.replace(
        config.devices, card_reader=dataclasses.replace(config.devices.card_reader, enabled=False)
    )
    runtime = KioskRuntime(dataclasses.replace(config, devices=devices), synchronous=True)
    yield runtime
    runtime.stop()


def ocr(png: Path) -> str:
    out = subprocess.run(
        ["tesseract", str(png), "stdout", "-l", "vie", "--psm", "4"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return " ".join(unicodedata.normalize("NFC", out).split())


def printed_png(runtime: KioskRuntime) -> Path:
    assert runtime.devices.printer is not None and runtime.devices.printer.simulator is not None
    png = runtime.devices.printer.simulator.last_png
    assert png is not None
    return Path(png)


def test_printed_ticket_says_where_and_how_long(runtime: KioskRuntime) -> None:
    handlers = runtime.handlers
    handlers.tickets = CenterLikeBook(handlers.tickets, ahead=5, minutes=12)  # type: ignore[arg-type]
    issued = handlers.issue_ticket(IssueTicket("CHUNG_THUC", priority=True))
    assert (issued.waiting_ahead, issued.expected_wait_min, issued.printed) == (5, 12, True)
    png = printed_png(runtime)
    # tesseract reads ";" as "," and the bold "Quầy" as "Quây": compare without punctuation and that one
    # stacked mark (the rendering of every glyph is tested in tests/printer/test_glyphs.py).
    text = ocr(png).replace(";", ",").replace("Quây", "Quầy")
    for expected in (
        issued.number,
        "ƯU TIÊN",
        f"Mời quý khách ngồi chờ, khi gọi số {issued.number}, mời đến Quầy số 3",
        "Trước quý khách còn 5 người, dự kiến chờ khoảng 12 phút",
        f"Ngày {issued.issued_at:%d/%m/%Y}",
        "Đường dây nóng: 1022",
        "theo dõi lượt chờ",
    ):
        assert expected in text, f"tesseract did not read {expected!r}: {text!r}"
    config = runtime.settings.current
    key = config.queue.phone_key()
    day = issued.issued_at.date().isoformat()
    expected_url = phone_url(
        config.queue.phone_base_url, phone_token(key, config.kiosk.center_id, day, issued.number)
    )
    codes = [c.text for c in zxingcpp.read_barcodes(Image.open(png).convert("L"))]
    assert codes == [expected_url]
    assert parse_ticket_qr(expected_url) == expected_url  # the rating flow accepts the phone page too


def test_unknown_wait_says_no_minutes(runtime: KioskRuntime) -> None:
    handlers = runtime.handlers
    handlers.tickets = CenterLikeBook(handlers.tickets, ahead=3, minutes=None)  # type: ignore[arg-type]
    issued = handlers.issue_ticket(IssueTicket("HO_TICH", priority=False))
    assert (issued.waiting_ahead, issued.expected_wait_min) == (3, None)
    text = ocr(printed_png(runtime))
    assert "Trước quý khách còn 3 người" in text
    assert "phút" not in text and "ƯU TIÊN" not in text


def test_paper_out_still_gives_the_number_on_screen(runtime: KioskRuntime) -> None:
    assert runtime.devices.printer is not None and runtime.devices.printer.simulator is not None
    runtime.devices.printer.simulator.set_paper("out")
    issued = runtime.handlers.issue_ticket(IssueTicket("HO_TICH", priority=False))
    assert not issued.printed and issued.number.startswith("A")
    journal = runtime.journal.pending(limit=1000)
    assert [e.payload["number"] for e in journal if e.kind == "ticket_issued"] == [issued.number]
    assert any(e.kind == "device_fault" and e.payload["problem"] == "paper_out" for e in journal)


def test_without_a_phone_key_the_qr_rates(tmp_path: Path) -> None:
    assert ticket_qr_text(QueueSection(), "hcm-ben-thanh", "2026-12-02", "B001") == ticket_qr(
        "hcm-ben-thanh", "2026-12-02", "B001"
    )
    key_file = tmp_path / "key.hex"
    key_file.write_text("ab" * 32 + "\n", encoding="utf-8")
    queue = QueueSection(phone_base_url="https://motcua.local", phone_key_file=key_file)
    url = ticket_qr_text(queue, "hcm-ben-thanh", "2026-12-02", "B001")
    assert url == phone_url(
        "https://motcua.local", phone_token(b"\xab" * 32, "hcm-ben-thanh", "2026-12-02", "B001")
    )
    for not_a_ticket in ("https://evil.example/x/abcdefghij234567", "MOTCUA-TICKET:a/b", "hello"):
        assert parse_ticket_qr(not_a_ticket) is None
    key_file.write_text("short", encoding="utf-8")
    from common.errors import ConfigError

    with pytest.raises(ConfigError, match="phone_key_file"):
        ticket_qr_text(queue, "hcm-ben-thanh", "2026-12-02", "B001")
