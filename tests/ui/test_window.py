"""Every citizen and technician flow end to end in the real Kivy window, on simulated devices.

Taps are real touch events through Kivy's input pipeline; the printer is the virtual ESC/POS printer,
the camera decodes real QR images, the ID card is the virtual chip behind the real pcscd. Every
screen visited is checked (translated, every glyph present) and saved under artifacts/screens/.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import segno
import zxingcpp
from PIL import Image

from contract.queue import phone_token, phone_url
from screens.harness import KioskDriver
from tests.conftest import ARTIFACTS
from tests.ui.measure import fold, look, read_back

pytestmark = [pytest.mark.window]

DEMO_DOSSIER = "000.00.10.H12-210901-0001"


def qr_image(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "qr.png"
    segno.make(text, error="m", encoding="utf-8").save(str(path), scale=6, border=4)
    return path


def start(kiosk: KioskDriver) -> None:
    """The idle screen is the home (issue 14): a visit starts with the tap on what the citizen wants."""
    kiosk.wait_state("attract")
    look(kiosk, "idle-home")
    kiosk.taps = 0


def events(kiosk: KioskDriver) -> list[str]:
    return [e.kind for e in kiosk.runtime.journal.pending(limit=100_000)]


def ocr_lines(png: Path) -> str:
    """OCR text with whitespace folded (a wrapped line reads as one)."""
    return " ".join(read_back(png).split())


def reads(expected: str, png: Path) -> bool:
    return fold(expected) in fold(ocr_lines(png))


def test_ticket_in_one_tap_from_the_idle_home(kiosk: KioskDriver) -> None:
    start(kiosk)
    home = kiosk.shots[-1]
    read = fold(ocr_lines(home))
    for label in ("Kính chào quý khách! Mời quý khách chọn dịch vụ.", "Hộ tịch", "Tra cứu hồ sơ", "ưu tiên"):
        assert fold(label) in read, f"OCR did not read {label!r} on the home screen: {read!r}"
    # every service area on the one screen, without scrolling
    body = kiosk.app.root.ids.screens.current_screen.ids.body
    assert body.minimum_height <= kiosk.app.root.ids.screens.height + 1, "the home screen scrolls"
    printer = kiosk.runtime.simulator._virtual_printer()
    printed_before = len(printer.printed)
    kiosk.tap("Chứng thực")
    kiosk.wait_state("ticket", "done")
    assert kiosk.taps == 1
    done = look(kiosk, "ticket-done")
    flow = kiosk.core.flow
    assert flow.ticket is not None and flow.ticket.number.startswith("B") and flow.ticket.printed
    read = fold(ocr_lines(done))
    for expected in (
        "Số thứ tự của quý khách",
        flow.ticket.number,
        "Chứng thực",
        f"khi gọi số {flow.ticket.number}",
        "mời đến Quầy số 3",
        "Đường dây nóng: 1022",
        "Mời quý khách nhận phiếu ở khe máy in phía dưới",
    ):
        assert fold(expected) in read, f"OCR did not read {expected!r} on the ticket screen: {read!r}"
    assert "Quay lại" not in kiosk.texts() and "Hoàn tất" in kiosk.texts()  # no invitation to a second
    assert len(printer.printed) == printed_before + 1
    shutil.copy(printer.last_png, ARTIFACTS / "screens" / "ticket-printed.png")
    paper = fold(ocr_lines(printer.last_png))
    for expected in ("mời đến Quầy số 3", "Đường dây nóng: 1022", "theo dõi lượt chờ", flow.ticket.number):
        assert fold(expected) in paper, f"OCR did not read {expected!r} on the printed ticket: {paper!r}"
    config = kiosk.core.config
    qr = [c.text for c in zxingcpp.read_barcodes(Image.open(printer.last_png).convert("L"))]
    day = flow.ticket.issued_at.date().isoformat()
    token = phone_token(config.queue.phone_key(), config.kiosk.center_id, day, flow.ticket.number)
    assert qr == [phone_url(config.queue.phone_base_url, token)]  # the queue's phone page, offline
    assert "ticket_issued" in events(kiosk)
    kiosk.tap("Hoàn tất")
    kiosk.wait_state("attract")


def test_priority_is_a_big_button_and_two_taps(kiosk: KioskDriver) -> None:
    start(kiosk)
    kiosk.tap("Tôi thuộc đối tượng ưu tiên")
    kiosk.wait_state("ticket", "choose_service")
    look(kiosk, "ticket-priority-choose")
    assert "Số thứ tự ưu tiên" in kiosk.texts()
    kiosk.tap("Đất đai")
    kiosk.wait_state("ticket", "done")
    assert kiosk.taps == 2 and kiosk.core.flow.ticket.priority
    assert "ƯU TIÊN" in kiosk.texts()
    look(kiosk, "ticket-priority-done")


def test_paper_out_the_number_is_shown_on_screen(kiosk: KioskDriver, tmp_path: Path) -> None:
    start(kiosk)
    kiosk.tap("Hộ tịch")  # the paper runs out with this ticket
    kiosk.wait_state("ticket", "done")
    kiosk.runtime.simulator.printer({"paper": "out"})
    kiosk.runtime.poll_devices()
    kiosk.tap("Hoàn tất")
    kiosk.wait_state("attract")
    look(kiosk, "home-printer-out-of-paper")
    assert any("Máy in đã hết giấy: số thứ tự sẽ hiện trên màn hình" in text for text in kiosk.texts())
    kiosk.tap("Hộ tịch")  # still offered: the number goes on the screen
    kiosk.wait_state("ticket", "done")
    flow = kiosk.core.flow
    assert flow.ticket is not None and not flow.ticket.printed
    screen = look(kiosk, "ticket-paper-out-number-on-screen")
    assert reads(flow.ticket.number, screen) and reads("ghi nhớ số này", screen)
    journal = kiosk.runtime.journal.pending(limit=100_000)
    assert any(e.kind == "device_fault" and e.payload["problem"] == "paper_out" for e in journal)
    assert [e for e in journal if e.kind == "ticket_issued"][-1].payload["number"] == flow.ticket.number
    kiosk.tap("Hoàn tất")
    kiosk.tap("Tra cứu hồ sơ")  # the look-up does not need paper
    kiosk.runtime.simulator.scanner({"show": str(qr_image(tmp_path, DEMO_DOSSIER))})
    kiosk.wait_state("lookup", "found")


def lookup_without_scanner(kiosk: KioskDriver) -> None:
    """The look-up started with the scanner unplugged: the code is typed."""
    kiosk.runtime.simulator.scanner({"present": False})
    kiosk.runtime.poll_devices()
    start(kiosk)
    kiosk.tap("Tra cứu hồ sơ")
    kiosk.wait_state("lookup", "scan")


def test_scanner_gone_lookup_takes_digits_on_the_numeric_pad(kiosk: KioskDriver) -> None:
    lookup_without_scanner(kiosk)
    assert any("Máy quét mã QR đang gặp sự cố" in text for text in kiosk.texts())
    look(kiosk, "lookup-scanner-missing")
    for digit in "2109010001":  # the agency code and the dashes are filled in
        kiosk.tap(digit)
    assert kiosk.core.flow.typed == DEMO_DOSSIER
    look(kiosk, "lookup-typed")
    kiosk.tap("Tra cứu")
    kiosk.wait_state("lookup", "found")
    assert kiosk.taps == 12  # was 2 + 25 characters + 1 on the QWERTY keyboard


def test_a_code_of_another_agency_is_typed_with_the_letters_page(kiosk: KioskDriver) -> None:
    lookup_without_scanner(kiosk)
    kiosk.tap("ABC")
    look(kiosk, "lookup-letters")  # every key measured: 120 px at least, text 40 px, contrast 7:1
    kiosk.tap("H")
    kiosk.tap("123")
    for digit in "12":
        kiosk.tap(digit)
    assert kiosk.core.flow.typed.endswith("H12")
    faults = [e for e in kiosk.runtime.journal.pending(limit=100_000) if e.kind == "device_fault"]
    assert {"device": "scanner", "problem": "missing", "detail": ""} in [e.payload for e in faults]


def test_lookup_by_receipt_qr_one_card_one_instruction_then_print(kiosk: KioskDriver, tmp_path: Path) -> None:
    start(kiosk)
    kiosk.tap("Tra cứu hồ sơ")
    kiosk.wait_state("lookup", "scan")
    look(kiosk, "lookup-scan")
    receipt_url = f"https://dichvucong.example.gov.vn/tra-cuu?maHoSo={DEMO_DOSSIER}"
    kiosk.runtime.simulator.scanner({"show": str(qr_image(tmp_path, receipt_url))})
    kiosk.wait_state("lookup", "found")
    assert kiosk.taps == 1
    found = look(kiosk, "lookup-found")
    texts = " ".join(kiosk.texts())
    assert DEMO_DOSSIER in texts and texts.count("Đã trả kết quả") == 1
    assert reads("Hồ sơ đã hoàn tất. Quý khách không cần làm gì thêm.", found)
    kiosk.tap("In kết quả tra cứu")
    kiosk.wait_for(lambda: kiosk.core.flow.printed, what="status printed")
    look(kiosk, "lookup-printed")
    assert any("khe máy in phía dưới" in text for text in kiosk.texts())


def test_lookup_overdue_apologises_and_says_whom_to_see(kiosk: KioskDriver) -> None:
    today = kiosk.core.now().date()
    backend = kiosk.runtime.devices.dossiers
    agency = kiosk.core.config.kiosk.dossier_agency
    late = next(
        s
        for s in map(backend.lookup, backend.codes())
        if s.overdue_days(today) > 0 and s.code.agency == agency
    )
    start(kiosk)
    kiosk.tap("Tra cứu hồ sơ")
    for digit in late.code.text[len(agency) :].replace("-", ""):
        kiosk.tap(digit)
    kiosk.tap("Tra cứu")
    kiosk.wait_state("lookup", "found")
    shot = look(kiosk, "lookup-overdue")
    days = late.overdue_days(today)
    said = (
        f"Hồ sơ trễ hẹn {days} ngày. Thành thật xin lỗi quý khách; mời quý khách liên hệ {late.collect_at}."
    )
    assert said in kiosk.texts()
    assert reads(f"Hồ sơ trễ hẹn {days} ngày. Thành thật xin lỗi quý khách", shot)


def test_lookup_garbled_and_not_found_say_what_to_do(kiosk: KioskDriver, tmp_path: Path) -> None:
    start(kiosk)
    kiosk.tap("Tra cứu hồ sơ")
    kiosk.runtime.simulator.scanner({"show": str(qr_image(tmp_path, "Xin chào Việt Nam — không phải mã"))})
    kiosk.wait_for(lambda: kiosk.core.flow.error_key == "lookup.not_a_dossier", what="not a dossier")
    look(kiosk, "lookup-not-a-dossier")
    assert any("Mời quý khách quét mã trên giấy hẹn hoặc nhập mã" in text for text in kiosk.texts())
    for digit in "2109019999":
        kiosk.tap(digit)
    assert kiosk.core.flow.typed == "000.00.10.H12-210901-9999"
    kiosk.tap("Tra cứu")
    kiosk.wait_state("lookup", "not_found")
    shot = look(kiosk, "lookup-not-found")
    texts = kiosk.texts()
    assert any(t.startswith("Không tìm thấy hồ sơ có mã này.") for t in texts)
    assert any("1022" in t and "Quầy hướng dẫn" in t for t in texts)  # where, and whom to call
    assert reads("Không tìm thấy hồ sơ có mã này.", shot)
    kiosk.tap("Nhập lại mã")  # the other way out: an empty field, the pad again
    kiosk.wait_state("lookup", "scan")
    assert kiosk.core.flow.typed == ""


def test_rating_one_tap_details_after_home_in_five_seconds(kiosk: KioskDriver, tmp_path: Path) -> None:
    start(kiosk)
    kiosk.tap("Đánh giá mức độ hài lòng")
    kiosk.wait_state("rating", "choose_level")
    look(kiosk, "rating-choose")
    kiosk.runtime.simulator.scanner(
        {"show": str(qr_image(tmp_path, "MOTCUA-TICKET:hcm-ben-thanh/2026-12-02/B007"))}
    )
    kiosk.wait_for(lambda: kiosk.core.flow.target_kind == "ticket", what="the ticket's QR read")
    assert "Quý khách đang đánh giá lượt phục vụ số B007" in kiosk.texts()
    kiosk.tap("Rất hài lòng")  # one tap: recorded
    kiosk.wait_state("rating", "thanks")
    assert kiosk.taps == 2
    look(kiosk, "rating-thanks")
    assert "Quay lại" not in kiosk.texts()  # no invitation to a second vote
    ratings = [e for e in kiosk.runtime.journal.pending(limit=100_000) if e.kind == "rating"]
    assert (ratings[-1].payload["level"], ratings[-1].payload["target_kind"]) == (4, "ticket")
    shown = time.monotonic()
    kiosk.wait_state("attract", timeout=10)  # home after 5 s
    assert 4.5 <= time.monotonic() - shown < 8

    kiosk.runtime.ratings.repeat_interval_s = 0  # as if the next citizen came later
    kiosk.taps = 0
    kiosk.tap("Đánh giá mức độ hài lòng")
    kiosk.tap("Rất không hài lòng")  # recorded by this tap; the details are optional and come after
    kiosk.wait_state("rating", "details")
    look(kiosk, "rating-details")
    kiosk.tap("Thời gian giải quyết")
    kiosk.tap("Lê Hoàng Nam")  # the officer who served (names from the center's list, no photos)
    assert "Quý khách đang đánh giá cán bộ Lê Hoàng Nam (Quầy 3)" in kiosk.texts()
    kiosk.tap("Gửi thêm ý kiến")
    kiosk.wait_state("rating", "thanks")
    ratings = [e for e in kiosk.runtime.journal.pending(limit=100_000) if e.kind == "rating"]
    assert ratings[-1].payload["level"] == 1 and ratings[-1].payload["reasons"] == ["time_taken"]
    assert (ratings[-1].payload["target_kind"], ratings[-1].payload["target_id"]) == ("official", "cb02")

    kiosk.runtime.ratings.repeat_interval_s = kiosk.core.config.rating.repeat_interval_s
    kiosk.wait_state("attract", timeout=10)
    kiosk.tap("Đánh giá mức độ hài lòng")
    kiosk.tap("Hài lòng")
    before = len([e for e in kiosk.runtime.journal.pending(limit=100_000) if e.kind == "rating"])
    kiosk.wait_state("attract", timeout=10)  # the citizen walks away from the details: the tap counts
    kiosk.wait_for(
        lambda: len([e for e in kiosk.runtime.journal.pending(limit=100_000) if e.kind == "rating"]) > before,
        what="the tap sent",
    )
    kiosk.tap("Đánh giá mức độ hài lòng")  # a repeat within seconds: said kindly, not counted
    kiosk.runtime.simulator.scanner(
        {"show": str(qr_image(tmp_path, "MOTCUA-TICKET:hcm-ben-thanh/2026-12-02/B007"))}
    )
    kiosk.wait_for(lambda: kiosk.core.flow.target_kind == "ticket", what="the ticket's QR read")
    kiosk.tap("Hài lòng")
    kiosk.wait_state("rating", "not_counted")
    look(kiosk, "rating-not-counted")
    assert "Quý khách đã đánh giá lượt phục vụ này. Xin cảm ơn!" in kiosk.texts()
    kiosk.runtime.ratings.repeat_interval_s = kiosk.core.config.rating.repeat_interval_s


@pytest.mark.pcsc
def test_identify_with_chip_card_two_taps_take_card_back_priority(kiosk: KioskDriver) -> None:
    start(kiosk)
    kiosk.tap("Lấy số bằng thẻ Căn cước")
    kiosk.wait_state("identify", "scan_qr")
    look(kiosk, "identify-scan-qr")
    chimes = kiosk.app.voice.speaker.played
    kiosk.runtime.simulator.citizen({"profile": "elderly"})  # QR to the scanner, chip on the reader
    kiosk.wait_state("identify", "done", timeout=20)
    look(kiosk, "identify-take-card")
    assert "Mời quý khách lấy lại thẻ Căn cước." in kiosk.texts()
    assert not any("chữ ký" in text for text in kiosk.texts())  # the verdict is for staff only
    assert not kiosk.app.show_footer  # full screen, nothing to tap
    kiosk.wait_for(lambda: kiosk.app.voice.speaker.played > chimes, what="the chime")
    kiosk.wait_state("ticket", "choose_service", timeout=10)  # no extra tap
    assert kiosk.core.flow.priority  # born 1948: over 75
    assert "Kính chào bà Vũ Thị Hồng Nhung" in kiosk.texts()
    look(kiosk, "ticket-identified-priority")
    kiosk.tap("Hộ tịch")
    kiosk.wait_state("ticket", "done")
    assert kiosk.taps == 2 and kiosk.core.flow.ticket.priority
    card_reads = [e for e in kiosk.runtime.journal.pending(limit=100_000) if e.kind == "card_read"]
    assert card_reads[-1].payload["result"] == "ok"
    assert card_reads[-1].payload["authenticity"] in ("genuine", "not_verified")  # staff see it here
    assert "Nhung" not in str(card_reads[-1].payload)
    kiosk.tap("Hoàn tất")
    assert kiosk.core.session is None


@pytest.mark.pcsc
def test_identify_with_can_typed_digits_visible(kiosk: KioskDriver) -> None:
    """No QR at hand: the six digits from the card's front open the chip (PACE-CAN), shown as typed."""
    start(kiosk)
    kiosk.tap("Lấy số bằng thẻ Căn cước")
    kiosk.runtime.simulator.citizen({"profile": "married", "show_qr": False})
    for digit in "009876":  # CAN = last six digits of 079190009876
        kiosk.tap(digit)
    assert "0 0 9 8 7 6" in kiosk.texts()
    look(kiosk, "identify-can-typed")
    kiosk.tap("Đọc thẻ")
    kiosk.wait_state("identify", "done", timeout=20)
    kiosk.wait_state("ticket", "choose_service", timeout=10)
    assert any("Trần Thị Bích Ngọc" in text for text in kiosk.texts())
    assert not kiosk.core.flow.priority  # born 1990


