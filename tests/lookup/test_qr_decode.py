"""QR images from independent encoders (qrencode CLI, segno) decoded exactly by both decoders,
through the simulated camera (a 1280x720 frame) and through the full simulator scanner."""

from __future__ import annotations

import threading
from functools import partial
from pathlib import Path

import pytest
from PIL import Image

from drivers.scanner import ScannerConfig, ScanResult, SimulatedCamera, SimulatorScanner, make_decoder
from drivers.scanner.camera import camera_frame, decoder_check
from drivers.scanner.decode import DecoderName, ZbarDecoder, bytes_to_text
from kiosk.dossier import parse_dossier_code

from .conftest import VIETNAMESE_PAYLOADS, qrencode_png, segno_image, segno_png, wait_for

DECODERS = ["zxing", "zbar"]


@pytest.fixture(scope="module")
def decoders() -> dict[str, object]:
    return {name: make_decoder(name) for name in DECODERS}  # type: ignore[arg-type]


@pytest.mark.parametrize("encoder", ["qrencode", "segno", "segno-eci"])
@pytest.mark.parametrize("decoder_name", DECODERS)
def test_vietnamese_text_decodes_exactly(
    tmp_path: Path, decoders: dict, encoder: str, decoder_name: str
) -> None:
    decoder = decoders[decoder_name]
    wrong = []
    for index, text in enumerate(VIETNAMESE_PAYLOADS):
        path = tmp_path / f"{index}.png"
        if encoder == "qrencode":
            qrencode_png(text, path)
        else:
            segno_png(text, path, eci=encoder == "segno-eci")
        with Image.open(path) as image:
            found = decoder.decode(camera_frame(image))
        if [d.text for d in found] != [text]:
            wrong.append((text, [d.text for d in found]))
    assert wrong == []


def test_qrencode_bytes_are_utf8_and_kept_raw(tmp_path: Path, decoders: dict) -> None:
    with Image.open(qrencode_png("Đức", tmp_path / "duc.png")) as image:
        for decoder in decoders.values():
            [decoded] = decoder.decode(camera_frame(image))
            assert decoded.raw == "Đức".encode()
            assert decoded.symbology == "QRCode"


def test_latin1_payload_from_segno_is_read_as_latin1(decoders: dict) -> None:
    """segno encodes "Bích" in ISO-8859-1 (the QR default) when it fits: one byte per letter."""
    frame = camera_frame(segno_image("Bích"))
    for decoder in decoders.values():
        [decoded] = decoder.decode(frame)
        assert decoded.raw == b"B\xedch"
        assert decoded.text == "Bích"


def test_plain_pyzbar_garbles_short_vietnamese_which_is_why_binary_mode_is_on() -> None:
    from pyzbar import pyzbar

    frame = camera_frame(segno_image("Đức"))
    assert pyzbar.decode(frame)[0].data.decode("utf-8") != "Đức"  # zbar's charset guess
    assert [d.text for d in ZbarDecoder().decode(frame)] == ["Đức"]


def test_bytes_to_text_rules() -> None:
    assert bytes_to_text("Hồ sơ".encode()) == "Hồ sơ"
    assert bytes_to_text(b"B\xedch") == "Bích"
    assert bytes_to_text("\ufeffĐức".encode()) == "Đức"
    decomposed = "Đức".encode().replace("ứ".encode(), "ư\u0301".encode())
    assert bytes_to_text(decomposed) == "Đức"  # NFC


def test_empty_and_noise_frames_give_nothing(decoders: dict) -> None:
    import random

    rng = random.Random(7)
    noise = Image.frombytes("L", (1280, 720), bytes(rng.getrandbits(8) for _ in range(1280 * 720)))
    blank = Image.new("L", (1280, 720), 128)
    for decoder in decoders.values():
        assert decoder.decode(noise) == []
        assert decoder.decode(blank) == []


def test_code128_barcode_of_a_dossier_code(decoders: dict) -> None:
    """Older receipts print a Code 128 barcode (drawn here by zxing-cpp's writer, read by both)."""
    import zxingcpp

    text = "000.00.10.H12-210901-0001"
    barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.Code128)
    image = Image.fromarray(barcode.to_image(scale=3, add_quiet_zones=True)).convert("L")
    image = image.resize((image.width, 120))
    for name, decoder in decoders.items():
        found = decoder.decode(camera_frame(image))
        assert [(d.text, d.symbology) for d in found] == [(text, "Code128")], name


@pytest.mark.parametrize("decoder_name", DECODERS)
def test_decoder_self_check(decoders: dict, decoder_name: str) -> None:
    assert decoder_check(decoders[decoder_name]) == "ok"


