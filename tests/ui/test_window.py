"""Every citizen and technician flow end to end in the real Kivy window, on simulated devices.

Taps are real touch events through Kivy's input pipeline; the printer is the virtual ESC/POS printer,
the camera decodes real QR images, the ID card is the virtual chip behind the real pcscd. Every
screen visited is checked (translated, every glyph present) and saved under artifacts/screens/.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import segno

from screens.harness import KioskDriver
from tests.conftest import ARTIFACTS

pytestmark = [pytest.mark.window]

DEMO_DOSSIER = "000.00.10.H12-210901-0001"


def qr_image(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "qr.png"
    segno.make(text, error="m", encoding="utf-8").save(str(path), scale=6, border=4)
    return path


def ocr(png: Path) -> str:
    """What tesseract (a reader we do not control) reads on a screenshot, in Vietnamese."""
    import subprocess
    import unicodedata

    result = subprocess.run(
        ["tesseract", str(png), "stdout", "-l", "vie"], capture_output=True, text=True, timeout=60, check=True
    )
    return unicodedata.normalize("NFC", result.stdout)


def start(kiosk: KioskDriver) -> None:
    kiosk.shot("attract")
    window_w, window_h = kiosk.app.root.size
    kiosk.tap_at(window_w / 2, window_h / 2)
    kiosk.wait_state("home")


def events(kiosk: KioskDriver) -> list[str]:
    return [e.kind for e in kiosk.runtime.journal.pending(limit=100_000)]


def test_ticket_printed_on_virtual_printer(kiosk: KioskDriver) -> None:
    start(kiosk)
    home = kiosk.shot("home")
    read = ocr(home)
    for label in (
        "Xin chào! Quý khách cần làm gì?",
        "Lấy số thứ tự",
        "Tra cứu hồ sơ",
        "Đánh giá mức độ hài lòng",
    ):
        assert label in read, f"OCR did not read {label!r} on the home screen: {read!r}"
    kiosk.tap("Lấy số thứ tự")
    kiosk.wait_state("ticket", "choose_service")
    kiosk.shot("ticket-choose-service")
    printer = kiosk.runtime.simulator._virtual_printer()
    printed_before = len(printer.printed)
    kiosk.tap("Chứng thực")
    kiosk.wait_state("ticket", "done")
    done = kiosk.shot("ticket-done")
    flow = kiosk.core.flow
    assert flow.ticket is not None and flow.ticket.number.startswith("B")
    assert flow.ticket.number in kiosk.texts()
    read = ocr(done)
    assert "Số thứ tự của quý khách" in read and flow.ticket.number in read and "Chứng thực" in read
    assert len(printer.printed) == printed_before + 1
    shutil.copy(printer.last_png, ARTIFACTS / "screens" / "ticket-printed.png")
    assert "ticket_issued" in events(kiosk)


def test_paper_out_is_said_and_other_services_keep_working(kiosk: KioskDriver, tmp_path: Path) -> None:
    start(kiosk)
    kiosk.tap("Lấy số thứ tự")
    kiosk.runtime.simulator.printer({"paper": "out"})  # runs out while the citizen chooses
    kiosk.tap("Hộ tịch")
    kiosk.wait_state("ticket", "failed")
    kiosk.shot("ticket-paper-out")
    assert any("hết giấy" in text for text in kiosk.texts())
    journal = kiosk.runtime.journal.pending(limit=100_000)
    assert any(e.kind == "device_fault" and e.payload["problem"] == "paper_out" for e in journal)
    assert not any(e.kind == "ticket_issued" and e.payload["service"] == "HO_TICH" for e in journal[-3:])
    kiosk.tap("Về trang chủ")
    kiosk.wait_state("home")
    kiosk.shot("home-printer-out-of-paper")
    with pytest.raises(AssertionError, match="no button"):
        kiosk.find("Lấy số thứ tự", any_state=True)  # no ticket button: a notice in its place
    assert any("Lấy số thứ tự\nMáy in tạm hết giấy" in text for text in kiosk.texts())
    kiosk.tap("Tra cứu hồ sơ")  # the look-up does not need paper
    kiosk.runtime.simulator.scanner({"show": str(qr_image(tmp_path, DEMO_DOSSIER))})
    kiosk.wait_state("lookup", "found")
    kiosk.runtime.simulator.printer({"paper": "ok"})
    kiosk.runtime.poll_devices()
    kiosk.tap("Về trang chủ")
    assert not kiosk.find("Lấy số thứ tự").disabled  # back as soon as the paper is back


def test_scanner_gone_lookup_still_takes_typed_codes(kiosk: KioskDriver) -> None:
    kiosk.runtime.simulator.scanner({"present": False})
    kiosk.runtime.poll_devices()
    start(kiosk)
    kiosk.tap("Tra cứu hồ sơ")
    kiosk.wait_state("lookup", "scan")
    assert any("Camera quét mã đang gặp sự cố" in text for text in kiosk.texts())
    kiosk.shot("lookup-scanner-missing")
    for char in DEMO_DOSSIER:
        kiosk.tap(char)
    kiosk.tap("Tra cứu")
    kiosk.wait_state("lookup", "found")
    faults = [e for e in kiosk.runtime.journal.pending(limit=100_000) if e.kind == "device_fault"]
    assert {"device": "scanner", "problem": "missing", "detail": ""} in [e.payload for e in faults]


def test_lookup_by_receipt_qr_then_print(kiosk: KioskDriver, tmp_path: Path) -> None:
    start(kiosk)
    kiosk.tap("Tra cứu hồ sơ")
    kiosk.wait_state("lookup", "scan")
    kiosk.shot("lookup-scan")
    receipt_url = f"https://dichvucong.example.gov.vn/tra-cuu?maHoSo={DEMO_DOSSIER}"
    kiosk.runtime.simulator.scanner({"show": str(qr_image(tmp_path, receipt_url))})
    kiosk.wait_state("lookup", "found")
    kiosk.shot("lookup-found")
    assert any(DEMO_DOSSIER in text for text in kiosk.texts())
    kiosk.tap("In kết quả tra cứu")
    kiosk.wait_for(lambda: kiosk.core.flow.printed, what="status printed")
    kiosk.shot("lookup-printed")


def test_lookup_typed_garbled_and_not_found(kiosk: KioskDriver, tmp_path: Path) -> None:
    start(kiosk)
    kiosk.tap("Tra cứu hồ sơ")
    kiosk.runtime.simulator.scanner({"show": str(qr_image(tmp_path, "Xin chào Việt Nam — không phải mã"))})
    kiosk.wait_for(lambda: kiosk.core.flow.error_key == "lookup.not_a_dossier", what="not a dossier")
    kiosk.shot("lookup-not-a-dossier")
    for char in "000.00.10.H12-210901-9999":
        kiosk.tap(char)
    assert kiosk.core.flow.typed == "000.00.10.H12-210901-9999"
    kiosk.shot("lookup-typed")
    kiosk.tap("Tra cứu")
    kiosk.wait_state("lookup", "not_found")
    kiosk.shot("lookup-not-found")
    assert "Không tìm thấy hồ sơ" in kiosk.texts()


def test_rating_happy_and_unhappy(kiosk: KioskDriver) -> None:
    start(kiosk)
    kiosk.tap("Đánh giá mức độ hài lòng")
    kiosk.wait_state("rating", "choose_level")
    kiosk.shot("rating-choose")
    kiosk.tap("Rất hài lòng")
    kiosk.wait_state("rating", "thanks")
    kiosk.shot("rating-thanks")
    kiosk.tap("Về trang chủ")
    kiosk.tap("Đánh giá mức độ hài lòng")
    kiosk.tap("Hài lòng")  # a second tap on the center within 5 s: not counted
    kiosk.wait_state("rating", "not_counted")
    kiosk.shot("rating-not-counted")
    kiosk.runtime.ratings.repeat_interval_s = 0  # as if the next citizen came later
    kiosk.tap("Về trang chủ")
    kiosk.tap("Đánh giá mức độ hài lòng")
    kiosk.tap("Lê Hoàng Nam")  # the officer who served (names from the center's list, no photos)
    assert "Đánh giá cho cán bộ Lê Hoàng Nam" in kiosk.texts()
    kiosk.shot("rating-official-chosen")
    kiosk.tap("Rất không hài lòng")
    kiosk.wait_state("rating", "reasons")
    kiosk.tap("Thời gian giải quyết")
    kiosk.shot("rating-reasons")
    kiosk.tap("Gửi đánh giá")
    kiosk.wait_state("rating", "thanks")
    ratings = [e for e in kiosk.runtime.journal.pending(limit=100_000) if e.kind == "rating"]
    assert ratings[-1].payload["level"] == 1 and ratings[-1].payload["reasons"] == ["time_taken"]
    assert (ratings[-1].payload["target_kind"], ratings[-1].payload["target_id"]) == ("official", "cb02")
    kiosk.runtime.ratings.repeat_interval_s = kiosk.core.config.rating.repeat_interval_s


@pytest.mark.pcsc
def test_identify_with_chip_card_gives_elderly_priority(kiosk: KioskDriver) -> None:
    start(kiosk)
    kiosk.tap("Lấy số thứ tự")
    kiosk.tap("Dùng thẻ Căn cước (không bắt buộc)")
    kiosk.wait_state("identify", "scan_qr")
    kiosk.shot("identify-scan-qr")
    kiosk.runtime.simulator.citizen({"profile": "elderly"})  # QR to the camera, chip on the reader
    kiosk.wait_state("identify", "done", timeout=20)
    kiosk.shot("identify-done")
    assert any("Vũ Thị Hồng Nhung" in text for text in kiosk.texts())
    kiosk.tap("Tiếp tục")
    kiosk.wait_state("ticket", "choose_service")
    assert kiosk.core.flow.priority  # born 1948: over 75
    kiosk.shot("ticket-identified-priority")
    kiosk.tap("Hộ tịch")
    kiosk.wait_state("ticket", "done")
    assert kiosk.core.flow.ticket.priority
    card_reads = [e for e in kiosk.runtime.journal.pending(limit=100_000) if e.kind == "card_read"]
    assert card_reads[-1].payload["result"] == "ok"
    assert "Nhung" not in str(card_reads[-1].payload)
    kiosk.tap("Về trang chủ")
    assert kiosk.core.session is not None and kiosk.core.session.identity is None


@pytest.mark.pcsc
def test_identify_with_can_typed_on_keypad(kiosk: KioskDriver) -> None:
    """No QR at hand: the six CAN digits from the card's front open the chip (PACE-CAN)."""
    start(kiosk)
    kiosk.tap("Lấy số thứ tự")
    kiosk.tap("Dùng thẻ Căn cước (không bắt buộc)")
    kiosk.runtime.simulator.citizen({"profile": "married", "show_qr": False})
    for digit in "009876":  # CAN = last six digits of 079190009876
        kiosk.tap(digit)
    kiosk.shot("identify-can-typed")
    kiosk.tap("Đọc thẻ")
    kiosk.wait_state("identify", "done", timeout=20)
    assert any("Trần Thị Bích Ngọc" in text for text in kiosk.texts())
    kiosk.tap("Tiếp tục")
    assert not kiosk.core.flow.priority  # born 1990