@pytest.mark.pcsc
def test_reader_unplugged_is_said_and_skippable(kiosk: KioskDriver) -> None:
    start(kiosk)
    kiosk.tap("Lấy số bằng thẻ Căn cước")
    kiosk.runtime.simulator.reader_switch({"present": False})  # the cable comes out mid-visit
    kiosk.runtime.simulator.citizen({"profile": "adult", "insert": False})
    kiosk.wait_state("identify", "failed")
    assert kiosk.core.flow.error_key == "card.reader_missing"
    look(kiosk, "identify-reader-missing")
    assert any('bấm "Bỏ qua"' in text for text in kiosk.texts())
    kiosk.tap("Bỏ qua")
    kiosk.wait_state("ticket", "choose_service")
    kiosk.runtime.poll_devices()
    kiosk.frames(3)
    # While the reader is missing the optional ID-card step is not offered; tickets still print.
    assert not any("thẻ Căn cước" in text for text in kiosk.texts())
    kiosk.tap("Hộ tịch")
    kiosk.wait_state("ticket", "done")


def test_technician_long_press_pin_self_test_and_out_of_service(kiosk: KioskDriver) -> None:
    start(kiosk)
    kiosk.tap("Xây dựng")
    kiosk.wait_state("ticket", "done")
    kiosk.core.submit("local", lambda: None).result(10)  # counting of earlier visits has finished
    kiosk.tap("Hoàn tất")
    name = kiosk.app.root.ids.center_name
    x, y = name.to_window(*name.center)
    kiosk.tap_at(x, y, hold_s=3.3)
    kiosk.wait_state("technician", "pin")
    kiosk.shot("technician-pin")
    for digit in "1111":
        kiosk.tap(digit)
    kiosk.tap("Xác nhận")  # the PIN is checked on a worker lane (argon2id, ~0.1 s)
    kiosk.wait_for(lambda: kiosk.core.flow.error_key == "technician.wrong_pin", what="wrong PIN said")
    for digit in "2468":
        kiosk.tap(digit)
    kiosk.tap("Xác nhận")
    kiosk.wait_state("technician", "menu")
    kiosk.runtime.simulator.scanner({"present": False})
    kiosk.runtime.poll_devices()
    kiosk.tap("Tự kiểm tra")
    kiosk.wait_state("technician", "menu")
    kiosk.shot("technician-self-test")
    test = kiosk.core.flow.self_test
    assert test["printer"]["ok"] and not test["scanner"]["ok"]
    assert test["card_reader"]["ok"] and test["card_reader"]["reader"].startswith("Virtual PCD")
    assert any("Máy quét mã QR: Không tìm thấy thiết bị" in text for text in kiosk.texts())
    totals = kiosk.runtime.totals()
    assert totals["tickets"] >= 1
    assert f"Số phiếu đã cấp: {totals['tickets']}" in kiosk.texts()
    assert f"Số lượt tra cứu: {totals['lookups']}" in kiosk.texts()
    kiosk.tap("Tạm ngưng phục vụ")
    kiosk.wait_for(lambda: kiosk.core.out_of_service_reason is not None, what="out of service")
    kiosk.tap("Thoát")
    kiosk.wait_state("out_of_service")
    look(kiosk, "out-of-service")
    assert any("Quầy hướng dẫn" in text and "1022" in text for text in kiosk.texts())
    window_w, window_h = kiosk.app.root.size
    kiosk.tap_at(window_w / 2, window_h / 2)
    assert kiosk.core.screen == "out_of_service"  # citizens cannot start anything


