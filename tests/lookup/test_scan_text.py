"""Text from scanners is normalised where it enters (security review): format characters removed,
control characters and over-long codes refused, invalid UTF-8 read without an exception; serial
framing (STX/ETX, split reads, overlong lines). Real ptys and real QR images through the decoders."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import segno

from drivers.scanner import ScannerConfig, ScanResult, SerialScanner, SerialScannerSimulator, SimulatedCamera
from drivers.scanner.base import MAX_SCAN_CHARS, ScanRefused, normalize_scan
from drivers.scanner.serial_line import MAX_LINE_BYTES, LineFramer

from .conftest import wait_for

CODE = "000.00.10.H12-210901-0001"
Rig = tuple[SerialScannerSimulator, SerialScanner, list[ScanResult]]


@pytest.fixture
def serial_rig(tmp_path: Path) -> Iterator[Rig]:
    device = SerialScannerSimulator(tmp_path / "ttyACM-scanner")
    scanner = SerialScanner(ScannerConfig(backend="serial", device=str(device.path), baudrate=115200),
                            idle_end_s=0.15, reopen_s=0.05)
    got: list[ScanResult] = []
    scanner.start(got.append)
    assert wait_for(scanner.present)
    yield device, scanner, got
    scanner.stop()
    device.close()


def test_serial_format_characters_are_removed(serial_rig: Rig) -> None:
    device, _, got = serial_rig
    device.send(f"\u200b{CODE}\u2060\ufeff")  # zero-width space, word joiner, BOM
    device.send(f"Mã hồ sơ: \u202e{CODE}\u202c")  # a bidi override around the code
    assert wait_for(lambda: len(got) == 2)
    assert [r.text for r in got] == [CODE, f"Mã hồ sơ: {CODE}"]
    assert got[0].raw == f"\u200b{CODE}\u2060\ufeff".encode()  # raw stays what the scanner sent


def test_serial_control_characters_refuse_the_code(serial_rig: Rig) -> None:
    device, scanner, got = serial_rig
    device.send_bytes(b"\x1b[2J\x1bp\x00\x19\xfa" + CODE.encode() + b"\r")  # ESC sequences around a code
    device.send_bytes(CODE.encode() + b"\x7f\r")  # DEL
    device.send(CODE)
    assert wait_for(lambda: len(got) == 1 and scanner.codes_refused == 2)
    assert [r.text for r in got] == [CODE]
    assert scanner.self_test()["codes_refused"] == 2
    assert "U+007F" in (scanner.last_refused or "")


def test_serial_stx_etx_framing_is_removed(serial_rig: Rig) -> None:
    device, scanner, got = serial_rig
    device.send_bytes(b"\x02" + CODE.encode() + b"\x03\r")
    device.send_bytes(b"\x02" + CODE.encode() + b"\x03")  # no suffix: the line ends when idle
    assert wait_for(lambda: len(got) == 2)
    assert [r.text for r in got] == [CODE, CODE] and scanner.codes_refused == 0


def test_serial_invalid_utf8_is_read_without_an_exception(serial_rig: Rig) -> None:
    device, scanner, got = serial_rig
    for junk in (b"\xc3\x28", b"\xed\xa0\x80abc", b"\xf8\x88\x80\x80\x80", b"\xe2\x82"):
        device.send_bytes(junk + b"\r")  # bad continuation, a UTF-8 surrogate, 5-byte form, cut
    device.send(CODE)
    assert wait_for(lambda: len(got) + scanner.codes_refused == 5)
    assert got[-1].text == CODE
    assert scanner.callback_errors == 0 and scanner.running()
    # Latin-1 fallback: bytes 80..9F become C1 controls, so the lines holding one are refused.
    assert [r.text for r in got[:-1]] == ["Ã("]
    assert scanner.codes_refused == 3


def camera(tmp_path: Path) -> tuple[SimulatedCamera, list[ScanResult]]:
    cam = SimulatedCamera(ScannerConfig(image_dir=tmp_path, fps=50, repeat_after_s=0))
    got: list[ScanResult] = []
    cam.start(got.append)
    return cam, got


def show(cam: SimulatedCamera, tmp_path: Path, payload: str | bytes, name: str) -> None:
    segno.make(payload, error="l", micro=False).save(str(tmp_path / name), kind="png", scale=3, border=4)
    cam.show_image(name)


def test_camera_qr_with_bidi_override_reads_without_it(tmp_path: Path) -> None:
    cam, got = camera(tmp_path)
    try:
        show(cam, tmp_path, f"https://dichvucong.gov.vn/tra-cuu?maHoSo=\u202e{CODE}\u202c", "bidi.png")
        assert wait_for(lambda: len(got) == 1)
        assert got[0].text == f"https://dichvucong.gov.vn/tra-cuu?maHoSo={CODE}"
    finally:
        cam.stop()


def test_camera_qr_with_escape_codes_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cam, got = camera(tmp_path)
    try:
        caplog.set_level(logging.INFO, "drivers.scanner")
        show(cam, tmp_path, b"\x1bp\x00\x19\xfa" + CODE.encode(), "esc.png")
        assert wait_for(lambda: cam.codes_refused == 1)
        show(cam, tmp_path, CODE, "ok.png")
        assert wait_for(lambda: len(got) == 1)
        assert [r.text for r in got] == [CODE]
        assert CODE not in caplog.text  # a refused scan is logged without its content
    finally:
        cam.stop()


def test_camera_qr_longer_than_the_limit_is_refused(tmp_path: Path) -> None:
    cam, got = camera(tmp_path)
    try:
        show(cam, tmp_path, "1" * (MAX_SCAN_CHARS + 100), "long.png")  # numeric mode: fits a QR
        assert wait_for(lambda: cam.codes_refused == 1, timeout_s=5)
        assert got == [] and "longer than" in (cam.last_refused or "")
    finally:
        cam.stop()


def test_normalize_scan_rules() -> None:
    assert normalize_scan("Nguye\u0302\u0303n") == "Nguyễn"  # NFC
    assert normalize_scan("Nguye\u0302\u200d\u0303n") == "Nguyễn"  # a joiner between two marks
    assert normalize_scan("Mã hồ sơ:\r\n" + CODE + "\tx") == "Mã hồ sơ:\r\n" + CODE + "\tx"
    assert normalize_scan("\u00ad" + CODE) == CODE  # soft hyphen (Cf)
    for bad in ("\x00", "\x1b", "\x85", "\x9b", "\ud800"):
        with pytest.raises(ScanRefused) as info:
            normalize_scan(CODE + bad)
        assert info.value.code == "scan_refused"
    with pytest.raises(ScanRefused):
        normalize_scan("x" * (MAX_SCAN_CHARS + 1))
    with pytest.raises(ScanRefused):
        normalize_scan("x" * 10_000_000)


def test_line_framer() -> None:
    framer = LineFramer(idle_end_s=0.25)
    assert framer.feed(b"A\r\nB\n\rC", 0.0) == [b"A", b"B"]  # CRLF and LFCR give skipped empty lines
    assert framer.feed(b"", 0.1) == []
    assert framer.feed(b"", 0.3) == [b"C"]  # no suffix: ends after 0.25 s of silence
    assert framer.feed(b"x" * (MAX_LINE_BYTES - 1), 1.0) == []
    assert framer.feed(b"yy", 1.0) == []  # now overlong: dropped, and so is the rest of it
    assert framer.feed(b"zzz\rD\r", 1.0) == [b"D"]
    assert framer.lines_dropped == 1
    assert framer.feed(b"\x02E\x03\r\x02\r\x03\r", 2.0) == [b"E", b"\x03"]  # STX/ETX framing removed
