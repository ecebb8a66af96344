"""What the technician screen is given about queue numbers: the real ``CenterTicketSource`` and the
real allocator book, joined by a channel that can be cut (``BookChannel``), and the lines the screen
draws from it, in both catalogs."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contract.tickets import NumberPlan, center_zone
from fleet.allocator import AllocatorBook
from kiosk.config import NumberingSection
from kiosk.flows.technician import BLOCKED_CODES, REFUSED_REASONS, ScreenLine, numbering_lines
from kiosk.i18n import MISSING_MARK, Translator
from kiosk.numbering import CenterTicketSource, LastRequest, NumberingStatus, numbering_status
from kiosk.ticketing import LocalTicketBook, NoNumberAvailableError, NumberRefusedError
from tests.numbering.book_channel import BookChannel
from tests.numbering.conftest import SERVICES

ZONE = center_zone()
PLAN = NumberPlan(800, 3)
NOON = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)  # 12:00 in Hồ Chí Minh City
#: more than the allocator's 31 report days before NOON: the report of a number of that day conflicts
LONG_AGO = datetime(2026, 9, 1, 5, 0, tzinfo=UTC)


def open_source(
    tmp_path: Path, book: AllocatorBook, kiosk: str, slot: int = 3
) -> tuple[CenterTicketSource, BookChannel]:
    numbering = NumberingSection(
        mode="center", slot=slot, offline_base=PLAN.offline_base, offline_block=PLAN.offline_block
    )
    channel = BookChannel(book, kiosk, lambda: NOON)
    path = tmp_path / f"{kiosk}.sqlite"
    return CenterTicketSource(path, kiosk_id=kiosk, numbering=numbering, ask=channel), channel


def said(lines: list[ScreenLine], language: str) -> list[tuple[str, bool]]:
    tr = Translator(language)
    return [(tr(line.key, **line.values), line.alert) for line in lines]


@pytest.fixture
def book(tmp_path: Path) -> AllocatorBook:
    return AllocatorBook(tmp_path / "book.sqlite", PLAN, ZONE)


def test_the_status_follows_offline_numbers_their_reports_conflicts_and_online_numbers(
    tmp_path: Path, book: AllocatorBook
) -> None:
    source, channel = open_source(tmp_path, book, "kiosk-9")
    status = numbering_status(source)
    assert status == NumberingStatus(
        "center", slot=3, offline_block=(809, 811), last=None, pending_reports=0, pending_offline=0,
        conflicts=0,
    )
    assert said(numbering_lines(status, NOON), "vi") == [
        ("Số do trung tâm cấp (chế độ center, slot 3); khi không kết nối được trung tâm, máy tự cấp số "
         "dự phòng 809–811", False),
        ("Chưa có lượt lấy số nào", False),
        ("Chưa báo về trung tâm: 0 phiếu, trong đó 0 số máy tự cấp", False),
        ("Phiếu bị trung tâm từ chối khi báo về (từ lúc mở ứng dụng): 0", False),
    ]

    channel.up = False  # the center cannot be reached: numbers from the kiosk's own block
    source.confirm(source.allocate(SERVICES[0], False, NOON))
    status = numbering_status(source)
    assert status.last == LastRequest(NOON.astimezone(ZONE), "A809", "offline")
    assert (status.pending_reports, status.pending_offline) == (1, 1)
    lines = said(numbering_lines(status, NOON + timedelta(minutes=5)), "vi")
    assert lines[1] == ("Số gần nhất: A809, máy tự cấp lúc 12:00 vì không kết nối được trung tâm", False)
    assert lines[2] == ("Chưa báo về trung tâm: 1 phiếu, trong đó 1 số máy tự cấp", False)
    # A number of a day long gone (the clock was wrong): shown with its date, refused when reported.
    source.confirm(source.allocate(SERVICES[1], False, LONG_AGO))
    status = numbering_status(source)
    assert (status.pending_reports, status.pending_offline) == (2, 2)
    assert said(numbering_lines(status, NOON), "en")[1] == (
        "Last number: B809, from this kiosk's reserve at 12:00 01/09/2026: the center could not be reached",
        False,
    )

    channel.up = True  # the center is back: the reconcile loop reports both
    assert source.sync_once()
    status = numbering_status(source)
    assert (status.pending_reports, status.pending_offline, status.conflicts) == (0, 0, 1)
    assert said(numbering_lines(status, NOON), "vi")[-1] == (
        "Phiếu bị trung tâm từ chối khi báo về (từ lúc mở ứng dụng): 1", True
    )

    later = NOON + timedelta(minutes=7)
    source.confirm(source.allocate(SERVICES[0], False, later))
    status = numbering_status(source)
    assert status.last == LastRequest(later.astimezone(ZONE), "A001", "online")
    assert (status.pending_reports, status.pending_offline) == (1, 0)  # "printed" not yet acknowledged
    assert said(numbering_lines(status, later), "vi")[1:3] == [
        ("Số gần nhất: A001, do trung tâm cấp lúc 12:07", False),
        ("Chưa báo về trung tâm: 1 phiếu, trong đó 0 số máy tự cấp", False),
    ]
    assert status.offline_blocked is None and source.offline_blocked is None
    source.close()


def test_a_slot_taken_by_another_kiosk_blocks_offline_numbers_and_says_why(
    tmp_path: Path, book: AllocatorBook, caplog: pytest.LogCaptureFixture
) -> None:
    first, _ = open_source(tmp_path, book, "kiosk-1")
    first.confirm(first.allocate(SERVICES[0], False, NOON))  # binds slot 3 to kiosk-1
    twin, channel = open_source(tmp_path, book, "kiosk-9")  # configured with kiosk-1's slot
    with caplog.at_level(logging.ERROR, logger="kiosk.numbering"), pytest.raises(NumberRefusedError):
        twin.allocate(SERVICES[0], False, NOON)
    status = numbering_status(twin)
    assert status.offline_blocked == "slot_conflict" and status.offline_blocked_reason
    assert twin.offline_blocked == f"slot_conflict: {status.offline_blocked_reason}"  # health's form
    assert status.last == LastRequest(NOON.astimezone(ZONE), None, None, "slot_conflict")
    logged = [r.getMessage() for r in caplog.records if "no offline numbers" in r.getMessage()]
    assert logged == [f"allocator refused our numbering ({twin.offline_blocked}): no offline numbers"]

    channel.up = False  # and now the center is away: no number at all
    with pytest.raises(NoNumberAvailableError):
        twin.allocate(SERVICES[0], False, NOON + timedelta(minutes=1))
    status = numbering_status(twin)
    assert status.last is not None and status.last.reason == "offline_blocked"
    lines = said(numbering_lines(status, NOON + timedelta(minutes=2)), "vi")
    assert lines[1] == (
        "Máy không được tự cấp số dự phòng (để không trùng số với máy khác): trung tâm báo slot 3 đã "
        "thuộc máy khác, hoặc máy này chưa được đăng ký. Kiểm tra [numbering] slot và việc đăng ký máy, "
        "rồi khởi động lại ứng dụng.",
        True,
    )
    assert lines[2] == (f"Nguyên văn từ trung tâm (tiếng Anh): {status.offline_blocked_reason}", True)
    assert lines[3] == (
        "Lượt lấy số gần nhất (12:01) không được cấp số: không kết nối được trung tâm, và máy không được "
        "tự cấp số dự phòng",
        True,
    )
    english = said(numbering_lines(status, NOON), "en")
    assert english[1][0].startswith("Reserve numbers are blocked (so that no number is printed twice)")
    first.close()
    twin.close()


def test_the_local_book_says_it_numbers_alone(tmp_path: Path) -> None:
    book = LocalTicketBook(tmp_path / "tickets.sqlite")
    book.confirm(book.allocate(SERVICES[0], False, NOON))
    status = numbering_status(book)
    assert status == NumberingStatus("local")
    assert said(numbering_lines(status, NOON), "vi") == [
        ("Máy tự cấp số, không dùng số của trung tâm (chế độ local)", False)
    ]
    book.close()


@pytest.mark.parametrize("language", ["vi", "en"])
def test_every_blocked_code_and_refusal_has_its_words(language: str) -> None:
    at = NOON.astimezone(ZONE)
    statuses = [
        NumberingStatus(
            "center", slot=0, offline_block=(800, 819), offline_blocked=code,
            offline_blocked_reason="slot 0 is bound to kiosk-1", last=LastRequest(at, None, None, why),
        )
        for code in (*BLOCKED_CODES, "something_new")
        for why in (*REFUSED_REASONS, "unknown_service", None)
    ]
    for status in statuses:
        for text, _ in said(numbering_lines(status, NOON), language):
            assert MISSING_MARK.format("")[0] not in text, text
            assert "{" not in text, text