def enter_technician_mode(kiosk: KioskDriver) -> None:
    """Long press and PIN, touched where the buttons are: ``tap`` scrolls to its button first, and on the
    PIN pad, which fits the screen, that leaves the menu opening scrolled to its end; a finger does not
    (seen: scroll_y 0 after ``tap``, 1 after touches at the same places)."""
    name = kiosk.app.root.ids.center_name
    x, y = name.to_window(*name.center)
    kiosk.tap_at(x, y, hold_s=3.3)
    kiosk.wait_state("technician", "pin")
    for label in [*"2468", "Xác nhận"]:
        kiosk.frames(2)
        button = kiosk.find(label)
        kiosk.tap_at(*button.to_window(*button.center))
    kiosk.wait_state("technician", "menu")


def test_technician_sees_where_queue_numbers_come_from(kiosk: KioskDriver, tmp_path: Path) -> None:
    """The center mode's numbering on the technician menu: a number printed offline and not yet
    reported, then the allocator refusing the kiosk's slot, so that no number comes out at all."""
    from contract.tickets import NumberPlan, center_zone
    from fleet.allocator import AllocatorBook
    from kiosk.config import NumberingSection
    from kiosk.numbering import CenterTicketSource
    from tests.numbering.book_channel import BookChannel

    book = AllocatorBook(tmp_path / "book.sqlite", NumberPlan(800, 20), center_zone())
    numbering = NumberingSection(mode="center", slot=3, offline_base=800, offline_block=20)
    other_channel = BookChannel(book, "kiosk-other", kiosk.core.now)
    other = CenterTicketSource(tmp_path / "other.sqlite", kiosk_id="kiosk-other", numbering=numbering,
                               ask=other_channel)
    channel = BookChannel(book, kiosk.runtime.config.kiosk.id, kiosk.core.now)
    source = CenterTicketSource(tmp_path / "center-tickets.sqlite", kiosk_id=kiosk.runtime.config.kiosk.id,
                                numbering=numbering, ask=channel)
    local = kiosk.runtime.tickets
    kiosk.runtime.tickets = kiosk.runtime.handlers.tickets = source  # as [numbering] mode = "center" opens
    try:
        start(kiosk)
        channel.up = False  # the center cannot be reached: the number comes from the kiosk's own block
        kiosk.tap("Hộ tịch")
        kiosk.wait_state("ticket", "done")
        assert kiosk.core.flow.ticket.number == "A860"  # 800 + 3 * 20
        kiosk.tap("Hoàn tất")
        # Another kiosk is configured with the same slot and reaches the center first.
        other.confirm(other.allocate(kiosk.core.config.services[0], False, kiosk.core.now()))
        channel.up = True
        kiosk.tap("Hộ tịch")
        kiosk.wait_state("ticket", "failed")  # refused: slot_conflict, and offline numbers blocked
        kiosk.tap("Về trang chủ")
        channel.up = False
        kiosk.tap("Hộ tịch")
        kiosk.wait_state("ticket", "failed")  # the center away and no offline number allowed
        kiosk.tap("Về trang chủ")
        # The last technician left the menu scrolled to its end ("Thoát"): it opens at the top again.
        kiosk.app.root.ids.screens.get_screen("technician").ids.scroll.scroll_y = 0
        enter_technician_mode(kiosk)
        assert kiosk.app.root.ids.screens.current_screen.ids.scroll.scroll_y == 1
        png = look(kiosk, "technician-numbering")
        texts = kiosk.texts()
        assert "Cấp số thứ tự" in texts
        slot_line = next(t for t in texts if t.startswith("Số do trung tâm cấp"))
        assert "slot 3" in slot_line and "860–879" in slot_line
        blocked = next(t for t in texts if t.startswith("Máy không được tự cấp số dự phòng"))
        assert "slot 3 đã thuộc máy khác" in blocked and "khởi động lại ứng dụng" in blocked
        assert any(t.startswith("Nguyên văn từ trung tâm (tiếng Anh): ") for t in texts)
        assert any(
            t.startswith("Lượt lấy số gần nhất (") and t.endswith("máy không được tự cấp số dự phòng")
            for t in texts
        )
        assert "Chưa báo về trung tâm: 1 phiếu, trong đó 1 số máy tự cấp" in texts
        assert "Phiếu bị trung tâm từ chối khi báo về (từ lúc mở ứng dụng): 0" in texts
        assert reads("Cấp số thứ tự", png) and reads("Chưa báo về trung tâm", png)
        # The section is on the first screen the technician sees, above the totals, without scrolling.
        heading = next(w for w in kiosk.visible_widgets() if getattr(w, "text", None) == "Cấp số thứ tự")
        pending = next(w for w in kiosk.visible_widgets() if getattr(w, "text", "").startswith("Chưa báo về"))
        bottom, top = pending.to_window(pending.x, pending.y)[1], heading.to_window(heading.x, heading.top)[1]
        assert 0 < bottom < top < kiosk.app.root.height
        kiosk.tap("English")
        kiosk.wait_for(lambda: "Queue numbers" in kiosk.texts(), what="English technician screen")
        kiosk.shot("technician-numbering-english")
        assert "Tickets not yet reported to the center: 1 (1 numbered by this kiosk)" in kiosk.texts()
        assert any(t.startswith("Reserve numbers are blocked") for t in kiosk.texts())
        kiosk.tap("Exit")
    finally:
        kiosk.runtime.tickets = kiosk.runtime.handlers.tickets = local
        source.close()
        other.close()