@pytest.mark.pcsc
def test_reader_unplugged_is_said_and_skippable(kiosk: KioskDriver) -> None:
    start(kiosk)
    kiosk.tap("Lấy số thứ tự")
    kiosk.tap("Dùng thẻ Căn cước (không bắt buộc)")
    kiosk.runtime.simulator.reader_switch({"present": False})  # the cable comes out mid-visit
    kiosk.runtime.simulator.citizen({"profile": "adult", "insert": False})
    kiosk.wait_state("identify", "failed")
    assert kiosk.core.flow.error_key == "card.reader_missing"
    kiosk.shot("identify-reader-missing")
    kiosk.tap("Bỏ qua")
    kiosk.wait_state("ticket", "choose_service")
    kiosk.runtime.poll_devices()
    kiosk.frames(3)
    # While the reader is missing the optional ID-card step is not offered; tickets still print.
    assert not any("Dùng thẻ Căn cước" in text for text in kiosk.texts())
    kiosk.tap("Hộ tịch")
    kiosk.wait_state("ticket", "done")


def test_technician_long_press_pin_self_test_and_out_of_service(kiosk: KioskDriver) -> None:
    start(kiosk)
    kiosk.tap("Lấy số thứ tự")
    kiosk.tap("Xây dựng")
    kiosk.wait_state("ticket", "done")
    kiosk.core.submit("local", lambda: None).result(10)  # counting of earlier visits has finished
    kiosk.tap("Về trang chủ")
    name = kiosk.app.root.ids.center_name
    x, y = name.to_window(*name.center)
    kiosk.tap_at(x, y, hold_s=3.3)
    kiosk.wait_state("technician", "pin")
    kiosk.shot("technician-pin")
    for digit in "1111":
        kiosk.tap(digit)
    kiosk.tap("OK")  # the PIN is checked on a worker lane (argon2id, ~0.1 s)
    kiosk.wait_for(lambda: kiosk.core.flow.error_key == "technician.wrong_pin", what="wrong PIN said")
    for digit in "2468":
        kiosk.tap(digit)
    kiosk.tap("OK")
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
    kiosk.shot("out-of-service")
    window_w, window_h = kiosk.app.root.size
    kiosk.tap_at(window_w / 2, window_h / 2)
    assert kiosk.core.screen == "out_of_service"  # citizens cannot start anything


