"""From a receipt held to the (simulated) camera or read by the serial scanner to a status:
the real decoder, the parser and the HTTP adapter against a local server, no window."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.errors import MotcuaError
from drivers.scanner import ScannerConfig, ScanResult, SimulatorScanner
from kiosk.dossier import (
    DossierBackend,
    DossierNotFound,
    DossierStatus,
    HttpDossierBackend,
    InvalidDossierCode,
    LookupConfig,
    LookupUnavailable,
    open_backend,
    parse_dossier_code,
)
from kiosk.error_screens import screen_key

from .conftest import ProvinceServer, Reply, qrencode_png, segno_png
from .test_http_backend import STATUS


def run(scanner: SimulatorScanner, backend: DossierBackend, act: object) -> DossierStatus | MotcuaError:
    """Scan once and look up what was scanned, as the app's worker does; return status or error."""
    results: queue.Queue[DossierStatus | MotcuaError] = queue.Queue()

    def on_code(result: ScanResult) -> None:
        try:
            results.put(backend.lookup(parse_dossier_code(result.text)))
        except MotcuaError as exc:
            results.put(exc)

    scanner.start(on_code)
    try:
        act()  # type: ignore[operator]
        return results.get(timeout=5)
    finally:
        scanner.stop()


@pytest.fixture
def scanner(tmp_path: Path) -> Iterator[SimulatorScanner]:
    s = SimulatorScanner(ScannerConfig(image_dir=tmp_path, fps=50))
    yield s
    s.close()


def test_receipt_qr_to_status_over_http(
    tmp_path: Path, scanner: SimulatorScanner, province: ProvinceServer
) -> None:
    province.on(str(STATUS["code"]), Reply(body=STATUS))
    qrencode_png(f"https://motcua.hcm.gov.vn/tra-cuu?maHoSo={STATUS['code']}", tmp_path / "receipt.png")
    backend = HttpDossierBackend(province.base_url, timeout_s=1, retries=0, allow_insecure_http=True)
    result = run(scanner, backend, lambda: scanner.show_image("receipt.png"))
    assert isinstance(result, DossierStatus)
    assert result.procedure_name == "Đăng ký kết hôn"
    assert [r.path for r in province.requests] == [f"/api/v1/dossiers/{STATUS['code']}"]


def test_foreign_qr_never_reaches_the_back_end(
    tmp_path: Path, scanner: SimulatorScanner, province: ProvinceServer
) -> None:
    segno_png("079123456789|123456789|Nguyễn Văn An|01011990|Nam|Hà Nội|01012021", tmp_path / "cccd.png")
    backend = HttpDossierBackend(province.base_url, timeout_s=1, retries=0, allow_insecure_http=True)
    result = run(scanner, backend, lambda: scanner.show_image("cccd.png"))
    assert isinstance(result, InvalidDossierCode) and screen_key(result) == "lookup.not_a_dossier"
    assert province.requests == []


def test_not_found_and_unreachable_differ(scanner: SimulatorScanner, province: ProvinceServer,
                                          closed_port: int) -> None:
    province.on("000.00.10.H12-210901-0002", Reply(status=404, body={"error": "not_found"}))
    backend = HttpDossierBackend(province.base_url, timeout_s=1, retries=0, allow_insecure_http=True)
    result = run(scanner, backend, lambda: scanner.type_text("000.00.10.H12-210901-0002"))
    assert isinstance(result, DossierNotFound) and screen_key(result) == "lookup.not_found"
    down = HttpDossierBackend(f"http://127.0.0.1:{closed_port}", timeout_s=1, retries=0,
                              allow_insecure_http=True)
    result = run(scanner, down, lambda: scanner.type_text("000.00.10.H12-210901-0002"))
    assert isinstance(result, LookupUnavailable) and screen_key(result) == "lookup.unavailable"


def test_serial_scan_against_the_demo_store(tmp_path: Path, scanner: SimulatorScanner) -> None:
    backend = open_backend(LookupConfig(backend="demo", demo_path=tmp_path / "demo.sqlite"))
    result = run(scanner, backend, lambda: scanner.type_text("000.00.10.H12-210901-0001"))
    assert isinstance(result, DossierStatus) and result.status.label_vi == "Đã trả kết quả"