def test_english_toggle(kiosk: KioskDriver) -> None:
    start(kiosk)
    kiosk.tap("English")
    kiosk.wait_for(lambda: "Take a number: choose a service area" in kiosk.texts(), what="English home")
    look(kiosk, "home-english")
    assert "Civil status" in " ".join(kiosk.texts()) and "Check application status" in kiosk.texts()
    kiosk.tap("I am entitled to priority")
    look(kiosk, "ticket-priority-english")


def test_large_text_and_voice_buttons(kiosk: KioskDriver) -> None:
    start(kiosk)
    before = kiosk.find("Hộ tịch").font_size
    kiosk.tap("Chữ lớn")
    kiosk.wait_for(lambda: kiosk.app.large_text, what="large text")
    assert kiosk.find("Hộ tịch").font_size >= before * 1.25
    look(kiosk, "home-large-text")
    kiosk.tap("Tra cứu hồ sơ")
    look(kiosk, "lookup-large-text")
    played = kiosk.app.voice.speaker.played
    assert not kiosk.core.voice_on  # off by default
    kiosk.tap("Nghe hướng dẫn")  # the speaker button: this screen's prompt is said (espeak-ng, offline)
    kiosk.wait_for(lambda: kiosk.app.voice.speaker.played > played, what="the prompt played")
    assert kiosk.core.voice_on and "Tắt tiếng" in kiosk.texts()
    kiosk.tap("Về trang chủ")
    kiosk.core.end_session("test")
    kiosk.frames(3)
    assert not kiosk.app.large_text and not kiosk.core.voice_on  # the next citizen starts afresh