def _has_at_least(results: list[ScanResult], count: int) -> bool:
    return len(results) == count


# -- through the simulated camera ------------------------------------------------------------------
@pytest.mark.parametrize("decoder_name", DECODERS)
def test_simulator_camera_path_reports_each_receipt_once(tmp_path: Path, decoder_name: DecoderName) -> None:
    receipt = "https://motcua.hcm.gov.vn/tra-cuu?maHoSo=000.00.10.H12-210901-0001&ten=Đăng%20ký"
    qrencode_png(receipt, tmp_path / "receipt.png")
    segno_png("Trần Thị Bích Ngọc", tmp_path / "other.png")
    config = ScannerConfig(backend="simulator", decoder=decoder_name, image_dir=tmp_path, fps=50,
                           repeat_after_s=0.3)
    camera = SimulatedCamera(config)
    got: list[ScanResult] = []
    camera.start(got.append)
    try:
        assert wait_for(camera.present)
        camera.show_image("receipt.png", hold_s=0.5)
        assert wait_for(lambda: len(got) == 1)
        assert got[0].text == receipt
        assert got[0].source == "camera" and got[0].symbology == "QRCode"
        assert parse_dossier_code(got[0].text).text == "000.00.10.H12-210901-0001"
        camera.show_image(tmp_path / "receipt.png", hold_s=0.5)  # still in view: not again
        assert wait_for(lambda: camera.frames_decoded == 2)
        threading.Event().wait(0.05)
        assert len(got) == 1
        camera.show_image(tmp_path / "other.png", hold_s=0.2)
        assert wait_for(lambda: len(got) == 2)
        assert got[1].text == "Trần Thị Bích Ngọc"
        assert wait_for(lambda: camera._scene is None, 2)
        threading.Event().wait(0.4)  # out of view longer than repeat_after_s
        camera.show_image("receipt.png")
        assert wait_for(lambda: len(got) == 3)
        assert got[2].text == receipt
        assert camera.frames_decoded == 4  # one decode per presented image: same scene, same result
        assert camera.callback_errors == 0
    finally:
        camera.stop()


def test_unreadable_image_is_a_scanner_error(tmp_path: Path) -> None:
    from drivers.scanner.errors import ScannerError

    (tmp_path / "bad.png").write_bytes(b"not a png")
    camera = SimulatedCamera(ScannerConfig(image_dir=tmp_path))
    with pytest.raises(ScannerError, match="cannot read image"):
        camera.show_image("bad.png")
    with pytest.raises(ScannerError):
        camera.show_image("missing.png")


def test_full_simulator_scanner_camera_and_serial(tmp_path: Path) -> None:
    qrencode_png("Mã hồ sơ: 000.31.25.H29-260105-000041", tmp_path / "r.png")
    scanner = SimulatorScanner(ScannerConfig(image_dir=tmp_path, fps=50))
    got: list[ScanResult] = []
    scanner.start(got.append)
    try:
        assert wait_for(scanner.present)
        scanner.show_image("r.png")
        scanner.type_text("000.00.10.H12-210901-0001")
        assert wait_for(lambda: len(got) == 2)
        assert {(r.source, r.text) for r in got} == {
            ("camera", "Mã hồ sơ: 000.31.25.H29-260105-000041"),
            ("serial", "000.00.10.H12-210901-0001"),
        }
        report = scanner.self_test()
        assert report["ok"] is True
        assert report["camera"]["decoder_check"] == "ok"
    finally:
        scanner.close()


@pytest.mark.parametrize("decoder_name", DECODERS)
def test_every_vietnamese_payload_through_the_simulated_camera(
    tmp_path: Path, decoder_name: DecoderName
) -> None:
    """The camera path end to end (file -> 1280x720 frame -> worker -> decoder -> ScanResult)."""
    for index, text in enumerate(VIETNAMESE_PAYLOADS):
        qrencode_png(text, tmp_path / f"{index}.png")
    camera = SimulatedCamera(ScannerConfig(decoder=decoder_name, image_dir=tmp_path, fps=50))
    got: list[ScanResult] = []
    camera.start(got.append)
    try:
        for index in range(len(VIETNAMESE_PAYLOADS)):
            camera.show_image(f"{index}.png", hold_s=0.05)
            assert wait_for(partial(_has_at_least, got, index + 1))
        assert [r.text for r in got] == VIETNAMESE_PAYLOADS
        assert [r.raw for r in got] == [t.encode() for t in VIETNAMESE_PAYLOADS]
    finally:
        camera.stop()
