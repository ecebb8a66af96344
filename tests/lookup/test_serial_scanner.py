"""The serial line scanner through a real pty: framing, exact UTF-8, noise, unplug and re-plug."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.scanner import ScannerConfig, ScanResult, SerialScanner, SerialScannerSimulator, open_scanner
from drivers.scanner.errors import ScannerError
from drivers.scanner.serial_line import MAX_LINE_BYTES

from .conftest import wait_for


class Rig:
    def __init__(self, device: SerialScannerSimulator, scanner: SerialScanner) -> None:
        self.device = device
        self.scanner = scanner
        self.got: list[ScanResult] = []
        self.presence: list[bool] = []


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    device = SerialScannerSimulator(tmp_path / "ttyACM-scanner")
    scanner = SerialScanner(ScannerConfig(backend="serial", device=str(device.path), baudrate=115200),
                            idle_end_s=0.15, reopen_s=0.05)
    rig = Rig(device, scanner)
    scanner.start(rig.got.append, rig.presence.append)
    assert wait_for(scanner.present)
    yield rig
    scanner.stop()
    device.close()
    assert scanner.callback_errors == 0


def texts(rig: Rig) -> list[str]:
    return [r.text for r in rig.got]


def test_lines_with_each_suffix(rig: Rig) -> None:
    rig.device.send_bytes(b"000.00.10.H12-210901-0001\r")
    rig.device.send_bytes(b"000.00.10.H12-210901-0002\n")
    rig.device.send_bytes(b"000.00.10.H12-210901-0003\r\n")
    rig.device.send_bytes(b"000.00.10.H12-210901-0004")  # a scanner with no suffix: ends when idle
    assert wait_for(lambda: len(rig.got) == 4)
    assert texts(rig) == [f"000.00.10.H12-210901-000{i}" for i in range(1, 5)]
    assert all(r.source == "serial" and r.symbology == "unknown" for r in rig.got)


def test_vietnamese_utf8_is_exact(rig: Rig) -> None:
    rig.device.send("Mã hồ sơ: 000.00.10.H12-210901-0001 — Trần Thị Bích Ngọc")
    assert wait_for(lambda: len(rig.got) == 1)
    assert rig.got[0].text == "Mã hồ sơ: 000.00.10.H12-210901-0001 — Trần Thị Bích Ngọc"
    assert rig.got[0].raw == rig.got[0].text.encode()


def test_line_split_across_writes(rig: Rig) -> None:
    payload = "Đăng ký khai sinh".encode()
    rig.device.send_bytes(payload[:5])  # cuts "Đ..." in the middle of a UTF-8 sequence
    rig.device.send_bytes(payload[5:] + b"\r")
    assert wait_for(lambda: len(rig.got) == 1)
    assert texts(rig) == ["Đăng ký khai sinh"]


def test_noise_does_not_crash(rig: Rig) -> None:
    rig.device.send_bytes(b"\xff\xfe\xe9 noise\r")  # not UTF-8: read as Latin-1, no crash
    rig.device.send_bytes(b"\xff\xfe\x00\x81 noise\r")  # a wrong baud rate: NUL and C1 refuse it
    rig.device.send_bytes(b"\r\n\r\n")  # empty lines are ignored
    rig.device.send_bytes(b"x" * (MAX_LINE_BYTES + 10) + b"\r")  # overlong: dropped
    rig.device.send("after noise")
    assert wait_for(lambda: "after noise" in texts(rig))
    assert texts(rig) == ["\xff\xfe\xe9 noise", "after noise"]
    assert rig.scanner.lines_dropped == 1
    assert rig.scanner.codes_refused == 1


def test_unplug_and_replug(rig: Rig) -> None:
    rig.device.set_present(False)
    assert wait_for(lambda: not rig.scanner.present())
    assert rig.presence[-1] is False
    with pytest.raises(ScannerError, match="unplugged"):
        rig.device.send("lost")
    report = rig.scanner.self_test()
    assert report["present"] is False and report["ok"] is False
    assert "ttyACM-scanner" in report["last_error"]
    rig.device.set_present(True)
    assert wait_for(rig.scanner.present)
    rig.device.send("back again")
    assert wait_for(lambda: texts(rig) == ["back again"])
    assert rig.presence == [True, False, True]
    assert rig.scanner.self_test()["ok"] is True


def test_a_raising_callback_does_not_stop_the_scanner(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    device = SerialScannerSimulator(tmp_path / "tty")
    scanner = SerialScanner(ScannerConfig(device=str(device.path)))
    good: list[str] = []

    def callback(result: ScanResult) -> None:
        if result.text == "boom":
            raise RuntimeError("a bug in the app")
        good.append(result.text)

    scanner.start(callback)
    try:
        assert wait_for(scanner.present)
        device.send("boom")
        device.send("fine")
        assert wait_for(lambda: good == ["fine"])
        assert scanner.callback_errors == 1
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
            "scan callback raised; the scanner keeps running"]
        caplog.clear()
    finally:
        scanner.stop()
        device.close()


def test_missing_device_is_not_present_and_says_why(tmp_path: Path) -> None:
    scanner = open_scanner(ScannerConfig(backend="serial", device=str(tmp_path / "nothing")))
    assert isinstance(scanner, SerialScanner)
    scanner.start(lambda r: None)
    try:
        assert wait_for(lambda: scanner.self_test()["last_error"] is not None)
        report = scanner.self_test()
        assert report["present"] is False and report["ok"] is False
        assert "cannot open" in report["last_error"]
    finally:
        scanner.stop()


def test_simulator_unplug_is_reported_for_the_whole_scanner(tmp_path: Path) -> None:
    scanner = open_scanner(ScannerConfig(backend="simulator", fps=50))
    presence: list[bool] = []
    got: list[ScanResult] = []
    scanner.start(got.append, presence.append)
    try:
        assert wait_for(scanner.present)
        scanner.set_present(False)  # type: ignore[attr-defined]
        assert wait_for(lambda: not scanner.present())
        assert scanner.self_test()["ok"] is False
        scanner.set_present(True)  # type: ignore[attr-defined]
        assert wait_for(scanner.present)
        scanner.type_text("ok")  # type: ignore[attr-defined]
        assert wait_for(lambda: [r.text for r in got] == ["ok"])
        assert presence[-1] is True and False in presence
        assert all(a != b for a, b in itertools.pairwise(presence))  # changes only
    finally:
        scanner.close()  # type: ignore[attr-defined]


def test_camera_backend_without_opencv_refuses_to_open() -> None:
    from drivers.scanner import ScannerUnavailable

    try:
        import cv2  # noqa: F401
    except ImportError:
        with pytest.raises(ScannerUnavailable, match="opencv"):
            open_scanner(ScannerConfig(backend="camera"))
    else:
        pytest.skip("OpenCV is installed here; the refusal path cannot be shown")


def test_overlong_line_split_across_reads_is_dropped_whole(rig: Rig) -> None:
    """The tail of an overlong line arriving in a later read is not a code of its own."""
    import time

    rig.device.send_bytes(b"y" * (MAX_LINE_BYTES + 5))
    time.sleep(0.05)  # the reader has consumed the first part before the rest arrives
    rig.device.send_bytes(b"tail\r")
    rig.device.send("after")
    assert wait_for(lambda: "after" in texts(rig))
    assert texts(rig) == ["after"]
    assert rig.scanner.lines_dropped == 1