def test_idle_warning_then_timeout_returns_home_and_wipes(kiosk: KioskDriver) -> None:
    start(kiosk)
    kiosk.tap("Tra cứu hồ sơ")
    for digit in "21":
        kiosk.tap(digit)
    kiosk.core._last_touch -= kiosk.core.config.kiosk.idle_timeout_s - 15  # 15 s left
    kiosk.wait_for(lambda: kiosk.app._idle_view is not None, what="the idle warning")
    kiosk.frames(3)
    view = kiosk.app._idle_view
    texts = [w.text for w in view.walk() if isinstance(getattr(w, "text", None), str)]
    assert any(t.startswith("Tự động về trang chủ sau 1") and t.endswith("giây") for t in texts), texts
    kiosk.shot("idle-warning")
    button = next(w for w in view.walk() if getattr(w, "text", "") == "Tiếp tục")
    kiosk.tap_widget(button)
    kiosk.wait_for(lambda: kiosk.app._idle_view is None, what="warning gone")
    assert kiosk.core.screen == "lookup" and kiosk.core.flow.typed.endswith("21")  # nothing lost
    kiosk.core._last_touch -= kiosk.core.config.kiosk.idle_timeout_s + 1  # a minute without a touch
    kiosk.wait_state("attract")
    assert kiosk.core.session is None and kiosk.core.flow is None
    assert events(kiosk)[-1] == "session_ended"