def test_english_toggle(kiosk: KioskDriver) -> None:
    start(kiosk)
    kiosk.tap("English")
    kiosk.wait_for(lambda: "Take a queue number" in kiosk.texts(), what="English home")
    kiosk.shot("home-english")
    kiosk.tap("Take a queue number")
    kiosk.shot("ticket-choose-english")
    assert "Civil status" in " ".join(kiosk.texts())


def test_idle_timeout_returns_to_attract_and_wipes(kiosk: KioskDriver) -> None:
    start(kiosk)
    kiosk.tap("Tra cứu hồ sơ")
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
    kiosk.tap("Lấy số thứ tự")
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
        kiosk.shot("lookup-http-unavailable")
        assert "Hệ thống tra cứu đang tạm gián đoạn, vui lòng thử lại sau" in kiosk.texts()
        server.on(code, Reply(body=STATUS, delay_s=2.0))  # slower than the adapter waits
        kiosk.tap("Thử lại")
        kiosk.wait_state("lookup", "unavailable")
        missing = "000.00.10.H12-260105-0999"
        server.on(missing, Reply(status=404, body={"error": "not_found"}))
        kiosk.core.scanned(missing, "serial")
        kiosk.wait_state("lookup", "not_found")
        assert "Không tìm thấy hồ sơ" in kiosk.texts()
    finally:
        kiosk.runtime.devices.dossiers = original
        server.close()