def call_app(kiosk: KioskDriver, cmd: str, args: dict | None = None) -> dict:
    """A control-socket request, as the edge agent sends it, while the window keeps drawing."""
    from concurrent.futures import ThreadPoolExecutor

    from common.ipc import call

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(call, kiosk.runtime.control.path, cmd, args or {})
        kiosk.wait_for(future.done, what=cmd)
        return future.result()


def test_center_commands_reach_the_screen(kiosk: KioskDriver, tmp_path: Path) -> None:

    from common.ipc import IpcError

    health = call_app(kiosk, "app.health")
    assert health["screen"] == "attract" and health["devices"]["printer"]["state"] == "ok"
    notice = "Trung tâm nghỉ trưa từ 11:30 đến 13:00"
    call_app(kiosk, "app.notice", {"text_vi": notice, "text_en": "Lunch break"})
    start(kiosk)
    assert notice in kiosk.texts()
    kiosk.shot("home-notice")
    png = Path(call_app(kiosk, "app.screenshot")["png_path"])
    assert png.stat().st_size > 10_000
    printer = kiosk.runtime.simulator._virtual_printer()
    before = len(printer.printed)
    call_app(kiosk, "app.print_test_ticket")
    assert len(printer.printed) == before + 1
    overlay = tmp_path / "pushed.json"
    overlay.write_text(json.dumps({"version": 5, "kiosk": {"notice_vi": "x"}}), encoding="utf-8")
    assert call_app(kiosk, "app.reload_config", {"overlay_path": str(overlay)}) == {"config_version": 5}
    assert call_app(kiosk, "app.health")["config_version"] == 5
    # A new service area pushed by the center shows on the ticket screen without a restart.
    from contract.schema import to_data

    services = to_data(kiosk.core.config.services)
    justice = {
        "code": "TU_PHAP",
        "prefix": "G",
        "name_vi": "Tư pháp",
        "name_en": "Justice",
        "counters": ["9"],
        "opens": "00:00",
        "closes": "23:59",
    }
    overlay.write_text(json.dumps({"version": 6, "services": [*services, justice]}), encoding="utf-8")
    call_app(kiosk, "app.reload_config", {"overlay_path": str(overlay)})
    kiosk.core.end_session("test")
    start(kiosk)
    kiosk.tap("Tư pháp")
    kiosk.wait_state("ticket", "done")
    assert kiosk.core.flow.ticket.number.startswith("G")
    overlay.write_text(json.dumps({"version": 7, "services": services}), encoding="utf-8")
    call_app(kiosk, "app.reload_config", {"overlay_path": str(overlay)})
    kiosk.core.end_session("test")
    overlay.write_text(json.dumps({"devices": {}}), encoding="utf-8")
    with pytest.raises(IpcError, match="devices: unknown key"):
        call_app(kiosk, "app.reload_config", {"overlay_path": str(overlay)})
    assert call_app(kiosk, "app.health")["config_version"] == 7  # the old one stays
    call_app(kiosk, "app.service_mode", {"out_of_service": True, "reason": "maintenance"})
    kiosk.wait_state("out_of_service")
    assert call_app(kiosk, "app.health")["out_of_service"] is True
    with pytest.raises(IpcError, match="BadArguments"):
        call_app(kiosk, "app.service_mode", {"out_of_service": "yes"})
    call_app(kiosk, "app.service_mode", {"out_of_service": False})
    kiosk.wait_state("attract")
    call_app(kiosk, "app.notice", {"text_vi": "", "text_en": ""})


def test_lookup_against_the_province_http_system(kiosk: KioskDriver, tmp_path: Path) -> None:
    """The look-up screen over the real HTTP adapter: found, not found, server error, too slow."""
    from kiosk.dossier import HttpDossierBackend
    from tests.lookup.conftest import ProvinceServer, Reply
    from tests.lookup.test_http_backend import STATUS

    code = str(STATUS["code"])
    server = ProvinceServer()
    original = kiosk.runtime.devices.dossiers
    kiosk.runtime.devices.dossiers = HttpDossierBackend(
        server.base_url, timeout_s=0.5, retries=1, cache_ttl_s=0, allow_insecure_http=True
    )
    try:
        server.on(code, Reply(status=500, body="oops"), Reply(body=STATUS))
        start(kiosk)
        kiosk.tap("Tra cứu hồ sơ")
        kiosk.runtime.simulator.scanner({"show": str(qr_image(tmp_path, code))})
        kiosk.wait_state("lookup", "found")  # the adapter retried after the 500
        assert "Đăng ký kết hôn" in " ".join(kiosk.texts())
        kiosk.shot("lookup-http-found")
        server.on(code, Reply(status=503, body="maintenance"))
        kiosk.tap("Quay lại")  # footer back: home, then look up again
        kiosk.tap("Tra cứu hồ sơ")
        kiosk.core.scanned(code, "serial")
        kiosk.wait_state("lookup", "unavailable")
        look(kiosk, "lookup-http-unavailable")
        assert any(t.startswith("Hệ thống tra cứu đang tạm gián đoạn.") for t in kiosk.texts())
        server.on(code, Reply(body=STATUS, delay_s=2.0))  # slower than the adapter waits
        kiosk.tap("Thử lại")
        kiosk.wait_state("lookup", "unavailable")
        missing = "000.00.10.H12-260105-0999"
        server.on(missing, Reply(status=404, body={"error": "not_found"}))
        kiosk.core.scanned(missing, "serial")
        kiosk.wait_state("lookup", "not_found")
        assert any(t.startswith("Không tìm thấy hồ sơ") for t in kiosk.texts())
        # the province's text is text, never Kivy markup: shown as written, no 300-pixel letters
        hostile = {**STATUS, "procedure_name": "Đăng ký [size=300]kết hôn[/size]",
                   "collect_at": "[color=ff0000]Quầy 3[/color] & sảnh"}
        server.on(code, Reply(body=hostile))
        kiosk.core.scanned(code, "serial")
        kiosk.wait_state("lookup", "found")
        facts = next(w for w in kiosk.visible_widgets() if "&bl;size=300&br;" in str(getattr(w, "text", "")))
        shown = " ".join(kiosk.texts())
        assert "Đăng ký [size=300]kết hôn[/size]" in shown and "[color=ff0000]Quầy 3[/color] & sảnh" in shown
        assert facts.texture_size[1] < 300, facts.texture_size
    finally:
        kiosk.runtime.devices.dossiers = original
        server.close()
